"""Time `tracedb report` of many pixels against the same report without plots.

    python -m benchmarks.report --pixels 100            # SQLite, 5 repeats
    python -m benchmarks.report --pixels 100 --db postgresql+psycopg://USER@HOST/DB

Generates (benchmarks/generate.py, seed 1) a synthetic campaign of ``--pixels``
pixels, ingests it into a new SQLite warehouse in the work directory (or into the
warehouse ``--db`` names), then runs, ``--repeats`` times and alternately so that
the machine's other load falls on both alike, the whole command as a user runs it
(a new process, into a new directory):

- ``tracedb report OUT``: the report with its plots;
- ``tracedb report OUT --no-plots``: the same report without them (the baseline:
  process start, queries, Markdown and diff files).

It prints the median wall time of each, the plots' share of the report and the
ratio of the two; only those measured in the same run mean anything on a shared
machine. ``--json`` prints the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from .generate import write_campaign
from .run import TRACEDB


def run(cmd: list[str]) -> float:
    """Wall seconds of one command, which must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return wall


def measure(url: str, work: Path, repeats: int) -> dict:
    """Median wall seconds of the report with and without plots, alternately."""
    times: dict[str, list[float]] = {"report": [], "no_plots": []}
    plots = 0
    for i in range(repeats):
        for name, extra in (("report", []), ("no_plots", ["--no-plots"])):
            out = work / f"{name}_{i}"
            shutil.rmtree(out, ignore_errors=True)
            times[name].append(run([*TRACEDB, "--db", url, "report", str(out), *extra]))
            if name == "report":
                plots = sum(1 for _ in (out / "plots").glob("*.png"))
    report, base = (statistics.median(times[k]) for k in ("report", "no_plots"))
    return {"report_s": report, "no_plots_s": base, "plots_s": report - base,
            "plots_share": (report - base) / report, "report_vs_no_plots": report / base,
            "plots": plots, "repeats": repeats, "report_all_s": times["report"],
            "no_plots_all_s": times["no_plots"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pixels", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--db", help="URL of an empty warehouse (the report covers every pixel "
                    "in it; default: a new SQLite file in --work)")
    ap.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracedb-report-bench-") as tmp:
        work = a.work or Path(tmp)
        campaign = work / "campaign"
        shutil.rmtree(campaign, ignore_errors=True)
        write_campaign(campaign, a.pixels, stamps=1, seed=1)
        url = a.db or f"sqlite:///{(work / 'warehouse.sqlite').resolve()}"
        run([*TRACEDB, "--db", url, "ingest", str(campaign)])
        r = {"pixels": a.pixels, **measure(url, work, a.repeats)}
    if a.json:
        print(json.dumps(r, indent=1))
        return
    print(f"tracedb report, {r['pixels']} pixels, median of {r['repeats']} (alternating):\n"
          f"  report with {r['plots']} plots  {r['report_s']:6.2f} s\n"
          f"  report --no-plots       {r['no_plots_s']:6.2f} s\n"
          f"  plots                   {r['plots_s']:6.2f} s  "
          f"({100 * r['plots_share']:.0f}% of the report; report / no-plots "
          f"{r['report_vs_no_plots']:.2f})")


if __name__ == "__main__":
    main()
