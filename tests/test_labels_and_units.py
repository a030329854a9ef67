"""Issue 12's verdicts: labelled components pair by label (both backends)."""

from __future__ import annotations

import pytest

from .test_diverge import compare


def _components(wh, set_id, tap):
    """(ref label, cand label or "-", status) of each reference component of a tap, as the
    component_delta view shows them to any SQL client."""
    frame = wh.sql(f"SELECT ref_label, COALESCE(cand_label, '-'), status FROM component_delta "
                   f"WHERE set_id = {int(set_id)} AND key_name = '{tap}' ORDER BY idx")
    return [tuple(r) for r in frame.itertuples(index=False)]


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize("c_value, py_value, status", [
    ("X:0.1 Y:0.2", "Y:0.1 X:0.2", "diverged"),  # labels swapped: X is 0.1 against 0.2
    ("X:0.1 Y:0.2", "Y:0.2 X:0.1", "match"),  # the same labels in another order
    ("X:0.1 Y:0.2 Z:0.3", "X:0.1 Y:0.2 W:0.3", "diverged"),  # Z and W on one side only
    ("a:1 a:2 b:3", "b:3 a:1 a:2", "match"),  # a repeated label pairs by its rank
    ("a:1 a:2 b:3", "b:3 a:2 a:1", "diverged"),
    ("X:0.1 Y:0.2", "0.1 0.2", "match"),  # one side labels nothing: by position
    ("ryy=0.99 ryz=0.08", "ryz=0.08 ryy=0.99", "match"),  # key=value after a name
])
def test_labelled_components_pair_by_label(url, tmp_path, c_value, py_value, status):
    wh, s, diff, statuses = compare(url, tmp_path, ["{P}: first 1", f"{{P}}: vec {c_value}"],
                                    ["{P}: first 1", f"{{P}}: vec {py_value}"])
    # the quick divergence summary and the full diff say the same
    assert statuses[("vec", "", 1)] == status
    assert s.status == status
    assert s.diverged == (status == "diverged")
    if status == "diverged":
        assert s.first_tap == "vec"


def test_a_label_on_one_side_only_is_a_diverged_component(url, tmp_path):
    wh, s, _, _ = compare(url, tmp_path, ["{P}: beam X:0.1 Y:0.2 Z:0.3"],
                          ["{P}: beam Y:0.2 X:0.1 W:0.3"])
    assert (s.first_tap, s.diverged) == ("beam", 1)
    # X and Y pair by label and match; Z has no partner on the PyTorch side
    set_id = wh.diverge().attrs["set_id"]
    assert _components(wh, set_id, "beam") == [("X", "X", "match"), ("Y", "Y", "match"),
                                               ("Z", "-", "diverged")]


def test_unlabelled_values_still_pair_by_position(url, tmp_path):
    _, s, _, statuses = compare(url, tmp_path, ["{P}: v 1 2 3", "{P}: w 1 2"],
                                ["{P}: v 1 2 3", "{P}: w 2 1"])
    assert statuses[("v", "", 1)] == "match"
    assert statuses[("w", "", 1)] == "diverged"
    assert s.first_tap == "w"
