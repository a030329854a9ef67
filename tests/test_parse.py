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
    text = ("banner\r\n  TRACE_C:a=1\r\nDETECTOR_FAST_AXIS 0 0 1\r\nTRACE: a heading\r\n"
            "TRACE_C: b 2\r\nTracing pixel (slow=158, fast=147)\r\n")
    parsed = parse_text(text)
    assert parsed.trace_lines == 3  # TRACE: names no side but is a TRACE line
    assert [(ln.line_no, ln.taps[0].name) for ln in parsed.lines] == [
        (2, "a"), (4, "a"), (5, "b")]
    assert parsed.markers == [(6, (158, 147))]
    assert parsed.lines[2].taps[0].components[0].text == "2"  # no stray \r


def test_split_lines_only_on_newlines():
    assert split_lines("a\x0cb\r\nc\n") == ["a\x0cb", "c"]


def test_trace_detection_needs_trace_underscore_or_colon_first():
    assert is_trace_text("x\n   TRACE_C:a=1\n")
    assert is_trace_text("TRACE: raw matrix\n")  # nanoBragg's side-less prints
    assert not is_trace_text("TRACEBACK: x\nsee TRACE_C:a=1\nTRACE x\n")


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


# --------------------------------------------------------------------------- issue 12 shapes


def taps_of(text):
    line = parse_line(text, 1)
    assert line.quarantine is None, line.quarantine
    return [(t.side, t.name, t.shape, nums(t), t.unit) for t in line.taps]


@pytest.mark.parametrize("text, expected", [
    # nanoBragg's own `TRACE:` prints of the cell set-up (c_trace_phi.log, c_trace.txt)
    ("TRACE:   a_star (raw) = [-0.0283771, -0.0287139, 0.0105005]",
     [(None, "a_star (raw)", "list", [-0.0283771, -0.0287139, 0.0105005], None)]),
    ("TRACE:   a = [-14.3563, -21.8718, -5.58202] |a| = 26.7514",
     [(None, "a", "list", [-14.3563, -21.8718, -5.58202], None),
      (None, "|a|", "scalar", [26.7514], None)]),
    ("TRACE:   V_star = a_star . (b_star x c_star) = 4.05149e-05",
     [(None, "V_star = a_star . (b_star x c_star)", "scalar", [4.05149e-05], None)]),
    ("TRACE:   V_cell = 24682.3, V_star = 4.05149e-05",
     [(None, "V_cell", "scalar", [24682.3], None),
      (None, "V_star", "scalar", [4.05149e-05], None)]),
    ("TRACE:   Before conversion: c = [21.07, -24.3893, -9.75265] |c| = 33.6734 Angstroms",
     [(None, "Before conversion: c", "list", [21.07, -24.3893, -9.75265], None),
      (None, "|c|", "scalar", [33.6734], "A")]),
    ("TRACE: r_e^2 = 7.940792725906e-30", [(None, "r_e^2", "scalar", [7.940792725906e-30], None)]),
    # expression names of the issue
    ("TRACE_C: -Fbeam*fdet_vector[1] -0.00337", [("c", "-Fbeam*fdet_vector[1]", "scalar",
                                                   [-0.00337], None)]),
    ("TRACE_PY: pixel(512,512)_position=[0.1, -0.2, 0.3]",
     [("py", "pixel(512,512)_position", "list", [0.1, -0.2, 0.3], None)]),
])
def test_expression_names_are_kept_as_written_and_values_are_numbers(text, expected):
    assert taps_of(text) == expected


@pytest.mark.parametrize("text, value, unit", [
    ("TRACE_C: distance 0.1 m", [0.1], "m"),
    ("TRACE:   lambda0 = 0.9768 Angstroms", [0.9768], "A"),
    ("TRACE_PY: energy 12.4 keV", [12.4], "keV"),
    ("TRACE_C: pix0 0.5, 0.1, -0.1 mm", [0.5, 0.1, -0.1], "mm"),
    ("TRACE_C: angles [90, 90, 90] degrees", [90.0, 90.0, 90.0], "deg"),
])
def test_a_unit_word_after_the_value_is_the_taps_unit(text, value, unit):
    (tap,) = parse_line(text, 1).taps
    assert (nums(tap), tap.unit) == (value, unit)
    assert tap.raw.endswith(text.rsplit(None, 1)[1])  # as written, unit word included


def test_a_word_that_is_no_unit_leaves_the_value_text():
    (tap,) = parse_line("TRACE_C: mode 1 fast", 1).taps
    assert (tap.shape, tap.unit, tap.raw) == ("text", None, "1 fast")


def test_headings_and_arithmetic_are_not_taps_with_a_value():
    (tap,) = parse_line("TRACE: Computing cross products of reciprocal vectors:", 1).taps
    assert (tap.name, tap.shape) == ("text", "free_text")
    (tap,) = parse_line("TRACE_PY: normalized * r_e^2 * fluence", 1).taps
    assert (tap.name, tap.shape) == ("text", "free_text")  # not a tap 'normalized'


