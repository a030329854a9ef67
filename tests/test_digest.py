"""Tap digests (``tap.digest``, migrations 0016 to 0018): the comparison does not read the
values of a tap pair of one length whose digests are equal. That must never hide a
difference the status rules see: equal digests mean the same labels in the same
order, numbers within 2**-41 of each other, the same special values and the same
texts, and the shortcut is taken only where that is a plain match."""

from __future__ import annotations

import math
import random
import struct

import pytest
from alembic import command
from sqlalchemy import text

import tracedb
from benchmarks.generate import write_campaign
from tracedb.compare import engine
from tracedb.compare.engine import listed_pairs
from tracedb.ingest import parse, rows
from tracedb.store import engine as db
from tracedb.store import layout

from .test_diverge import capture
from .test_mismatch import _both, _edge_tree, _rows, stored_flags_and_view

try:
    from tracedb.ingest import _cstage
except ImportError:  # the pure-Python loader: the Python digest alone
    _cstage = None

IMPLS = [rows.tap_digest] + ([_cstage.digest] if _cstage else [])
#: The low bits of a number a digest leaves out: 41 bits of mantissa kept (0018) ...
DROP = 11
#: ... and 44 up to revision 0017.
DROP_BEFORE = 8


def num(x: float, label: str | None = None) -> parse.Component:
    return parse.Component(label, x, repr(x), "num", None, None)


