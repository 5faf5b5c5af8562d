"""The join plan: which tables an answer joins, along which keys, and which joins would
multiply the rows an aggregate adds up.

* A path is chosen by what the question's words point at: among the shortest paths from
  the tables already joined, the one through tables the question names ("instructors who
  advise students": through `advisor`, not `department`) and along keys whose role the
  question names ("flights from", "the winner": `source_airport_id`, `winner_id`) wins.
  Two paths still equally good are a guess between different answers: the planner says so
  (`AmbiguousJoin`) and the caller declines with both as suggestions.
* A join to rows that repeat the aggregated table's rows (a parent's amount over its
  children) inflates SUM, AVG and COUNT. Where the repeating tables only filter, they become
  a semi-join (`key IN (SELECT ...)`); where they are shown too, the reading is refused.
"""

from __future__ import annotations

import copy
import functools
from collections import deque
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin.intents import Intent, Measure
from backend.nl2sql.engines.builtin.lexicon import ABBREVIATIONS, STOP_WORDS
from backend.nl2sql.engines.builtin.linking import GENERIC_WORDS, ColumnRef, SchemaIndex

Step = tuple[str, str, str, str]
"""(from table, from column, to table, to column)."""

MAX_PATHS = 64
"""Shortest paths compared per table joined (a dense schema has many; the rest are alike)."""
_KEY_WORDS = frozenset({"id", "code", "no", "key", "fk", "number", "num", "ref"})
_SUFFIXES = ("ation", "ition", "ment", "ance", "ence", "ing", "ure", "ion", "ed", "er", "or",
             "ee", "e")  # fmt: skip


class AmbiguousJoin(QuestionNotUnderstood):
    """Two join paths fit the question equally well and may give different answers."""

    def __init__(self, target: str, paths: list[list[Step]]) -> None:
        self.target = target
        self.paths = paths
        ways = " or ".join(describe(p) for p in paths[:3])
        super().__init__(
            f"{target} can be joined in more than one way ({ways}) and the question does not "
            "say which",
            recognised={"tables": sorted({s[0] for p in paths for s in p} | {target})},
        )


def describe(path: list[Step]) -> str:
    """A path in words: `a.x = b.y, then b.z = c.w`."""
    return ", then ".join(f"{a}.{ac} = {b}.{bc}" for a, ac, b, bc in path)


@functools.lru_cache(maxsize=8192)
def stem(word: str) -> str:
    """A rough stem for relating a question's word to a schema name's word (advise ~ advisor,
    departing ~ departure, winner ~ win, hosted ~ host); not a lemmatiser."""
    if word.endswith("s") and not word.endswith("ss") and len(word) > 4:
        word = word[:-1]  # inspections -> inspection
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) >= 4 and word[-1] == word[-2]:  # winn -> win, hitt -> hit
        word = word[:-1]
    return word


_ROLES = (
    frozenset({"source", "origin", "start", "depart", "departure", "leave", "outbound"}),
    frozenset({"destination", "arrive", "arrival", "inbound", "end", "finish"}),
    frozenset({"winner", "win", "won", "victor"}),
    frozenset({"loser", "lose", "lost"}),
    frozenset({"buyer", "purchaser", "buy", "bought"}),
    frozenset({"seller", "vendor", "sell", "sold"}),
    frozenset({"sender", "send", "sent"}),
    frozenset({"recipient", "receiver", "receive", "received"}),
    frozenset({"home", "host", "hosted"}),
    frozenset({"away", "visitor", "visiting"}),
)
"""Words of general English that name the same role of a key (`src_id`: "from", "start")."""
_ROLE_WORDS: dict[str, list[frozenset[str]]] = {}
for _group in _ROLES:
    for _word in _group:
        _ROLE_WORDS.setdefault(_word, []).append(frozenset(stem(w) for w in _group))


def related(a: str, b: str) -> bool:
    if a == b:
        return True
    if b in _ROLE_WORDS and any(stem(a) in stems for stems in _ROLE_WORDS[b]):
        return True
    if len(a) < 4 or len(b) < 4 or a in STOP_WORDS or b in STOP_WORDS:
        return False
    return stem(a) == stem(b)


