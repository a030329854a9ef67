"""Comparisons that store only what did not match give the same answers as full ones;
value rows keyed by pairing key survive alias changes and upgrades (both backends)."""

from __future__ import annotations

import pandas as pd
import pytest
from alembic import command
from sqlalchemy import text

import tracedb
from benchmarks.generate import write_campaign
from tracedb.store import engine as db
from tracedb.store.queries import connection

from .test_diverge import capture


def stored_flags_and_view(wh, set_id):
    """The keys a mismatch-only set flagged (tap_flag), and those the plain
    mismatch_key view gives for the same set: equal when the flag steps are right."""
    with connection(wh.db.reads(set_id)) as conn:
        stored = set(conn.execute(text(
            "SELECT comparison_id, key_id FROM tap_flag WHERE set_id = :s"), {"s": set_id}))
        view = set(conn.execute(text(
            "SELECT DISTINCT comparison_id, key_id FROM mismatch_key WHERE set_id = :s"),
            {"s": set_id}))
    return stored, view

SUMMARY = ["pixel_slow", "pixel_fast",
           "status", "compared", "matched", "diverged", "print_precision",
           "accepted", "missing_ref", "missing_cand", "first_tap", "first_ref_line",
           "first_cand_line", "first_ratio", "first_unit_hint", "first_suspect_side"]
ROW = ["comparison", "ref_tap_id", "cand_tap_id", "key_name", "loop_key", "occurrence",
       "status", "n_diverged", "n_print_precision", "max_abs_delta", "max_rel_delta",
       "min_ratio", "max_ratio", "hint_ref_unit", "hint_cand_unit", "suspect", "suspect_basis",
       "accepted_reason"]

# Each pair is (C line, PyTorch line); the comment says what the full rules decide.
EDGE = [
    ("{P}: same 1.5 2.5", "{P}: same 1.5 2.5"),  # match
    ("{P}: noise 1.000000000000001", "{P}: noise 1.0"),  # match (within rtol 1e-12)
    ("{P}: signs inf", "{P}: signs -inf"),  # diverged
    ("{P}: num_text 1", "{P}: num_text one"),  # diverged
    ("{P}: longer 1 2", "{P}: longer 1 2 3"),  # diverged: candidate has more components
    ("{P}: shorter 1 2 3", "{P}: shorter 1 2"),  # diverged
    ("{P}: word MOSFLM", "{P}: word MOSFLM"),  # match (strings)
    ("{P}: nan_pair nan", "{P}: nan_pair nan"),  # match
    ("{P}: zeros -0 0", "{P}: zeros 0 -0.0"),  # match
    ("{P}: inf_num inf", "{P}: inf_num 1e308"),  # diverged
    ("{P}: printed 0.123457", "{P}: printed 0.1234567"),  # print_precision
    ("{P}: far_m 0.001", "{P}: far_m 1"),  # diverged, unit hint m/mm
    ("{P}: lab_swap X:0.1 Y:0.2", "{P}: lab_swap Y:0.1 X:0.2"),  # diverged: labels count
    ("{P}: lab_order X:0.1 Y:0.2", "{P}: lab_order Y:0.2 X:0.1"),  # match: paired by label
    ("{P}: lab_other X:0.1 Z:0.2", "{P}: lab_other X:0.1 W:0.2"),  # diverged: Z, W one side
    ("{P}: lab_twice a:1 a:2 b:3", "{P}: lab_twice b:3 a:1 a:2"),  # match: the k-th a
    ("{P}: only_c 1", None),  # missing_cand
    (None, "{P}: only_py 1"),  # missing_ref
]


def _edge_tree(root, pixels=3):
    for p in range(pixels):
        c = [c for c, _ in EDGE if c]
        py = [py for _, py in EDGE if py]
        capture(root, "20250101T000000Z", "c", (p, p), c)
        capture(root, "20250101T010000Z", "py", (p, p), py)


def _rows(wh, set_id):
    with connection(wh.db.reads(set_id)) as conn:
        df = pd.DataFrame(conn.execute(text(
            "SELECT c.grp AS comparison, tr.* FROM tap_result tr "
            "JOIN comparison c ON c.id = tr.comparison_id WHERE tr.set_id = :s"),
            {"s": set_id}).mappings().all())
    return df[df.status != "match"][ROW].sort_values(
        ["comparison", "key_name", "loop_key", "occurrence"]).reset_index(drop=True)


