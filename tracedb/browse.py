"""``tracedb browse``: the warehouse in Datasette, read-only, with metadata that makes
it useful (the optional ``browse`` extra: ``pip install 'tracedb[browse]'``).

The metadata describes the tables and their columns, names the label column of the
tables others point at (so ids show names), hides the engine's internal tables,
turns on facets (side, stamp, pixel, status) and offers every user query of
``queries/`` as a canned query with its parameters. Datasette reads a SQLite file
only; its read connections are opened ``mode=ro`` and nothing here asks it to write.
"""

from __future__ import annotations

import html
import json
import re
import socket
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from .errors import TracedbError
from .store import queries
from .store.engine import mask_secrets, resource_dir

TITLE = "tracedb warehouse"
ABOUT = ("C vs PyTorch parity traces, loaded by tracedb. A run is one side's trace of "
         "one pixel; a saved comparison (tracedb diverge --save) pairs runs and keeps "
         "its verdicts in tap_result. The canned queries are tracedb's named queries "
         "(tracedb query NAME); a blank parameter means NULL: no filter, or the "
         "query's default.")

#: The engine's own tables and views: scratch, content blobs, pairing-key ids and the
#: steps' views. Hidden from the lists (still reachable by URL and SQL).
HIDDEN = ("alembic_version", "sqlite_stat1", "source_blob", "image", "tap_flag", "tap_key",
          "tap_pointer", "mismatch_key", "mismatch_tap_key", "mismatch_value_key",
          "tap_status_flagged")

#: The column Datasette shows in place of an id that points at the table.
LABELS = {"bundle": "path", "source_file": "path", "run": "stamp",
          "comparison_set": "description", "command_log": "command",
          "image_file": "path", "metric_file": "path", "image_comparison": "case_name"}

FACETS = {"run_overview": ["side", "stamp", "pixel"],
          "result_overview": ["status", "pixel", "tap"],
          "run": ["side", "stamp"],
          "tap_result": ["status", "set_id"],
          "image_comparison": ["status", "case_name"],
          "image_file": ["side", "case_name"],
          "quarantine": ["reason"],
          "bundle": ["initiative", "phase"],
          "tap_edge": ["graph"]}

_PIXEL = "the pixel, written SLOW,FAST"
_SEQ = "the tap's order in its run's trace"

