"""Users' YAML (semantic-layer imports, golden-set uploads) is read by one bounded reader."""

from __future__ import annotations

import pytest
import yaml

from backend.core import yaml_input
from backend.evaluations.errors import GoldenUploadInvalid
from backend.evaluations.golden import parse_upload


@pytest.mark.parametrize(
    "text,problem",
    [
        ("a: &x [1]\nb: *x\n", "anchors and aliases"),
        ("a: &x 1\n", "anchors and aliases"),
        ("a: " + "[" * 9 + "]" * 9 + "\n", "nests deeper than 8"),
        ("[" + ",".join(["1"] * 200) + "]", "too many items"),
    ],
)
def test_scan_refuses_what_a_user_upload_may_not_have(text: str, problem: str) -> None:
    with pytest.raises(yaml_input.YamlRefused, match=problem):
        yaml_input.load_bounded(text, max_events=100, max_depth=8)


def test_a_malformed_document_is_pyyamls_own_error() -> None:
    with pytest.raises(yaml.YAMLError):
        yaml_input.load_bounded("a: [1, 2\n", max_events=100, max_depth=8)


def test_a_plain_document_is_built_by_the_safe_loader() -> None:
    assert yaml_input.load_bounded("a: [1, b]\n", max_events=100, max_depth=8) == {"a": [1, "b"]}
    with pytest.raises(yaml.YAMLError):
        yaml_input.load_bounded("!!python/name:os.system x", max_events=100, max_depth=8)
    if yaml.__with_libyaml__:
        assert yaml_input.SAFE_LOADER is yaml.CSafeLoader


@pytest.mark.parametrize(
    "text,problem",
    [
        ("- &q {question: a, sql: SELECT 1}\n- *q\n", "anchors and aliases"),
        ("- question: a\n  sql: SELECT 1\n  x: " + "[" * 20 + "]" * 20 + "\n", "nests deeper"),
    ],
)
def test_a_golden_upload_is_read_within_the_same_bounds(text: str, problem: str) -> None:
    with pytest.raises(GoldenUploadInvalid) as refused:
        parse_upload(text, kind="yaml")
    assert refused.value.details["reason"] == "unparseable"
    assert problem in refused.value.details["error"]
