"""`tracedb report`: the content of every file, determinism, ASCII, masking, refusal."""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import tracedb
from tracedb.errors import TracedbError
from tracedb.store.engine import mask_secrets

from .conftest import write

C = """\
TRACE_C:detector_convention=MOSFLM
TRACE_C:convention_mapping=Fbeam\u2190Ybeam_mm(+0.5px)
TRACE_C:beam_center_m=X:0.000102425 Y:0.000102425 pixel_mm:0.05
TRACE_C: distance_m 0.5
TRACE_C: wavelength_angstroms 1
TRACE_C: r_e_sqr 7.94079248018965e-30
TRACE_C: fluence_photons_per_m2 {fluence}
TRACE_C: F_cell {fcell}
TRACE_C: F_latt {flatt}
TRACE_C: polar 0.999982
TRACE_C: omega_pixel 1e-08
TRACE_C: capture_fraction 1
TRACE_C: steps 1
TRACE_C: only_in_c 5
TRACE_C: known_bug 1
TRACE_C: I_pixel_final {final!r}
"""

PY = """\
TRACE_PY: detector_convention MOSFLM
TRACE_PY: convention_mapping Fbeam\u2190Ybeam_mm(+0.5px)
TRACE_PY: beam_center_m X:1.024250000000000e-01 Y:1.024250000000000e-01 pixel_mm:0.05
TRACE_PY: distance_m 5.000000000000000e-01
TRACE_PY: wavelength_angstroms 1.000000000000000e+00
TRACE_PY: r_e_sqr 7.940792480189650e-30
TRACE_PY: fluence_photons_per_m2 {fluence}
TRACE_PY: F_cell {fcell}
TRACE_PY: F_latt {flatt}
TRACE_PY: polar 0.999982004873912
TRACE_PY: omega_pixel 1.000000000000000e-08
TRACE_PY: capture_fraction 1
TRACE_PY: steps 1
TRACE_PY: known_bug 2
TRACE_PY: only_in_py 6
TRACE_PY: I_pixel_final {final!r}
"""

R_E = 7.94079248018965e-30
# per pixel: (C fluence, C F_cell, C F_latt), (PyTorch fluence, F_cell, F_latt)
PIXELS = {
    (10, 20): ((1e24, 100.0, 2.0), (2e24, 100.0, 4.0)),
    (30, 40): ((1e24, 300.0, 2.0), (2e24, 100.0, 2.0)),
}


def final(fluence, fcell, flatt, extra=1.0):
    return R_E * fluence * fcell ** 2 * flatt ** 2 * 0.999982 * 1e-08 * extra


@pytest.fixture
def campaign(tmp_path):
    root = tmp_path / "reports" / "ini" / "phase"
    for (s, f), (c, p) in PIXELS.items():
        write(root / "20250101T000000Z" / "c_traces" / f"pixel_{s}_{f}.log",
              C.format(fluence=c[0], fcell=c[1], flatt=c[2], final=final(*c)))
        # the PyTorch final value carries an extra factor 1.5 the model cannot explain
        write(root / "20250101T010000Z" / "py_traces" / f"pixel_{s}_{f}.log",
              PY.format(fluence=p[0], fcell=p[1], flatt=p[2], final=final(*p, 1.5)))
    write(root / "20250101T000000Z" / "env" / "trace_env.json",
          '{"git_sha": "c0ffee", "git_branch": "parity"}')
    write(root / "20250101T000000Z" / "commands.txt", "./nanoBragg -trace_pixel 10 20\n")
    write(tmp_path / "reports" / "ini" / "phase" / "20250101T020000Z" / "c_traces" /
          "pixel_50_60.log", "TRACE_C: lonely 1\n")
    write(tmp_path / "reports" / "ini" / "phase" / "20250101T030000Z" / "py_traces" /
          "pixel_50_60.log", "TRACE_PY: other 1\n")
    return tmp_path / "reports"


