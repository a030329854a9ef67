"""The loader's per-line and per-value work: in C when ``tracedb.ingest._cstage`` is
built, else the Python twin below; the dispatch follows the twin (its import, its
checks and the choice, with the reason ``tracedb --version`` gives).

``setup.py`` builds ``_cstage.c`` as an optional extension when tracedb is
installed (it needs a C compiler and SQLite's headers); without it, or with
``TRACEDB_PURE_PYTHON=1``, the Python below does the same work, slower. Both give
identical rows (tests/test_cstage.py).

- :data:`scan`: a file's text -> common-shape lines as tuples, the other lines.
- :data:`components`: a common-shape value text -> its components.
- :data:`Stager`: rows into a private in-memory SQLite database whose image the
  writer attaches and copies, or (``Stager(None)``) PostgreSQL COPY text that the
  writer streams (see ``ingest.staging``).
"""

from __future__ import annotations

import importlib
import math
import os
import sqlite3
import struct
import sys
from dataclasses import dataclass

from ..store import layout
from . import parse


def scan_lines(text: str, first_line: int = 0
               ) -> tuple[list[tuple], list[tuple[int, str]], int]:
    """The loader's first pass (``_cstage.scan`` does the same in C); lines are
    numbered from ``first_line + 1`` (a chunk of a large file, see ``ingest.stream``).

    Returns ``fast``: ``(line_no, side, name, value text, n)`` for every line of the
    common shape (no components built: the stager reads them from the value text),
    ``rest``: ``(line_no, line)`` for the other TRACE lines, for indented lines right
    after a TRACE line (or after such a line: they may continue its record) and for
    lines that may name a pixel, and the number of TRACE lines.
    """
    fast: list[tuple] = []
    rest: list[tuple[int, str]] = []
    trace_lines = 0
    in_record = False
    for no, raw in enumerate(parse.split_lines(text), start=first_line + 1):
        shape = parse.fast_shape(raw) if len(raw) <= parse.MAX_LINE_CHARS else None
        if shape is not None:
            trace_lines += 1
            in_record = True
            fast.append((no, *shape))
        elif parse.TRACE_LINE.match(raw):
            trace_lines += 1
            in_record = True
            rest.append((no, raw))
        elif in_record and parse.is_indented(raw):
            rest.append((no, raw))
        else:
            in_record = False
            if "ixel" in raw or "IXEL" in raw:  # pixel, Pixel, PIXEL: may be a marker
                rest.append((no, raw))
    return fast, rest, trace_lines


def value_rows(run_id: int, entries, components=parse.fast_components) -> list[tuple]:
    """Value rows of one run from (key id, value text or components) entries."""
    rows: list[tuple] = []
    for key_id, payload in entries:
        comps = components(payload) if isinstance(payload, str) else payload
        rows.extend([(run_id, key_id, idx) + c for idx, c in enumerate(comps)])
    return rows


def run_rows(run_id: int, base: int, taps, static, order, first_seq: int = 0
             ) -> tuple[list[tuple], list[tuple], tuple[int, ...], bytes]:
    """A run's tap rows, its value entries in key order, each tap's component count
    and its taps' digests in key order (``layout.digest_list``: ``run.tap_digests``).

    ``taps`` holds common-shape tuples ``(line_no, side, name, raw, n)`` and
    ``(line_no, Tap)`` pairs; ``static`` a template tuple per tap (channel, name,
    loop_key, occurrence, unit, key_name, key_occurrence, key_id, see
    ``ingest.runs.run_template``); ``order`` the tap positions in key id order. Tap ids are
    ``base + seq``, seq counting from ``first_seq + 1`` (a run continued from an earlier
    chunk of its file); each tap row ends with its digest (:func:`tap_digest`). ``Stager.run``
    writes the same rows without building them.
    """
    # as C's Stager.run: each tap exactly once in the key order (a repeated or missing
    # tap would double or lose values, and a negative position would wrap round)
    if not len(taps) == len(static) == len(order):
        raise ValueError("taps, static and order differ in length")
    if sorted(order) != list(range(len(order))):
        raise IndexError("order out of range or naming a tap twice")
    rows: list[tuple] = []
    payloads: list = []
    counts: list[int] = []
    for seq, (entry, (channel, name, loop_key, occ, unit, key_name, key_occ, key_id)) in \
            enumerate(zip(taps, static, strict=True), start=first_seq + 1):
        if len(entry) == 5:  # common shape: numbers on the main channel
            line_no, raw, n = entry[0], entry[3], entry[4]
            shape = "scalar" if n == 1 else "vector"
            comps = components(raw)
            payloads.append(raw)  # the value rows keep the numbers' text (copy_num)
        else:
            line_no, tap = entry
            shape, raw, comps = tap.shape, tap.raw, tap.components
            n = len(comps)
            payloads.append(comps)
        counts.append(n)
        rows.append((base + seq, run_id, seq, line_no, channel, name, loop_key, occ, unit,
                     shape, n, raw, key_name, key_occ, key_id, digest(comps)))
    entries = [(static[i][7], payloads[i]) for i in order]
    return rows, entries, tuple(counts), layout.digest_list([rows[i][-1] for i in order])


