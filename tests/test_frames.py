"""The pandas API's conventions: a pixel as two nullable integer columns, stamps as
timezone-aware datetimes, NA for every missing value, internal ids last."""

from __future__ import annotations

import pandas as pd

import tracedb
from tracedb.api import example_tree

from .conftest import write


def test_frames_follow_pandas_conventions(url, tmp_path):
    wh = tracedb.connect(url)
    assert wh.ingest([example_tree()]).ok
    # a pixel traced by C only, and a run without a pixel
    write(tmp_path / "r" / "20260106T090000Z" / "c_traces" / "pixel_50_60.log", "TRACE_C: v 1\n")
    write(tmp_path / "r" / "loose" / "c_run.log", "TRACE_C: v 1\n")
    assert wh.ingest([tmp_path / "r"]).ok

    runs = wh.runs()
    assert "pixel" not in runs.columns
    assert (str(runs.pixel_slow.dtype), str(runs.pixel_fast.dtype)) == ("Int64", "Int64")
    # what a list in a cell broke: grouping and de-duplicating by pixel
    per_pixel = runs.groupby(["pixel_slow", "pixel_fast"]).size().to_dict()
    assert per_pixel == {(10, 20): 2, (30, 40): 2, (50, 60): 1}
    assert len(runs.drop_duplicates(["pixel_slow", "pixel_fast"])) == 4  # NA is one value
    loose = runs[runs.path.str.endswith("c_run.log")].iloc[0]
    assert loose.pixel_slow is pd.NA and loose.stamp is pd.NaT
    stamped = runs[runs.pixel_slow == 50].iloc[0]
    assert stamped.stamp == pd.Timestamp("2026-01-06 09:00:00", tz="UTC")
    assert str(runs.stamp.dtype).endswith(", UTC]")

    df = wh.diverge().set_index(["pixel_slow", "pixel_fast"])
    assert df.loc[(50, 60)].status == "missing_cand"
    assert df.loc[(50, 60)].cand_run is pd.NA and df.loc[(50, 60)].cand_stamp is pd.NaT
    assert df.loc[(50, 60)].first_tap is pd.NA
    assert str(df.ref_run.dtype) == "Int64" and str(df.first_ratio.dtype) == "Float64"
    assert list(df.columns[-3:]) == ["comparison_id", "grp", "ordinal"]
    # every object column holds NA, never None, for a missing value
    assert not any(v is None for c in df.columns for v in df[c])

    summaries, changes = wh.timeline((10, 20))
    assert list(summaries.columns[-3:]) == ["comparison_id", "grp", "ordinal"]
    assert list(changes.columns[-4:]) == ["comparison_id", "previous_comparison_id", "grp",
                                          "ordinal"]
    wh.close()



def test_floats_stay_floats_and_nan_is_not_missing(url, tmp_path):
    # a column of numbers stays Float64 even when every number is whole (2.0, not the
    # integer 2), and a missing one is NA
    write(tmp_path / "r" / "20260106T091000Z" / "py_traces" / "pixel_1_2.log",
          "TRACE_PY: a nan\nTRACE_PY: b 2\nTRACE_PY: c 3\n")
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "r"]).ok
    values = wh.sql("SELECT t.name, v.kind, v.num FROM tap t JOIN value v ON "
                    "v.run_id = t.run_id AND v.key_id = t.key_id ORDER BY t.seq")
    assert str(values.num.dtype) == "Float64"
    assert values.kind.tolist() == ["nan", "num", "num"]
    assert values.num.isna().tolist() == [True, False, False]
    assert values.num[1:].tolist() == [2.0, 3.0]
    if url.startswith("postgresql"):  # float8 holds a NaN: a value, not a missing one
        row = wh.sql("SELECT 'NaN'::float8 AS x, NULL::float8 AS y, 1.5::float8 AS z")
        assert row.x.isna().tolist() == [False] and row.x[0] != row.x[0]
        assert row.y.isna().tolist() == [True]
    wh.close()