@dataclass(slots=True)
class JoinPlanner:
    index: SchemaIndex
    preferred: frozenset[str] = frozenset()
    """Lower-case names of tables the question's words point at."""
    words: frozenset[str] = frozenset()
    """The question's lemmas (to read the role of a key: `source`, `home`, `winner`)."""
    forced: dict[str, list[Step]] = field(default_factory=dict)
    """Lower-case target table -> the path to take (a suggestion's alternative reading)."""
    max_hops: int = 3
    _same: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """(table, column) -> a column the joins so far make it equal to (union-find)."""

    def plan(self, start: str, tables: list[str]) -> list[Step]:
        joined = [start.lower()]
        steps: list[Step] = []
        self._same = {}
        for table in tables:
            if table.lower() in joined:
                continue
            best = self.forced.get(table.lower()) or self.best_path(start, joined, table)
            for step in best:
                if step[2].lower() not in joined:
                    steps.append(step)
                    joined.append(step[2].lower())
                    self._equate(
                        (step[0].lower(), step[1].lower()), (step[2].lower(), step[3].lower())
                    )
        return steps

    def _root(self, col: tuple[str, str]) -> tuple[str, str]:
        while col in self._same and self._same[col] != col:
            col = self._same[col]
        return col

    def _equate(self, a: tuple[str, str], b: tuple[str, str]) -> None:
        ra, rb = self._root(a), self._root(b)
        if ra != rb:
            self._same[rb] = ra

    def _shape(self, path: list[Step]) -> tuple[object, ...]:
        """A path up to columns the joins so far already equate (`savings.custid` joined from
        `accounts.custid` or from `checking.custid`, which equals it, is the same join)."""
        first = path[0]
        start = self._root((first[0].lower(), first[1].lower()))
        arrivals = tuple((s[2].lower(), s[3].lower()) for s in path)
        departures = tuple((s[0].lower(), s[1].lower()) for s in path[1:])
        return start, arrivals, departures

    def best_path(self, start: str, joined: list[str], table: str) -> list[Step]:
        paths = self.shortest_paths(joined, table)
        if not paths:
            raise QuestionNotUnderstood(
                f"no foreign-key path joins {start} and {table}",
                recognised={"tables": [start, table]},
            )
        if len(paths[0]) > self.max_hops:
            raise QuestionNotUnderstood(
                f"{start} and {table} are only related through {len(paths[0])} joins",
                recognised={"tables": [start, table]},
            )
        paths = self.named_detour(joined, table, paths)
        top = max(self.score(p) for p in paths)
        tied = [p for p in paths if self.score(p) == top]
        # from a table joined on plain keys rather than one joined on a key of a role the
        # question does not say ("volunteers who participate in an event": from
        # `participates_in`, not along `events.organiser_id`), then from the table joined first
        # among those the best paths leave from: the question's subject before the tables hung
        # on it
        if len({p[0][0].lower() for p in tied}) > 1:
            plain = [p for p in tied if not any(self.unsaid_role(s) for s in p)]
            tied = plain or tied
        source = min(joined.index(p[0][0].lower()) for p in tied)
        tied = [p for p in tied if joined.index(p[0][0].lower()) == source]
        tied = self.plain_parallel_key(tied)
        distinct: dict[tuple[object, ...], list[Step]] = {}
        for path in tied:
            distinct.setdefault(self._shape(path), path)
        if len(distinct) > 1:
            raise AmbiguousJoin(table, list(distinct.values()))
        return tied[0]

    def plain_parallel_key(self, tied: list[list[Step]]) -> list[list[Step]]:
        """`tied`, or where they pass the same tables and differ only in which of two keys
        between a pair of tables they join on, the ones on keys of no role unsaid: a table
        referring to another plainly (`book.language_id`) and for a role
        (`book.original_language_id`) means the plain reference when the question names no
        role ("the language of the book")."""
        if len({tuple(s[2].lower() for s in p) for p in tied}) != 1:
            return tied
        plain = [p for p in tied if not any(self.unsaid_role(s) for s in p)]
        return plain or tied

    def named_detour(
        self, joined: list[str], table: str, paths: list[list[Step]]
    ) -> list[list[Step]]:
        """`paths`, or where each of them joins on a key of a role the question does not name
        (`department.head` -> the physician heading it), the paths one join longer through a
        table the question names whose keys name no role ("departments physicians are
        affiliated with": through `affiliated_with`), when there is exactly one such."""
        if len(paths[0]) + 1 > self.max_hops or not all(
            any(self.unsaid_role(s) for s in p) for p in paths
        ):
            return paths
        longer = [
            p
            for p in self.paths_of_length(joined, table, len(paths[0]) + 1)
            if not any(self.has_role(s) for s in p)
            and any(self.named_words(s[2]) == (n, n) and n for s in p[:-1]
                    for n in [self.named_words(s[2])[1]])
        ]  # fmt: skip
        shapes = {self._shape(p) for p in longer}
        return longer[:1] if len(shapes) == 1 else paths

    def paths_of_length(self, sources: list[str], goal: str, length: int) -> list[list[Step]]:
        """Simple paths of exactly `length` joins from any of `sources` to `goal` (up to
        MAX_PATHS)."""
        out: list[list[Step]] = []

        def walk(node: str, path: list[Step], seen: set[str]) -> None:
            if len(out) >= MAX_PATHS:
                return
            if len(path) == length:
                if node == goal.lower():
                    out.append(path)
                return
            for other, own, theirs in self.index.edges.get(node, []):
                key = other.lower()
                if key in seen or (key == goal.lower()) != (len(path) + 1 == length):
                    continue
                step = (self.index.table(node).name, own, other, theirs)
                walk(key, [*path, step], seen | {key})

        for source in sources:
            walk(source, [], set(sources))
        return out

    def unsaid_role(self, step: Step) -> bool:
        """Whether the join's key has a role (`has_role`) the question does not name."""
        return self.has_role(step) and not self.names_role(step)

    def has_role(self, step: Step) -> bool:
        """Whether the referring key of the join has words beyond its tables' names
        (`department.head`, `store.manager_staff_id`; a table's own key names no role)."""
        a, col_a, b, col_b = step
        plain = set(self.index.table(a).words) | set(self.index.table(b).words) | _KEY_WORDS
        plain |= {x for w in plain for x in ABBREVIATIONS.get(w, "").split()}
        for t, name in ((a, col_a), (b, col_b)):
            col = self.index.column(t, name)
            if col is None or col.sole_key:
                continue
            extra = [w for w in col.words if w not in plain and w not in STOP_WORDS]
            if any(ABBREVIATIONS.get(w, w) not in plain for w in extra):
                return True
        return False

    def score(self, path: list[Step]) -> tuple[int, int, int, int]:
        """(tables on the way that the question names, keys whose role it names, tables on
        the way that it names a word of, besides the words of the path's two ends, minus the
        parents the path only passes through: `peaks`)."""
        ends = {*self.index.table(path[0][0]).words, *self.index.table(path[-1][2]).words}
        named = partly = 0
        for step in path[:-1]:
            hits, words = self.named_words(step[2])
            if words and hits == words or (hits == 0 and step[2].lower() in self.preferred):
                named += 1  # all its words, or a synonym of it (pointed at, no word shared)
            elif self.named_words(step[2], besides=ends)[0]:
                partly += 1  # `order items` between orders and products, named by "items"
        roles = sum(1 for step in path if self.names_role(step))
        return named, roles, partly, -peaks(self.index, path)

    def named_words(
        self, table: str, besides: frozenset[str] | set[str] = frozenset()
    ) -> tuple[int, int]:
        """(words of the table's name the question names, words of its name), leaving out
        `besides` (`driver standings` between drivers and races is not named by "drivers")."""
        words = [
            w for w in self.index.table(table).words if w not in STOP_WORDS and w not in besides
        ]
        return sum(1 for w in words if any(related(q, w) for q in self.words)), len(words)

    def names_role(self, step: Step) -> bool:
        """Whether the question names a word of the join's key beyond the tables' own names
        (`source_airport_id` -> source; `home_team_id` -> home)."""
        a, col_a, b, col_b = step
        plain = set(self.index.table(a).words) | set(self.index.table(b).words) | _KEY_WORDS
        for table, name in ((a, col_a), (b, col_b)):
            col = self.index.column(table, name)
            if col is None:
                continue
            role = [w for w in col.words if w not in plain]
            role += [x for w in role for x in ABBREVIATIONS.get(w, "").split() if x not in plain]
            if any(related(q, w) for w in role for q in self.words):
                return True
        return False

    def shortest_paths(self, sources: list[str], goal: str) -> list[list[Step]]:
        """Every shortest path (up to MAX_PATHS) from any of `sources` to `goal`."""
        goal = goal.lower()
        depth: dict[str, int] = dict.fromkeys(sources, 0)
        parents: dict[str, list[Step]] = {}
        queue = deque(sources)
        found: int | None = None
        while queue:
            current = queue.popleft()
            if found is not None and depth[current] >= found:
                break
            for other, own, theirs in self.index.edges.get(current, []):
                key = other.lower()
                step = (self.index.table(current).name, own, other, theirs)
                if key not in depth:
                    depth[key] = depth[current] + 1
                    parents[key] = [step]
                    queue.append(key)
                    if key == goal:
                        found = depth[key]
                elif depth[key] == depth[current] + 1 and step not in parents[key]:
                    parents[key].append(step)
        if goal not in parents:
            return []
        out: list[list[Step]] = []

        def walk(node: str, tail: list[Step]) -> None:
            if len(out) >= MAX_PATHS:
                return
            if node in sources:
                out.append(tail)
                return
            for step in parents.get(node, []):
                walk(step[0].lower(), [step, *tail])

        walk(goal, [])
        return out