# --------------------------------------------------------------------------- digests
# A tap's digest lets the comparison skip the values of a tap pair that plainly
# matches (queries/steps/compare_flag.sql). Each component is one token, and two
# components have one token exactly when they are the same special value (nan, inf,
# -inf), numbers equal to 41 bits of mantissa (within 2**-41 of each other
# relatively: within any rtol >= DIGEST_RTOL), or the same text; a label is a token
# of its own, mixed in before its component's. Numbers' tokens lie below 2**53,
# texts' and labels' in two spaces of their own (top bits 10 and 11), so a text never
# shares a token with a number, nor a label with either; a text or label of up to 7
# UTF-8 bytes is its token exactly, a longer one a 61-bit hash (_text_token). Tokens
# are mixed in order by a bijection, so two taps of one length that differ in one
# component never share a digest (two texts longer than 7 bytes do when their hashes
# coincide); taps that differ in two or more share one only by a coincidence of 64
# bits (the mix is no cryptographic hash: such a pair can be constructed on purpose,
# not met by chance). A number outside DIGEST_BAND, a text or label that is no
# valid UTF-8 (a lone surrogate from a JSON tap), or a kind the status rules do not
# know leaves the tap without a digest (NULL): its values decide.

_M64 = (1 << 64) - 1
_DOUBLE = struct.Struct("<d")
_BITS = struct.Struct("<Q")
#: Numbers a digest holds: 0, and magnitudes within this band (the band of the
#: status rules, where their plain-match test is IEEE arithmetic, see
#: migrations/tracedb_status_rules.py); a tap with any other number has none (NULL).
DIGEST_BAND = layout.DIGEST_BAND
#: Low bits of a number's IEEE 754 pattern that its digest drops: numbers that agree
#: in sign, exponent and the top 41 bits of mantissa are one token (below 2**53).
#: 41 is as coarse as the default rtol of 1e-12 allows: the coarser the tokens, the
#: fewer numbers that plainly match fall on two sides of a token's edge (C prints 15
#: significant digits, PyTorch 16). On benchmarks.run's large campaign the comparison
#: reads the values of 31,128 tap pairs (22,929 differ), against 84,360 with the 44
#: bits of revisions 0016 and 0017.
DIGEST_DROP_BITS = 11
#: The smallest rtol for which equal digests mean a plain match: two numbers of one
#: token differ by less than 2**-41 of the smaller; 2**-40 leaves a factor of two
#: for the rounding of ``atol + rtol*|ref|``.
DIGEST_RTOL = layout.DIGEST_RTOL
#: The tokens of the special values: above every number's token (2**56 and up).
DIGEST_KIND_TOKENS = {"nan": (1 << 56) | 1, "inf": (1 << 56) | 2, "-inf": (1 << 56) | 3}


