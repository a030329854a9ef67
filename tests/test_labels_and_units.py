"""Issue 12's verdicts: labelled components pair by label, and a unit hint names the
side that is off only when the data says so (both backends)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import tracedb

from .test_diverge import capture, compare, run_cli


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


# --------------------------------------------------------------------------- side off

C_OFF = (["{P}: beam_center_m X:0.000102425 Y:0.000102425 pixel_mm:0.05",
          "{P}: Fbeam_m 0.10245", "{P}: distance_m 0.5", "{P}: q_A_inv 2e10"],
         ["{P}: beam_center_m X:1.024250000000000e-01 Y:1.024250000000000e-01 pixel_mm:0.05",
          "{P}: Fbeam_m 1.024250000000000e-01", "{P}: distance_m 0.5", "{P}: q_A_inv 2"])


def test_side_off_named_from_a_sibling_of_the_same_unit(url, tmp_path):
    """PyTorch's beam centre agrees with Fbeam_m, which both sides print alike, and
    C's agrees with no metre tap: C is off."""
    wh, s, diff, _ = compare(url, tmp_path, *C_OFF)
    assert s.first_tap == "beam_center_m"
    assert s.first_suspect_side == "c"
    assert s.first_unit_hint == ("C is off by x1e-3 (m <-> mm; PyTorch's value agrees with "
                                 "Fbeam_m on both sides)")
    hints = diff.set_index("tap")
    # q_A_inv: no other tap of its unit, so nothing decides
    assert hints.loc["q_A_inv", "unit_hint"] == "one side is off by x1e10 (m^-1 <-> A^-1)"
    assert pd.isna(hints.loc["q_A_inv", "suspect_side"])
    assert hints.loc["beam_center_m", "suspect_side"] == "c"
    proc = run_cli(wh.url, "diverge", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    first = json.loads(proc.stdout)[0]["first"]
    assert (first["tap"], first["suspect_side"]) == ("beam_center_m", "c")


def test_report_names_the_side_off_for_every_hinted_tap(url, tmp_path):
    wh, _, _, _ = compare(url, tmp_path, *C_OFF)
    wh.report(tmp_path / "rep")
    md = (tmp_path / "rep" / "first_divergence.md").read_text(encoding="utf-8")
    assert "- unit hint: C is off by x1e-3 (m <-> mm; PyTorch's value agrees with Fbeam_m " \
           "on both sides)" in md
    assert "Check the C code's unit conversion where `beam_center_m` is computed" in md
    rows = {ln.split(" | ")[0]: ln for ln in md.splitlines() if ln.startswith("| `")}
    assert rows["| `q_A_inv`"].endswith(
        "| one side is off by x1e10 (m^-1 <-> A^-1) | undecided |")
    assert rows["| `Fbeam_m`"].endswith("|  | - |")  # diverged, no unit factor
    diff_txt = (tmp_path / "rep" / "diff_pixel_1_1.txt").read_text(encoding="utf-8")
    assert "unit hint: C is off by x1e-3 (m <-> mm;" in diff_txt


def test_side_off_from_a_sibling_with_the_same_stem_in_another_unit(url, tmp_path):
    """C prints its beam centre in metres and in millimetres, PyTorch prints the same
    millimetres but calls them metres: PyTorch is off."""
    _, s, _, _ = compare(url, tmp_path,
                         ["{P}: beam_center_m 0.1024 0.2", "{P}: beam_center_mm 102.4 200"],
                         ["{P}: beam_center_m 102.4 200", "{P}: beam_center_mm 102.4 200"])
    assert s.first_tap == "beam_center_m"
    assert s.first_suspect_side == "py"
    assert s.first_unit_hint == ("PyTorch is off by x1e3 (m <-> mm; C's value agrees with "
                                 "beam_center_mm on both sides)")


@pytest.mark.parametrize("c_more, py_more", [
    # a sibling that agrees with neither value
    (["{P}: distance_m 0.5"], ["{P}: distance_m 0.5"]),
    # a sibling that carries the same factor (it differs between the sides): no witness
    (["{P}: derived_m 0.0001"], ["{P}: derived_m 0.1"]),
    # each side's value agrees with a sibling: the data contradicts itself
    (["{P}: small_m 0.0001", "{P}: large_m 0.1"], ["{P}: small_m 0.0001", "{P}: large_m 0.1"]),
])
def test_side_off_undecided_says_one_side(url, tmp_path, c_more, py_more):
    _, s, _, _ = compare(url, tmp_path, ["{P}: beam_m 0.0001", *c_more],
                         ["{P}: beam_m 0.1", *py_more])
    assert s.first_tap == "beam_m"
    assert pd.isna(s.first_suspect_side)
    assert s.first_unit_hint == "one side is off by x1e3 (m <-> mm)"


def test_same_side_pairs_name_the_run_by_role(url, tmp_path):
    """Two PyTorch runs (a regression): the hint says reference or candidate."""
    capture(tmp_path, "20250101T000000Z", "py", (1, 1), ["{P}: beam_m 0.1", "{P}: f_m 0.1"])
    capture(tmp_path, "20250101T010000Z", "py", (1, 1), ["{P}: beam_m 100", "{P}: f_m 0.1"])
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    s = wh.diverge(ref="py@20250101T000000Z", cand="py@20250101T010000Z").iloc[0]
    assert s.first_suspect_side == "py"
    assert s.first_unit_hint == ("candidate PyTorch is off by x1e3 (m <-> mm; reference "
                                 "PyTorch's value agrees with f_m on both sides)")
