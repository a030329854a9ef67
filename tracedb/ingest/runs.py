"""A file's taps split into runs (one side, one pixel) and what runs of the same tap
names share: pairing keys, units, order and shape (templates)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..store.layout import shape_signature
from . import parse, rows


@dataclass(slots=True)
class RunDraft:
    side: str | None
    pixel: tuple[int, int] | None
    pixel_source: str | None
    taps: list[tuple] = field(default_factory=list)  # see build_runs
    # set when the run's rows were staged (the taps are then dropped)
    tap_count: int = 0
    value_count: int = 0
    first_line: int | None = None
    last_line: int | None = None
    shape_sig: str | None = None  # None: staged with provisional keys, the writer sets it
    tap_digests: bytes | None = None  # layout.digest_list; None as shape_sig
    pointers: list[str] | None = None  # a JSON trace's taps: their JSON pointers (kept)


def build_runs(scanned: rows.Scanned, file_side: str | None,
               file_pixel: tuple[int, int] | None, file_pixel_source: str | None
               ) -> list[RunDraft]:
    """Split a file's taps into runs by side and by in-file pixel markers.

    Taps before the first marker belong to the first marker's pixel (the C code
    prints detector geometry before it announces the pixel); without markers,
    the pixel comes from the metadata JSON or the file name. A tap without a side
    of its own takes the last side named by a line before it (else the file's).
    A run's taps are common-shape tuples ``(line_no, side, name, raw, n)`` or
    ``(line_no, Tap)``.
    """
    plain = sorted(scanned.markers)  # pixel sentences outside TRACE lines
    traced = [(ln.line_no, ln.pixel) for ln in scanned.general if ln.pixel]
    if not plain and not traced:
        one = _one_run(scanned, file_side, file_pixel, file_pixel_source)
        if one is not None:
            return one
    first_marker = min(plain + traced)[1] if plain or traced else None
    current = None
    last_side = file_side
    runs: dict[tuple, RunDraft] = {}
    j, n_plain = 0, len(plain)
    for item in scanned.items:
        no = item[0]
        while j < n_plain and plain[j][0] <= no:
            current = plain[j][1]
            j += 1
        if current is not None:
            pixel, source = current, "marker"
        elif first_marker is not None:
            pixel, source = first_marker, "marker"
        else:
            pixel, source = file_pixel, file_pixel_source
        if len(item) == 5:  # a common-shape line: one tap, its side from the prefix
            last_side = item[1]
            key = (last_side, pixel)
            draft = runs.get(key)
            if draft is None:
                draft = runs[key] = RunDraft(last_side, pixel, source if pixel else None)
            draft.taps.append(item)
            continue
        ln: parse.Line = item[1]
        if ln.pixel:
            current = pixel = ln.pixel
            source = "marker"
        if ln.side:
            last_side = ln.side
        for tap in ln.taps:
            side = tap.side or last_side
            key = (side, pixel)
            draft = runs.get(key)
            if draft is None:
                draft = runs[key] = RunDraft(side, pixel, source if pixel else None)
            draft.taps.append((no, tap))
    return list(runs.values())


def _one_run(scanned: rows.Scanned, file_side, file_pixel, file_pixel_source
             ) -> list[RunDraft] | None:
    """build_runs for the usual file: no pixel markers and one side throughout (what
    the general loop would give, without its per-line work); None when it does not
    apply."""
    items = scanned.items
    if not items:
        return []
    first = items[0]
    side = first[1] if len(first) == 5 else first[1].side
    if side is None:
        return None
    for ln in scanned.general:
        if ln.side not in (None, side) or any(t.side not in (None, side) for t in ln.taps):
            return None
    if any(it[1] != side for it in items if len(it) == 5):
        return None
    draft = RunDraft(side, file_pixel, file_pixel_source if file_pixel else None)
    if scanned.general:
        taps: list = []
        for it in items:
            if len(it) == 5:
                taps.append(it)
            else:
                taps.extend((it[0], tap) for tap in it[1].taps)
        draft.taps = taps
    else:
        draft.taps = list(items)
    return [draft] if draft.taps else []


@dataclass(frozen=True, slots=True)
class UnitRules:
    """The unit table as the loader uses it: the tap-name suffixes that imply a unit
    (``unit_suffix``) and the symbols a unit written after a value may name."""

    suffixes: tuple[tuple[str, str], ...]
    symbols: frozenset[str]


_UNIT_CACHE: dict[UnitRules, dict[str, str | None]] = {}


def unit_lookup(rules: UnitRules):
    """``unit_of(name, written)``: the unit written after the value when the unit
    table knows it, else the unit the name's suffix implies (or None)."""
    cache = _UNIT_CACHE.setdefault(rules, {})
    ordered = sorted(rules.suffixes, key=lambda s: -len(s[0]))
    symbols = rules.symbols

    def unit_of(name: str, written: str | None = None) -> str | None:
        if written is not None and written in symbols:
            return written
        unit = cache.get(name, False)
        if unit is False:
            unit = next((u for suffix, u in ordered if name.endswith(suffix)), None)
            cache[name] = unit
        return unit  # type: ignore[return-value]

    return unit_of


def alias_lookup(aliases: tuple[tuple[str, str, str, str], ...]):
    """(channel, name) -> (pairing channel, pairing name), from ``tap_alias`` rows
    (channel, name, canonical, kind): a ``channel`` alias gives the pairing channel; of
    ``name`` aliases, one of the tap's own channel beats a '*' one."""
    table: dict[tuple[str, str], str] = {}
    channels: dict[str, str] = {}
    for channel, name, canonical, kind in aliases:  # ordered by id: the oldest wins
        if kind == "channel":
            channels.setdefault(channel, canonical)
        else:
            table.setdefault((channel, name), canonical)

    def key_of(channel: str, name: str) -> tuple[str, str]:
        return (channels.get(channel, channel),
                table.get((channel, name)) or table.get(("*", name)) or name)

    return key_of


@dataclass(slots=True)
class Template:
    """What the taps of a run with a given sequence of tap names share with every
    other run of that sequence (the pixels of a campaign run the same code path)."""

    static: list[tuple]  # per tap: channel, name, loop_key, occurrence, unit, key_name,
    #                      key_occurrence, key_id
    order: list[int]  # tap positions in key id order (the value rows' key order)
    provisional: bool  # some key id is provisional (< 0): no shape signature yet
    sigs: dict[tuple, str] = field(default_factory=dict)  # component counts -> shape


def _template(ident: tuple, unit_of, key_of, key_id_of) -> Template:
    seen: dict = {}
    seen_key: dict = {}
    static = []
    for item in ident:
        channel, name, loop_key, written = ("", item, "", None) if type(item) is str else item
        key = (channel, name, loop_key)
        occ = seen[key] = seen.get(key, 0) + 1
        key_channel, key_name = key_of(channel, name)
        pkey = (key_channel, key_name, loop_key)
        key_occ = seen_key[pkey] = seen_key.get(pkey, 0) + 1
        key_id = key_id_of((key_channel, key_name, loop_key, key_occ))
        static.append((channel, name, loop_key, occ, unit_of(name, written), key_name,
                       key_occ, key_id))
    order = sorted(range(len(static)), key=lambda i: static[i][7])
    return Template(static, order, any(t[7] < 0 for t in static))


def run_template(draft: RunDraft, unit_of, key_of, key_id_of,
                 templates: dict | None = None) -> Template:
    """What a run shares with every run of the same tap names (see :class:`Template`).

    ``key_of`` maps (channel, name) to the pairing channel and name (aliases); ``key_id_of``
    maps a pairing key (channel, key_name, loop_key, key_occurrence) to its
    ``tap_key`` id. ``templates`` caches templates for as long as ``key_id_of``
    gives the same ids.
    """
    ident = tuple([e[2] if len(e) == 5 else (e[1].channel, e[1].name, e[1].loop_key,
                                             e[1].unit) for e in draft.taps])
    template = templates.get(ident) if templates is not None else None
    if template is None:
        template = _template(ident, unit_of, key_of, key_id_of)
        if templates is not None:
            if len(templates) >= 1024:
                templates.clear()
            templates[ident] = template
    return template


def summarise(draft: RunDraft, template: Template, counts: tuple[int, ...],
              digests: bytes) -> None:
    """Keep what a run's rows give, once they are built or staged: its tap and value
    counts, its shape and digest list (``layout.digest_list``; both None while a key
    id is provisional: the writer sets them), its first and last line."""
    draft.tap_count, draft.value_count = len(counts), sum(counts)
    draft.shape_sig = run_shape(template, counts)
    draft.tap_digests = None if template.provisional else digests
    draft.first_line, draft.last_line = draft.taps[0][0], draft.taps[-1][0]


def run_shape(template: Template, counts: tuple[int, ...]) -> str | None:
    """A run's shape signature from its template and component counts (None while a
    key id is provisional)."""
    if template.provisional:
        return None
    sig = template.sigs.get(counts)
    if sig is None:
        sig = template.sigs[counts] = shape_signature(
            (t[7], n) for t, n in zip(template.static, counts, strict=True))
    return sig
