"""Taps written as JSON: a trace JSON file -> the same run drafts the text path makes.

Pure functions over a file's bytes (no database, no file system beyond
:func:`sniff`), so they run in worker processes like the text parser.

A JSON file is a trace when its content says so (:func:`trace_kind`): an object
with a ``tap_id`` and ``values``; an object with a list of per-phi entries (a list
of objects that each hold ``phi_tic``, under any key: ``per_phi_entries``,
``traces``, ...); or a list of such objects, or an object whose ``traces`` are
such objects (a list of traces: one run each). Any other JSON is bundle or run
metadata, read as before (``files._read_json``).

Every number, string and boolean leaf becomes a value of a tap, or a quarantined
item with its JSON pointer and reason (nulls, duplicate keys, empty keys, text no
SQL column can hold): nothing is dropped. Mapping:

- object keys give tap names; a nested object's key prefixes its members' names
  (``hkl_bounds.h_min``), except the containers that only hold the trace (the run
  object itself, its ``values`` and ``metadata``, and each loop entry). An object of
  scalars whose keys are all short labels (at most 3 characters: ``X``, ``Y``,
  ``rxx``) is one labelled tap (``X:0.1 Y:0.2``), as the text traces write them.
- a list of scalars is one tap whose components are the list's items (a list of
  equal-length lists of scalars, a matrix, flattened row by row);
- a list of objects is a loop: each entry's keys are taps with the entry's loop
  key, from its own index key when it has one (``phi_tic=3``, ``subpixel=0,1`` from
  ``subpixel_index``: the text parser's spelling) or else its position
  (``subpixel=2`` within ``subpixels``); entries keyed by ``phi_tic`` are on the
  ``PHI`` channel, as ``TRACE_C_PHI`` / ``TRACE_PY_PHI`` lines are; the other taps
  of a tap file (a run object with a ``tap_id``) are on the channel its ``tap_id``
  names, as written (``hkl_subpixel``: one tap point, as a ``TRACE_C_TAP5_HKL``
  channel is), the rest on the main channel;
- ``pixel`` / ``pixel_coords`` (``[slow, fast]`` or ``{slow, fast}``, also
  ``pixel_slow``/``pixel_fast``, ``pixel_s``/``pixel_f``, in the run object or its
  ``metadata``) give the pixel, else the file name; ``timestamp_utc`` /
  ``timestamp`` the metadata stamp; the path the side (``names.side_from_path``),
  else a torch ``device`` or ``dtype`` in the file says PyTorch.

Numbers keep the text they are written with (digits and precision as the text path
reads them); ``true``/``false`` are the exact numbers 1 and 0 (text as written).
Each tap keeps its JSON pointer (RFC 6901, ``/per_phi_entries/3/k_frac``); JSON taps
have no line number (``tap.line_no`` is 0) and the pointer is in ``tap_pointer``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from . import names, parse
from .discover import REPLACED, Note, _open_regular, decode_utf8
from .runs import RunDraft

#: What ``source_file.parser`` records for a JSON trace.
PARSER = "tracedb.jsontaps v2"
#: JSON files larger than this are not read as traces (a note names them).
MAX_JSON_BYTES = 64 << 20
#: What a trace JSON must mention before it is parsed to see whether it is one.
_SNIFF = re.compile(rb'"(?:tap_id|phi_tic|per_phi_entries)"\s*:')
#: Keys of the run object whose members are named without the key as a prefix.
_CONTAINERS = frozenset({"values", "metadata"})
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,2}\Z")
_INT = re.compile(r"-?\d+\Z")
_QUARANTINE_TEXT_LIMIT = 4096


class Num(str):
    """A JSON number token, as written."""


class Obj(list):
    """A JSON object as its (key, value) pairs in file order (duplicates kept)."""

    def get(self, key, default=None):
        for k, v in self:
            if k == key:
                return v
        return default

    def keys(self):
        return [k for k, _ in self]


def loads(text: str):
    """JSON with number tokens as written (:class:`Num`) and objects as :class:`Obj`."""
    return json.loads(text, parse_float=Num, parse_int=Num, parse_constant=Num,
                      object_pairs_hook=Obj)


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (str, bool))


def _phi_entries(v) -> bool:
    return isinstance(v, list) and bool(v) and all(
        isinstance(e, Obj) and "phi_tic" in e.keys() for e in v)


def _is_trace_object(o) -> bool:
    if not isinstance(o, Obj):
        return False
    keys = o.keys()
    if "tap_id" in keys and isinstance(o.get("values"), (Obj, list)):
        return True
    return any(_phi_entries(v) for _k, v in o)


def trace_kind(o) -> str | None:
    """'runs' (a list of traces), 'run' (one trace) or None (metadata)."""
    if not isinstance(o, Obj) and isinstance(o, list) and o and all(_is_trace_object(e) for e in o):
        return "runs"
    if isinstance(o, Obj):
        traces = o.get("traces")
        if isinstance(traces, list) and traces and all(_is_trace_object(e) for e in traces):
            return "runs"
        if _is_trace_object(o):
            return "run"
    return None


def sniff(path, name: str) -> bool:
    """Whether a JSON file found in a walk is to be read as a trace: it mentions a
    trace key and is one (a file of that kind that cannot be parsed is handed to
    :func:`read`, which says why it is not loaded). ``*_metadata.json`` and
    ``*_meta.json`` are per-trace metadata and not looked into."""
    low = name.lower()
    if low.endswith(("_metadata.json", "_meta.json")):
        return False
    try:
        with _open_regular(path) as fh:  # never more than a trace JSON may hold
            data = fh.read(MAX_JSON_BYTES + 1)
    except OSError:
        return False
    if not _SNIFF.search(data):
        return False
    if len(data) > MAX_JSON_BYTES:
        return True
    try:
        return trace_kind(loads(data.decode("utf-8", errors="replace"))) is not None
    except (ValueError, RecursionError):
        return True


def pointer(parts) -> str:
    """An RFC 6901 JSON pointer."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass
