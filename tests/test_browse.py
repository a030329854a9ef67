"""``tracedb browse``: the warehouse in Datasette, read-only, with its metadata; and the
seed case's first divergence found in a real browser (headless Chromium)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import tracedb
from tracedb import browse
from tracedb.store import queries

from .conftest import CORPUS, REPO

#: Where the browser test leaves its screenshot for review (git-ignored).
SCREENSHOT = REPO / "test-artifacts" / "browse-first-divergence.png"
SEED = CORPUS / "reports" / "2026-01-vectorization-parity" / "phase_c"
SEED_REF, SEED_CAND = "c@20251010T053711Z", "py@20251010T055346Z"


def need(module: str):
    """The module, or a skip with the reason; under CI a failure (scripts/test.sh
    installs the dev extra, which holds it)."""
    try:
        return __import__(module)
    except ImportError as exc:
        reason = f"{module} not installed ({exc}); pip install -e '.[dev]'"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browse tests: {reason}")
        pytest.skip(reason)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracedb", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def saved_warehouse(path: Path, trees: list[Path], ref=None, cand=None) -> int:
    """Load ``trees`` into the SQLite file ``path`` and save a comparison; its set id."""
    wh = tracedb.connect(f"sqlite:///{path.as_posix()}")
    try:
        wh.ingest(trees)
        return int(wh.diverge(ref=ref, cand=cand, save=True).attrs["set_id"])
    finally:
        wh.close()


def fetch(path: Path, *urls: str) -> list:
    """Datasette's answers (status, JSON or text) for ``urls``, served in-process with
    the metadata ``tracedb browse`` serves."""
    need("datasette")
    from datasette.app import Datasette

    ds = Datasette([str(path)], metadata=browse.metadata(path.stem))

    async def run():
        await ds.invoke_startup()
        out = []
        for url in urls:
            r = await ds.client.get(url)
            body = r.json() if ".json" in url else r.text
            out.append((r.status_code, body))
        return out

    return asyncio.run(run())


def digest(path: Path) -> str:
    """Every row of every table of the warehouse file, hashed."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        h = hashlib.sha256()
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                    "ORDER BY name"):
            h.update(name.encode())
            for row in sorted(map(repr, conn.execute(f'SELECT * FROM "{name}"'))):
                h.update(row.encode())
        return h.hexdigest()
    finally:
        conn.close()


# --------------------------------------------------------------------------- refusals


def test_browse_a_missing_warehouse_says_so_and_creates_nothing(tmp_path):
    proc = cli("--db", f"sqlite:///{(tmp_path / 'none.sqlite').as_posix()}", "browse",
               cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"tracedb: error: no warehouse at {tmp_path / 'none.sqlite'} "
        "(tracedb ingest creates one)"]
    assert list(tmp_path.iterdir()) == []


def test_browse_a_postgresql_warehouse_is_refused_in_one_line_without_its_password():
    url = "postgresql+psycopg://someone:hunter2secret@127.0.0.1:1/nothing"
    proc = cli("--db", url, "browse")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Datasette reads SQLite only" in lines[0]
    assert "hunter2secret" not in proc.stderr and "someone:***@" in lines[0]
    assert "Traceback" not in proc.stderr


def test_browse_on_a_port_in_use_says_so(tmp_path, tree):
    need("datasette")
    saved_warehouse(tmp_path / "wh.sqlite", [tree])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = cli("--db", f"sqlite:///{(tmp_path / 'wh.sqlite').as_posix()}", "browse",
                   "--port", str(port))
    assert proc.returncode == 2
    assert f"cannot serve on 127.0.0.1:{port}" in proc.stderr
    assert "choose another with --port" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- metadata