def make(url, campaign, out, **kw):
    wh = tracedb.connect(url)
    wh.ingest([campaign], argv=["tracedb", "ingest", "reports"])
    wh.accept("known_bug", "documented C behaviour kept on purpose")
    kw.setdefault("ref", "c@20250101T000000Z")
    kw.setdefault("cand", "py@20250101T010000Z")
    return wh, wh.report(out, **kw)


def read(p):
    return p.read_text(encoding="utf-8")


def test_first_divergence_md(url, campaign, tmp_path):
    _, rep = make(url, campaign, tmp_path / "out")
    md = read(tmp_path / "out" / "first_divergence.md")
    assert "rtol = 1e-12, atol = 0" in md
    assert "run 1, C @ 20250101T000000Z" in md or "C @ 20250101T000000Z" in md
    assert "PyTorch @ 20250101T010000Z" in md
    assert "Pairing: c@20250101T000000Z vs py@20250101T010000Z of each pixel" in md
    for pix in ("(10, 20)", "(30, 40)"):
        assert (f"## Pixel {pix}: first divergence `beam_center_m` at line 3 (C) / "
                "line 3 (PyTorch)") in md
    assert "| value as written | `X:0.000102425 Y:0.000102425 pixel_mm:0.05` | " \
           "`X:1.024250000000000e-01 Y:1.024250000000000e-01 pixel_mm:0.05` |" in md
    assert "ratio ref/cand: 0.001" in md
    assert "unit of the tap (from its name): m" in md
    # distance_m (0.5 on both sides) agrees with neither value: no side is named
    assert "unit hint: one side is off by x1e3 (m <-> mm)" in md
    assert ("**Next step:** `beam_center_m` differs by a clean unit factor (ratio ref/cand "
            "0.001): one side is off by x1e3 (m <-> mm). The data does not tell which side "
            "is off") in md
    # later divergences, print precision, missing and accepted sections
    assert "### Diverged after the first (" in md and "| `fluence_photons_per_m2` | 7/7 |" in md
    assert "### Within print precision only (1)" in md and "| `polar` | 10/10 |" in md
    assert "| `only_in_c` | C only | 14 | `5` |" in md
    assert "| `only_in_py` | PyTorch only | 15 | `6` |" in md
    assert "documented C behaviour kept on purpose" in md
    assert "## Pixel (50, 60)" not in md  # not selected by --ref/--cand
    assert "![divergence profile of pixel (10, 20)](plots/profile_pixel_10_20.png)" in md


def test_nothing_compared_says_so_in_heading(url, campaign, tmp_path):
    _, _ = make(url, campaign, tmp_path / "out", ref="c@020000Z", cand="py@030000Z")
    md = read(tmp_path / "out" / "first_divergence.md")
    assert "## Pixel (50, 60): nothing compared" in md
    assert "This is not a match." in md


def test_next_step_constant_and_between(url, tmp_path):
    for pix in ((1, 1), (2, 2)):
        write(tmp_path / "r" / "20250101T000000Z" / "c_traces" / f"pixel_{pix[0]}_{pix[1]}.log",
              f"TRACE_C: r_e 2.81794\nTRACE_C: pos {pix[0]}\nTRACE_C: x {pix[0] * 2}\n")
        write(tmp_path / "r" / "20250101T010000Z" / "py_traces" / f"pixel_{pix[0]}_{pix[1]}.log",
              f"TRACE_PY: r_e 2.81795\nTRACE_PY: pos {pix[0]}\nTRACE_PY: x {pix[0] * 3}\n")
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "r"])
    wh.report(tmp_path / "o1")
    md = read(tmp_path / "o1" / "first_divergence.md")
    assert "`r_e` has one value for every pixel on each side" in md
    assert "check its definition on both sides" in md
    wh.accept("r_e", "CODATA 2006 on purpose")
    wh.report(tmp_path / "o2")
    md = read(tmp_path / "o2" / "first_divergence.md")
    assert "`pos` (line 2/2) still matches and `x` (line 3/3) diverges" in md


