"""What strict reading still accepts (legitimate YAML keeps working) and the limits it
enforces, at their edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from hygiene.configtypes import check_crontab
from hygiene.errors import ConfigError
from hygiene.yamlfile import MAX_ALIAS_GROWTH, MAX_DEPTH, dotted, read_mapping


def _read(tmp_path: Path, content: bytes | str) -> dict:
    path = tmp_path / "default.yaml"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return read_mapping(path).data


def test_anchors_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    data = _read(
        tmp_path,
        "base: &base {days: 90, keep_newest: 3}\n"
        "rules:\n"
        "  IM002:\n"
        "    <<: *base\n"
        "    days: 30\n"  # an explicit key overrides a merged one: not a duplicate
        "tags: &tags [latest, main]\n"
        "again: *tags\n",
    )
    assert data["rules"]["IM002"] == {"days": 30, "keep_newest": 3}
    assert data["again"] == ["latest", "main"]


def test_byte_order_mark_and_crlf_line_endings_are_fine(tmp_path: Path) -> None:
    data = _read(tmp_path, b"\xef\xbb\xbfapply:\r\n  grace_days: 7\r\n")
    assert data == {"apply": {"grace_days": 7}}


def test_yaml_1_1_values_that_stay_what_they_look_like(tmp_path: Path) -> None:
    data = _read(tmp_path, "a: 0\nb: 0x1F\nc: 1_000\nd: '010'\ne: '1:30'\nf: =\ng: 2026-02-28\n")
    assert data["a"] == 0 and data["b"] == 31 and data["c"] == 1000
    assert data["d"] == "010" and data["e"] == "1:30" and data["f"] == "="
    assert str(data["g"]) == "2026-02-28"


def test_nesting_limit_is_exact(tmp_path: Path) -> None:
    deep = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert _read(tmp_path, f"x: {deep}\n")  # the mapping is the first level
    with pytest.raises(ConfigError, match="nested more than"):
        _read(tmp_path, f"x: [{deep}]\n")


def test_alias_growth_limit_is_exact(tmp_path: Path) -> None:
    # one alias to a list of n scalars adds n + 1 values beyond those written
    n = MAX_ALIAS_GROWTH - 1
    items = ", ".join(["1"] * n)
    assert _read(tmp_path, f"a: &a [{items}]\nb: *a\n")
    with pytest.raises(ConfigError, match="aliases expand"):
        _read(tmp_path, f"a: &a [{items}, 1]\nb: *a\n")


def test_key_paths_read_like_the_yaml() -> None:
    assert dotted(("overrides", 0, "rules", "IM002")) == "overrides[0].rules.IM002"
    assert dotted(("projects", False)) == "projects.false"
    assert dotted(("apply", "auto\u200b_safe")) == "apply.auto\\u200b_safe"
    assert dotted(()) == "(top level)"


@pytest.mark.parametrize(
    "expression", ["0 3 * * *", "0 8 * * mon", "*/15 6-18 * * mon-fri", "0 0 29 2 *", "0 4 1 * *"]
)
def test_crontabs_that_fire(expression: str) -> None:
    assert check_crontab(expression) == expression


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 3 31 2 *", "never fires"),
        ("0 3 30 2 *", "never fires"),
        ("0 3 31 11 *", "never fires"),
        ("0 8 * * 0", "day of week"),
        ("0 8 * * 1-5", "day of week"),
        ("0 8 13 * fri", "both day of month and day of week"),
        ("@daily", "5-field"),
    ],
)
def test_crontabs_refused(expression: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_crontab(expression)
