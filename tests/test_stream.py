"""Large files load in chunks (ingest.stream); the warehouse holds the same rows as
when they are read whole (both backends)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

import tracedb
from tracedb.ingest import files, stream
from tracedb.store.layout import shape_signature

from .conftest import write

C_BLOCK = """\
TRACE_C_TAP5: pixel {s} {f}
TRACE_C_PHI phi_tic=0 phi_deg=0 k_frac=-0.59 F_latt=1.35
TRACE_C_PHI: phi_tic=1 k_frac=-0.5{i}
\tl_frac=0.25
TRACE_C_HKL_BOUNDS=1 ./nanoBragg \\
  -cell 100 100 100 \\
TRACE_SIM_F_LATT: pixel=({f},{s}) Na=5.0 Nb=5.0 Nc={i}.0
  h_mean=-6.576005289140565e+08 k_mean=5.128313254643336e+10
  = 4.267002487183e+01
TRACE: Intensity calculation chain:
  normalized * r_e^2 * fluence
  = 8.534004974365e+01 * 7.940792725906e-30 * 1.259320175747e+29
  = 4.267002487183e+01
TRACE_C: I_pixel_final 1.5e-1{i}
TRACE_PY: side_switch {i} 2
TRACE_C:Rx=[1 0 0; 0 1 -0; 0 0 1]
Tracing pixel ({s}, {f}) again
TRACE_C:beam_center_m=X:0.000102425 Y:0.000102425 pixel_mm:0.05
TRACE_C: fdet 0 0 1
TRACE_C: I_pixel_final 2e-1{i}
"""


def c_trace() -> bytes:
    """Geometry before the first marker, then markers making several runs that come
    back in later chunks, per-phi records, continuation lines, quarantined lines, a
    side switch, an invalid byte, a NUL and no line end at the end."""
    head = ("nanoBragg nanocrystal diffraction simulator - test\n"
            "TRACE_C:distance_m=0.5\nTRACE_C:detector_convention=MOSFLM\n"
            "TRACE_C: fdet 0 0 1\n  not a continuation: indented after a common line\n")
    pixels = [(1, 2), (3, 4), (1, 2), (5, 6), (3, 4)]
    body = "".join(C_BLOCK.format(s=s, f=f, i=i % 10) for i, (s, f) in
                   enumerate(pixels * 3))
    return (head + body).encode() + b"TRACE_C: bad \xff byte 1\nTRACE_C: nul \0 2\n" \
        + b"TRACE_C: last 7"


def py_trace() -> str:
    lines = [f"TRACE_PY: v{i % 7} {i}.5 {i}e-3\n" for i in range(120)]
    lines.insert(40, "TRACE_PY_PHI phi_tic=3 phi_deg=3.000000000000000e-02 F_latt=1e0\n")
    lines.insert(41, "TRACE_PY: = unnamed\n")
    return "".join(lines)


def phi_records() -> str:
    return "".join(f"TRACE_C_PHI phi_tic={t} phi_deg={t * 0.01:.15g} k_frac=-0.59 "
                   f"F_latt={t}.25\n" for t in range(150))


@pytest.fixture
def bundle(tmp_path):
    root = tmp_path / "reports" / "i" / "phase_a" / "20250101T000000Z"
    write(root / "c_traces" / "markers.log", c_trace())
    write(root / "c_traces" / "pixel_9_9.log", phi_records())
    write(root / "c_traces" / "pixel_-1_2.log", "TRACE_C: x 1\n")  # unusable pixel name
    write(root / "py_traces" / "pixel_7_8.log", py_trace())
    write(root / "py_traces" / "pixel_7_8_metadata.json",
          '{"pixel_slow": 7, "pixel_fast": 8, "timestamp_utc": "20250101T010203Z"}')
    write(root / "commands.txt", "./nanoBragg -trace_pixel 1 2\n")
    # a second bundle with no marker at all and a bad marker pixel
    other = tmp_path / "reports" / "i" / "phase_a" / "20250102T000000Z"
    write(other / "c_traces" / "pixel_4_4.log", "TRACE_C: a 1\n" * 30 + "TRACE_C: b 2 3\n")
    write(other / "c_traces" / "bad.log",
          "TRACE_C: a 1\nTRACE_C_TAP5: pixel -3 2\nTRACE_C: a 2\nTRACE_C_TAP5: pixel 4 4\n"
          "TRACE_C: a 3\n")
    return tmp_path / "reports"


def dump(url: str) -> dict:
    """What a user could see in the warehouse, without ids (keys by their names)."""
    queries = {
        "source_file": "SELECT path, abs_path, sha256, version, size, line_count, trace_lines, "
                       "parsed_lines, quarantined_lines, parser, encoding, metadata_path, "
                       "continuation_lines FROM source_file ORDER BY path",
        "blob": "SELECT sha256, size, compression, content FROM source_blob ORDER BY sha256",
        "bundle": "SELECT path, directory FROM bundle ORDER BY path",
        "run": "SELECT f.path, r.segment, r.side, p.slow, p.fast, r.pixel_source, r.stamp, "
               "r.path_stamp, r.meta_stamp, r.meta_time, r.metadata_json, r.tap_count, "
               "r.first_line, r.last_line FROM run r JOIN source_file f "
               "ON f.id = r.source_file_id LEFT JOIN pixel p ON p.id = r.pixel_id "
               "ORDER BY f.path, r.segment",
        "tap": "SELECT f.path, r.segment, t.seq, t.line_no, t.channel, t.name, t.loop_key, "
               "t.occurrence, t.unit, t.shape, t.n_components, t.value_text, t.key_name, "
               "t.key_occurrence, k.channel, k.key_name, k.loop_key, k.key_occurrence "
               "FROM tap t JOIN run r ON r.id = t.run_id JOIN source_file f "
               "ON f.id = r.source_file_id JOIN tap_key k ON k.id = t.key_id "
               "ORDER BY f.path, r.segment, t.seq",
        "value": "SELECT f.path, r.segment, t.seq, v.idx, v.label, v.num, v.text, v.kind, "
                 "v.digits, v.half_ulp FROM value v JOIN tap t ON t.run_id = v.run_id "
                 "AND t.key_id = v.key_id JOIN run r ON r.id = v.run_id JOIN source_file f "
                 "ON f.id = r.source_file_id ORDER BY f.path, r.segment, t.seq, v.idx",
        "quarantine": "SELECT f.path, q.line_no, q.reason, q.text FROM quarantine q "
                      "JOIN source_file f ON f.id = q.source_file_id ORDER BY f.path, q.line_no",
        "tap_key": "SELECT channel, key_name, loop_key, key_occurrence FROM tap_key "
                   "ORDER BY channel, key_name, loop_key, key_occurrence",
        "pixel": "SELECT slow, fast FROM pixel ORDER BY slow, fast",
        "shapes": "SELECT f.path, r.segment, r.shape_sig FROM run r JOIN source_file f "
                  "ON f.id = r.source_file_id ORDER BY f.path, r.segment",
        "run_keys": "SELECT t.run_id, t.key_id, t.n_components, t.digest FROM tap t",
    }
    wh = tracedb.connect(url)
    with wh.engine.connect() as conn:
        out = {k: [tuple(r) for r in conn.execute(text(q))] for k, q in queries.items()}
    wh.engine.dispose()
    out["blob"] = [r[:3] + (files.decompress_blob(r[2], bytes(r[3])),) for r in out["blob"]]
    # shape signatures hash key ids, which follow the order keys were first met:
    # compare which runs share a shape, and that each is its own taps' signature,
    # and its digest list its taps' digests in key order (8 bytes each, 0 for none)
    by_run: dict = {}
    for run_id, key_id, n, digest in out.pop("run_keys"):
        by_run.setdefault(run_id, []).append((key_id, n, digest))
    with wh.engine.connect() as conn:
        sigs = {i: (sig, bytes(d)) for i, sig, d in conn.execute(text(
            "SELECT id, shape_sig, tap_digests FROM run")).all()}
    for rid, (sig, digests) in sigs.items():
        taps = sorted(by_run.get(rid, []))
        assert sig == shape_signature((k, n) for k, n, _d in taps)
        assert digests == b"".join((d or 0).to_bytes(8, "big", signed=True) for *_k, d in taps)
        assert len(digests) == 8 * len(taps)
    groups: dict = {}
    for path, segment, sig in out.pop("shapes"):
        groups.setdefault(sig, []).append((path, segment))
    out["same_shape"] = sorted(groups.values())
    return out


def _notes(res) -> list:
    return sorted((n.level, n.path, n.line, n.message) for n in res.notes)


@pytest.mark.parametrize(("workers", "chunk"), [(0, 40), (2, 40), (0, 2000)])
def test_chunked_load_stores_what_a_whole_file_load_stores(url, tmp_path, bundle,
                                                           monkeypatch, workers, chunk):
    """Chunks of about 40 bytes (a line or two: records, runs and markers cross chunk
    boundaries) and of 2000 (several runs of the same tap names in one chunk)."""
    _same_rows(url, tmp_path, bundle, monkeypatch, workers, chunk)


@pytest.mark.parametrize(("workers", "chunk"), [(0, 40), (2, 300)])
def test_counts_and_key_ids_beyond_their_bounds_give_the_same_rows(
        url, tmp_path, bundle, monkeypatch, workers, chunk):
    """With bounds of a few entries, runs keep their occurrence counts in the spill
    database (read and written back chunk by chunk), the memos are emptied again and
    again, and the loader keeps the ids of 3 pairing keys, looking the others up:
    the same rows as a whole-file load with the usual bounds."""
    loads: list[int] = []
    spill_load = stream._Spill.load

    def spy(self, run_id, keys):
        loads.append(len(keys))
        return spill_load(self, run_id, keys)

    def tiny() -> None:
        monkeypatch.setattr(stream, "RUN_COUNTS", 2)
        monkeypatch.setattr(stream, "MEMO_ENTRIES", 8)
        monkeypatch.setattr(stream, "KEY_CACHE", 3)
        monkeypatch.setattr("tracedb.ingest.loader.KEY_IDS", 3)
        monkeypatch.setattr(stream._Spill, "load", spy)

    _same_rows(url, tmp_path, bundle, monkeypatch, workers, chunk, tiny)
    assert len(loads) > 50 and max(loads) > 1  # the spill path ran, chunk by chunk


def test_chunked_rows_without_staging_are_the_same(sqlite_url, tmp_path, bundle,
                                                   monkeypatch):
    """SQLite without serialize: the chunks' rows go through executemany."""
    monkeypatch.setattr("tracedb.store.sqlite.can_stage", lambda: False)
    _same_rows(sqlite_url, tmp_path, bundle, monkeypatch, 0, 40)