def _mix(z: int) -> int:
    """splitmix64's finaliser: a bijection of 64-bit words, so two component lists
    of one length that differ in one component always get different digests."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


#: The top two bits of a text's token and of a label's (numbers' tokens are below 2**53).
DIGEST_TEXT_TAG, DIGEST_LABEL_TAG = 2 << 62, 3 << 62
#: A text of up to this many UTF-8 bytes is its own token (exact: its length and its
#: bytes); a longer one is a hash of them, with bit 61 set.
DIGEST_TEXT_EXACT = 7


def _text_token(text: str, tag: int) -> int | None:
    """A text's or label's token under ``tag``: up to 7 UTF-8 bytes its length (bits
    56-58) and its bytes (little-endian), exactly; beyond that 61 bits of its 8-byte
    chunks mixed in order from its length, with bit 61 set. None for a text that is
    no valid UTF-8 (a lone surrogate)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    n = len(data)
    if n <= DIGEST_TEXT_EXACT:
        return tag | (n << 56) | int.from_bytes(data, "little")
    h = n
    for i in range(0, n, 8):
        h = _mix(h ^ int.from_bytes(data[i:i + 8], "little"))
    return tag | (1 << 61) | (h >> 3)


def tap_digest(comps, drop: int = DIGEST_DROP_BITS, /) -> int | None:
    """The digest of a tap's components (label, num, text, kind, ...) as a signed
    64-bit integer; None when a number lies outside :data:`DIGEST_BAND`, a text or
    label is no valid UTF-8, or a kind is none the status rules know. ``drop``: the
    low bits of each number left out (:data:`DIGEST_DROP_BITS`; the migrations pass
    the one of their revision). ``_cstage.digest`` computes the same
    (tests/test_digest.py)."""
    if not 0 <= drop <= 52:
        raise ValueError(f"a digest drops 0 to 52 bits of a number, not {drop}")
    h = 0
    n = 0
    low, high = DIGEST_BAND
    for c in comps:
        label, num, kind = c[0], c[1], c[3]
        if label is not None:
            token = _text_token(label, DIGEST_LABEL_TAG)
            if token is None:
                return None
            h = _mix(h ^ token)
            n += 1
        if kind == "num":
            if num == 0:
                token = 0
            elif low <= abs(num) <= high:
                token = _BITS.unpack(_DOUBLE.pack(num))[0] >> drop
            else:
                return None
        else:
            token = DIGEST_KIND_TOKENS.get(kind)
            if token is None:
                if kind != "text":  # no kind the status rules know: the values decide
                    return None
                token = _text_token(c[2], DIGEST_TEXT_TAG)
                if token is None:
                    return None
        h = _mix(h ^ token)
        n += 1
    h = _mix(h ^ n)
    return h - (1 << 64) if h >> 63 else h


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NUM_CHARS = frozenset("0123456789+-.eE")