def test_tables_are_described_internal_ones_hidden(tmp_path, tree):
    path = tmp_path / "wh.sqlite"
    saved_warehouse(path, [tree])
    (status, db), (_, page) = fetch(path, "/wh.json", "/wh/run_overview")
    assert status == 200
    listed = {t["name"]: t for t in db["tables"]}
    for internal in ("alembic_version", "source_blob", "tap_flag", "tap_key"):
        assert listed[internal]["hidden"], internal
    for shown in ("run", "tap", "value", "tap_result", "quarantine", "comparison_set"):
        assert not listed[shown]["hidden"], shown
    # the table page shows its description and its columns' descriptions
    assert "Every loaded run (one side&#39;s trace of one pixel)" in page
    assert "the pixel, written SLOW,FAST" in page


def test_facets_on_side_stamp_pixel_and_status(tmp_path, tree):
    path = tmp_path / "wh.sqlite"
    saved_warehouse(path, [tree])
    (_, runs), (_, results) = fetch(path, "/wh/run_overview.json",
                                    "/wh/result_overview.json")
    facets = {name: {(v["value"], v["count"]) for v in f["results"]}
              for name, f in runs["facet_results"].items()}
    # two pixels, each traced by C at one stamp and by PyTorch at the other
    assert facets["side"] == {("c", 2), ("py", 2)}
    assert facets["stamp"] == {("20250101T000000Z", 2), ("20250101T010000Z", 2)}
    assert facets["pixel"] == {("1,2", 2), ("3,4", 2)}
    statuses = {v["value"] for v in results["facet_results"]["status"]["results"]}
    assert statuses and statuses <= {"diverged", "print_precision", "missing_ref",
                                     "missing_cand", "accepted"}
    assert {v["value"] for v in results["facet_results"]["pixel"]["results"]} == {
        "1,2", "3,4"}


def test_ids_show_the_label_of_what_they_point_at(tmp_path, tree):
    path = tmp_path / "wh.sqlite"
    saved_warehouse(path, [tree])
    [(_, runs)] = fetch(path, "/wh/run.json?_labels=on&_shape=array")
    files = {r["source_file_id"]["label"] for r in runs}
    assert any(f.endswith("c_traces/pixel_1_2.log") for f in files)
    assert all(r["bundle_id"]["label"].endswith(("20250101T000000Z", "20250101T010000Z"))
               for r in runs)


def test_every_named_query_is_a_canned_query_with_its_parameters(tmp_path, tree):
    path = tmp_path / "wh.sqlite"
    set_id = saved_warehouse(path, [tree])
    names = queries.names()
    answers = fetch(path, "/wh.json", *(f"/wh/{n}.json" for n in names),
                    f"/wh/divergence.json?set_id={set_id}&strict=&_shape=array")
    (_, db), blank, (_, rows) = answers[0], answers[1:-1], answers[-1]
    assert {q["name"] for q in db["queries"]} == set(names)
    params = {q["name"]: q["params"] for q in db["queries"]}
    # in the order the query's header documents them
    assert params["divergence"] == ["set_id", "strict"]
    assert params["runs"] == ["side", "stamp", "slow", "fast", "path", "run_id"]
    # each one runs with every field left blank (NULL, as an omitted --param)
    for name, (status, body) in zip(names, blank, strict=True):
        assert status == 200 and body.get("ok", True), (name, body)
    runs = dict(zip(names, blank, strict=True))["runs"][1]
    assert len(runs["rows"]) == 4  # a blank filter filters nothing
    # given the saved set, the first divergence of each pixel
    assert sorted((r["ref_slow"], r["ref_fast"]) for r in rows) == [(1, 2), (3, 4)]
    assert {r["first_tap"] for r in rows} == {"beam_center_m"}


def test_browsing_writes_nothing(tmp_path, tree):
    path = tmp_path / "wh.sqlite"
    saved_warehouse(path, [tree])
    before = digest(path)
    answers = fetch(path, "/wh.json?sql=DELETE+FROM+run", "/wh.json?sql=DROP+TABLE+tap",
                    "/wh/run_overview.json", "/wh/runs.json")
    assert [a[0] for a in answers[:2]] == [400, 400]
    assert all(not a[1]["ok"] for a in answers[:2])
    assert digest(path) == before