def _same_rows(url, tmp_path, bundle, monkeypatch, workers, chunk, bounds=None):
    monkeypatch.setattr("tracedb.ingest.loader.PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(stream, "STREAM_BYTES", 1 << 40)
    whole = f"sqlite:///{(tmp_path / 'whole.sqlite').as_posix()}"
    for wh in (tracedb.connect(whole), tracedb.connect(url)):
        # two names counted towards one pairing key (its occurrences), a third renamed
        wh.add_alias("side_switch", "fdet")
        wh.add_alias("l_frac", "k_frac", channel="PHI")
        wh.add_alias("distance_m", "distance")
    res_whole = tracedb.connect(whole).ingest([bundle], workers=0)
    assert res_whole.stats["runs"] >= 10 and res_whole.stats["quarantined_lines"] > 0
    # every file of 200 bytes or more in chunks
    monkeypatch.setattr(stream, "STREAM_BYTES", 200)
    monkeypatch.setattr(stream, "CHUNK_BYTES", chunk)
    if bounds is not None:
        bounds()
    chunked: list[str] = []
    load = stream.FileStream.load

    def spy(self, *args):
        chunked.append(self.tf.path.name)
        return load(self, *args)

    monkeypatch.setattr(stream.FileStream, "load", spy)
    res = tracedb.connect(url).ingest([bundle], workers=workers)
    assert sorted(chunked) == ["markers.log", "pixel_4_4.log", "pixel_7_8.log",
                               "pixel_9_9.log"]
    stats = {k: v for k, v in res.stats.items() if k != "seconds"}
    assert stats == {k: v for k, v in res_whole.stats.items() if k != "seconds"}
    assert _notes(res) == _notes(res_whole)
    got, want = dump(url), dump(whole)
    assert set(got) == set(want)
    for table in want:
        assert got[table] == want[table], table


def test_a_large_file_loaded_again_is_unchanged_and_a_changed_one_a_new_version(
        url, tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "STREAM_BYTES", 100)
    monkeypatch.setattr(stream, "CHUNK_BYTES", 64)
    f = write(tmp_path / "r" / "c_traces" / "pixel_1_1.log", "TRACE_C: a 1\n" * 40)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "r"]).stats["taps"] == 40
    again = wh.ingest([tmp_path / "r"])
    assert (again.stats["unchanged_files"], again.stats["taps"]) == (1, 0)
    f.write_text("TRACE_C: a 2\n" * 41)
    res = wh.ingest([tmp_path / "r"])
    assert res.stats["taps"] == 41
    assert any("loaded as version 2" in n.message for n in res.notes)


