"""Whether a figure adds up over groups: what "above the average" compares a group's figure with.

A group's total or count ("MRR per account", "orders per customer") compared with "the
average" means the average of the groups' figures: the average account's MRR. A group's
average or ratio ("average fee", "fee per lesson") is not additive: its "overall average" is
the same figure taken over every row the groups hold (the average fee of all fees), and the
average of the groups' averages weighs a group of one fee like a group of a hundred.
"""

from __future__ import annotations

from sqlglot import exp


def additive(figure: exp.Expr) -> bool:
    """Whether the figure is a total or a count (or a sum of them, a multiple of one):
    not an average, a ratio, an extreme."""
    node = figure.unalias()
    while isinstance(node, exp.Paren | exp.Cast):
        node = node.this
    if isinstance(node, exp.Sum | exp.Count):
        return True
    if isinstance(node, exp.Add | exp.Sub):
        return additive(node.this) and additive(node.expression)
    if isinstance(node, exp.Mul):
        # "12 * SUM(mrr)": a total times a constant
        consts = [side for side in (node.this, node.expression) if isinstance(side, exp.Literal)]
        others = [
            side for side in (node.this, node.expression) if not isinstance(side, exp.Literal)
        ]
        return len(consts) == 1 and additive(others[0])
    return False