def word(t: str, kind: str = "text", label: str | None = None) -> parse.Component:
    return parse.Component(label, None, t, kind, None, None)


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def from_bits(b: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def random_component(rng: random.Random) -> parse.Component:
    label = rng.choice([None] * 12 + ["X", "Y", "pixel_mm", "é", "", "bad\ud800"])
    k = rng.random()
    if k < 0.7:
        x = rng.choice([0.0, -0.0, 1.0, rng.uniform(-1, 1) * 10 ** rng.randint(-160, 160),
                        rng.uniform(-1, 1) * 10 ** rng.randint(-12, 8), 5e-324, 1e-150,
                        1e150, -1e-150, 1.0000000000000002])
        return num(x, label)
    if k < 0.85:
        return word(rng.choice(["MOSFLM", "XDS", "", "inf", "é ü", "a\tb", "MOSFLM2900",
                                "x\udc80", "ABCDEFG", "ABCDEFGH", "ABCDEFGI", "a\x00",
                                "a convention written out in full"]), label=label)
    return word(rng.choice(["nan", "inf", "-inf"]), kind=rng.choice(["nan", "inf", "-inf"]),
                label=label)


@pytest.mark.skipif(_cstage is None, reason="C accelerator not built: one digest only")
def test_c_and_python_digests_agree():
    rng = random.Random(17)
    lists = [[random_component(rng) for _ in range(rng.randint(0, 9))] for _ in range(5000)]
    got = [(rows.tap_digest(c), _cstage.digest(c)) for c in lists]
    assert all(a == b for a, b in got)
    assert sum(a is None for a, _ in got) > 100 and len({a for a, _ in got}) > 300
    # with another number of bits dropped (a migration's own revision), too
    before = [(rows.tap_digest(c, DROP_BEFORE), _cstage.digest(c, DROP_BEFORE)) for c in lists]
    assert all(a == b for a, b in before)
    assert sum(a != b for (a, _), (b, _) in zip(got, before, strict=True)) > 1000
    for impl in (rows.tap_digest, _cstage.digest):
        for bad in (-1, 53):
            with pytest.raises(ValueError, match="0 to 52 bits"):
                impl([num(1.0)], bad)
    # the stager's own path: numbers read from a common-shape value text
    for raw in ("1 2.5 -0", "1e999 -1e999 0.1", "1e-151 3", "0.000102425 7e149"):
        assert _cstage.digest(_cstage.components(raw)) == rows.tap_digest(
            parse.fast_components(raw))


@pytest.mark.skipif(_cstage is None, reason="C accelerator not built: one digest only")
def test_c_and_python_digests_agree_on_every_corpus_tap(corpus):
    taps = 0
    for path in sorted(corpus.rglob("*.log")) + sorted(corpus.rglob("*.txt")):
        for line in parse.parse_text(path.read_bytes().decode("utf-8", errors="replace")).lines:
            for tap in line.taps:
                assert rows.tap_digest(tap.components) == _cstage.digest(tap.components), \
                    f"{path.name}:{line.line_no} {tap.name}"
                taps += 1
    assert taps > 10000


@pytest.mark.parametrize("digest", IMPLS, ids=lambda f: f.__module__.rsplit(".", 1)[-1])
def test_equal_digests_mean_numbers_within_two_to_the_minus_41(digest):
    assert rows.DIGEST_DROP_BITS == DROP
    assert rows.DIGEST_RTOL == layout.DIGEST_RTOL >= 2.0 ** -41 * 2
    assert layout.digests_settle(1e-12, 0.0)  # the default tolerance keeps the shortcut
    rng = random.Random(3)
    for _ in range(3000):
        x = rng.uniform(-1, 1) * 10 ** rng.randint(-149, 149)
        low = bits(x) & ~((1 << DROP) - 1)
        a, b = from_bits(low | rng.randrange(1 << DROP)), from_bits(low | rng.randrange(1 << DROP))
        assert digest([num(a)]) == digest([num(b)])  # one token
        assert abs(a - b) < 2.0 ** -41 * min(abs(a), abs(b))
        # any change above the dropped bits (mantissa, exponent, sign) is another token
        c = from_bits(bits(a) ^ (1 << rng.randrange(DROP, 64)))
        if c == c and (c == 0 or 1e-150 <= abs(c) <= 1e150):
            assert digest([num(a)]) != digest([num(c)])


def one_token(a: parse.Component, b: parse.Component) -> bool:
    """Whether two digestible components are one token (with their labels), worked
    out apart from the digest code: the same label (or none), and the same special
    value, the same text, or numbers (0 and -0 one number) whose IEEE patterns agree
    above their lowest 11 bits."""
    if a.label != b.label:
        return False
    if a.kind == "num" and b.kind == "num":
        return (a.num == 0 and b.num == 0) or bits(a.num) >> DROP == bits(b.num) >> DROP
    if a.kind == "text" and b.kind == "text":
        return a.text == b.text
    return a.kind == b.kind


@pytest.mark.parametrize("digest", IMPLS, ids=lambda f: f.__module__.rsplit(".", 1)[-1])
def test_one_changed_component_changes_the_digest_exactly_when_it_is_another_token(digest):
    """The mixing step is a bijection, so two lists of one length that differ in one
    component share a digest exactly when that component is one token on both (a
    collision needs two or more differences)."""
    rng = random.Random(5)
    checked = 0
    for _ in range(6000):
        comps = [random_component(rng) for _ in range(rng.randint(1, 9))]
        other = list(comps)
        i = rng.randrange(len(comps))
        other[i] = random_component(rng)
        d1, d2 = digest(comps), digest(other)
        if d1 is not None and d2 is not None:
            assert (d1 == d2) == one_token(comps[i], other[i]), (comps[i], other[i])
            checked += 1
    assert checked > 300


@pytest.mark.parametrize("digest", IMPLS, ids=lambda f: f.__module__.rsplit(".", 1)[-1])
def test_what_a_digest_tells_apart(digest):
    assert digest([num(0.0)]) == digest([num(-0.0)])  # -0 == 0
    assert digest([num(1.0), num(2.0)]) != digest([num(2.0), num(1.0)])  # order
    assert digest([num(1.0)]) != digest([num(1.0), num(1.0)])  # length
    assert digest([]) != digest([num(0.0)])
    assert digest([word("nan", "nan")]) == digest([word("NaN", "nan")])  # nan == nan
    assert digest([word("inf", "inf")]) != digest([word("-inf", "-inf")])
    assert digest([word("nan", "nan")]) != digest([word("inf", "inf")])
    assert digest([num(1.0)]) != digest([num(-1.0)])
    # texts and labels: tokens of spaces of their own (a text's hash and a number's
    # token once shared one space: "MOSFLM2900" and -2.3095767078350033e+80)
    assert digest([word("MOSFLM2900")]) != digest([num(-2.3095767078350033e+80)])
    assert digest([word("MOSFLM")]) == digest([word("MOSFLM")])
    assert digest([word("MOSFLM")]) != digest([word("XDS")])
    assert digest([word("inf")]) != digest([word("inf", "inf")])  # the word, not inf
    assert digest([word("")]) != digest([]) and digest([word("")]) != digest([num(0.0)])
    assert digest([num(1.0, "X")]) != digest([num(1.0, "Y")])  # the label counts
    assert digest([num(1.0, "X")]) != digest([num(1.0)])
    assert digest([num(1.0, "X"), num(2.0, "Y")]) != digest([num(1.0, "Y"), num(2.0, "X")])
    assert digest([num(1.0, "X"), num(2.0, "Y")]) == digest([num(1.0, "X"), num(2.0, "Y")])
    # a label's token is not its text's: X:"Y" against Y:"X"
    assert digest([word("Y", label="X")]) != digest([word("X", label="Y")])
    # text or a label that is no valid UTF-8 (a lone surrogate): no digest
    assert digest([word("a\ud800")]) is None and digest([num(1.0, "\udc80")]) is None
    # a kind the status rules do not know (a row edited by hand): no digest
    assert digest([word("MOSFLM", kind="word")]) is None
    # up to 7 bytes a text is its token: its length counts, then 8 bytes and more hash
    assert digest([word("a")]) != digest([word("a\x00")])
    assert digest([word("ABCDEFG")]) != digest([word("ABCDEFH")])
    assert digest([word("ABCDEFGH")]) != digest([word("ABCDEFGI")])
    assert digest([word("ABCDEFGH" * 3 + "x")]) != digest([word("ABCDEFGH" * 3 + "y")])
    # numbers outside the band of the status rules: no digest, the values decide
    for x in (1e-151, -1e151, 5e-324, 1.7976931348623157e308):
        assert digest([num(1.0), num(x)]) is None
    for x in (1e-150, -1e150):
        assert digest([num(x)]) is not None


# C prints 1, PyTorch 1 ulp more: one digest; and taps whose digests differ
ULP = [("{P}: ulp 1", "{P}: ulp 1.0000000000000002"),
       ("{P}: small 2.5e-7", "{P}: small 2.500000000000001e-07"),
       ("{P}: tiny 1e-200", "{P}: tiny 1.000000000000003e-200"),  # beyond the band
       ("{P}: far 1 2.5", "{P}: far 1 2.7"),
       ("{P}: word MOSFLM", "{P}: word MOSFLM"),
       # a word and a number whose digests were equal before texts had none
       ("{P}: setting MOSFLM2900", "{P}: setting -2.3095767078350033e+80"),
       # 3e-13 apart: one token of 41 bits (two of 44), beyond an rtol of 2.5e-13
       ("{P}: coarse 1.00000000000000", "{P}: coarse 1.0000000000003"),
       # a token's two ends (its lowest 11 bits all 0, all 1): 4.5e-13 apart at 1 and
       # -1, 2.3e-13 (relatively) just below 2
       ("{P}: edge 1.00000000000000", f"{{P}}: edge {from_bits(bits(1.0) + 2047)!r}"),
       ("{P}: negedge -1.00000000000000", f"{{P}}: negedge {-from_bits(bits(1.0) + 2047)!r}"),
       (f"{{P}}: top {from_bits(bits(2.0) - 2048)!r}", f"{{P}}: top {from_bits(bits(2.0) - 1)!r}")]


def test_digests_settle_pairs_only_under_a_tolerance_within_their_reach():
    """The tolerance test the comparison makes once per set (equal digests settle a
    pair only where they mean a plain match), at each edge of its range."""
    low, high = layout.DIGEST_BAND
    below = math.nextafter(rows.DIGEST_RTOL, 0)
    assert layout.digests_settle(rows.DIGEST_RTOL, 0.0)
    assert not layout.digests_settle(below, 0.0)
    assert layout.digests_settle(high, 0.0) and not layout.digests_settle(1e151, 0.0)
    assert layout.digests_settle(1e-12, low) and layout.digests_settle(1e-12, high)
    assert not layout.digests_settle(1e-12, 1e-151)
    assert not layout.digests_settle(1e-12, 1e151)
    assert not layout.digests_settle(0.0, 0.0)


def _edge_and_campaign(url, tmp_path, seed: int, pixels: int = 6):
    """A warehouse of the edge cases and a campaign of ``pixels`` pixels, ingested."""
    _edge_tree(tmp_path, pixels=2)
    write_campaign(tmp_path / "campaign", pixels=pixels, stamps=1, seed=seed)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports", tmp_path / "campaign"]).ok
    return wh


def test_tolerances_below_the_digests_reach_compare_the_values(url, tmp_path):
    capture(tmp_path, "20250101T000000Z", "c", (7, 7), [c for c, _ in ULP])
    capture(tmp_path, "20250101T010000Z", "py", (7, 7), [p for _, p in ULP])
    wh = _edge_and_campaign(url, tmp_path, seed=9, pixels=8)
    with wh.engine.connect() as conn:
        d = dict(conn.execute(text(
            "SELECT t.name || ':' || r.side, t.digest FROM tap t JOIN run r ON r.id = t.run_id "
            "JOIN pixel p ON p.id = r.pixel_id WHERE p.slow = 7 AND p.fast = 7")).all())
    assert d["ulp:c"] == d["ulp:py"] and d["small:c"] == d["small:py"]
    assert d["tiny:c"] is None and d["tiny:py"] is None
    assert d["far:c"] != d["far:py"]
    assert d["word:c"] == d["word:py"] is not None  # one text: one digest
    assert d["setting:c"] != d["setting:py"]  # a word and a number never share one
    for tap in ("coarse", "edge", "negedge", "top"):  # one token each
        assert d[f"{tap}:c"] == d[f"{tap}:py"], tap
    expected = {  # rtol, atol -> ulp, small (1 and 4 ulps of difference)
        (1e-12, 0.0): ("match", "match"),
        (rows.DIGEST_RTOL, 0.0): ("match", "match"),
        (2.5e-13, 0.0): ("match", "match"),  # below the reach of 41 bits, not of 44
        (1e-15, 0.0): ("match", "match"),  # below the digests' reach: the values decide
        (4e-16, 0.0): ("match", "print_precision"),
        (1e-16, 0.0): ("print_precision", "print_precision"),
        (0.0, 0.0): ("print_precision", "print_precision"),
        (1e-12, 1e200): ("match", "match"),  # atol beyond the band: the values decide
    }
    for (rtol, atol), (ulp, small) in expected.items():
        full, quick = _both(wh, pixels=[(7, 7)], rtol=rtol, atol=atol)
        for found in (full, quick):
            diff = wh.diff(found.attrs["set_id"])
            status = dict(zip(diff.tap, diff.status, strict=True))
            assert (status["ulp"], status["small"]) == (ulp, small), (rtol, atol)
            assert status["tiny"] == ("match" if rtol >= 1e-13 or atol else "print_precision")
            assert status["far"] == ("match" if atol else "diverged")
            assert status["word"] == "match" and status["setting"] == "diverged"
            assert status["coarse"] == ("match" if rtol >= 3e-13 or atol else "diverged")
            for tap, apart in (("edge", 4.55e-13), ("negedge", 4.55e-13), ("top", 2.28e-13)):
                assert status[tap] == ("match" if rtol >= apart or atol else "diverged"), tap
        stored, view = stored_flags_and_view(wh, wh.diverge(rtol=rtol, atol=atol).attrs["set_id"])
        assert stored == view, (rtol, atol)
        full, quick = _both(wh, rtol=rtol, atol=atol)  # every pixel: the same answers
        assert _rows(wh, full.attrs["set_id"]).equals(_rows(wh, quick.attrs["set_id"]))


STALE_DIGESTS = "taps whose digest is not their values' (run tracedb db rekey)"


def _down_and_up(url: str, revision: str, query: str, written: list, between=None):
    """Downgrade the warehouse to ``revision`` (``between`` sees ``query``'s rows
    there), upgrade it again: ``query`` gives ``written`` and ``db check`` finds no
    stale digest. Returns the warehouse, open."""
    engine = db.make_engine(url)
    with engine.begin() as conn:
        command.downgrade(db._alembic_config(conn), revision)
    if between is not None:
        with engine.connect() as conn:
            between(conn.execute(text(query)).all())
    db.upgrade(engine, "head")
    with engine.connect() as conn:
        assert conn.execute(text(query)).all() == written
    engine.dispose()
    wh = tracedb.connect(url)
    assert wh.check().set_index("check_name").problems[STALE_DIGESTS] == 0
    return wh


def test_upgrade_computes_the_digests_ingest_writes_and_check_finds_a_stale_one(url, tmp_path):
    wh = _edge_and_campaign(url, tmp_path, seed=2)
    query = "SELECT id, digest FROM tap ORDER BY id"
    with wh.engine.connect() as conn:
        written = conn.execute(text(query)).all()
    assert sum(d is not None for _, d in written) > 500
    wh.close()
    wh = _down_and_up(url, "0015", query, written)
    with wh.engine.begin() as conn:  # a value changed by hand: its tap's digest is stale
        conn.execute(text("UPDATE value SET num = num * 2 WHERE num > 0.5 AND run_id = "
                          "(SELECT MIN(run_id) FROM value WHERE num > 0.5) AND idx = 0"))
    problems = wh.check().set_index("check_name").problems
    assert problems[STALE_DIGESTS] >= 1
    wh.rekey()
    assert wh.check().problems.sum() == 0


def digests_of_values(wh, drop: int) -> dict[int, int | None]:
    """{tap id: the Python digest of its value rows with ``drop`` bits of each number
    left out}, for every tap with value rows."""
    with wh.engine.connect() as conn:
        found = conn.execute(text(
            "SELECT t.id, v.label, v.num, v.text, v.kind FROM tap t JOIN value v "
            "ON v.run_id = t.run_id AND v.key_id = t.key_id ORDER BY t.id, v.idx")).all()
    comps: dict[int, list] = {}
    for tap_id, *component in found:
        comps.setdefault(tap_id, []).append(tuple(component))
    return {i: rows.tap_digest(c, drop) for i, c in comps.items()}


def test_upgrade_gives_labelled_and_text_taps_the_digests_ingest_writes(url, tmp_path):
    """0017: the labelled and text taps a warehouse of 0016 left without a digest
    get the one ingest writes now; the downgrade takes them away again."""
    write_campaign(tmp_path / "campaign", pixels=6, stamps=1, seed=4)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "campaign"]).ok
    query = ("SELECT t.id, t.digest, EXISTS (SELECT 1 FROM value v WHERE v.run_id = t.run_id "
             "AND v.key_id = t.key_id AND (v.label IS NOT NULL OR v.kind = 'text')) "
             "FROM tap t ORDER BY t.id")
    with wh.engine.connect() as conn:
        written = conn.execute(text(query)).all()
    worded = [d for _, d, w in written if w]
    assert len(worded) > 30 and all(d is not None for d in worded)
    before_0018 = digests_of_values(wh, DROP_BEFORE)
    wh.close()

    def at_0016(before):
        assert [d for _, d, w in before if w] == [None] * len(worded)
        # the other taps keep the digests of 0016 (numbers to 44 bits)
        assert [(i, d) for i, d, w in before if not w] == [
            (i, before_0018.get(i, d)) for i, d, w in written if not w]

    _down_and_up(url, "0016", query, written, at_0016)