def direction(index: SchemaIndex, step: Step) -> int:
    """1: the step goes up, from many rows to the one row they refer to (`class.course_id` to
    `course`); -1: down, from a row to the rows referring to it; 0: one to one, or neither
    side's whole key."""
    own = index.column(step[0], step[1])
    theirs = index.column(step[2], step[3])
    up = theirs is not None and theirs.sole_key
    down = own is not None and own.sole_key
    return 0 if up == down else (1 if up else -1)


def peaks(index: SchemaIndex, path: list[Step]) -> int:
    """How often `path` goes up to a row and straight back down from it: rows related only by
    sharing a parent ("instructors and students of the same department") rather than by a
    table recording the relation itself (`advisor(i_id, s_id)`, down then up) or by a chain
    of parents (a class's course's department, up and up). A question relating two tables
    means the recorded relation or the chain far more often than the shared parent."""
    count = 0
    rising = False
    for step in path:
        way = direction(index, step)
        if way == 1:
            rising = True
        elif way == -1:
            count += rising
            rising = False
    return count


def repeats_rows(index: SchemaIndex, step: Step) -> bool:
    """Whether joining along `step` can give a row of its `from` table several partners: the
    `to` column is not its table's whole key."""
    col = index.column(step[2], step[3])
    return col is None or not col.sole_key