def _both(wh, **kw):
    full = wh.diverge(detail="all", **kw)
    quick = wh.diverge(detail="mismatch", **kw)
    return full, quick


def test_mismatch_only_sets_answer_like_full_ones(url, tmp_path):
    write_campaign(tmp_path / "campaign", pixels=24, stamps=2, seed=3)
    _edge_tree(tmp_path / "edge")
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "campaign", tmp_path / "edge"]).ok
    for kw in ({}, {"strict": True}, {"rtol": 1e-3, "atol": 1e-9}):
        full, quick = _both(wh, **kw)
        assert len(full) == 27
        pd.testing.assert_frame_equal(full[SUMMARY], quick[SUMMARY])
        pd.testing.assert_frame_equal(_rows(wh, full.attrs["set_id"]),
                                      _rows(wh, quick.attrs["set_id"]))
    # accepted divergences are judged alike
    wh.accept("far_m", "known unit difference")
    full, quick = _both(wh)
    assert quick.accepted.sum() > 0
    pd.testing.assert_frame_equal(full[SUMMARY], quick[SUMMARY])
    pd.testing.assert_frame_equal(_rows(wh, full.attrs["set_id"]),
                                  _rows(wh, quick.attrs["set_id"]))
    # the mismatch set holds no matching taps; completing it gives the full set
    with connection(wh.db.reads(quick.attrs["set_id"])) as conn:
        statuses = set(conn.execute(text("SELECT DISTINCT status FROM tap_result "
                                         "WHERE set_id = :s"), {"s": quick.attrs["set_id"]})
                       .scalars())
    assert "match" not in statuses and "diverged" in statuses
    a = wh.diff(full.attrs["set_id"])
    b = wh.diff(quick.attrs["set_id"])
    assert len(b) == len(a) > 27 * 60
    pd.testing.assert_frame_equal(a.drop(columns=["comparison_id"]),
                                  b.drop(columns=["comparison_id"]))


def test_edge_cases_are_judged_by_the_full_rules(url, tmp_path):
    _edge_tree(tmp_path, pixels=1)
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    s = wh.diverge().iloc[0]
    assert (s.compared, s.diverged, s.print_precision, s.missing_cand, s.missing_ref) == (
        16, 8, 1, 1, 1)
    assert s.matched == 7
    assert s.first_tap == "signs"
    status = {r.tap: r.status for r in wh.diff(wh.diverge().attrs["set_id"]).itertuples()}
    assert status["noise"] == status["word"] == "match"
    assert status["signs"] == status["num_text"] == "diverged"
    assert status["nan_pair"] == status["zeros"] == "match"
    assert status["printed"] == "print_precision"
    assert status["longer"] == status["shorter"] == status["inf_num"] == "diverged"
    assert status["lab_swap"] == status["lab_other"] == "diverged"
    assert status["lab_order"] == status["lab_twice"] == "match"


def test_aliases_that_swap_keys_move_the_values_with_their_taps(url, tmp_path):
    c = ["{P}: a 1", "{P}: b 2 3", "{P}: c 4"]
    py = ["{P}: a 1", "{P}: b 2 3", "{P}: c 5"]
    capture(tmp_path, "20250101T000000Z", "c", (1, 1), c)
    capture(tmp_path, "20250101T010000Z", "py", (1, 1), py)
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    before = wh.diverge().iloc[0]
    assert (before.compared, before.diverged, before.first_tap) == (3, 1, "c")
    taps_before = {r.name: r.value for r in wh.taps(int(before.ref_run)).itertuples()}
    # every a becomes b and every b becomes a: within each run the two taps swap keys
    wh.add_alias("a", "b")
    wh.add_alias("b", "a")
    assert wh.check().problems.sum() == 0
    taps_after = {r.name: r.value for r in wh.taps(int(before.ref_run)).itertuples()}
    assert taps_after == taps_before == {"a": "1", "b": "2 3", "c": "4"}
    after = wh.diverge().iloc[0]
    assert (after.compared, after.diverged, after.first_tap) == (3, 1, "c")
    diff = wh.diff(wh.diverge().attrs["set_id"])
    assert {(r.tap, r.ref_name, r.ref_value, r.status) for r in diff.itertuples()} >= {
        ("b", "a", "1", "match"), ("a", "b", "2 3", "match")}
    assert wh.check().problems.sum() == 0