class JsonTrace:
    """What :func:`read` found: runs, their taps' pointers, quarantined items."""

    drafts: list[RunDraft] = field(default_factory=list)
    quarantined: list[tuple[str, str, str]] = field(default_factory=list)  # pointer, reason, text
    values: int = 0
    meta: dict | None = None  # the run object's header (scalars), for run.metadata_json
    meta_time: str | None = None
    encoding: str = "utf-8"
    error: str | None = None  # why nothing is loaded from the file


def _plain(v):
    """A parsed JSON value as plain Python (for metadata_json)."""
    if isinstance(v, Num):
        if _INT.match(v):
            return int(v) if len(v) < 400 else str(v)
        try:
            return float(v)
        except ValueError:
            return str(v)
    if isinstance(v, Obj):
        return {k: _plain(x) for k, x in v}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _component(v, label: str | None = None) -> parse.Component | None:
    if isinstance(v, bool):
        c = parse.Component(None, 1.0 if v else 0.0, "true" if v else "false", "num", 1, 0.0)
    elif isinstance(v, Num):
        c = parse.number(str(v)) or parse.Component(None, None, str(v), "text")
    elif isinstance(v, str):
        c = parse.Component(None, None, v, "text")
    else:
        return None
    return c._replace(label=label) if label is not None else c


def _text_problem(v) -> str | None:
    if isinstance(v, str) and not isinstance(v, Num):
        if "\0" in v:
            return "text holds a NUL character, which no SQL text column stores"
        if len(v) > parse.MAX_LINE_CHARS:
            return f"text longer than {parse.MAX_LINE_CHARS} characters"
    return None


def _shown(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Num):
        return str(v)
    if isinstance(v, str):
        text = json.dumps(v).replace("\\u0000", "\\0")
        return text[:_QUARANTINE_TEXT_LIMIT]
    return json.dumps(_plain(v))[:_QUARANTINE_TEXT_LIMIT]


def _index_of(entry: Obj, list_key: str, i: int) -> str:
    """A loop entry's loop key: from its index key, else its position."""
    for k, v in entry:
        base = k[:-6] if k.endswith("_index") else k
        if base in parse.INDEX_KEYS:
            vals = v if isinstance(v, list) else [v]
            if vals and all(isinstance(x, Num) and _INT.match(x) for x in vals):
                return f"{base}={','.join(str(int(x)) for x in vals)}"
    base = list_key[:-1] if list_key.endswith("s") and list_key[:-1] in parse.INDEX_KEYS \
        else list_key
    return f"{base}={i}"