def test_summary_md_roll_up_and_factor_table(url, campaign, tmp_path):
    make(url, campaign, tmp_path / "out")
    md = read(tmp_path / "out" / "summary.md")
    assert "Earliest common divergence: `beam_center_m` (reference line 3)." in md
    causes = md.split("### Causes")[1].split("###")[0]
    follows = md.split("### Consequences")[1].split("##")[0]
    # the fixture: C prints the beam centre x1e-3; fluence 1e24 vs 2e24 at both pixels;
    # F_latt 2 vs 4 at (10, 20) only, F_cell 300 vs 100 at (30, 40) only (their inputs,
    # F_latt_a/b/c and hkl, are not traced, so each is a cause); the final value follows
    assert "| `beam_center_m` | unit_factor | all 2 |" in causes
    assert "| `fluence_photons_per_m2` | constant | all 2 |" in causes
    assert "| `F_latt` | genuine | 1 of 2: (10, 20) |" in causes
    assert "| `F_cell` | genuine | 1 of 2: (30, 40) |" in causes
    assert "| `I_pixel_final` | fluence_photons_per_m2 | all 2 |" in follows
    assert "`known_bug`" not in causes + follows  # accepted
    # the PyTorch final value's extra x1.5 is no factor of the model
    assert "- (10, 20): **the factors leave" in md and "unexplained** (budget 5%)" in md
    assert ("`I_pixel_final = r_e_sqr * fluence_photons_per_m2 * F_cell^2 * F_latt^2 * "
            "polar * omega_pixel * capture_fraction / steps`") in md
    gap_part = md.split("## What explains the gap of `I_pixel_final`")[1]
    table = [ln for ln in gap_part.splitlines() if ln.startswith("| (10, 20) |")][0]
    cells = [c.strip() for c in table.strip("|").split("|")]
    # expected from the fixture's own numbers: fluence 1/2, F_latt (2/4)^2, extra 1/1.5
    gap = math.log10(final(*PIXELS[(10, 20)][0]) / final(*PIXELS[(10, 20)][1], 1.5))
    assert cells[3] == f"{gap:+.4g}"
    fl = math.log10(0.5)
    assert cells[5] == f"{fl:+.4g} ({100 * fl / gap:.1f}%)"  # fluence_photons_per_m2
    flatt = 2 * math.log10(0.5)
    assert cells[7] == f"{flatt:+.4g} ({100 * flatt / gap:.1f}%)"  # F_latt
    rem = math.log10(1 / 1.5)
    assert cells[-1].startswith(f"{rem:+.4g}")  # the unexplained 1.5
    row2 = [ln for ln in gap_part.splitlines() if ln.startswith("| (30, 40) |")][0]
    fcell = 2 * math.log10(3)
    assert f"{fcell:+.4g}" in row2


def test_a_zero_final_value_names_the_factor_that_is_zero(sqlite_url, tmp_path):
    root = tmp_path / "reports" / "ini" / "phase"
    write(root / "20250101T000000Z" / "c_traces" / "pixel_1_1.log",
          C.format(fluence=1e24, fcell=0.0, flatt=2.0, final=0.0))
    write(root / "20250101T010000Z" / "py_traces" / "pixel_1_1.log",
          PY.format(fluence=1e24, fcell=100.0, flatt=2.0, final=final(1e24, 100.0, 2.0)))
    wh = tracedb.connect(sqlite_url)
    wh.ingest([tmp_path / "reports"])
    wh.report(tmp_path / "out")
    md = read(tmp_path / "out" / "summary.md")
    assert "- (1, 1): `I_pixel_final` is 0 on the C side; `F_cell` is 0 there." in md


