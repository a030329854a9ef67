"""Every trace shape of PRODUCT.md parses into taps and values (pure functions)."""

import math

import pytest

from tracedb.ingest.names import normalize_stamp, pixel_from_name, side_from_path
from tracedb.ingest.parse import is_trace_text, parse_line, parse_text, split_lines


def one(text):
    line = parse_line(text, 1)
    assert line.quarantine is None, line.quarantine
    assert len(line.taps) == 1, line.taps
    return line.taps[0]


def nums(tap):
    return [c.num for c in tap.components]


def test_name_equals_vector():
    tap = one("TRACE_C:pix0_vector=0.5 0.10245 -0.10245")
    assert (tap.side, tap.channel, tap.name, tap.loop_key) == ("c", "", "pix0_vector", "")
    assert nums(tap) == [0.5, 0.10245, -0.10245]
    assert [c.text for c in tap.components] == ["0.5", "0.10245", "-0.10245"]
    assert tap.shape == "vector"


def test_name_space_values_in_e_format():
    tap = one("TRACE_PY: pix0_vector 5.000000000000000e-01 1.024500000000000e-01 -1.0e-01")
    assert (tap.side, tap.name) == ("py", "pix0_vector")
    assert nums(tap) == [0.5, 0.10245, -0.1]
    assert tap.components[0].digits == 16


def test_labelled_components_keep_labels():
    tap = one("TRACE_C:beam_center_m=X:0.000102425 Y:0.000102425 pixel_mm:0.05")
    assert tap.shape == "labelled"
    assert [(c.label, c.num) for c in tap.components] == [
        ("X", 0.000102425), ("Y", 0.000102425), ("pixel_mm", 0.05)]


def test_matrix_has_nine_components_in_order():
    tap = one("TRACE_C:Rx=[1 0 0; 0 1 -0; 0 0 1]")
    assert tap.shape == "matrix"
    assert nums(tap) == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert tap.components[5].text == "-0"
    assert math.copysign(1.0, tap.components[5].num) == -1.0


def test_string_value():
    tap = one("TRACE_C:detector_convention=MOSFLM")
    assert tap.shape == "text"
    assert [(c.kind, c.text, c.num) for c in tap.components] == [("text", "MOSFLM", None)]
    tap = one("TRACE_PY: detector_convention MOSFLM")
    assert tap.components[0].text == "MOSFLM"


def test_string_with_equals_and_brackets_stays_one_string():
    text = "TRACE_C:convention_mapping=Fbeam<-Ybeam_mm(+0.5px),beam_vec=[1 0 0]"
    tap = one(text)
    assert tap.name == "convention_mapping"
    assert tap.components[0].text == "Fbeam<-Ybeam_mm(+0.5px),beam_vec=[1 0 0]"


def test_key_value_record_with_loop_index():
    line = parse_line("TRACE_C_PHI phi_tic=3 phi_deg=0.03 k_frac=-0.59 F_latt=0.67", 7)
    assert line.quarantine is None
    assert [(t.side, t.channel, t.name, t.loop_key) for t in line.taps] == [
        ("c", "PHI", "phi_deg", "phi_tic=3"),
        ("c", "PHI", "k_frac", "phi_tic=3"),
        ("c", "PHI", "F_latt", "phi_tic=3"),
    ]
    assert [t.components[0].num for t in line.taps] == [0.03, -0.59, 0.67]


def test_py_phi_record_pairs_with_c_channel():
    line = parse_line("TRACE_PY_PHI phi_tic=3 phi_deg=0.03", 1)
    assert (line.taps[0].side, line.taps[0].channel, line.taps[0].loop_key) == \
        ("py", "PHI", "phi_tic=3")


def test_indexed_grid():
    tap = one("TRACE_PY_TRICUBIC: [0,0,1]=147.1")
    assert (tap.channel, tap.loop_key, nums(tap)) == ("TRICUBIC", "[0,0,1]", [147.1])


def test_indexed_source():
    tap = one("TRACE_PY_SOURCE 0: wavelength_angstroms 0.97680002450943")
    assert (tap.side, tap.channel, tap.name, tap.loop_key) == \
        ("py", "SOURCE", "wavelength_angstroms", "0")
    assert nums(tap) == [0.97680002450943]


@pytest.mark.parametrize("text, pixel", [
    ("TRACE_C_TAP5: pixel 0 0", (0, 0)),
    ("TRACE_CONFIG: tracing pixel (spixel=236, fpixel=398)", (236, 398)),
    ("TRACE_C_HKL_BOUNDS: pixel 2048 2048", (2048, 2048)),
])
def test_pixel_markers(text, pixel):
    line = parse_line(text, 1)
    assert line.pixel == pixel
    assert line.taps == [] and line.quarantine is None