def test_upgrade_digests_numbers_to_41_bits_and_the_downgrade_to_44(url, tmp_path):
    """0018: every digest is its values' with 41 bits of each number (as ingest writes
    it); the downgrade gives each tap 0017's digest (44 bits) again."""
    wh = _edge_and_campaign(url, tmp_path, seed=6)
    query = "SELECT id, digest FROM tap ORDER BY id"
    with wh.engine.connect() as conn:
        written = conn.execute(text(query)).all()
    now, before = digests_of_values(wh, DROP), digests_of_values(wh, DROP_BEFORE)
    wh.close()
    assert all(now[i] == d for i, d in written if i in now)  # ingest writes 41 bits
    assert sum(now[i] != before[i] for i in now) > 300

    def at_0017(stored):
        assert stored == [(i, before.get(i, d)) for i, d in written]

    _down_and_up(url, "0017", query, written, at_0017)


def test_runs_of_one_shape_pair_their_taps_by_their_digest_lists(url, tmp_path, monkeypatch):
    """Runs of one shape are compared by their digest lists (run.tap_digests, 0019):
    a tap pair is left out only where both digests are there and equal. Two taps
    without a digest (numbers beyond the band, 0 in the lists) are compared by
    their values, so 1e-200 against 3e-200 still diverges; so do a drift and a
    changed word, and whatever matches, matches, as the full comparison says."""
    c_lines = ["{P}: a 1.5 2.5", "{P}: tiny 1e-200", "{P}: word MOSFLM", "{P}: b 7"]
    drifts = {(1, 1): ("{P}: tiny 1e-200", "{P}: tiny 3e-200"),
              (1, 2): ("{P}: a 1.5 2.5", "{P}: a 1.5 2.6"),
              (1, 3): ("{P}: word MOSFLM", "{P}: word XDS")}
    for fast in range(1, 7):
        py_lines = [drifts.get((1, fast), (None, None))[1] if line == drifts.get(
            (1, fast), (None,))[0] else line for line in c_lines]
        capture(tmp_path, "20250101T000000Z", "c", (1, fast), c_lines)
        capture(tmp_path, "20250101T010000Z", "py", (1, fast), py_lines)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).ok
    seen = []

    def spy(conn, set_id, digests):
        seen.append(listed_pairs(conn, set_id, digests))
        return seen[-1]

    monkeypatch.setattr(engine, "listed_pairs", spy)
    full, quick = _both(wh)
    (pairs, others), = seen  # the mismatch-only set's
    assert others == [] and len({c for c, _k in pairs}) == 6  # every pair by its lists
    assert len(pairs) == 6 + 2  # each run's tiny (no digest), the drift, the word
    for found in (full, quick):
        pixels = zip(found.pixel_slow, found.pixel_fast, strict=True)
        status = dict(zip(pixels, found.status, strict=True))
        assert status == {(1, 1): "diverged", (1, 2): "diverged", (1, 3): "diverged",
                          (1, 4): "match", (1, 5): "match", (1, 6): "match"}
        assert set(found.first_tap.dropna()) == {"tiny", "a", "word"}
    stored, view = stored_flags_and_view(wh, quick.attrs["set_id"])
    assert stored == view and len(stored) == 3
    # a run without a list and one whose list is not its taps' (db check reports
    # it), or shapes fewer comparisons share than LISTED_MIN: looked up, same answers
    with wh.engine.begin() as conn:
        runs = [r for (r,) in conn.execute(text("SELECT id FROM run ORDER BY id"))]
        conn.execute(text("UPDATE run SET tap_digests = NULL WHERE id = :i"), {"i": runs[0]})
        conn.execute(text("UPDATE run SET tap_digests = :d WHERE id = :i"),
                     {"i": runs[-1], "d": bytes(8)})
    for fewest, looked_up in ((engine.LISTED_MIN, 2), (7, 6)):
        monkeypatch.setattr(engine, "LISTED_MIN", fewest)
        seen.clear()
        again = wh.diverge()
        (pairs, others), = seen
        assert len(others) == looked_up and len({c for c, _k in pairs}) == 6 - looked_up
        assert again[["pixel_fast", "status", "first_tap"]].equals(
            quick[["pixel_fast", "status", "first_tap"]])
    # below the digests' reach nothing is listed: every comparison is looked up
    seen.clear()
    wh.diverge(rtol=1e-15)
    (pairs, others), = seen
    assert pairs == [] and len(others) == 6