def test_the_first_divergence_names_its_components_and_ulps(sqlite_url, tmp_path):
    root = tmp_path / "reports" / "ini" / "phase"
    a = 0.1
    b = a + 123456 * math.ulp(a)  # relative 1.7e-11: beyond rtol 1e-12
    write(root / "20250101T000000Z" / "c_traces" / "pixel_1_1.log",
          f"TRACE_C: v 1.0 {a:.17g} 7\nTRACE_C: w 0.5\n")
    write(root / "20250101T010000Z" / "py_traces" / "pixel_1_1.log",
          f"TRACE_PY: v 1.0 {b:.17g} 7\nTRACE_PY: w 0.6\n")
    wh = tracedb.connect(sqlite_url)
    wh.ingest([tmp_path / "reports"])
    wh.report(tmp_path / "out")
    md = read(tmp_path / "out" / "first_divergence.md")
    line = next(ln for ln in md.splitlines() if ln.startswith("- diverged component(s)"))
    assert line.startswith("- diverged component(s), 1 of 3: `[1]`")
    assert "1.235e+05 ULPs" in line
    # six digits are too few to count ULPs: said, not counted
    write(root / "20250101T020000Z" / "py_traces" / "pixel_1_1.log",
          "TRACE_PY: v 1.0 0.100001 7\nTRACE_PY: w 0.5\n")
    wh.ingest([tmp_path / "reports"])
    wh.report(tmp_path / "out2")
    md = read(tmp_path / "out2" / "first_divergence.md")
    assert "written with 6 significant digits: too few to count ULPs" in md


def test_diff_txt_lists_every_tap_in_reference_order(url, campaign, tmp_path):
    make(url, campaign, tmp_path / "out")
    txt = read(tmp_path / "out" / "diff_pixel_10_20.txt")
    rows = [ln.split() for ln in txt.splitlines() if ln[:4].strip().isdigit()]
    names = [r[1] for r in rows]
    assert names[:5] == ["detector_convention", "convention_mapping", "beam_center_m",
                         "distance_m", "wavelength_angstroms"]
    assert names[-1] == "only_in_py"
    status = dict(zip(names, (r[2] for r in rows), strict=True))
    assert status["beam_center_m"] == "diverged" and status["polar"] == "print_precision"
    assert status["known_bug"] == "accepted" and status["only_in_c"] == "missing_cand"
    assert "<-- first divergence" in [ln for ln in txt.splitlines() if "beam_center_m" in ln][0]
    assert "rtol=1e-12" in txt
    assert len({len(ln.split("  values")[0]) for ln in txt.splitlines() if "  values" in ln}) == 1