class _Walker:
    def __init__(self, out: JsonTrace, side: str | None):
        self.out = out
        self.side = side
        self.taps: list[tuple] = []
        self.pointers: list[str] = []

    def quarantine_all(self, v, parts: list, reason: str) -> None:
        """Every leaf of ``v`` as a quarantined item (a null leaf too)."""
        if isinstance(v, Obj):
            for k, x in v:
                self.quarantine_all(x, [*parts, k], reason)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                self.quarantine_all(x, [*parts, i], reason)
        else:
            self.out.quarantined.append((pointer(parts), reason, _shown(v)))

    def tap(self, channel: str, name: str, loop_key: str, shape: str, comps: list,
            parts: list) -> None:
        raw = " ".join(f"{c.label}:{c.text}" if c.label else c.text for c in comps)
        self.taps.append((0, parse.Tap(self.side, channel, name, loop_key, shape, comps,
                                       None, raw)))
        self.pointers.append(pointer(parts))
        self.out.values += len(comps)

    def named(self, obj: Obj, parts: list):
        """An object's members that name a tap: (key, value, pointer parts); a key seen
        before in the object, or an empty one, is quarantined with what it holds."""
        seen: set[str] = set()
        for k, v in obj:
            where = [*parts, k]
            if k in seen:
                self.quarantine_all(v, where, f"duplicate key {k!r} in one object "
                                              "(the first one is loaded)")
            elif k == "":
                seen.add(k)
                self.quarantine_all(v, where, "empty key: no tap name")
            else:
                seen.add(k)
                yield k, v, where

    def members(self, obj: Obj, parts: list, prefix: str, channel: str, loop_key: str
                ) -> None:
        for k, v, where in self.named(obj, parts):
            self.node(v, where, prefix + k, channel, loop_key)

    def node(self, v, parts: list, name: str, channel: str, loop_key: str) -> None:
        if v is None:
            self.out.quarantined.append((pointer(parts), "null: no value", "null"))
            return
        if _is_scalar(v):
            problem = _text_problem(v)
            if problem:
                self.out.quarantined.append((pointer(parts), problem, _shown(v)))
                return
            c = _component(v)
            self.tap(channel, name, loop_key, "text" if c.kind == "text" else "scalar", [c],
                     parts)
            return
        if isinstance(v, Obj):
            keys = v.keys()
            if keys and len(set(keys)) == len(keys) and all(_LABEL.match(k) for k in keys) \
                    and all(_is_scalar(x) and x is not None and not _text_problem(x)
                            for _k, x in v):
                self.tap(channel, name, loop_key, "labelled",
                         [_component(x, k) for k, x in v], parts)
                return
            self.members(v, parts, name + ".", channel, loop_key)
            return
        # a list
        if not v:
            self.out.quarantined.append((pointer(parts), "empty list: no value", "[]"))
            return
        if all(_is_scalar(x) for x in v):
            bad = next((i for i, x in enumerate(v) if x is None or _text_problem(x)), None)
            if bad is not None:
                what = "null" if v[bad] is None else "unstorable text"
                self.quarantine_all(v, parts, f"list holds {what} at "
                                              f"{pointer([*parts, bad])}; list not loaded")
                return
            comps = [_component(x) for x in v]
            shape = "scalar" if len(comps) == 1 and comps[0].kind != "text" else \
                "text" if len(comps) == 1 else "vector"
            self.tap(channel, name, loop_key, shape, comps, parts)
            return
        if all(isinstance(x, list) and x and all(_is_scalar(y) and y is not None
                                                 and not _text_problem(y) for y in x)
               for x in v) and len({len(x) for x in v}) == 1:
            self.tap(channel, name, loop_key, "matrix",
                     [_component(y) for x in v for y in x], parts)
            return
        base = name.rsplit(".", 1)[-1]
        for i, x in enumerate(v):
            where = [*parts, i]
            if isinstance(x, Obj):
                key = _index_of(x, base, i)
                if loop_key:
                    key = f"{loop_key},{key}"
                ch = "PHI" if key.startswith("phi_tic=") else channel
                self.members(x, where, "", ch, key)  # its index leaf is a tap too
            else:
                self.node(x, where, name, channel, f"{loop_key},{base}={i}" if loop_key
                          else f"{base}={i}")

    def run(self, obj: Obj, parts: list) -> None:
        """The run object's members: containers unprefixed, the rest by key; on the
        channel its ``tap_id`` names (a tap file is one tap point), else the main one."""
        tap_id = obj.get("tap_id")
        channel = tap_id.strip() if isinstance(tap_id, str) and not _text_problem(tap_id) \
            else ""
        for k, v, where in self.named(obj, parts):
            if k in _CONTAINERS and isinstance(v, Obj):
                self.members(v, where, "", channel, "")
            else:
                self.node(v, where, k, channel, "")


def _pixel_of(obj: Obj) -> tuple | None:
    """The (slow, fast) a run object names (as written), or None."""
    for o in (obj, obj.get("metadata")):
        if not isinstance(o, Obj):
            continue
        for key in ("pixel_coords", "pixel"):
            p = o.get(key)
            if isinstance(p, Obj):  # (an Obj is a list of pairs: tested first)
                if "slow" in p.keys() or "fast" in p.keys():
                    return _plain(p.get("slow")), _plain(p.get("fast"))
            elif isinstance(p, list) and len(p) == 2:
                return tuple(_plain(x) for x in p)
        for s, f in (("pixel_slow", "pixel_fast"), ("pixel_s", "pixel_f")):
            if s in o.keys() or f in o.keys():
                return _plain(o.get(s)), _plain(o.get(f))
    return None