def test_record_with_pixel_and_subpixel_index():
    line = parse_line("TRACE_C_OMEGA: pixel=(2048,2048) subpixel=(1,1) omega_sr=9.99e-09", 1)
    assert line.pixel == (2048, 2048)
    assert [(t.name, t.loop_key, nums(t)) for t in line.taps] == [
        ("omega_sr", "subpixel=1,1", [9.99e-09])]


def test_spaced_key_value_record():
    line = parse_line("TRACE_C_TAP4: pixel 2048 2048 subpixel 1 1 source 0 mos 0 phi 0 "
                      "h -0.000000 k 0.005000 F_cell 0 is_oob 0", 1)
    assert line.pixel == (2048, 2048)
    assert [t.name for t in line.taps] == ["h", "k", "F_cell", "is_oob"]
    assert {t.loop_key for t in line.taps} == {"subpixel=1,1;source=0;mos=0;phi=0"}


def test_free_text_is_kept_as_text_tap():
    tap = one("TRACE_PY_BASE: ========== Phase K3f2 start ==========")
    assert (tap.name, tap.shape) == ("text", "free_text")
    assert tap.components[0].text == "========== Phase K3f2 start =========="


def test_bare_list_without_name():
    tap = one("TRACE_PY_TRICUBIC_L_COORDS: [-1.0, 0.0, 1.0, 2.0]")
    assert nums(tap) == [-1.0, 0.0, 1.0, 2.0]


def test_bare_prefix_is_an_event_tap():
    tap = one("TRACE_PY_TRICUBIC_GRID_START")
    assert (tap.channel, tap.name, tap.shape) == ("TRICUBIC_GRID_START", "event", "event")


def test_nan_inf_and_negative_zero():
    tap = one("TRACE_C: scattering_vec_A_inv inf -inf nan")
    assert [c.kind for c in tap.components] == ["inf", "-inf", "nan"]
    assert all(c.num is None for c in tap.components)
    tap = one("TRACE_C: x -0 NaN -Infinity")
    assert [c.kind for c in tap.components] == ["num", "nan", "-inf"]
    assert tap.components[0].half_ulp == 0.0  # an exact zero carries no precision


def test_print_precision_is_recorded():
    c = one("TRACE_C: x 0.999982").components[0]
    assert c.digits == 6 and c.half_ulp == pytest.approx(5e-7)
    c = one("TRACE_C: x 0.05").components[0]  # %g: read as 0.0500000
    assert c.half_ulp == pytest.approx(5e-8)
    c = one("TRACE_PY: x 9.999999999999999e-01").components[0]
    assert c.digits == 16 and c.half_ulp == pytest.approx(5e-17)


@pytest.mark.parametrize("text, reason", [
    ("TRACE_C_TAP5=1 ./nanoBragg -trace_pixel 0 0", "environment assignment"),
    ("TRACE_C:beam_center_m=", "no value"),
    ("TRACE_PY: name_only", "no value"),
    ("TRACE_C: x " + "1 " * 40000, "longer than"),
])
def test_quarantine_reasons(text, reason):
    line = parse_line(text, 3)
    assert line.taps == []
    assert reason in line.quarantine


def test_parse_text_keeps_line_numbers_and_ignores_other_output():
    text = ("banner\r\n  TRACE_C:a=1\r\nDETECTOR_FAST_AXIS 0 0 1\r\nTRACE: not a tap\r\n"
            "TRACE_C: b 2\r\nTracing pixel (slow=158, fast=147)\r\n")
    parsed = parse_text(text)
    assert parsed.trace_lines == 2
    assert [(ln.line_no, ln.taps[0].name) for ln in parsed.lines] == [(2, "a"), (5, "b")]
    assert parsed.markers == [(6, (158, 147))]
    assert parsed.lines[1].taps[0].components[0].text == "2"  # no stray \r


def test_split_lines_only_on_newlines():
    assert split_lines("a\x0cb\r\nc\n") == ["a\x0cb", "c"]


def test_trace_detection_needs_trace_underscore_first():
    assert is_trace_text("x\n   TRACE_C:a=1\n")
    assert not is_trace_text("TRACE: raw matrix\nsee TRACE_C:a=1\n")


def test_path_helpers():
    assert pixel_from_name("pixel_1792_2048.log") == (1792, 2048)
    assert pixel_from_name("c_trace_pixel_64_79.log") == (64, 79)
    assert pixel_from_name("trace.log") is None
    assert side_from_path(["20251010T053711Z", "c_traces", "pixel_1_2.log"]) == "c"
    assert side_from_path(["x", "py_traces_post_fix", "pixel_1_2.log"]) == "py"
    assert side_from_path(["x", "trace_py_scaling.log"]) == "py"
    assert side_from_path(["x", "trace.log"]) is None
    assert normalize_stamp("20251010T055812Z") == "20251010T055812Z"
    assert normalize_stamp("2025-10-08T06:22:40.752347Z") == "20251008T062240Z"
    assert normalize_stamp(None) is None