def test_side_by_side_columns_are_one_tap_per_side():
    line = parse_line("TRACE_C: F_cell 100\tTRACE_PY: F_cell = 1.000000000000000e+02", 4)
    assert [(t.side, t.name, nums(t)) for t in line.taps] == [
        ("c", "F_cell", [100.0]), ("py", "F_cell", [100.0])]
    bad = parse_line("TRACE_C: k 1\tTRACE_PY: k=<val>", 5)
    assert bad.taps == [] and bad.quarantine.startswith("side-by-side line, column 2: template")


@pytest.mark.parametrize("text, pixel", [
    ("Target Pixel: (slow=512, fast=512)", (512, 512)),
    ("TRACE_PY: === PIXEL (262, 368) TRACE START ===", (262, 368)),
    ("=== PIXEL (262, 368) ===", (262, 368)),
    ("# Pixel: (fast=368, slow=262)", (262, 368)),
    ("tracing pixel (spixel=236, fpixel=398)", (236, 398)),
    # sentences about a pixel are not markers
    ("Pixel (685, 1039) final intensity: 1.2", None),
    ("  Max intensity: 4.267e+01 at pixel (158, 147)", None),
    ("# Pixel (0,0) - edge pixel", None),
    ("  Brightest pixel: (1, 2) [fast, slow] = 3", None),
])
def test_the_pixel_marker_family_and_sentences_that_are_not_markers(text, pixel):
    parsed = parse_text(text + "\n")
    found = parsed.markers + [(ln.line_no, ln.pixel) for ln in parsed.lines if ln.pixel]
    assert found == ([(1, pixel)] if pixel else [])


def test_continuation_lines_belong_to_the_record_and_are_counted():
    text = ("TRACE_SIM_F_LATT: pixel=(1792,2048) Na=5.0 Nb=5.0 Nc=5.0\n"
            "  h_mean=-6.576005289140565e+08 k_mean=5.128313254643336e+10\n"
            "  F_latt_mean=9.101399884157525e+00\n"
            "  = 4.267002487183e+01\n"
            "not indented: the record ends\n"
            "  indented, but after a line that is not a record\n")
    parsed = parse_text(text)
    assert (parsed.trace_lines, parsed.continuation_lines) == (4, 3)
    assert parsed.lines[0].pixel == (1792, 2048)
    read = [(ln.line_no, t.channel, t.name, nums(t)) for ln in parsed.lines for t in ln.taps]
    assert read == [(1, "SIM_F_LATT", "Na", [5.0]), (1, "SIM_F_LATT", "Nb", [5.0]),
                    (1, "SIM_F_LATT", "Nc", [5.0]),
                    (2, "SIM_F_LATT", "h_mean", [-6.576005289140565e+08]),
                    (2, "SIM_F_LATT", "k_mean", [5.128313254643336e+10]),
                    (3, "SIM_F_LATT", "F_latt_mean", [9.101399884157525])]
    assert parsed.lines[3].quarantine.startswith("continuation of a TRACE record with no named")


def test_continuation_lines_take_the_records_side_and_loop_key():
    parsed = parse_text("TRACE_C_PHI: phi_tic=3 k_frac=-0.5\n\tl_frac=0.25\n")
    tap = parsed.lines[1].taps[0]
    assert (tap.side, tap.channel, tap.name, tap.loop_key) == ("c", "PHI", "l_frac", "phi_tic=3")


def test_no_continuation_after_a_quarantined_line():
    parsed = parse_text("TRACE_C_HKL_BOUNDS=1 ./nanoBragg \\\n  -cell 100 100 100 \\\n")
    assert parsed.continuation_lines == 0 and len(parsed.lines) == 1
    assert parsed.lines[0].quarantine.startswith("shell environment assignment")


def test_a_worked_calculation_over_continuation_lines_is_read_as_named_values():
    parsed = parse_text("TRACE: Intensity calculation chain:\n"
                        "  normalized * r_e^2 * fluence\n"
                        "  = 8.534004974365e+01 * 7.940792725906e-30 * 1.259320175747e+29\n"
                        "  = 4.267002487183e+01\n")
    assert [ln.quarantine for ln in parsed.lines] == [None] * 4
    factors, value = parsed.lines[2].taps[0], parsed.lines[3].taps[0]
    assert factors.name == value.name == "normalized * r_e^2 * fluence"
    assert [(c.label, c.num) for c in factors.components] == [
        ("normalized", 85.34004974365), ("r_e^2", 7.940792725906e-30),
        ("fluence", 1.259320175747e+29)]
    assert (value.shape, nums(value)) == ("scalar", [42.67002487183])