#: table -> (description, {column: description}).
TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "run_overview": ("Every loaded run (one side's trace of one pixel) with its pixel, "
                     "trace file and bundle: facet by side, stamp and pixel.", {
        "run_id": "run.id", "side": "c, py or unknown", "stamp": "the run's stamp "
        "(its bundle path's, else its metadata's timestamp_utc)", "pixel": _PIXEL,
        "path": "the trace file", "file_version": "the file's version (a file loaded "
        "again with new content is a new version)", "first_line": "the run's first line "
        "in its file", "last_line": "its last line", "taps": "how many taps it holds"}),
    "result_overview": ("The verdicts of saved comparisons (tracedb diverge --save), one "
                        "row per tap that did not match (every tap for a 'detail = all' "
                        "set), with the pixel and the two runs: facet by status, pixel "
                        "and tap.", {
        "set_id": "comparison_set.id", "comparison_id": "comparison.id (one run pair)",
        "pixel": _PIXEL, "ref": "the reference run, side@stamp", "cand": "the candidate "
        "run, side@stamp", "tap": "the pairing key's name (after aliases)",
        "ref_seq": f"{_SEQ} (reference)", "ref_line": "line in the reference trace "
        "(0: a JSON trace)", "cand_line": "line in the candidate trace",
        "status": "match, print_precision, diverged, accepted, missing_ref or "
        "missing_cand", "max_rel_delta": "the largest relative difference of its "
        "components", "suspect": "the side a unit factor puts off: ref or cand"}),
    "bundle": ("A time-stamped bundle directory: its initiative, phase, stamp, env "
               "metadata, commands and notes.", {
        "path": "the bundle's directory, as given to ingest", "stamp": "the stamp in "
        "its name", "env_json": "merged env metadata", "commands_text": "its "
        "commands.txt", "notes_text": "its Markdown notes"}),
    "source_file": ("Every file loaded, one row per version, with what became of its "
                    "lines.", {
        "path": "the file as given to ingest", "version": "1, 2, ... as its content "
        "changed", "trace_lines": "TRACE lines found", "parsed_lines": "loaded as taps",
        "quarantined_lines": "kept aside in quarantine, with the reason"}),
    "run": ("One side's trace of one pixel (a file holds one run per pixel marker).", {
        "side": "c, py or unknown", "stamp": "the bundle path's stamp, else the "
        "metadata's", "pixel_id": "pixel.id", "tap_count": "how many taps",
        "metadata_json": "the run's metadata file"}),
    "pixel": ("The pixels some run traces (slow, fast).", {}),
    "tap": ("One traced quantity of a run, in trace order, as written.", {
        "seq": _SEQ, "line_no": "line in the file (0: a JSON trace)", "channel": "the "
        "TRACE_ prefix without the side (PHI for TRACE_C_PHI)", "name": "as written",
        "loop_key": "a loop index such as phi_tic=3", "value_text": "the value as "
        "written", "key_name": "the pairing name (after tap_alias)"}),
    "value": ("The components of each tap (a vector has several), as numbers and text.", {
        "idx": "component position", "label": "X, Y, ryy, ... when written",
        "kind": "num, nan, inf, -inf or text", "digits": "significant digits written",
        "half_ulp": "half a unit in the last written digit"}),
    "quarantine": ("TRACE lines (and JSON items) that did not load, with file, line and "
                   "reason: nothing is dropped silently.", {
        "line_no": "line in the file (0: a JSON item, see json_pointer)"}),
    "comparison_set": ("A saved comparison request (tracedb diverge --save, a saved "
                       "report), with its tolerance.", {
        "detail": "mismatch: tap_result holds the taps that did not match; all: every "
        "tap"}),
    "comparison": ("One run pair of a comparison set (a pixel).", {
        "ref_run_id": "the reference run (NULL: no reference run)",
        "cand_run_id": "the candidate run (NULL: no candidate run)"}),
    "tap_result": ("The verdict per paired tap of each saved comparison; "
                   "result_overview adds the pixel and the runs.", {
        "status": "match, print_precision, diverged, accepted, missing_ref or "
        "missing_cand"}),
    "tap_status": ("The full tap rules over a set's pairs (computed on read; filter by "
                   "set_id).", {}),
    "tap_pair": ("Reference and candidate taps paired by channel, name, loop key and "
                 "occurrence (computed on read; filter by set_id).", {}),
    "component_delta": ("Each paired component with its differences and status "
                        "(computed on read; filter by set_id).", {}),
    "tap_alias": ("Differently named taps that pair (name -> canonical).", {}),
    "accepted_divergence": ("Divergences accepted on purpose, with the reason; they never "
                            "count as the first divergence.", {}),
    "factor_model": ("Factor models: target = product of factor^exponent.", {}),
    "tap_edge": ("The dependency graph of taps: TARGET is computed from SOURCE, with what "
                 "the edge rests on.", {}),
    "unit": ("Units and their factor to SI.", {}),
    "unit_suffix": ("Tap-name suffixes that give a tap its unit.", {}),
    "command_log": ("Every tracedb command that wrote to the warehouse (secrets masked).",
                    {}),
    "image_comparison": ("Whole-image comparisons: C image against PyTorch image.", {}),
    "image_file": ("Loaded image files (.npy, .bin).", {}),
    "image_worst": ("The worst pixels of each image comparison.", {}),
    "metric_file": ("Numeric results files (*_metrics.json, ...).", {}),
    "metric": ("The metrics those files record, one row each.", {}),
}

#: A parameter as SQLAlchemy's text() finds it.
_PARAM = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


