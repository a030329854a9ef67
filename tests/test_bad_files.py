"""What a walk meets besides files (issue 13), as a user sees it on both backends:
links, loops and FIFOs are named (and a FIFO is never waited on), and links that leave
the tree are followed or not as --follow-links/--no-follow-links says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import C_TRACE, PY_TRACE, write

STAMP = "20250101T000000Z"
C_TAPS = sum(1 for ln in C_TRACE.splitlines() if ln.startswith("TRACE_C"))
PY_TAPS = sum(1 for ln in PY_TRACE.splitlines() if ln.startswith("TRACE_PY"))
HUGE = "99999999999999999999"  # above 2**63 as well as above what the pixel columns hold


def cli(url, *args, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "TRACEDB_URL"}
    return subprocess.run([sys.executable, "-m", "tracedb", "--db", url, *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def named_once(proc, *fragments) -> str:
    """The one line of stderr that holds every fragment (and no traceback anywhere)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    hits = [ln for ln in proc.stderr.splitlines() if all(f in ln for f in fragments)]
    assert len(hits) == 1, (fragments, proc.stderr)
    return hits[0]


def runs_by_path(url) -> dict[str, list[tuple]]:
    """Every loaded run as `tracedb runs` lists it: path -> [(side, pixel, taps)]."""
    proc = cli(url, "runs", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out: dict[str, list[tuple]] = {}
    for r in sorted(json.loads(proc.stdout), key=lambda r: (r["path"], r["segment"])):
        out.setdefault(r["path"], []).append((r["side"], r["pixel"], r["taps"]))
    return out


def good_bundle(bundle):
    write(bundle / "c_traces" / "pixel_1_2.log", C_TRACE)
    write(bundle / "py_traces" / "pixel_1_2.log", PY_TRACE)


# --------------------------------------------------------------------------- walking

@pytest.mark.skipif(os.name != "posix", reason="symbolic links and FIFOs")
@pytest.mark.parametrize("follow", [True, False])
def test_links_loops_and_fifos_in_a_tree_are_named(url, tmp_path, follow):
    bundle = tmp_path / "reports" / "i" / "p" / STAMP
    good_bundle(bundle)
    traces = bundle / "c_traces"
    write(tmp_path / "elsewhere" / "20250102T000000Z" / "c_traces" / "pixel_9_9.log",
          C_TRACE)
    write(tmp_path / "loose" / "pixel_8_8.log", C_TRACE)
    (traces / "gone.log").symlink_to(traces / "missing.log")
    (traces / "loop.log").symlink_to(traces / "loop.log")
    (traces / "up").symlink_to(bundle, target_is_directory=True)
    (traces / "alias.log").symlink_to(traces / "pixel_1_2.log")
    (traces / "pixel_8_8.log").symlink_to(tmp_path / "loose" / "pixel_8_8.log")
    (bundle.parent / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    os.mkfifo(traces / "pipe.log")
    proc = cli(url, "ingest", "reports", *([] if follow else ["--no-follow-links"]),
               cwd=tmp_path)  # a FIFO opened for reading would block: the timeout fails
    assert proc.returncode == 0, proc.stderr
    at = f"reports/i/p/{STAMP}/c_traces"
    named_once(proc, f"warning: {at}/gone.log: dangling symbolic link (to ")
    named_once(proc, f"warning: {at}/loop.log: symbolic link loop; skipped")
    named_once(proc, f"{at}/pipe.log: a FIFO (named pipe), not a file or folder; skipped")
    named_once(proc, f"{at}/up: symbolic link to ", "a folder above it (a loop)")
    named_once(proc, f"{at}/alias.log: symbolic link to ", "walks anyway; not followed")
    runs = runs_by_path(url)
    loose = f"{at}/pixel_8_8.log"
    linked = "reports/i/p/linked/20250102T000000Z/c_traces/pixel_9_9.log"
    assert runs.pop(f"{at}/pixel_1_2.log") == [("c", [1, 2], C_TAPS)]
    assert runs.pop(f"reports/i/p/{STAMP}/py_traces/pixel_1_2.log") == [("py", [1, 2],
                                                                         PY_TAPS)]
    if follow:
        assert runs == {loose: [("c", [8, 8], C_TAPS)], linked: [("c", [9, 9], C_TAPS)]}
        assert "out of the tree" not in proc.stderr
    else:
        assert runs == {}
        for where in (loose, "reports/i/p/linked"):
            named_once(proc, f"{where}: symbolic link out of the tree (to ",
                       "not followed (--follow-links follows it)")


@pytest.mark.skipif(os.name != "posix", reason="symbolic links and FIFOs")
def test_a_named_path_that_is_no_file_or_folder_says_what_it_is(url, tmp_path):
    (tmp_path / "gone").symlink_to(tmp_path / "missing")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    os.mkfifo(tmp_path / "pipe")
    for name, what in (("gone", f"dangling symbolic link (to {tmp_path / 'missing'})"),
                       ("loop", "symbolic link loop; nothing to load"),
                       ("pipe", "a FIFO (named pipe), not a file or folder; nothing read")):
        proc = cli(url, "ingest", name, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        named_once(proc, f"tracedb: error: {name}: {what}")