def _time_of(obj: Obj) -> str | None:
    for o in (obj, obj.get("metadata")):
        if isinstance(o, Obj):
            for key in ("timestamp_utc", "timestamp", "captured_at"):
                if isinstance(o.get(key), str) and not isinstance(o.get(key), Num):
                    return o.get(key)
    return None


def _side_of(obj) -> str | None:
    """PyTorch when the trace names a torch device or dtype (the C code writes none)."""
    objs = [obj] if isinstance(obj, Obj) else [o for o in obj if isinstance(o, Obj)]
    for o in objs:
        for m in (o, o.get("metadata")):
            if isinstance(m, Obj):
                dtype = m.get("dtype")
                if isinstance(m.get("device"), str) or (isinstance(dtype, str)
                                                        and dtype.startswith("torch.")):
                    return "py"
    return None


def _usable(pixel: tuple | None, display: str, notes: list[Note]) -> tuple[int, int] | None:
    if pixel is None:
        return None
    problem = names.pixel_problem(pixel)
    if problem is None:
        return pixel  # type: ignore[return-value]
    notes.append(Note(display, f"pixel {names.pixel_text(pixel)} unusable ({problem}); "
                      "ignored", level="warning"))
    return None


def read(data: bytes, display: str, file_name: str, notes: list[Note]) -> JsonTrace:
    """A trace JSON file's runs (see the module's docstring). ``display`` names the
    file in notes; ``error`` says why nothing is loaded (malformed, too deep, too
    large, or not a trace after all)."""
    out = JsonTrace()
    if len(data) > MAX_JSON_BYTES:
        out.error = (f"JSON of {len(data):,} bytes, more than the {MAX_JSON_BYTES:,} a trace "
                     "JSON may hold; file not loaded")
        return out
    text, replaced = decode_utf8(data, display, notes)
    if replaced:
        out.encoding = REPLACED
    try:
        doc = loads(text)
    except RecursionError:
        out.error = "JSON nested too deeply to read; file not loaded"
        return out
    except json.JSONDecodeError as exc:
        out.error = f"invalid JSON ({exc.msg} at line {exc.lineno}); file not loaded"
        return out
    except ValueError as exc:
        out.error = f"JSON cannot be read ({exc}); file not loaded"
        return out
    kind = trace_kind(doc)
    if kind is None:
        out.error = "JSON is not a trace (no tap_id with values, no per-phi entries); " \
                    "file not loaded as taps"
        return out
    side = names.side_from_path(display.split("/")[-3:]) or _side_of(doc)
    if side is None:
        notes.append(Note(display, "no side in the path or the content (c or py); taps "
                                   "loaded without one", level="warning"))
    file_pixel = _usable(names.pixel_from_name(file_name), display, notes)
    if kind == "run":
        runs = [(doc, [])]
        header = doc
    else:
        items = doc.get("traces") if isinstance(doc, Obj) else doc
        base = ["traces"] if isinstance(doc, Obj) else []
        runs = [(o, [*base, i]) for i, o in enumerate(items)]
        header = doc if isinstance(doc, Obj) else None
        if isinstance(doc, Obj):  # the members beside the list of traces
            rest = _Walker(out, side)
            rest.run(Obj((k, v) for k, v in doc if k != "traces"), [])
            if rest.taps:  # they belong to the first run
                runs[0] = (runs[0][0], runs[0][1], rest)  # type: ignore[assignment]
    header_pixel = _usable(_pixel_of(header), display, notes) \
        if isinstance(header, Obj) else None
    out.meta_time = _time_of(header) if isinstance(header, Obj) else None
    if isinstance(header, Obj):
        out.meta = {k: _plain(v) for k, v in header
                    if _is_scalar(v) or (isinstance(v, (Obj, list)) and k in ("pixel",
                                                                             "pixel_coords",
                                                                             "metadata"))}
    by_key: dict[tuple, RunDraft] = {}
    for entry in runs:
        obj, parts = entry[0], entry[1]
        w = _Walker(out, side)
        if len(entry) == 3:
            w.taps, w.pointers = list(entry[2].taps), list(entry[2].pointers)
        w.run(obj, parts)
        if not w.taps:
            continue
        if obj is header:
            pixel, source = header_pixel, "metadata"
        else:
            pixel, source = _usable(_pixel_of(obj), display, notes), "metadata"
            if pixel is None:
                pixel = header_pixel
        if pixel is None:
            pixel, source = file_pixel, "filename"
        draft = by_key.get((side, pixel))
        if draft is None:
            draft = by_key[(side, pixel)] = RunDraft(side, pixel, source if pixel else None)
            draft.pointers = []
        draft.taps.extend(w.taps)
        draft.pointers.extend(w.pointers)
    out.drafts = list(by_key.values())
    return out