def sqlite_file(url: str) -> Path:
    """The SQLite file behind ``url``; an error for any other warehouse, or a file
    that does not exist (browsing never creates one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise TracedbError(f"tracedb browse serves a SQLite warehouse (Datasette reads "
                           f"SQLite only), not {mask_secrets(url)}")
    if not parsed.database or parsed.database == ":memory:":
        raise TracedbError(f"tracedb browse needs a warehouse file, not {mask_secrets(url)}")
    path = Path(parsed.database)
    if not path.is_file():
        raise TracedbError(f"no warehouse at {path} (tracedb ingest creates one)")
    return path.resolve()


def _doc(name: str) -> tuple[str, list[str]]:
    """A query's header comment as HTML (its prose, then its parameters one a line)
    and its parameters, in the order the header names them."""
    path = resource_dir("queries") / f"{name}.sql"
    head = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("--"):
            break
        head.append(line.lstrip()[2:].strip())
    split = next((i for i, h in enumerate(head) if h.startswith("Parameters")), len(head))
    prose = html.escape(" ".join(h for h in head[:split] if h))
    params_doc = "<br>".join(html.escape(h) for h in head[split:] if h)
    doc = f"{prose}<br>{params_doc}" if params_doc else prose
    found = list(dict.fromkeys(_PARAM.findall(queries.sql_text(name, "sqlite"))))
    text = " ".join(head[split:])

    def place(param: str) -> int:
        m = re.search(rf"(?<!\w):?{param}\b", text)
        return m.start() if m else len(text)

    return doc, sorted(found, key=place)


def canned_queries() -> dict[str, dict]:
    """Every user query of ``queries/`` as a Datasette canned query. A form field left
    blank is NULL (``NULLIF(:p, '')``), as an omitted ``--param`` is."""
    out = {}
    for name in queries.names():
        doc, params = _doc(name)
        sql = _PARAM.sub(lambda m: f"NULLIF(:{m[1]}, '')", queries.sql_text(name, "sqlite"))
        out[name] = {"sql": sql.strip(), "title": name, "description_html": doc,
                     "params": params, "hide_sql": True}
    return out


def metadata(database: str) -> dict:
    """Datasette's metadata for a warehouse served under the name ``database`` (the
    file's stem)."""
    tables: dict[str, dict] = {}
    for name, (description, columns) in TABLES.items():
        tables[name] = {"description": description}
        if columns:
            tables[name]["columns"] = columns
    for name, column in LABELS.items():
        tables.setdefault(name, {})["label_column"] = column
    for name, facets in FACETS.items():
        tables.setdefault(name, {})["facets"] = facets
    for name in HIDDEN:
        tables.setdefault(name, {})["hidden"] = True
    return {"title": TITLE, "description": ABOUT,
            "databases": {database: {"description": ABOUT, "tables": tables,
                                     "queries": canned_queries()}}}


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise TracedbError(f"cannot serve on {host}:{port} ({exc.strerror}); "
                               "choose another with --port") from None


def serve(db, *, host: str = "127.0.0.1", port: int = 8001,
          open_browser: bool = False) -> None:
    """Serve the warehouse ``db`` (a ``store.engine.Handle``) in Datasette until
    interrupted."""
    path = sqlite_file(db.url)
    try:
        from datasette.cli import cli
    except ImportError:
        raise TracedbError("tracedb browse needs Datasette: pip install 'tracedb[browse]'"
                           ) from None
    _check_port(host, port)
    with tempfile.TemporaryDirectory(prefix="tracedb-browse-") as tmp:
        meta = Path(tmp) / "metadata.json"
        meta.write_text(json.dumps(metadata(path.stem), indent=1), encoding="utf-8")
        args = ["serve", str(path), "--metadata", str(meta), "--host", host,
                "--port", str(port), "--setting", "sql_time_limit_ms", "5000"]
        cli.main([*args, *(["--open"] if open_browser else [])],
                 prog_name="tracedb browse", standalone_mode=False)
