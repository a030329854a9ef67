"""Output choices as a user sees them: --format table|json|csv|md on every listing, one
JSON style checked against the shipped JSON Schemas, a pixel as two CSV columns,
tables that fit the terminal, and diverge's JUnit and GitHub outputs for CI."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from tests.conftest import write
from tracedb import schemas
from tracedb.cli import app

C, PY = "20250101T000000Z", "20250101T010000Z"


def cli(url, *args, env=None):
    result = CliRunner().invoke(app, ["--db", url, *args], env=env)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


def capture(root, stamp, side, pixel, lines):
    sub, prefix = ("c_traces", "TRACE_C") if side == "c" else ("py_traces", "TRACE_PY")
    body = "".join(ln.replace("{P}", prefix) + "\n" for ln in lines)
    write(root / "reports" / "ini" / "ph" / stamp / sub / f"pixel_{pixel[0]}_{pixel[1]}.log",
          body)


@pytest.fixture
def campaign(tmp_path):
    """Pixel 1,2 diverges at beam_center_m (C in m, PyTorch in mm) and at a loop step;
    pixel 3,4 matches; pixel 5,6 has only a C run; a later PyTorch stamp fixes 1,2's
    loop step."""
    c = ["{P}: beam_center_m 0.0001", "{P}: distance_m 0.1", "{P}_PHI phi_tic=3 k=1.5",
         "{P}: I_pixel_final 2.5"]
    py = ["{P}: beam_center_m 0.1", "{P}: distance_m 0.1", "{P}_PHI phi_tic=3 k=2.5",
          "{P}: I_pixel_final 2.5"]
    capture(tmp_path, C, "c", (1, 2), c)
    capture(tmp_path, PY, "py", (1, 2), py)
    capture(tmp_path, "20250101T020000Z", "py", (1, 2), py[:2] + c[2:])
    capture(tmp_path, C, "c", (3, 4), c)
    capture(tmp_path, PY, "py", (3, 4), c)
    capture(tmp_path, C, "c", (5, 6), c)
    write(tmp_path / "reports" / "ini" / "ph" / C / "c_traces" / "notes.log",
          "TRACE_C: phi_tic=<idx> k=<val>\n")
    return tmp_path / "reports"


#: Every --format json output, the schema it follows, and the command that makes it
#: on the campaign above (taps: run 1; --diff 1 against 2).
def json_commands(root):
    return {
        "ingest": ["ingest", str(root)],
        "runs": ["runs"], "taps": ["taps", "1"], "taps_diff": ["taps", "1", "--diff", "2"],
        "quarantine": ["quarantine"], "diverge": ["diverge"],
        "timeline": ["timeline", "--pixel", "1,2"],
        "regress": ["regress", "--base", "@010000Z", "--head", "@020000Z"],
        "images": ["images"], "images_timeline": ["images", "--timeline"],
        "images_next_pixels": ["images", "--next-pixels", "2"],
        "rows": ["query", "runs", "-p", "side=c", "-p", "stamp=", "-p", "slow=", "-p",
                 "fast=", "-p", "path=", "-p", "run_id="],
        "db_check": ["db", "check"], "graph": ["graph", "show"],
        "factor_model": ["factor-model", "show"],
    }


def test_every_json_output_follows_its_shipped_schema(url, campaign):
    assert set(schemas.OUTPUTS.values()) | {"common"} == set(schemas.names())
    for name, args in json_commands(campaign).items():
        doc = json.loads(cli(url, *args, "--format", "json"))
        schemas.validate(name, doc)
        if name not in ("images", "images_timeline", "images_next_pixels"):
            assert doc, name  # the campaign gives each of these something to show
    diverge = {tuple(r["pixel"]): r for r in json.loads(cli(url, "diverge", "--format",
                                                                "json"))}
    assert diverge[(1, 2)]["status"] == "diverged" and diverge[(3, 4)]["status"] == "match"
    assert diverge[(5, 6)]["status"] == "missing_cand" and diverge[(5, 6)]["cand_run"] is None
    # `tracedb schema NAME` prints the shipped file
    assert json.loads(cli(url, "schema", "diverge")) == schemas.load("diverge")


def test_every_json_output_of_the_corpus_follows_its_schema(corpus, sqlite_url):
    cli(sqlite_url, "ingest", str(corpus / "reports"))
    runs = {r["id"]: r for r in json.loads(cli(sqlite_url, "runs", "--format", "json"))}
    c, py = (next(i for i, r in runs.items() if r["pixel"] == [1792, 2048]
                  and r["side"] == s and r["stamp"] == st)
             for s, st in (("c", "20251010T053711Z"), ("py", "20251010T055346Z")))
    commands = json_commands(corpus / "reports")
    commands.update(taps=["taps", str(c)], taps_diff=["taps", str(c), "--diff", str(py)],
                    timeline=["timeline", "--pixel", "1792,2048"],
                    regress=["regress", "--base", "@064547Z path:py_traces_post_fix",
                             "--head", "@064644Z"])
    for name, args in commands.items():
        doc = json.loads(cli(sqlite_url, *args, "--format", "json"))
        schemas.validate(name, doc)
        assert doc, name
    worst = json.loads(cli(sqlite_url, "images", "--format", "json"))[0]["worst"][0]
    assert isinstance(worst["pixel"], list) and "slow" not in worst


def test_the_schemas_refuse_what_the_outputs_must_not_be(url, campaign):
    from jsonschema import ValidationError

    cli(url, "ingest", str(campaign))
    good = json.loads(cli(url, "diverge", "--format", "json"))
    schemas.validate("diverge", good)
    for broken in ({"pixel": "1,2"}, {"status": "passed"}, {"strict": None},
                   {"first": {"tap": "x"}}, {"surprise": 1}):
        with pytest.raises(ValidationError):
            schemas.validate("diverge", [{**good[0], **broken}])
    with pytest.raises(ValidationError):
        schemas.validate("runs", [{k: v for k, v in json.loads(
            cli(url, "runs", "--format", "json"))[0].items() if k != "path"}])


def test_every_listing_takes_table_json_csv_and_md(url, campaign):
    cli(url, "ingest", str(campaign))
    commands = json_commands(campaign)
    for name in ("ingest", "runs", "taps", "taps_diff", "quarantine", "diverge", "timeline",
                 "regress", "images", "rows"):
        args = commands[name]
        for fmt in ("table", "md", "csv"):
            out = cli(url, *args, "--format", fmt)
            assert out.strip(), (name, fmt)
        md = cli(url, *args, "--format", "md").splitlines()
        header = next(i for i, ln in enumerate(md) if ln.startswith("| "))
        assert md[header + 1].startswith("|---"), (name, md)
        # CSV parses, and a pixel is two integer columns wherever one is shown
        rows = list(csv.DictReader(io.StringIO(cli(url, *args, "--format", "csv"))))
        if name in ("runs", "diverge", "timeline", "regress", "rows"):
            assert "pixel" not in rows[0] and {r["pixel_fast"] for r in rows} <= {"2", "4", "6"}
            assert {r["pixel_slow"] for r in rows} & {"1"}, name
    # the md of taps --diff is a Markdown table, not CSV
    assert cli(url, "taps", "1", "--diff", "2", "--format", "md").count("| beam_center_m |") == 1


def test_json_style_is_one_element_per_line_and_strict_is_stated(url, campaign):
    cli(url, "ingest", str(campaign))
    for args in (["runs"], ["diverge"], ["timeline", "--pixel", "1,2"],
                 ["regress", "--base", "@010000Z", "--head", "@020000Z"]):
        out = cli(url, *args, "--format", "json").splitlines()
        assert out[0] == "[" and out[-1] == "]"
        assert all(json.loads(ln.rstrip(",")) for ln in out[1:-1])  # one object a line
    for args in (["diverge"], ["timeline", "--pixel", "1,2"],
                 ["regress", "--base", "@010000Z", "--head", "@020000Z"]):
        assert {r["strict"] for r in json.loads(cli(url, *args, "--strict", "--format",
                                                     "json"))} == {True}
        assert {r["strict"] for r in json.loads(cli(url, *args, "--format", "json"))} == {
            False}
    for command in (["diverge"], ["timeline"], ["regress"], ["taps"], ["report"]):
        assert "--strict" in cli(url, *command, "--help")


def test_junit_has_one_testcase_per_pixel_and_fails_all_but_matches(url, campaign):
    cli(url, "ingest", str(campaign))
    suite = ET.fromstring(cli(url, "diverge", "--format", "junit"))
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"pixel 1,2", "pixel 3,4", "pixel 5,6"}
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    assert cases["pixel 3,4"].find("failure") is None
    first = cases["pixel 1,2"].find("failure").get("message")
    assert first.startswith("first divergence beam_center_m: verdict unit_factor")
    assert "is off by x1e" in first
    assert cases["pixel 5,6"].find("failure").get("type") == "missing_cand"


def test_github_annotations_point_at_the_trace_file_and_line(url, campaign):
    cli(url, "ingest", str(campaign))
    os.chdir(campaign.parent)  # GitHub runs in the checkout: paths are relative to it
    lines = cli(url, "diverge", "--format", "github", "--pixel", "1,2", "--pixel", "3,4",
                "--pixel", "5,6").splitlines()
    errors = [ln for ln in lines if ln.startswith("::error file=")]
    assert len(errors) == 2  # 3,4 matched
    diverged = next(ln for ln in errors if "pixel 1%2C2" in ln)
    props, message = diverged[len("::error "):].split("::", 1)
    fields = dict(p.split("=", 1) for p in props.split(","))
    assert fields["file"].startswith("reports/ini/ph/") and fields["line"] == "1"
    assert (campaign.parent / fields["file"]).is_file()
    assert message.startswith("first divergence beam_center_m: verdict unit_factor")
    assert lines[-1].startswith("::error title=tracedb diverge::3 pair(s) compared, "
                                "1 matched, 2 did not")
    only_match = cli(url, "diverge", "--format", "github", "--pixel", "3,4").splitlines()
    assert len(only_match) == 1 and only_match[0].startswith("::notice ")


def _tracedb(url, *args, env):
    full = {k: v for k, v in os.environ.items() if k not in ("TRACEDB_URL", "COLUMNS")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "tracedb", "--db", url, *args], env=full,
                          capture_output=True, text=True, timeout=300)


def test_columns_80_runs_on_the_corpus_fits_and_splits_no_value(corpus, sqlite_url):
    cli(sqlite_url, "ingest", str(corpus / "reports"))
    runs = json.loads(cli(sqlite_url, "runs", "--format", "json"))
    proc = _tracedb(sqlite_url, "runs", env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    body = [ln for ln in lines if ln.startswith("| ") and not ln.startswith("| id ")]
    assert len(body) == len(runs)  # one line per run: no value folded onto a second line
    for ln, run in zip(body, runs, strict=True):
        cells = [c.strip() for c in ln.strip("|").split("|")]
        assert cells[:4] == [str(run["id"]), run["side"] or "unknown", run["stamp"] or "",
                             "" if run["pixel"] is None else "{},{}".format(*run["pixel"])]
        # a path too long for the column keeps its end, the file name
        assert run["path"].endswith(cells[5].lstrip("\u2026"))
    # diverge at 80 columns: whole selectors, the first divergence, hidden columns named
    div = _tracedb(sqlite_url, "diverge", env={"COLUMNS": "80"}).stdout
    assert max(map(len, div.splitlines())) <= 80
    assert "| 1792,2048 | 211 py@20251010T075117Z |" in div and "beam_center_m" in div
    assert "hidden (terminal too narrow)" in div


def test_piped_output_is_plain_and_whole(url, campaign):
    cli(url, "ingest", str(campaign))
    proc = _tracedb(url, "diverge", env={})
    assert proc.returncode == 0 and proc.stdout.isascii() and "\x1b" not in proc.stdout
    # a loop key is shown, not read as Rich markup; nothing is cut
    long = _tracedb(url, "runs", env={}).stdout
    for path in (r["path"] for r in json.loads(cli(url, "runs", "--format", "json"))):
        assert path in long
    table = cli(url, "taps", "1", "--diff", "2")
    assert "phi_tic=3" in table


def test_json_is_strict_with_null_for_non_finite_numbers_and_one_record_a_line():
    """What every --format json prints for records: a NaN or an infinity (PostgreSQL's
    float8 has them) is null however deep, an object with slow and fast is a pixel,
    the rest as given, one record a line, and strict JSON throughout."""
    from tracedb.present.tables import json_text

    records = [
        {"tap": "a", "max_abs_delta": float("nan"), "first": {"ratio": float("inf"),
                                                             "values": [1.5, float("-inf")]}},
        {"tap": "b", "worst": [{"slow": 3, "fast": 4, "value": 2.0}], "note": "slow"},
        {"tap": "c", "max_abs_delta": 0.25, "roots": [{"tap": "x", "n": 2}]},
    ]
    text = json_text(records)
    lines = text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == 5
    got = json.loads(text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert got == [
        {"tap": "a", "max_abs_delta": None, "first": {"ratio": None, "values": [1.5, None]}},
        {"tap": "b", "worst": [{"pixel": [3, 4], "value": 2.0}], "note": "slow"},
        {"tap": "c", "max_abs_delta": 0.25, "roots": [{"tap": "x", "n": 2}]},
    ]
    assert [json.loads(ln.rstrip(",")) for ln in lines[1:-1]] == got


def test_json_carries_numpy_numbers_and_integers_beyond_64_bits():
    """A NumPy scalar (a pandas frame's cell) is the number it holds, a non-finite one
    null; an integer wider than 64 bits is written in full, not refused; text beyond
    ASCII is escaped, so the output is ASCII whatever the terminal's encoding; every
    record in the same compact style."""
    import numpy as np

    from tracedb.present.tables import json_text

    records = [{"n": np.int64(3), "x": np.float64(0.5), "bad": np.float32("nan"),
                "pixel_row": {"slow": np.int32(1), "fast": 2}},
               {"big": 2 ** 70, "also": np.float32("inf")},
               {"path": "pixel_\u00e9t\u00e9.log"}]
    text = json_text(records)
    assert json.loads(text) == [{"n": 3, "x": 0.5, "bad": None, "pixel_row": {"pixel": [1, 2]}},
                                {"big": 2 ** 70, "also": None},
                                {"path": "pixel_\u00e9t\u00e9.log"}]
    assert text.isascii() and ", " not in text and '": ' not in text