def copy_field(value) -> str:
    """One field of PostgreSQL COPY text, as ``Stager(None)`` writes it."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        if "\0" in value:
            raise ValueError("PostgreSQL text cannot hold a NUL character")
        return str.translate(value, _COPY_ESCAPES)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):  # the shortest text that reads back the same
        return float.__repr__(value)
    if type(value) is int:
        if not -(1 << 63) <= value < 1 << 63:
            raise OverflowError("Python int too large to convert to C long long")
        return int.__repr__(value)
    raise TypeError(f"cannot stage a {type(value).__name__}")


def copy_num(token: str, num: float) -> str:
    """A number as COPY text: the token as written when PostgreSQL's float8 input reads
    it as float() did (plain decimal notation, a normal or written-zero value)."""
    if len(token) < 64 and (num == 0.0 and "e" not in token and "E" not in token
                            or num != 0.0 and math.isfinite(num)
                            and abs(num) >= sys.float_info.min) \
            and _NUM_CHARS.issuperset(token):
        return token
    return repr(num)


class PyStager:
    """The Python twin of ``_cstage.Stager``: the same tables, through sqlite3, or
    with ``ddl`` None the same PostgreSQL COPY text."""

    def __init__(self, ddl, tap_sql: str | None = None, value_sql: str | None = None,
                 key_sql: str | None = None):
        self.text = ddl is None
        if self.text:
            self.chunks: tuple[list[str], list[str]] = ([], [])
            return
        self.con = sqlite3.connect(":memory:", isolation_level=None)
        for sql in ddl:
            self.con.execute(sql)
        self.con.execute("BEGIN")
        self.sql = tap_sql, value_sql, key_sql

    def taps(self, rows) -> None:
        if self.text:
            self.chunks[0].extend("\t".join(map(copy_field, r)) + "\n" for r in rows)
            return
        self.con.executemany(self.sql[0], rows)

    def values(self, run_id: int, entries) -> None:
        if not self.text:
            self.con.executemany(self.sql[1], value_rows(run_id, entries))
            return
        out = self.chunks[1]
        for key_id, payload in entries:
            fast = isinstance(payload, str)
            comps = components(payload) if fast else payload
            for idx, c in enumerate(comps):
                fields = [copy_field(v) for v in (run_id, key_id, idx) + tuple(c)]
                if fast and c[1] is not None:
                    fields[4] = copy_num(c[2], c[1])
                out.append("\t".join(fields) + "\n")

    def run(self, run_id: int, base: int, taps, static, order, first_seq: int = 0
            ) -> tuple[tuple[int, ...], bytes]:
        rows, entries, counts, digests = run_rows(run_id, base, taps, static, order,
                                                  first_seq)
        self.taps(rows)
        self.values(run_id, entries)
        return counts, digests

    def new_keys(self, rows) -> None:
        if self.text:
            raise ValueError("a COPY text stager keeps no provisional keys")
        self.con.executemany(self.sql[2], rows)

    def image(self) -> bytes:
        if self.text:
            raise ValueError("a COPY text stager has no database image")
        self.con.execute("COMMIT")
        try:
            return self.con.serialize()
        finally:
            self.con.close()

    def copy_text(self) -> tuple[bytes, bytes]:
        if not self.text:
            raise ValueError("a SQLite stager has no COPY text")
        out = tuple("".join(c).encode() for c in self.chunks)
        self.chunks = ([], [])
        return out  # type: ignore[return-value]


# --------------------------------------------------------------------------- dispatch
# The C accelerator when it is built from these sources for this layout, else the
# Python twin above.

#: The _cstage.ABI this Python expects; a build from older sources is not used.
CSTAGE_ABI = 11
#: The values the stager binds per tap, value and new_key row, by position.
LAYOUT_PARAMS = (len(layout.TAP_COLS), len(layout.VALUE_COLS), 1 + len(layout.PAIRING_KEY_COLS))

_cstage = None
#: Why the pure-Python twin is in use ("" when the C accelerator is).
REASON = ""
if os.environ.get("TRACEDB_PURE_PYTHON", "") not in ("", "0"):
    REASON = "forced by TRACEDB_PURE_PYTHON"
else:
    try:
        _cstage = importlib.import_module(f"{__package__}._cstage")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}._cstage":
            raise
        REASON = "C accelerator not built"
    except ImportError as exc:  # built, but does not load (e.g. another libsqlite3)
        REASON = f"C accelerator does not load: {exc}"
if _cstage is not None:
    _abi = getattr(_cstage, "ABI", None)
    _params = tuple(getattr(_cstage, k, None) for k in ("TAP_PARAMS", "VALUE_PARAMS",
                                                        "KEY_PARAMS"))
    if _abi != CSTAGE_ABI:
        REASON = (f"C accelerator is stale (ABI {_abi}, not {CSTAGE_ABI}): reinstall to "
                  "rebuild it")
        _cstage = None
    elif _params != LAYOUT_PARAMS:
        REASON = (f"C accelerator binds {_params} values per tap, value and new_key row, "
                  f"the layout has {LAYOUT_PARAMS}")
        _cstage = None
    elif getattr(_cstage, "DIGEST_DROP", None) != DIGEST_DROP_BITS:
        # its digests would not be the ones DIGEST_RTOL is worked out for
        REASON = (f"C accelerator's digests drop {getattr(_cstage, 'DIGEST_DROP', None)} "
                  f"bits of a number, not {DIGEST_DROP_BITS}")
        _cstage = None

if _cstage is not None:
    scan = _cstage.scan
    components = _cstage.components
    digest = _cstage.digest
    Stager = _cstage.Stager
else:
    scan = scan_lines
    components = parse.fast_components
    digest = tap_digest
    Stager = PyStager  # type: ignore[assignment,misc]


def digest_dropping(drop: int):
    """:func:`digest` with ``drop`` low bits of each number left out: the digest of
    a migration's own revision (0016 and 0017: 8, 0018: 11)."""
    return lambda comps: digest(comps, drop)

