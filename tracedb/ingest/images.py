"""Load the evidence of a bundle that is not TRACE lines: whole images and numeric
results files.

- Images (``discover.evidence_kind``): ``<case>_c.npy`` / ``<case>_py.npy``,
  ``c_image.npy`` / ``py_image.npy``, ``*_golden.npy`` (C) / ``*_pytorch.npy``, and raw
  float32 ``.bin`` floatimages sized by ``-detpixels`` in the bundle's commands or the
  recorded args beside them. Each image is stored once (``image``, keyed by the sha256
  of its file, compressed) and each place it was found in ``image_file``; a C and a
  PyTorch image of one case in one folder are compared (``imagemath.compare``) into
  ``image_comparison`` and ``image_worst``. C is the reference, PyTorch the candidate.
- Numeric results files (``*_metrics.json``, ``metrics*.json``, ``summary.json``):
  ``metric_file`` (the text as read) and one ``metric`` row per leaf. The one named
  ``<case>_metrics.json`` beside a pair (or ``metrics.json`` / ``summary.json`` beside
  ``c_image.npy`` / ``py_image.npy``) is that comparison's recorded metrics.

One transaction per bundle; what is already loaded (same path, same sha256) is not
loaded again, and a comparison is made once per pair of image files.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine

from ..store.engine import backend, utcnow
from . import imagemath
from .discover import (
    IMAGE_SIDE,
    BundlePlan,
    Note,
    _initiative_phase,
    bundle_dir,
    evidence_kind,
    read_regular,
)
from .files import BLOB_COMPRESSION, bundle_metadata, compress_blob
from .names import STAMP, normalize_stamp

#: The tolerance an ingest counts ``outside_tolerance`` with: ``diverge``'s defaults.
RTOL, ATOL = 1e-12, 0.0

_C_TOKENS = {"c", "golden"}
_PY_TOKENS = {"py", "pytorch", "torch"}
_GENERIC = {"", "image", "img", "floatimage", "float_image"}
#: Units a metric's name implies beyond the unit table's suffixes.
_METRIC_UNITS = (("_ms", "ms"), ("_seconds", "s"), ("_sec", "s"), ("_percent", "%"))


def image_name(path: Path) -> tuple[str | None, str]:
    """(side, case) of an image file: ``pixel-0.4mm_c.npy`` -> ('c', 'pixel-0.4mm'),
    ``py_image.npy`` -> ('py', the folder's name). Side None when the name names none
    or both."""
    stem = path.stem
    found = list(IMAGE_SIDE.finditer(stem))
    sides = {"c" if m.group(1).lower() in _C_TOKENS else "py" for m in found}
    if len(sides) != 1:
        return None, stem
    m = found[-1]
    case = (stem[:m.start()].rstrip("_-.") + "_" + stem[m.end():].lstrip("_-.")).strip("_")
    if case.lower() in _GENERIC:
        case = path.parent.name
    return sides.pop(), case


def metrics_case(path: Path) -> str | None:
    """``pixel-0.4mm_metrics.json`` -> 'pixel-0.4mm'; None for ``metrics.json`` etc."""
    m = re.match(r"^(.+?)[_-]metrics\.json$", path.name, re.I)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- metrics

def flatten(data, units) -> list[tuple[str, str, str, float | None, str | None, str | None]]:
    """(name, pointer, kind, num, text, unit) for each leaf of a JSON document, in file
    order. A list of numbers gives one row per item (``roi[2]``); a list holding no
    number and no object (``args``) one row of kind 'list' with its JSON text."""
    out: list = []

    def walk(value, name: str, pointer: str) -> None:
        if isinstance(value, dict):
            if not value:
                out.append((name or "(root)", pointer or "/", "object", None, "{}", None))
            for k, v in value.items():
                key = str(k)
                walk(v, f"{name}.{key}" if name else key,
                     f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}")
            return
        if isinstance(value, list):
            if all(not isinstance(v, dict | list) and not _is_number(v) for v in value):
                out.append((name or "(root)", pointer or "/", "list", None,
                            json.dumps(value), None))
                return
            for i, v in enumerate(value):
                walk(v, f"{name}[{i}]", f"{pointer}/{i}")
            return
        name = name or "(root)"  # a document that is one value
        leaf = name.rsplit(".", 1)[-1].split("[", 1)[0]
        unit = units(leaf)
        if isinstance(value, bool):
            out.append((name, pointer, "bool", float(value), json.dumps(value), None))
        elif _is_number(value):
            try:
                num: float | None = float(value)
            except OverflowError:  # an integer past what a double holds
                num = None
            if num is not None and math.isfinite(num):
                out.append((name, pointer, "number", num, json.dumps(value), unit))
            else:  # NaN, Infinity, a huge integer: kept as written
                out.append((name, pointer, "text", None, json.dumps(value), unit))
        elif value is None:
            out.append((name, pointer, "null", None, None, None))
        else:
            out.append((name, pointer, "text", None, str(value), unit))

    walk(data, "", "")
    return out


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _metric_units(rules):
    """``unit(name)``: the unit table's suffixes (as taps have), then ``_ms`` & co."""
    from .runs import unit_lookup

    unit_of = unit_lookup(rules)

    def unit(name: str) -> str | None:
        return unit_of(name) or next((u for s, u in _METRIC_UNITS if name.endswith(s)), None)

    return unit


# --------------------------------------------------------------------------- loading

@dataclass
class EvidenceStats:
    evidence_bundles: int = 0  # bundles made for images or metrics (no trace file)
    image_files: int = 0  # new image files recorded
    images: int = 0  # new images stored (content not seen before)
    image_comparisons: int = 0
    metric_files: int = 0
    metrics: int = 0
    unchanged_evidence_files: int = 0
    evidence_errors: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Found:
    directory: Path
    display: str
    images: list[tuple[Path, str]] = field(default_factory=list)
    metrics: list[tuple[Path, str]] = field(default_factory=list)


def load_evidence(engine: Engine, tables: dict[str, Table],
                  evidence: list[tuple[Path, str, str]], command_id: int | None,
                  notes: list[Note], units_rules) -> dict:
    """Load the image and metrics files ``discover`` found (see the module's doc);
    the counts, as ``ingest --format json`` gives them."""
    stats = EvidenceStats()
    by_bundle: dict[Path, _Found] = {}
    for path, display, bundle_display in evidence:
        b = bundle_dir(path.parent)
        found = by_bundle.setdefault(b, _Found(b, bundle_display))
        (found.images if evidence_kind(path.name) == "image" else found.metrics).append(
            (path, display))
    units = _metric_units(units_rules)
    store = backend(engine)
    for b in sorted(by_bundle):
        found = by_bundle[b]
        bundle_notes: list[Note] = []
        part = EvidenceStats()
        try:
            with store.write_connection(engine) as conn, conn.begin():
                _Bundle(conn, tables, found, command_id, bundle_notes, units, part).load()
        except Exception as exc:  # a failing bundle rolls back alone
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            notes.append(Note(found.display, "images and metrics not loaded, warehouse "
                              f"unchanged: {type(exc).__name__}: {first[0] if first else ''}",
                              level="error"))
            stats.evidence_errors += 1
            continue
        notes.extend(bundle_notes)
        for k, v in part.__dict__.items():
            setattr(stats, k, getattr(stats, k) + v)
    return stats.as_dict()


class _Bundle:
    def __init__(self, conn, tables, found: _Found, command_id, notes, units, stats):
        self.conn, self.t, self.found = conn, tables, found
        self.command_id, self.notes, self.units, self.stats = command_id, notes, units, stats
        self.now = utcnow()
        self._id: int | None = None

    # the bundle row: the trace loader's when it made one, else made here
    def bundle_id(self) -> int:
        if self._id is None:
            t = self.t["bundle"]
            d = self.found.directory
            row = self.conn.execute(select(t.c.id).where(t.c.directory == str(d))).first()
            if row is not None:
                self._id = row[0]
            else:
                initiative, phase = _initiative_phase(d)
                plan = BundlePlan(directory=d, display=self.found.display,
                                  stamp=(STAMP.findall(d.name) or [None])[-1],
                                  initiative=initiative, phase=phase)
                if (d / "commands.txt").is_file():
                    plan.commands_files.append(d / "commands.txt")
                for name in ("env.json", "trace_env.json"):
                    if (d / name).is_file():
                        plan.env_files.append(d / name)
                if (d / "env").is_dir():
                    plan.env_files.extend(sorted(e for e in (d / "env").iterdir()
                                                 if e.is_file()))
                plan.note_files.extend(sorted(d.glob("*.md")))
                meta = bundle_metadata(plan, self.notes)
                self._id = self.conn.execute(t.insert().returning(t.c.id), dict(
                    directory=str(d), path=plan.display, initiative=initiative, phase=phase,
                    stamp=plan.stamp, created_at=self.now, updated_at=self.now,
                    **meta)).scalar_one()
                self.stats.evidence_bundles += 1
        return self._id

    def stamp(self) -> str | None:
        t = self.t["bundle"]
        return self.conn.execute(select(t.c.stamp).where(t.c.id == self.bundle_id())).scalar()

    def load(self) -> None:
        backend(self.conn).Writer(self.conn).lock_bundle(str(self.found.directory))
        metric_ids: dict[str, int] = {}  # abs path -> newest metric_file id
        args_text: dict[Path, list[str]] = defaultdict(list)  # folder -> recorded args
        for path, display in sorted(self.found.metrics):
            fid, args = self.metric_file(path, display)
            if fid is not None:
                metric_ids[str(path)] = fid
            if args:
                args_text[path.parent].append(args)
        # grouped by name first, then read one case at a time: a bundle of many large
        # images holds one case's images in memory, not all of them
        groups: dict[tuple[Path, str], list] = defaultdict(list)
        for path, display in sorted(self.found.images):
            side, case = image_name(path)
            groups[(path.parent, case)].append((path, display, side))
        for (folder, case), files in sorted(groups.items()):
            sides: dict[str, list] = defaultdict(list)
            for path, display, side in files:
                loaded = self.image_file(path, display, side, case, args_text[folder])
                if loaded is None:
                    continue
                if side is None:
                    self.notes.append(Note(display, "image names no side (C: _c, golden; "
                                           "PyTorch: _py, pytorch); stored, not compared"))
                    continue
                sides[side].append((path, display, *loaded))
            self.pair(folder, case, sides, metric_ids)
            del sides

    def read(self, path: Path, display: str) -> bytes | None:
        """A file's bytes, or None with an error note naming it."""
        try:
            return read_regular(path)
        except OSError as exc:
            self.notes.append(Note(display, f"cannot read: {exc.strerror or exc}",
                                   level="error"))
            self.stats.evidence_errors += 1
            return None

    # -- metrics files ------------------------------------------------------------
    def metric_file(self, path: Path, display: str) -> tuple[int | None, str | None]:
        """Load one results file (unless already loaded); its id and its recorded args
        as text (for sizing .bin images)."""
        data = self.read(path, display)
        if data is None:
            return None, None
        sha = hashlib.sha256(data).hexdigest()
        text = data.decode("utf-8", errors="replace")
        problem = None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            doc, problem = None, f"not JSON ({exc}); kept as text, no metrics"
        args = None
        if isinstance(doc, dict):
            a = doc.get("args")
            args = " ".join(map(str, a)) if isinstance(a, list) else a \
                if isinstance(a, str) else None
        t = self.t["metric_file"]
        row = self.conn.execute(select(t.c.id).where(t.c.abs_path == str(path),
                                                     t.c.sha256 == sha)).first()
        if row is not None:
            self.stats.unchanged_evidence_files += 1
            return row[0], args
        if problem:
            self.notes.append(Note(display, problem, level="warning"))
        stamp = normalize_stamp(doc.get("timestamp")) if isinstance(doc, dict) else None
        fid = self.conn.execute(t.insert().returning(t.c.id), dict(
            bundle_id=self.bundle_id(), path=display, abs_path=str(path), sha256=sha,
            size=len(data), case_name=metrics_case(path), stamp=stamp, content=text,
            problem=problem, command_id=self.command_id, loaded_at=self.now)).scalar_one()
        rows = [dict(file_id=fid, seq=i, name=n, pointer=p, kind=k, num=v, text=x, unit=u)
                for i, (n, p, k, v, x, u) in enumerate(flatten(doc, self.units) if problem
                                                        is None else [], start=1)]
        if rows:
            self.conn.execute(self.t["metric"].insert(), rows)
        self.stats.metric_files += 1
        self.stats.metrics += len(rows)
        return fid, args

    # -- images -------------------------------------------------------------------
    def image_file(self, path: Path, display: str, side, case, args: list[str]):
        """Store one image file (its image once); (image_file id, sha256, the array) or
        None when it cannot be read as an image (a note names it)."""
        data = self.read(path, display)
        if data is None:
            return None
        try:
            if path.suffix.lower() == ".npy":
                image = imagemath.read_npy(data)
            else:
                t = self.t["bundle"]
                commands = self.conn.execute(select(t.c.commands_text).where(
                    t.c.directory == str(self.found.directory))).scalar() or ""
                if not commands and (self.found.directory / "commands.txt").is_file():
                    commands = read_regular(self.found.directory / "commands.txt").decode(
                        "utf-8", errors="replace")
                image = imagemath.read_bin(data, "\n".join([commands, *args]), path.name)
        except imagemath.ImageProblem as exc:
            self.notes.append(Note(display, f"{exc}; not loaded", level="warning"))
            return None
        sha = hashlib.sha256(data).hexdigest()
        ti, tf = self.t["image"], self.t["image_file"]
        if self.conn.execute(select(ti.c.sha256).where(ti.c.sha256 == sha)).first() is None:
            blob = compress_blob(data)
            self.conn.execute(ti.insert(), dict(
                sha256=sha, format=image.format, dtype=image.dtype,
                shape=json.dumps(image.shape), size=len(data),
                nonfinite=imagemath.nonfinite(image.array), compression=BLOB_COMPRESSION,
                content=blob))
            del blob
            self.stats.images += 1
        row = self.conn.execute(select(tf.c.id).where(tf.c.abs_path == str(path),
                                                      tf.c.image_sha256 == sha)).first()
        if row is not None:
            self.stats.unchanged_evidence_files += 1
            return row[0], sha, image.array
        fid = self.conn.execute(tf.insert().returning(tf.c.id), dict(
            bundle_id=self.bundle_id(), image_sha256=sha, path=display, abs_path=str(path),
            side=side, case_name=case, command_id=self.command_id,
            loaded_at=self.now)).scalar_one()
        self.stats.image_files += 1
        return fid, sha, image.array

    def pair(self, folder: Path, case: str, sides: dict[str, list], metric_ids) -> None:
        """Compare the C and the PyTorch image of one case (same format first)."""
        refs, cands = list(sides.get("c", [])), list(sides.get("py", []))
        pairs = []
        for r in list(refs):
            match = next((c for c in cands if c[0].suffix == r[0].suffix), None)
            if match is not None:
                pairs.append((r, match))
                refs.remove(r)
                cands.remove(match)
        if len(refs) == len(cands) == 1:  # e.g. a .npy against a .bin
            pairs.append((refs.pop(), cands.pop()))
        for left in refs + cands:
            other = "PyTorch" if left in refs else "C"
            self.notes.append(Note(left[1], f"image of case {case!r} has no {other} image "
                                   "to compare with; stored, not compared"))
        recorded_path = folder / f"{case}_metrics.json"
        recorded = metric_ids.get(str(recorded_path))
        if recorded is None and len(pairs) == 1:
            recorded = next((metric_ids[str(folder / n)] for n in ("metrics.json",
                             "summary.json") if str(folder / n) in metric_ids), None)
        for ref, cand in pairs:
            self.compare(case, ref, cand, recorded)

    def compare(self, case: str, ref, cand, recorded: int | None) -> None:
        t = self.t["image_comparison"]
        existing = self.conn.execute(select(t.c.id, t.c.metric_file_id).where(
            t.c.ref_file_id == ref[2], t.c.cand_file_id == cand[2])).first()
        if existing is not None:
            if existing[1] != recorded and recorded is not None:  # a new recorded version
                self.conn.execute(t.update().where(t.c.id == existing[0])
                                  .values(metric_file_id=recorded))
            return
        fig = imagemath.compare(ref[4], cand[4], RTOL, ATOL)
        stamp = self.stamp()
        if stamp is None and recorded is not None:
            mf = self.t["metric_file"]
            stamp = self.conn.execute(select(mf.c.stamp).where(mf.c.id == recorded)).scalar()
        values = {k: getattr(fig, k) for k in (
            "status", "message", "slow", "fast", "pixels", "correlation", "mse", "rmse",
            "max_abs_diff", "ref_sum", "cand_sum", "sum_ratio", "rtol", "atol",
            "outside_tolerance", "ref_nonfinite", "cand_nonfinite")}
        cid = self.conn.execute(t.insert().returning(t.c.id), dict(
            bundle_id=self.bundle_id(), case_name=case, stamp=stamp, ref_file_id=ref[2],
            cand_file_id=cand[2], worst_k=imagemath.WORST_K, metric_file_id=recorded,
            command_id=self.command_id, computed_at=self.now, **values)).scalar_one()
        if fig.worst:
            self.conn.execute(self.t["image_worst"].insert(), [dict(
                comparison_id=cid, rank=i, slow=w.slow, fast=w.fast, ref=w.ref, cand=w.cand,
                ref_text=w.ref_text, cand_text=w.cand_text, abs_delta=w.abs_delta,
                rel_delta=w.rel_delta, outside=int(w.outside))
                for i, w in enumerate(fig.worst, start=1)])
        if fig.status == "shape_mismatch":
            self.notes.append(Note(ref[1], f"case {case!r}: {fig.message}", level="warning"))
        self.stats.image_comparisons += 1