def test_upgrade_gives_each_run_the_digest_list_ingest_writes(url, tmp_path):
    """0019: a warehouse of 0018 gets each run's digest list as ingest writes it."""
    wh = _edge_and_campaign(url, tmp_path, seed=8)
    query = "SELECT id, tap_count, tap_digests FROM run ORDER BY id"
    with wh.engine.connect() as conn:
        written = [(i, n, bytes(d)) for i, n, d in conn.execute(text(query)).all()]
    wh.close()
    assert len(written) > 12 and all(len(d) == 8 * n for _i, n, d in written)
    wh = _down_and_up(url, "0018", query, written)
    assert wh.check().problems.sum() == 0


def test_a_short_text_or_label_is_its_own_token():
    """Up to 7 UTF-8 bytes a text's token holds its length and bytes: two texts share
    one exactly when they are the same text (no hash, so no collision to construct);
    texts and labels never share a token."""
    rng = random.Random(11)
    alphabet = ["a", "b", "X", "\x00", "é", " ", "_", "0"]
    texts = {"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
             for _ in range(20000)}
    texts = [t for t in texts if len(t.encode()) <= rows.DIGEST_TEXT_EXACT]
    tokens = [rows._text_token(t, rows.DIGEST_TEXT_TAG) for t in texts]
    assert len(texts) > 5000

    def text_of(token: int) -> str:  # the text back from its token alone
        n = (token >> 56) & 7
        return (token & ((1 << 56) - 1)).to_bytes(n, "little").decode()

    assert [text_of(t) for t in tokens] == texts  # so no two texts share a token
    labels = {rows._text_token(t, rows.DIGEST_LABEL_TAG) for t in texts}
    assert not labels & set(tokens)
    assert all(t >= 1 << 57 for t in [*tokens, *labels])  # above every number's token