#: "c" when the C accelerator is in use, "python" otherwise (`tracedb --version` says
#: which, and :data:`REASON` why not C)
IMPLEMENTATION = "c" if _cstage is not None else "python"


# --------------------------------------------------------------------------- a file's pass

#: Lines that repeat from file to file (a rotation matrix, a convention, a banner)
#: are parsed once: parsed lines by their text. Their taps are shared, read-only.
_LINE_CACHE: dict[str, parse.Line] = {}
LINE_CACHE_SIZE = 4096


@dataclass(slots=True)
class Scanned:
    """A file as the loader reads it: common-shape lines kept as tuples."""

    items: list[tuple]  # in line order: (line_no, side, name, raw, n) or (line_no, Line)
    general: list[parse.Line]  # the Line of every other TRACE line and continuation
    trace_lines: int  # lines of TRACE records, continuation lines included
    continuation_lines: int  # indented lines that continue a TRACE record
    markers: list[tuple[int, tuple[int, int]]]
    warnings: list[str]


def scan_text(text: str, first_line: int = 0) -> Scanned:
    """A file's first pass as the loader makes it (like ``parse.parse_text``, but
    common-shape lines stay unparsed tuples): :data:`scan` (C or
    :func:`scan_lines`), then the general parser for the other TRACE lines, each
    distinct line parsed once. Lines are numbered from ``first_line + 1``: a chunk
    of a large file that starts with a line that is not indented (so no record
    continues across chunks) scans as it would in its whole file."""
    fast, rest, trace_lines = scan(text, first_line) if first_line else scan(text)
    general: list[parse.Line] = []
    markers: list[tuple[int, tuple[int, int]]] = []
    warnings: list[str] = []
    cache = _LINE_CACHE
    continuation_lines = 0
    heads: dict[int, parse.Line | None] = {}  # line no -> the record it is part of
    expressions: dict[int, str | None] = {}  # line no -> a worked calculation's expression
    fast_at: dict[int, tuple] | None = None
    for no, raw in rest:
        if parse.TRACE_LINE.match(raw):
            seen = cache.get(raw)
            if seen is None:
                seen = parse.parse_line(raw)
                if len(raw) <= parse.MAX_LINE_CHARS:  # a runaway line is not worth keeping
                    if len(cache) >= LINE_CACHE_SIZE:
                        cache.clear()
                    cache[raw] = seen
            parsed = parse.Line(no, seen.side, seen.taps, seen.pixel, seen.quarantine)
            if parsed.quarantine and len(raw) > parse.MAX_LINE_CHARS:
                warnings.append(f"line {no}: {parsed.quarantine}; kept in quarantine")
            general.append(parsed)
            heads[no] = None if parsed.quarantine else parsed
            continue
        if parse.is_indented(raw):
            head = heads.get(no - 1)
            if head is None and no - 1 not in heads:  # after a common-shape line?
                if fast_at is None:
                    fast_at = {t[0]: t for t in fast}
                line = fast_at.get(no - 1)
                if line is not None:
                    head = parse.Line(line[0], line[1])
            if head is not None:  # a continuation of the record above
                parsed, expressions[no] = parse.continuation(head, raw, no,
                                                             expressions.get(no - 1))
                continuation_lines += 1
                general.append(parsed)
                heads[no] = head
                continue
        marker = parse.pixel_marker(raw)
        if marker:
            markers.append((no, marker))
    if general:
        items = fast + [(ln.line_no, ln) for ln in general]
        items.sort(key=_line_no)
    else:
        items = fast
    return Scanned(items, general, trace_lines + continuation_lines, continuation_lines,
                   markers, warnings)


def _line_no(item: tuple) -> int:
    return item[0]