@dataclass(slots=True)
class Branch:
    """Tables joined beyond a join that repeats the aggregated rows, kept as one semi-join."""

    near: str
    near_column: str
    far: str
    far_column: str
    steps: list[Step]
    """The joins inside the branch (from `far` outwards)."""
    tables: set[str]
    """Lower-case names, `far` included."""


def fanout_branches(
    index: SchemaIndex,
    steps: list[Step],
    aggregated: set[str],
    shown: set[str],
    grouped: set[str],
) -> tuple[list[Branch], list[str]]:
    """The branches of the join tree that repeat the rows of an aggregated table.

    Returns (branches that only filter: to become semi-joins; tables whose aggregate a branch
    would inflate: it shows or adds up its own rows and does not group by them). All names
    lower-case."""
    neighbours: dict[str, list[Step]] = {}
    for a, ac, b, bc in steps:
        neighbours.setdefault(a.lower(), []).append((a, ac, b, bc))
        neighbours.setdefault(b.lower(), []).append((b, bc, a, ac))

    def subtree(root: str, parent: str) -> tuple[set[str], list[Step]]:
        tables = {root}
        inner: list[Step] = []
        stack = [(root, parent)]
        while stack:
            node, came = stack.pop()
            for step in neighbours.get(node, []):
                nxt = step[2].lower()
                if nxt == came or nxt in tables:
                    continue
                tables.add(nxt)
                inner.append(step)
                stack.append((nxt, node))
        return tables, inner

    branches: list[Branch] = []
    inflated: list[str] = []
    seen: set[tuple[str, str]] = set()
    for table in sorted(aggregated):
        stack = [(table, "")]
        visited = {table}
        while stack:
            node, came = stack.pop()
            for step in neighbours.get(node, []):
                nxt = step[2].lower()
                if nxt == came or nxt in visited:
                    continue
                visited.add(nxt)
                if not repeats_rows(index, step):
                    stack.append((nxt, node))
                    continue
                tables, inner = subtree(nxt, node)
                if tables & (shown | aggregated):
                    if not tables & grouped and table not in inflated:
                        inflated.append(table)
                    stack.append((nxt, node))
                    continue
                if (node, nxt) not in seen:
                    seen.add((node, nxt))
                    branches.append(Branch(step[0], step[1], step[2], step[3], inner, tables))
    return branches, inflated