def _files(d):
    """Every file of a report: {relative path: bytes}, the marked timestamp line out."""
    out = {}
    for p in sorted(d.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "first_divergence.md":
                data = b"\n".join(ln for ln in data.split(b"\n")
                                  if b"generation timestamp" not in ln)
            out[p.relative_to(d).as_posix()] = data
    return out


def test_commands_txt_replays_from_any_directory_byte_for_byte(url, campaign, tmp_path):
    import os
    import shutil

    work = tmp_path / "work"
    shutil.copytree(campaign, work / "reports")
    # on SQLite a warehouse named relative to where the commands ran
    db = "sqlite:///w.sqlite" if url.startswith("sqlite") else url
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                 f"{os.environ.get('PATH', '')}"}
    env.pop("TRACEDB_URL", None)

    def tracedb_cli(*args, cwd):
        proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", db, *args], cwd=cwd,
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc

    tracedb_cli("ingest", "reports", cwd=work)
    tracedb_cli("report", "out", "--ref", "c@20250101T000000Z", "--cand",
                "py@20250101T010000Z", "--rtol", "1e-9", cwd=work)
    txt = read(work / "out" / "commands.txt")
    ingest = shlex.join(["tracedb", "--db", db, "ingest", "reports"])
    assert f"(cd {shlex.quote(str(work))} && {ingest})" in txt
    report_line = [ln for ln in txt.splitlines() if " report " in ln and not ln.startswith("#")]
    argv = shlex.split(report_line[0].replace('"${1:-$(mktemp -d)}"', "OUTDIR"))
    assert argv[argv.index("--rtol") + 1] == "1e-09"
    assert argv[argv.index("--ref") + 1] == "c@20250101T000000Z"
    assert "--model" in argv and "--atol" in argv
    if url.startswith("sqlite"):  # the warehouse made absolute
        assert argv[argv.index("--db") + 1] == f"sqlite:///{work / 'w.sqlite'}"
    # replayed from another directory, into a directory of its own: the same report
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(["sh", str(work / "out" / "commands.txt"), "replay"],
                          cwd=elsewhere, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    original, replayed = _files(work / "out"), _files(elsewhere / "replay")
    assert sorted(replayed) == sorted(original)
    for name, data in original.items():
        assert replayed[name] == data, name
    # without OUTDIR it writes a new directory, never over the report it came with
    proc = subprocess.run(["sh", str(work / "out" / "commands.txt")], cwd=elsewhere,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert _files(work / "out") == original


def test_env_json_provenance(url, campaign, tmp_path):
    make(url, campaign, tmp_path / "out")
    env = json.loads(read(tmp_path / "out" / "env" / "trace_env.json"))
    assert env["tracedb_version"] == tracedb.__version__
    assert env["python"].count(".") == 2
    assert env["database"]["dialect"] in ("sqlite", "postgresql") and env["database"]["version"]
    assert env["tolerance"] == {"rtol": 1e-12, "atol": 0.0, "mode": "default",
                                "rule": "|a-b| <= atol + rtol*max(|a|,|b|)"}
    import matplotlib
    import numpy
    import pandas
    import sqlalchemy

    libs = env["libraries"]
    assert (libs["sqlalchemy"], libs["numpy"], libs["pandas"], libs["matplotlib"]) == (
        sqlalchemy.__version__, numpy.__version__, pandas.__version__, matplotlib.__version__)
    srcs = env["sources"]
    assert len(srcs) == 4
    c = [s for s in srcs if s["side"] == "c" and s["pixel"] == [10, 20]][0]
    assert (c["git_sha"], c["git_branch"], c["stamp"], c["role"]) == (
        "c0ffee", "parity", "20250101T000000Z", "ref")
    import hashlib

    f = next(campaign.rglob("c_traces/pixel_10_20.log"))
    assert c["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()


def test_paths_in_a_report_are_relative_to_the_tree(url, campaign, tmp_path):
    # the tree named by its absolute path: the report shows it from its reports/ folder
    assert campaign.is_absolute() and campaign.name == "reports"
    make(url, campaign, tmp_path / "out")
    env = json.loads(read(tmp_path / "out" / "env" / "trace_env.json"))
    assert sorted(s["path"] for s in env["sources"])[0] == \
        "reports/ini/phase/20250101T000000Z/c_traces/pixel_10_20.log"
    assert {s["bundle"] for s in env["sources"]} == {
        "reports/ini/phase/20250101T000000Z", "reports/ini/phase/20250101T010000Z"}
    assert "reports/ini/phase/20250101T010000Z/py_traces/pixel_30_40.log" in \
        read(tmp_path / "out" / "first_divergence.md")
    # no file names this machine's folders (the warehouse's URL is absolute on purpose:
    # commands.txt replays with it)
    for p in (tmp_path / "out").rglob("*"):
        if p.is_file() and p.suffix != ".png" and p.name != "commands.txt":
            text = read(p).replace(env["database"]["url"], "")
            assert str(tmp_path) not in text, p


@pytest.mark.parametrize("path, shown", [
    ("reports/a/b.log", "reports/a/b.log"),
    ("/srv/me/x/reports/ini/20250101T000000Z/c.log", "reports/ini/20250101T000000Z/c.log"),
    ("../../corpus/reports/a/b.log", "reports/a/b.log"),
    ("/data/camp/20250101T000000Z/c_traces/p.log", ".../20250101T000000Z/c_traces/p.log"),
])
def test_portable_path(path, shown):
    from tracedb.paths import portable_path

    assert portable_path(path) == shown


def test_password_is_masked(pg_url, campaign, tmp_path):
    with_pw = pg_url.replace("postgresql+psycopg://postgres@",
                             "postgresql+psycopg://postgres:s3cret@")
    assert "s3cret" in with_pw
    make(with_pw, campaign, tmp_path / "out")
    for p in (tmp_path / "out").rglob("*"):
        if p.is_file() and p.suffix != ".png":
            assert "s3cret" not in read(p), p
    env = json.loads(read(tmp_path / "out" / "env" / "trace_env.json"))
    assert "***" in env["database"]["url"]
    assert mask_secrets("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def test_ascii_by_default_unicode_on_request(url, campaign, tmp_path):
    make(url, campaign, tmp_path / "a")
    for p in (tmp_path / "a").rglob("*"):
        if p.is_file() and p.suffix != ".png":
            p.read_bytes().decode("ascii")  # raises on any non-ASCII byte
    assert "Fbeam<-Ybeam_mm" in read(tmp_path / "a" / "diff_pixel_10_20.txt")
    make(url, campaign, tmp_path / "u", unicode=True)
    assert "Fbeam\u2190Ybeam_mm" in read(tmp_path / "u" / "diff_pixel_10_20.txt")


def test_deterministic_apart_from_the_marked_timestamp(url, campaign, tmp_path):
    wh, _ = make(url, campaign, tmp_path / "out", force=True)
    first = {p.relative_to(tmp_path / "out"): p.read_bytes()
             for p in (tmp_path / "out").rglob("*") if p.is_file()}
    wh.report(tmp_path / "out", ref="c@20250101T000000Z", cand="py@20250101T010000Z",
              force=True)
    second = {p.relative_to(tmp_path / "out"): p.read_bytes()
              for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert set(first) == set(second)
    for name in first:
        a, b = first[name], second[name]
        if name.name == "first_divergence.md":
            strip = [ln for ln in a.decode().splitlines() if "generation timestamp" not in ln]
            strip2 = [ln for ln in b.decode().splitlines() if "generation timestamp" not in ln]
            assert strip == strip2
            assert sum("generation timestamp" in ln for ln in a.decode().splitlines()) == 1
        else:
            assert a == b, name


def test_plots_are_pngs_linked_from_markdown(url, campaign, tmp_path):
    make(url, campaign, tmp_path / "out")
    import matplotlib.image as mpimg

    for name in ("profile_pixel_10_20.png", "profile_pixel_30_40.png", "status_map.png"):
        p = tmp_path / "out" / "plots" / name
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(p)
        assert img.shape[0] > 200 and img.shape[1] > 400
        # not blank: several distinct colours (status colours, text)
        assert len({tuple(px) for px in img.reshape(-1, img.shape[2])[::97]}) > 5
    assert "(plots/status_map.png)" in read(tmp_path / "out" / "summary.md")


def test_no_plots_writes_the_same_report_without_plots(url, campaign, tmp_path):
    wh = tracedb.connect(url)
    wh.ingest([campaign])
    wh.close()
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "report", str(out),
                           "--ref", "c@20250101T000000Z", "--cand", "py@20250101T010000Z",
                           "--no-plots"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "plot(s)" not in proc.stdout and proc.stderr == ""
    assert not (out / "plots").exists()
    md = read(out / "first_divergence.md")
    assert "## Pixel (10, 20): first divergence `beam_center_m`" in md
    assert "![" not in md + read(out / "summary.md")
    assert read(out / "commands.txt").splitlines()[-1].endswith("--no-plots")  # replays so


def test_non_empty_outdir_is_refused(url, campaign, tmp_path):
    out = tmp_path / "out"
    write(out / "keep.txt", "mine")
    with pytest.raises(TracedbError, match="exists and is not empty; pass --force"):
        make(url, campaign, out)
    assert read(out / "keep.txt") == "mine"
    assert not (out / "first_divergence.md").exists()
    proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "report", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "pass --force" in proc.stderr
    assert "Traceback" not in proc.stderr
    tracedb.connect(url).report(out, ref="c@20250101T000000Z", cand="py@20250101T010000Z",
                                force=True)
    assert (out / "first_divergence.md").exists() and read(out / "keep.txt") == "mine"


def test_factor_model_editing(sqlite_url, campaign, tmp_path):
    wh = tracedb.connect(sqlite_url)
    wh.set_factor_model("simple", "I_pixel_final = fluence_photons_per_m2 * F_latt^2")
    fm = wh.factor_model("simple")
    assert list(zip(fm.factor, fm.exponent, strict=True)) == [
        ("fluence_photons_per_m2", 1.0), ("F_latt", 2.0)]
    with pytest.raises(TracedbError, match="no parentheses"):
        wh.set_factor_model("bad", "I = a / (b * c)")
    with pytest.raises(TracedbError, match="cannot read factor model"):
        wh.set_factor_model("bad", "no equals sign")
    wh.ingest([campaign])
    wh.report(tmp_path / "out", ref="c@20250101T000000Z", cand="py@20250101T010000Z",
              model="simple")
    md = read(tmp_path / "out" / "summary.md")
    assert "`I_pixel_final = fluence_photons_per_m2 * F_latt^2`" in md


def _tap(tap, status, ratio=None, rel_delta=None):
    return {"tap": tap, "loop_key": None, "occurrence": 1, "channel": None, "status": status,
            "ratio": ratio, "rel_delta": rel_delta}


def test_a_profile_does_not_depend_on_the_profiles_drawn_before_it(tmp_path):
    # profiles with the same taps are drawn over one shared drawing of their axis:
    # nothing of one pixel (points, first-divergence marker, title) may stay in the next
    from tracedb.present.plots import draw_profiles, profile_of

    none = {"first_tap": None, "first_loop_key": None, "first_channel": None,
            "first_occurrence": None}
    pixels = {
        "diverged": ({**none, "first_tap": "b", "first_occurrence": 1},
                     [_tap("a", "match", 1.0, 0.0), _tap("b", "diverged", 1e-3, 1 - 1e-3),
                      _tap("c", "diverged", 2.0, 0.5)]),
        "matched": (none, [_tap("a", "match", 1.0, 0.0), _tap("b", "match", 1.0, 1e-16),
                           _tap("c", "print_precision", None, 1e-7)]),
        "sign": ({**none, "first_tap": "c", "first_occurrence": 1},
                 [_tap("a", "match", 1.0, 0.0), _tap("b", "accepted", 1.5, 1 / 3),
                  _tap("c", "diverged", None, 2.0)]),
    }
    drawn = {}
    for order in ("forward", "backward"):
        (tmp_path / order).mkdir()
        names = list(pixels) if order == "forward" else list(pixels)[::-1]
        profiles = [profile_of({**pixels[n][0], "pixel": [len(n), 1], "ref_run": 1,
                                "cand_run": 2}, pixels[n][1], tmp_path / order / f"{n}.png",
                               ascii_only=True) for n in names]
        draw_profiles(profiles, rtol=1e-12)
        drawn[order] = {n: (tmp_path / order / f"{n}.png").read_bytes() for n in names}
    assert drawn["forward"] == drawn["backward"]
    assert len(set(drawn["forward"].values())) == 3  # each pixel's own points


def test_status_map_of_120_pixels_comes_in_pages_with_a_legend_for_every_colour(
        sqlite_url, tmp_path, monkeypatch):
    import re

    from benchmarks.generate import write_campaign
    from tracedb.present import plots

    write_campaign(tmp_path / "c", pixels=120, stamps=1, seed=3)
    wh = tracedb.connect(sqlite_url)
    assert wh.ingest([tmp_path / "c"]).ok
    drawn = []  # what each status-map page shows a reader
    real_save = plots._save

    def spy(fig, path):
        ax = fig.axes[0]
        drawn.append({"path": path.name, "rows": [t.get_text() for t in ax.get_yticklabels()],
                      "columns": len(ax.get_xticklabels()),
                      "legend": [t.get_text() for t in ax.get_legend().get_texts()]})
        real_save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    wh.report(tmp_path / "out")
    found = wh.divergences().rows
    wh.close()
    assert len(found) == 120
    summary = read(tmp_path / "out" / "summary.md")
    links = re.findall(r"!\[status of every tap, pixels (\d+)-(\d+) of 120\]"
                       r"\(plots/(status_map_\d+\.png)\)", summary)
    assert links == [("1", "50", "status_map_1.png"), ("51", "100", "status_map_2.png"),
                     ("101", "120", "status_map_3.png")]
    assert [d["path"] for d in drawn] == ["status_map_1.png", "status_map_2.png",
                                          "status_map_3.png"]
    assert not (tmp_path / "out" / "plots" / "status_map.png").exists()
    columns = drawn[0]["columns"]
    for page, start in zip(drawn, (0, 50, 100), strict=True):
        assert (tmp_path / "out" / "plots" / page["path"]).read_bytes()[:4] == b"\x89PNG"
        rows = found[start:start + 50]
        assert page["rows"] == [f"({r['pixel'][0]}, {r['pixel'][1]})" for r in rows]
        assert page["columns"] == columns  # every page has every tap of the report
        # the warehouse's own counts of each status on the page's pixels
        want = {k: sum(r[k] for r in rows) for k in (
            "diverged", "print_precision", "accepted", "missing_ref", "missing_cand")}
        want["match"] = sum(r["matched"] for r in rows)
        legend = dict(re.fullmatch(r"(.+) \((\d+)\)", t).groups() for t in page["legend"])
        assert {k: int(v) for k, v in legend.items() if k in want} == want
        assert set(legend) == set(want) | {"not in this pair"}  # a label for every colour
        assert sum(map(int, legend.values())) == len(rows) * columns
    assert want["diverged"] > 0 and want["missing_ref"] > 0  # the campaign shows both


@pytest.mark.parametrize("formula, factors", [
    ("I = a * b^2 / c", [("a", 1), ("b", 2), ("c", -1)]),
    ("I = a / b * c^-2", [("a", 1), ("b", -1), ("c", -2)]),  # * and / left to right
    ("I = lambda * F.x^2.5", [("lambda", 1), ("F.x", 2.5)]),  # names as traces write them
    ("I = a *\n  b", [("a", 1), ("b", 1)]),
])
def test_factor_model_formulas(formula, factors):
    from tracedb.curate import parse_model

    assert parse_model(formula) == ("I", [(n, float(e)) for n, e in factors])


@pytest.mark.parametrize("formula, message", [
    ("I = a ** 2", "cannot read factor model"), ("I = b^x", "cannot read factor 'b\\^x'"),
    ("I = a * 2", "cannot read factor '2'"), ("I = b^1e3", "cannot read factor"),
    ("I = a b", "cannot read factor model"), ("I =", "has no factors"),
])
def test_factor_model_formulas_that_are_refused(formula, message):
    from tracedb.curate import parse_model

    with pytest.raises(TracedbError, match=message):
        parse_model(formula)


@pytest.mark.parametrize("ratio, rel_delta, size", [
    (1e-3, 1 - 1e-3, 999.0),  # C printed x1e-3: as far apart as x1e3
    (1e10, 1 - 1e-10, 1e10 - 1),  # x1e10 is drawn far above x1e3, not beside it
    (None, 1e-12, 1e-12 / (1 - 1e-12)),  # a vector's components with different ratios
    (1.0, 0.0, 0.0),
    (None, 2.0, None),  # sign differs: no finite size, drawn on its own line
])
def test_the_profile_shows_the_size_of_each_difference(ratio, rel_delta, size):
    from tracedb.present.plots import difference_size

    got = difference_size({"ratio": ratio, "rel_delta": rel_delta})
    assert got == size if size is None or size == 0 else math.isclose(got, size, rel_tol=1e-9)


def test_plots_use_a_colour_blind_safe_palette():
    from tracedb.present.plots import STATUS_COLORS

    okabe_ito = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
                 "#000000"}
    assert set(STATUS_COLORS.values()) <= okabe_ito
    assert len(set(STATUS_COLORS.values())) == len(STATUS_COLORS)