# --------------------------------------------------------------------------- the browser


def chromium() -> str:
    found = os.environ.get("TRACEDB_TEST_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if not found:
        reason = "no chromium on PATH (scripts/test.sh installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path, corpus):
    """`tracedb browse` on the seed case with its comparison saved: (base URL, set id)."""
    need("datasette")
    path = tmp_path / "seed.sqlite"
    set_id = saved_warehouse(path, [SEED], ref=SEED_REF, cand=SEED_CAND)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tracedb", "--db",
                             f"sqlite:///{path.as_posix()}", "browse", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/versions.json", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"tracedb browse did not start: {proc.stdout.read()}")
                time.sleep(0.2)
        yield base, set_id
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_seed_case_first_divergence_in_a_real_browser(served):
    need("playwright")
    from playwright.sync_api import expect, sync_playwright

    base, set_id = served
    exe = chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(base + "/")
            page.get_by_role("link", name="seed", exact=True).first.click()
            page.wait_for_url(f"{base}/seed")
            # the database page: what the warehouse holds, then tables and queries
            expect(page.get_by_text("A run is one side's trace of one pixel").first
                   ).to_be_visible()
            page.get_by_role("link", name="divergence", exact=True).click()
            page.fill("input[name=set_id]", str(set_id))
            page.fill("input[name=strict]", "0")
            page.locator("form.sql input[type=submit]").click()
            page.wait_for_selector("table.rows-and-columns tbody tr")
            headers = [h.strip() for h in
                       page.locator("table.rows-and-columns thead th").all_inner_texts()]
            cells = [[c.strip() for c in row.locator("td").all_inner_texts()]
                     for row in page.locator("table.rows-and-columns tbody tr").all()]
            # the screenshot shows the first divergence column of every pixel
            page.locator("td.col-first_tap").first.scroll_into_view_if_needed()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
    rows = [dict(zip(headers, c, strict=True)) for c in cells]
    assert sorted((r["ref_slow"], r["ref_fast"]) for r in rows) == [
        ("1792", "2048"), ("2048", "2048"), ("4095", "2048")]
    for r in rows:
        assert (r["first_tap"], r["first_ref_line"], r["first_cand_line"]) == (
            "beam_center_m", "10", "10")
        assert r["first_ref_value"] == "X:0.000102425 Y:0.000102425 pixel_mm:0.05"
        assert r["first_suspect"] == "ref"  # C, the reference, is off by x1e-3
    assert SCREENSHOT.stat().st_size > 0


def test_the_overview_views_read_the_same_on_both_backends(url, tree):
    """run_overview and result_overview (what the browser facets on) are plain views,
    there for psql and sqlite3 users too."""
    wh = tracedb.connect(url)
    try:
        wh.ingest([tree])
        set_id = int(wh.diverge(save=True).attrs["set_id"])
        runs = queries.records(*wh.sql_rows(
            "SELECT side, stamp, pixel, pixel_slow, taps FROM run_overview "
            "ORDER BY pixel, side"))
        results = queries.records(*wh.sql_rows(
            "SELECT pixel, ref, cand, tap, status, ref_line FROM result_overview "
            f"WHERE set_id = {set_id} AND status = 'diverged' ORDER BY pixel, ref_seq"))
    finally:
        wh.close()
    assert [(r["side"], r["pixel"], r["pixel_slow"]) for r in runs] == [
        ("c", "1,2", 1), ("py", "1,2", 1), ("c", "3,4", 3), ("py", "3,4", 3)]
    assert {r["stamp"] for r in runs} == {"20250101T000000Z", "20250101T010000Z"}
    first = results[0]
    assert (first["pixel"], first["ref"], first["cand"], first["tap"], first["ref_line"]) == (
        "1,2", "c@20250101T000000Z", "py@20250101T010000Z", "beam_center_m", 3)
    assert {r["pixel"] for r in results} == {"1,2", "3,4"}