def test_alias_on_one_side_pairs_taps_and_the_quick_pass_follows(url, tmp_path):
    capture(tmp_path, "20250101T000000Z", "c", (1, 1), ["{P}: a 1", "{P}: c 4"])
    capture(tmp_path, "20250101T010000Z", "py", (1, 1), ["{P}: a 1", "{P}: cc 5"])
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    s = wh.diverge().iloc[0]
    assert (s.compared, s.missing_cand, s.missing_ref, s.diverged) == (1, 1, 1, 0)
    wh.add_alias("cc", "c")  # only the PyTorch trace has a tap named cc
    s = wh.diverge().iloc[0]
    assert (s.compared, s.missing_cand, s.missing_ref, s.diverged, s.first_tap) == (
        2, 0, 0, 1, "c")
    assert wh.check().problems.sum() == 0


def test_flagged_taps_may_still_match_under_the_full_rule(url, tmp_path):
    """The quick pass bounds |ref - cand| by atol + rtol*|ref|; the rule uses the larger
    magnitude. A tap between the two bounds is flagged, then found to match."""
    capture(tmp_path, "20250101T000000Z", "c", (1, 1), ["{P}: up 1", "{P}: down 1.9"])
    capture(tmp_path, "20250101T010000Z", "py", (1, 1), ["{P}: up 1.9", "{P}: down 1"])
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    s = wh.diverge(rtol=0.5)  # |0.9| <= 0.5 * 1.9: both match
    assert (s.iloc[0].compared, s.iloc[0].matched, s.iloc[0].diverged) == (2, 2, 0)
    with connection(wh.db.reads(s.attrs["set_id"])) as conn:
        flagged = conn.execute(text(
            "SELECT t.key_name FROM tap_flag f JOIN tap_key t ON t.id = f.key_id "
            "WHERE f.set_id = :s"), {"s": s.attrs["set_id"]}).scalars().all()
        stored = conn.execute(text("SELECT count(*) FROM tap_result WHERE set_id = :s"),
                              {"s": s.attrs["set_id"]}).scalar()
    assert flagged == ["up"] and stored == 0  # only 1 vs 1.9 needed the full rule
    s = wh.diverge(rtol=0.4).iloc[0]  # |0.9| > 0.4 * 1.9: both diverge
    assert (s.matched, s.diverged, s.first_tap) == (0, 2, "up")


def test_complete_after_an_alias_change_is_a_fresh_full_comparison(url, tmp_path):
    capture(tmp_path, "20250101T000000Z", "c", (1, 1), ["{P}: a 1", "{P}: c 4"])
    capture(tmp_path, "20250101T010000Z", "py", (1, 1), ["{P}: a 1", "{P}: cc 5"])
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    set_id = wh.diverge().attrs["set_id"]
    wh.add_alias("cc", "c")
    diff = wh.diff(set_id)  # completes the older set with today's keys, whole
    assert sorted(zip(diff.tap, diff.status, strict=True)) == [
        ("a", "match"), ("c", "diverged")]