def resolved_roles(sql: str, dialect: str, index: SchemaIndex, words: frozenset[str]) -> int:
    """Joins of `sql` between tables that refer to each other in several ways where the
    question names the role of the key joined on and of none of the others ("voyages from
    Lisbon" joins `origin_port_id`, not `destination_port_id`), or names no role and the key
    joined on is the only one of no role (`language_id` beside `original_language_id`): no
    longer a guess."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return 0
    planner = JoinPlanner(index, words=words)
    aliases = {t.alias_or_name.lower(): t.name for t in tree.find_all(exp.Table)}
    resolved = 0
    for join in tree.find_all(exp.Join):
        on = join.args.get("on")
        if not isinstance(on, exp.EQ):
            continue
        cols = [c for c in (on.this, on.expression) if isinstance(c, exp.Column)]
        if len(cols) != 2 or not all(c.table.lower() in aliases for c in cols):
            continue
        (ta, ca), (tb, cb) = ((aliases[c.table.lower()], c.name) for c in cols)
        if ta.lower() not in index.tables or tb.lower() not in index.tables:
            continue
        ways = {
            (own.lower(), theirs.lower())
            for other, own, theirs in index.edges.get(ta.lower(), [])
            if other.lower() == tb.lower()
        }
        if len(ways) < 2 or (ca.lower(), cb.lower()) not in ways:
            continue
        named = [w for w in ways if planner.names_role((ta, w[0], tb, w[1]))]
        plain = [w for w in ways if not planner.has_role((ta, w[0], tb, w[1]))]
        if (named or plain) == [(ca.lower(), cb.lower())]:
            resolved += 1  # the role said, or the one plain key where no role is said
    return resolved


def keep_to_named_tables(intent: Intent, index: SchemaIndex) -> Intent:
    """The intent reading a column of the rows asked about instead of the same-named column of a
    table nobody asked for: "the phone of the performer Ashley" reads
    `performers.customer_phone`, not `customers.customer_phone` two joins away; "the type of
    the allergy Cat" compares `allergy_type.allergy`, not `has_allergy.allergy`. A table the
    question names (all its words, or a synonym) keeps its columns, unless the words naming it
    all name a table asked about too ("the type of the allergy Cat": `has_allergy` is not
    named apart from `allergy_type`), and so does a plain name (`name`, `type`: a genre's
    name is not a track's)."""
    planner = JoinPlanner(index, intent.preferred_tables, intent.words)
    anchors = [intent.table, *intent.extra_tables]
    anchors += [c for m in intent.select if m.count_table for c in [m.count_table]]

    anchor_words = {w for t in anchors for w in index.table(t).words}

    def named(table: str) -> bool:
        hits, words = planner.named_words(table)
        if hits == 0:
            return table.lower() in planner.preferred
        # named only by words of a table asked about: "the type of allergy Cat" names
        # `allergy_type`, not `has_allergy` too
        own = {w for w in index.table(table).words if w not in STOP_WORDS}
        return hits == words and not own <= anchor_words

    keep = {t.lower() for t in anchors}
    columns = [
        *(m.column for m in [*intent.select, *intent.group_by, *(m for m, _ in intent.order_by)]),
        *(f.column.column if isinstance(f.column, Measure) else f.column for f in intent.filters),
    ]
    swaps: dict[ColumnRef, ColumnRef] = {}
    for col in columns:
        if col is None or col.table.lower() in keep or col in swaps or named(col.table):
            continue
        if not set(col.words) - GENERIC_WORDS:
            continue  # `name`, `type`: a genre's name is not a track's
        same = [
            other
            for other in index.columns_of.get(intent.table.lower(), [])
            if other.name.lower() == col.name.lower()
        ]
        if len(same) == 1:
            swaps[col] = same[0]
    return with_columns_swapped(intent, swaps)


def with_columns_swapped(intent: Intent, swaps: dict[ColumnRef, ColumnRef]) -> Intent:
    """A copy of `intent` reading each column of `swaps` as its replacement wherever it is
    shown, grouped, ordered or filtered on (not through another table's rows: `via`)."""
    if not swaps:
        return intent
    variant = copy.deepcopy(intent)
    for m in [*variant.select, *variant.group_by, *(m for m, _ in variant.order_by)]:
        if m.column in swaps and m.via is None:
            m.column = swaps[m.column]
    for f in variant.filters:
        if isinstance(f.column, Measure):
            if f.column.column in swaps and f.column.via is None:
                f.column.column = swaps[f.column.column]
        elif f.column in swaps:
            f.column = swaps[f.column]
    return variant
