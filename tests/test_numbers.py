"""Every finite double, subnormals included, and nan, inf and -0 get the same verdict
on both backends: PostgreSQL raises on float overflow and underflow where SQLite
rounds, so the comparison must never compute a value that does not fit."""

from __future__ import annotations

import json

import pytest

from .conftest import write
from .test_cli import tracedb

#: (reference, candidate, verdict with rtol=1e-12, atol=0), worked out by hand
PAIRS = [
    ("1", "6.9e-310", "diverged"),  # an uninitialised double on one side
    ("1e-320", "1e-320", "match"),  # identical subnormals: rtol * 1e-320 underflows
    ("4.9e-324", "4.9e-324", "match"),  # the smallest subnormal
    ("4.9e-324", "0", "diverged"),
    ("4.9e-324", "-4.9e-324", "diverged"),
    ("1e-200", "1e200", "diverged"),  # ratio 1e-400 underflows
    ("1e200", "1e-200", "diverged"),  # ratio 1e400 overflows
    ("1e308", "-1e308", "diverged"),  # the difference overflows
    ("1.7976931348623157e308", "1.7976931348623157e308", "match"),
    ("-1.7976931348623157e308", "1.7976931348623157e308", "diverged"),
    ("2.2250738585072014e-308", "2.225073858507201e-308", "match"),  # 1 ulp: within rtol
    ("2.2250738585072014e-308", "1.1125369292536007e-308", "diverged"),  # vs a subnormal
    ("1e-310", "2e-310", "diverged"),
    ("0", "-0", "match"),
    ("0", "1e-320", "diverged"),
    ("nan", "nan", "match"),
    ("inf", "inf", "match"),
    ("inf", "-inf", "diverged"),
    ("-inf", "1e308", "diverged"),
    ("1e300", "1.0000000000000001e300", "match"),  # the same double
    ("0.100000000000000", "0.100000000000200", "diverged"),  # 2e-12 relative
    ("123.456", "123.456", "match"),
]


def verdicts(url, tmp_path, rtol="1e-12", atol="0") -> dict[str, dict]:
    ref = "".join(f"TRACE_C: t{i} {a}\n" for i, (a, _b, _v) in enumerate(PAIRS))
    cand = "".join(f"TRACE_PY: t{i} {b}\n" for i, (_a, b, _v) in enumerate(PAIRS))
    write(tmp_path / "r" / "20260101T000000Z" / "c_traces" / "pixel_1_2.log", ref)
    write(tmp_path / "r" / "20260101T000000Z" / "py_traces" / "pixel_1_2.log", cand)
    assert tracedb("ingest", str(tmp_path / "r"), db=url).returncode == 0
    proc = tracedb("taps", "1", "--diff", "2", "--rtol", rtol, "--atol", atol,
                   "--format", "json", db=url)
    assert proc.returncode == 0, proc.stderr
    return {r["tap"]: r for r in json.loads(proc.stdout)}


def test_each_pair_gets_its_verdict(url, tmp_path):
    got = verdicts(url, tmp_path)
    wrong = [(a, b, want, got[f"t{i}"]["status"]) for i, (a, b, want) in enumerate(PAIRS)
             if got[f"t{i}"]["status"] != want]
    assert not wrong


def test_diverge_over_extreme_values_answers(url, tmp_path):
    verdicts(url, tmp_path)
    proc = tracedb("diverge", "--format", "json", db=url)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    want = sum(1 for _a, _b, v in PAIRS if v == "diverged")
    assert (row["compared"], row["diverged"]) == (len(PAIRS), want)
    assert row["first"]["tap"] == "t0"


@pytest.mark.parametrize("rtol, atol", [("1e-300", "0"), ("0", "1e-320"), ("1e300", "0")])
def test_extreme_tolerances_answer(url, tmp_path, rtol, atol):
    got = verdicts(url, tmp_path, rtol, atol)

    def status(a, b):
        return got[f"t{[p[:2] for p in PAIRS].index((a, b))}"]["status"]

    assert status("1e-320", "1e-320") == "match"  # identical values match under any tolerance
    assert status("inf", "inf") == "match"
    assert status("inf", "-inf") == "diverged"
    assert status("1", "6.9e-310") == ("match" if rtol == "1e300" else "diverged")
