"""``diverge`` for CI jobs: JUnit XML (one testcase per pixel; a pixel passes only when
it matched) and GitHub Actions workflow annotations at the trace file and line.
Rendering only: both take ``diverge``'s JSON records (``compare.results``)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from .text import pixel_text, run_desc

SUITE = "tracedb diverge"


def case_name(rec: dict) -> str:
    """``pixel 1792,2048`` (``runs 12 vs 34`` for runs without a pixel)."""
    if rec["pixel"] is not None:
        return f"pixel {pixel_text(rec['pixel'])}"
    return f"runs {rec['ref_run']} vs {rec['cand_run']}"


def _place(rec: dict, role: str) -> str:
    f = rec["first"]
    return f"{role} line {f[f'{role}_line']}" if not f[f"{role}_pointer"] \
        else f"{role} {f[f'{role}_pointer']}"


def failure(rec: dict) -> str | None:
    """What a pixel that did not match says in one line (None for a match): the first
    divergence and its verdict, or why nothing was compared."""
    status = rec["status"]
    if status == "match":
        return None
    if status == "missing_cand":
        return f"no candidate run: only {rec['ref_side'] or 'unknown'} run {rec['ref_run']} " \
               "traced this pixel"
    if status == "missing_ref":
        return f"no reference run: only {rec['cand_side'] or 'unknown'} run " \
               f"{rec['cand_run']} traced this pixel"
    f = rec["first"]
    if f is None:
        return "nothing compared: the runs have no tap in common" if status != "diverged" \
            else f"{rec['diverged']} tap(s) diverged"
    tap = f["tap"] + (f"[{f['loop_key']}]" if f["loop_key"] else "")
    text = (f"first divergence {tap}: verdict {f['verdict'] or 'unknown'}"
            + (f" (inherited from {f['inherited_from']})" if f["inherited_from"] else "")
            + f"; ref {f['ref_value']} ({_place(rec, 'ref')}) vs cand {f['cand_value']} "
              f"({_place(rec, 'cand')})")
    if f["unit_hint"]:
        text += f"; {f['unit_hint']}"
    return text + f"; {rec['diverged']} tap(s) diverged"


def _details(rec: dict, tolerance: str) -> str:
    lines = [tolerance,
             "ref:  " + run_desc(rec["ref_side"], rec["ref_run"], rec["ref_stamp"],
                                 rec["ref_path"]),
             "cand: " + run_desc(rec["cand_side"], rec["cand_run"], rec["cand_stamp"],
                                 rec["cand_path"]),
             f"compared {rec['compared']}, matched {rec['matched']}, diverged {rec['diverged']},"
             f" print_precision {rec['print_precision']}, missing ref/cand "
             f"{rec['missing_ref']}/{rec['missing_cand']}"]
    for root in rec["roots"] or []:
        lines.append(f"root {root['tap']}: {root['verdict']} ({root['evidence']})"
                     + (f"; leads to {', '.join(root['consequences'])}"
                        if root["consequences"] else ""))
    return "\n".join(lines)


def junit(records: list[dict], tolerance: str) -> str:
    """JUnit XML: one testsuite, one testcase per compared pair. No pair at all is a
    failing testcase of its own (nothing compared is never a pass)."""
    failed = sum(r["status"] != "match" for r in records)
    suites = ET.Element("testsuites", name=SUITE)
    suite = ET.SubElement(suites, "testsuite", name=SUITE)
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="tolerance", value=tolerance)
    for rec in records:
        case = ET.SubElement(suite, "testcase", classname="tracedb.diverge",
                             name=case_name(rec))
        if rec["cand_path"] or rec["ref_path"]:
            case.set("file", rec["cand_path"] or rec["ref_path"])
        message = failure(rec)
        if message is not None:
            fail = ET.SubElement(case, "failure", message=message, type=rec["status"])
            fail.text = _details(rec, tolerance)
        else:
            ET.SubElement(case, "system-out").text = _details(rec, tolerance)
    if not records:
        case = ET.SubElement(suite, "testcase", classname="tracedb.diverge", name="no pairs")
        ET.SubElement(case, "failure", message="nothing compared: no run pairs",
                      type="nothing compared")
        failed = 1
    total = max(len(records), 1)
    for el in (suites, suite):
        el.set("tests", str(total))
        el.set("failures", str(failed))
        el.set("errors", "0")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(
        suites, encoding="unicode") + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workspace_path(path: str) -> str:
    """A trace file's path as GitHub resolves annotations: relative to the working
    directory (the checkout) when it is under it, else as stored."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if rel.startswith("..") else rel.replace(os.sep, "/")


def _annotation_place(rec: dict) -> tuple[str | None, int | None]:
    """Where a failing pixel points: the first divergence's line in the file of the
    side its unit hint puts off, else in the candidate's file; a missing run's pixel
    points at the run it has."""
    f = rec["first"]
    role = "cand"
    if rec["cand_run"] is None or (f and f["suspect_side"] and f["suspect_side"] ==
                                   rec["ref_side"] and f["suspect_side"] != rec["cand_side"]):
        role = "ref"
    path = rec[f"{role}_path"]
    line = f[f"{role}_line"] if f else None
    return (workspace_path(path) if path else None,
            int(line) if line else None)  # a JSON tap's line is 0: its pointer is named


def github(records: list[dict], tolerance: str) -> str:
    """GitHub Actions workflow commands: an ``::error`` per pixel that did not match,
    at its trace file and line, then a ``::notice`` that counts them."""
    out = []
    for rec in records:
        message = failure(rec)
        if message is None:
            continue
        path, line = _annotation_place(rec)
        props = [f"file={_escape_property(path)}"] if path else []
        if line:
            props.append(f"line={line}")
        title = f"{SUITE}: {case_name(rec)} {rec['status']}"
        props.append(f"title={_escape_property(title)}")
        out.append(f"::error {','.join(props)}::{_escape_data(message)}")
    failed = len(out)
    summary = (f"{len(records)} pair(s) compared, {len(records) - failed} matched, "
               f"{failed} did not ({tolerance})") if records else \
        "nothing compared: no run pairs"
    out.append(f"::{'notice' if records and not failed else 'error'} "
               f"title={_escape_property(SUITE)}::{_escape_data(summary)}")
    return "\n".join(out) + "\n"