def test_a_large_file_refused_midway_leaves_nothing_and_its_bundle_loads(
        url, tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "STREAM_BYTES", 100)
    monkeypatch.setattr(stream, "CHUNK_BYTES", 64)
    monkeypatch.setattr(stream, "MAX_TAPS", 25)
    root = tmp_path / "r" / "c_traces"
    write(root / "pixel_1_1.log", "TRACE_C: a 1\n" * 40)  # 40 taps in one run: refused
    write(root / "pixel_2_2.log", "TRACE_C: b 1\n" * 20)
    wh = tracedb.connect(url)
    res = wh.ingest([tmp_path / "r"])
    errors = [n for n in res.notes if n.level == "error"]
    assert len(errors) == 1 and errors[0].path.endswith("pixel_1_1.log")
    assert errors[0].message.startswith("a run (pixel (1, 1)) of 40 taps, more than the 25")
    with wh.engine.connect() as conn:
        assert [p.rsplit("/", 1)[-1] for p in conn.execute(
            text("SELECT path FROM source_file")).scalars()] == ["pixel_2_2.log"]
        assert conn.execute(text("SELECT count(*) FROM tap")).scalar_one() == 20
        assert conn.execute(text("SELECT count(*) FROM run")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM source_blob")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM pixel")).scalar_one() == 1