def test_upgrade_from_0004_keeps_values_and_pairs_them(url):
    engine = db.make_engine(url)
    db.upgrade(engine, "0004")
    with engine.begin() as conn:
        q = conn.execute
        q(text("INSERT INTO command_log (id, started_at, command, argv, tracedb_version, "
               "status) VALUES (1, 't', 'ingest', '[]', 'x', 'ok')"))
        q(text("INSERT INTO bundle (id, directory, path, created_at, updated_at) "
               "VALUES (1, '/b', 'b', 't', 't')"))
        q(text("INSERT INTO source_blob (sha256, size, compression, content) "
               "VALUES ('h', 1, 'zlib', :c)"), {"c": b"x"})
        for rid, side in ((1, "c"), (2, "py")):
            q(text("INSERT INTO source_file (id, bundle_id, path, abs_path, sha256, version, "
                   "size, line_count, trace_lines, parsed_lines, quarantined_lines, parser, "
                   "encoding, loaded_at) VALUES (:i, 1, 'f', :p, 'h', 1, 1, 2, 2, 2, 0, 'p', "
                   "'utf-8', 't')"), {"i": rid, "p": f"/b/{side}.log"})
            q(text("INSERT INTO run (id, source_file_id, bundle_id, segment, side, tap_count) "
                   "VALUES (:i, :i, 1, 1, :s, 2)"), {"i": rid, "s": side})
            for seq, (name, vals) in enumerate([("x", ["1", "2"]),
                                                ("y", ["3" if side == "c" else "4"])], 1):
                tid = (rid << 20) + seq
                q(text("INSERT INTO tap (id, run_id, seq, line_no, channel, name, loop_key, "
                       "occurrence, shape, n_components, value_text, key_name, "
                       "key_occurrence) VALUES (:t, :r, :s, :s, '', :n, '', 1, 'vector', "
                       ":k, :v, :n, 1)"),
                  {"t": tid, "r": rid, "s": seq, "n": name, "k": len(vals),
                   "v": " ".join(vals)})
                for idx, v in enumerate(vals):
                    q(text("INSERT INTO value (tap_id, idx, num, text, kind, digits, half_ulp) "
                           "VALUES (:t, :i, :n, :x, 'num', 1, 0.5)"),
                      {"t": tid, "i": idx, "n": float(v), "x": v})
    db.upgrade(engine, "head")
    engine.dispose()
    wh = tracedb.connect(url)
    assert wh.check().problems.sum() == 0
    assert [r.value for r in wh.taps(1).itertuples()] == ["1 2", "3"]
    diff = wh.diff_runs(1, 2)
    assert dict(zip(diff.tap, diff.status, strict=True)) == {"x": "match", "y": "diverged"}
    wh.close()  # its session's temporary views read the tables the downgrade remakes
    engine = db.make_engine(url)
    with engine.begin() as conn:  # and back: the values return to tap-keyed rows
        command.downgrade(db._alembic_config(conn), "0004")
    assert db.current_revision(engine) == "0004"
    with engine.connect() as conn:
        assert conn.execute(text(
            "SELECT t.name, count(*), sum(v.num) FROM value v JOIN tap t ON t.id = v.tap_id "
            "GROUP BY t.name ORDER BY t.name")).all() == [("x", 4, 6.0), ("y", 2, 7.0)]
    engine.dispose()


@pytest.mark.parametrize("detail", ["sideways", ""])
def test_detail_is_checked(sqlite_url, tmp_path, detail):
    _edge_tree(tmp_path, pixels=1)
    wh = tracedb.connect(sqlite_url)
    wh.ingest([tmp_path / "reports"])
    with pytest.raises(ValueError, match="detail"):
        wh.diverge(detail=detail)


def test_flags_equal_the_mismatch_key_view_and_shapes_stay_fresh(url, tmp_path):
    """compare_flag shares the missing-tap work between comparisons of runs with the
    same shapes; what it stores equals the plain view, and rekey keeps shapes fresh."""
    write_campaign(tmp_path / "campaign", pixels=16, stamps=1, seed=5)
    _edge_tree(tmp_path / "edge")
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "campaign", tmp_path / "edge"]).ok

    def flags_and_view():
        stored, view = stored_flags_and_view(wh, wh.diverge().attrs["set_id"])
        with wh.engine.connect() as conn:
            shapes = conn.execute(text("SELECT count(DISTINCT shape_sig), count(*) FROM run")
                                  ).one()
        return stored, view, shapes

    stored, view, (n_shapes, n_runs) = flags_and_view()
    assert stored == view and len(stored) > 16
    assert n_shapes < n_runs  # shapes repeat: the missing-tap work is shared
    wh.add_alias("only_py", "only_c")  # reshapes the edge runs
    stored, view, _ = flags_and_view()
    assert stored == view
    checks = wh.check().set_index("check_name").problems
    assert checks.sum() == 0
    assert "runs whose shape signature or digest list is stale (run tracedb db rekey)" in checks
    with wh.engine.begin() as conn:  # a stale shape is reported
        conn.execute(text("UPDATE run SET shape_sig = 'x' WHERE id = (SELECT MIN(id) FROM run)"))
    checks = wh.check().set_index("check_name").problems
    assert checks["runs whose shape signature or digest list is stale (run tracedb db rekey)"] == 1
    with wh.engine.begin() as conn:  # and so is a stale digest list (its taps rotated)
        run_id, digests = conn.execute(text(
            "SELECT id, tap_digests FROM run WHERE tap_count > 2 ORDER BY id DESC")).first()
        digests = bytes(digests)
        assert digests[8:] + digests[:8] != digests
        conn.execute(text("UPDATE run SET tap_digests = :d WHERE id = :i"),
                     {"i": run_id, "d": digests[8:] + digests[:8]})
    checks = wh.check().set_index("check_name").problems
    assert checks["runs whose shape signature or digest list is stale (run tracedb db rekey)"] == 2
    wh.rekey()
    assert wh.check().problems.sum() == 0