@pytest.mark.parametrize("text", [
    "TRACE_PY: F_cell = 1.000000000000000e+02",
    "TRACE_PY: F_cell =1.000000000000000e+02",
    "TRACE_PY:F_cell\t=\t1.000000000000000e+02",
])
def test_name_equals_value_with_blanks_before_the_equals(text):
    # seen in PyTorch traces: the value is the number, not the text "= 1.0e+02"
    tap = one(text)
    assert (tap.side, tap.name, tap.shape) == ("py", "F_cell", "scalar")
    assert [(c.kind, c.num, c.text) for c in tap.components] == [
        ("num", 100.0, "1.000000000000000e+02")]


def test_name_equals_vector_and_text_with_blanks_before_the_equals():
    assert nums(one("TRACE_C: pix0_vector = 0.5 0.10245 -0.10245")) == [0.5, 0.10245, -0.10245]
    tap = one("TRACE_C: detector_convention = MOSFLM")
    assert (tap.name, tap.components[0].text) == ("detector_convention", "MOSFLM")
    line = parse_line("TRACE_C: x =", 1)  # still a tap without a value
    assert line.quarantine == "tap 'x' has no value"


def test_comma_list_without_brackets_is_numbers():
    tap = one("TRACE_PY: incident_beam 1.0, 2.0, -3.5e-01")
    assert (tap.name, tap.shape) == ("incident_beam", "list")
    assert nums(tap) == [1.0, 2.0, -0.35]
    assert [c.text for c in tap.components] == ["1.0", "2.0", "-3.5e-01"]
    # a list that is not all numbers, or has an empty item, stays text as written
    assert one("TRACE_PY: s a, b").components[0].text == "a, b"
    assert one("TRACE_PY: v 1,,2").components[0].text == "1,,2"


def test_a_trailing_comma_is_not_part_of_the_value():
    tap = one("TRACE_PY: dtype=torch.float64,")
    assert (tap.shape, tap.components[0].text) == ("text", "torch.float64")
    tap = one("TRACE_PY: omega_pixel=4.2e-07,")
    assert (tap.shape, nums(tap)) == ("scalar", [4.2e-07])
    assert one("TRACE_PY: v=,").components[0].text == ","  # a lone comma is the value


def test_loop_keys_index_only_when_they_count():
    # phi_tic=3 counts loop steps; phi=0.05 is a quantity (an angle) named phi
    line = parse_line("TRACE_C_PHI phi=0.05 k_frac=-0.59", 1)
    assert [(t.name, t.loop_key, nums(t)) for t in line.taps] == [
        ("phi", "", [0.05]), ("k_frac", "", [-0.59])]
    line = parse_line("TRACE_C_PHI phi_tic=3 phi_deg=0.03 source=0", 1)
    assert [(t.name, t.loop_key) for t in line.taps] == [("phi_deg", "phi_tic=3;source=0")]
    line = parse_line("TRACE_PY: source=0.5 mos=1", 1)
    assert [(t.name, t.loop_key) for t in line.taps] == [("source", "mos=1")]


@pytest.mark.parametrize("text, shown", [
    # copied from notes into a log (parity_shim/20251008T032835Z/trace_per_phi.log)
    ("   TRACE_C_PHI \u03c6_tic=<idx> phi_deg=<angle> k=<val> F_latt_b=<val>",
     "(<idx>, <angle>, <val>)"),
    ("TRACE_PY: F_cell <value>", "(<value>)"),
])
def test_template_placeholders_are_quarantined(text, shown):
    line = parse_line(text, 1)
    assert line.taps == [] and line.quarantine == \
        f"template placeholders instead of values {shown}"


def test_angle_brackets_inside_a_value_are_text_not_placeholders():
    assert one("TRACE_C:map=Fbeam<-Ybeam_mm(+0.5px)").components[0].text == \
        "Fbeam<-Ybeam_mm(+0.5px)"
    assert one("TRACE_C: cmp a<b").components[0].text == "a<b"


def test_key_value_components_after_a_name_are_labelled_numbers():
    # whole strings before: a 1-ulp difference would diverge as a string
    tap = one("TRACE_ROTATE:x_rotation ryy=0.996194698091746 ryz=-0.0871557427476582")
    assert (tap.name, tap.shape) == ("x_rotation", "labelled")
    assert [(c.label, c.num, c.text) for c in tap.components] == [
        ("ryy", 0.996194698091746, "0.996194698091746"),
        ("ryz", -0.0871557427476582, "-0.0871557427476582")]
    tap = one("TRACE_BEAM_CENTER:initial_defaults Fclose=nan Sclose=nan")
    assert [(c.label, c.kind) for c in tap.components] == [("Fclose", "nan"), ("Sclose", "nan")]
    # not all numbers: the value stays one string
    assert one("TRACE_C: x a=1 b=two").components[0].text == "a=1 b=two"
