"""Interactive latency: how long `tracedb diverge` takes, wall, from the shell.

    python -m benchmarks.latency                  # the corpus warehouse, SQLite
    python -m benchmarks.latency --repeat 21 --json

Loads ../shared/corpus (the real nanoBragg traces) into a fresh SQLite warehouse in
a temporary directory, then runs each command below as a new process ``--repeat``
times (after one warm-up run that fills the page cache) and prints the median,
fastest and slowest wall time. The seed case is phase_c: the C traces of
20251010T053711Z against the PyTorch traces of 20251010T055346Z; its budget is 0.6 s
(issue 16). ``tracedb --help`` is the floor: the interpreter and the imports, no
warehouse. The machine is shared; the median of many runs is what to compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "nanoBragg"
SEED = ["diverge", "--ref", "c@20251010T053711Z", "--cand", "py@20251010T055346Z"]
BUDGET = 0.6
COMMANDS = {
    "diverge, seed case (phase_c)": SEED,
    "diverge, default pairing": ["diverge"],
    "tracedb --help": ["--help"],
}


def wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        raise SystemExit(f"corpus not found at {args.corpus}")
    tracedb = [sys.executable, "-m", "tracedb"]
    with tempfile.TemporaryDirectory(prefix="tracedb-latency-") as work:
        db = ["--db", f"sqlite:///{Path(work, 'corpus.sqlite').as_posix()}"]
        subprocess.run(tracedb + db + ["ingest", str(args.corpus), "--format", "json"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        figures = {}
        for name, command in COMMANDS.items():
            argv = tracedb + ([] if command == ["--help"] else db) + command
            wall(argv)  # warm-up
            times = sorted(wall(argv) for _ in range(args.repeat))
            figures[name] = {"median_s": round(statistics.median(times), 3),
                             "min_s": round(times[0], 3), "max_s": round(times[-1], 3),
                             "runs": args.repeat}
    seed = figures["diverge, seed case (phase_c)"]["median_s"]
    if args.json:
        print(json.dumps({"budget_s": BUDGET, "figures": figures}, indent=2))
        return
    print(f"tracedb latency, corpus warehouse (SQLite), {args.repeat} runs each")
    for name, f in figures.items():
        print(f"  {name:32} median {f['median_s']:.3f} s  "
              f"(fastest {f['min_s']:.3f}, slowest {f['max_s']:.3f})")
    print(f"  seed case within {BUDGET} s: {'yes' if seed < BUDGET else 'NO'}")


if __name__ == "__main__":
    main()
