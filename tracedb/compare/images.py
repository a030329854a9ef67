"""Image comparisons as plain records: the figures, the recorded metrics beside each
pair checked against them, the worst pixels, timelines and the pixels to trace next.

The figures were computed at ingest (``ingest.images``); here they are read
(``queries/images.sql``, ``image_worst.sql``, ``image_recorded.sql``,
``next_pixels.sql``) and checked against what the team's script recorded.
"""

from __future__ import annotations

import json
import math

from ..ingest.images import ATOL, RTOL
from ..store import queries
from .engine import check_tolerance

#: Recomputed figure -> the names a recorded metrics file gives it.
RECORDED_NAMES = {
    "correlation": ("correlation",),
    "mse": ("mse",),
    "rmse": ("rmse",),
    "max_abs_diff": ("max_abs_diff",),
    "ref_sum": ("c_sum", "c_total"),
    "cand_sum": ("py_sum", "py_total"),
    "sum_ratio": ("sum_ratio",),
}
#: Agreement classes of a recorded figure against the float64 one: 'same' within
#: double rounding, 'float32' within what float32 arithmetic explains (the team's
#: script computes in float32; its sums and correlations over 10^4..10^7 pixels carry
#: relative errors up to about 1e-5), else 'differs' (the recorded file and the
#: images do not belong together).
SAME_RTOL = 1e-12
FLOAT32_RTOL = 1e-5

FIGURES = ("correlation", "mse", "rmse", "max_abs_diff", "ref_sum", "cand_sum", "sum_ratio")
TABLE_COLUMNS = ["id", "case", "stamp", "status", "shape", "correlation", "rmse",
                 "max_abs_diff", "sum_ratio", "outside_tolerance", "recorded_agreement"]
JSON_COLUMNS = ["id", "case", "stamp", "bundle_path", "status", "message", "ref_path",
                "cand_path", "shape", "cand_shape", "dtype", "pixels", *FIGURES, "rtol",
                "atol", "outside_tolerance", "ref_nonfinite", "cand_nonfinite",
                "recorded_path", "recorded", "recorded_check", "recorded_agreement",
                "worst"]
TIMELINE_COLUMNS = ["case", "stamp", "status", "correlation", "rmse", "max_abs_diff",
                    "sum_ratio", "rtol", "atol", "outside_tolerance", "recorded_agreement",
                    "bundle_path"]
WORST_COLUMNS = ["rank", "slow", "fast", "ref", "cand", "abs_delta", "rel_delta", "outside",
                 "traced_runs"]


def agreement(recomputed: float | None, recorded) -> tuple[str, float | None]:
    """('same' | 'float32' | 'differs', relative difference) of one figure."""
    if not isinstance(recorded, int | float) or isinstance(recorded, bool):
        return "differs", None
    if recomputed is None or not math.isfinite(recorded):
        return "differs", None
    if recomputed == recorded:
        return "same", 0.0
    rel = abs(recomputed - recorded) / max(abs(recomputed), abs(recorded))
    return ("same" if rel <= SAME_RTOL else "float32" if rel <= FLOAT32_RTOL
            else "differs"), rel


def check_recorded(record: dict, recorded: dict | None) -> tuple[dict | None, str | None]:
    """Each recomputed figure against the recorded one it has a name in (see
    RECORDED_NAMES): {figure: {recorded, recomputed, rel_diff, agreement}}, and the
    worst agreement ('differs' over 'float32' over 'same'); (None, None) when nothing
    is recorded, and 'nothing to check' when no recorded name matches."""
    if recorded is None:
        return None, None
    out: dict = {}
    for fig, names in RECORDED_NAMES.items():
        name = next((n for n in names if n in recorded), None)
        if name is None:
            continue
        verdict, rel = agreement(record.get(fig), recorded[name])
        out[fig] = {"recorded_name": name, "recorded": recorded[name],
                    "recomputed": record.get(fig), "rel_diff": rel, "agreement": verdict}
    if not out:
        return out, "nothing to check"
    verdicts = {v["agreement"] for v in out.values()}
    return out, next(v for v in ("differs", "float32", "same") if v in verdicts)


def _recorded_value(row: dict):
    if row["kind"] == "number":
        return row["num"]
    if row["kind"] == "bool":
        return bool(row["num"])
    if row["kind"] in ("list", "object"):
        return json.loads(row["text"])
    return row["text"]


def comparisons(bind, *, case: str | None = None, stamp: str | None = None,
                path: str | None = None, worst: int | None = None,
                rtol: float | None = None, atol: float | None = None) -> queries.Rows:
    """One record per image comparison (JSON_COLUMNS), ``worst`` worst pixels each
    (None: all that were kept).

    ``outside_tolerance`` is the count stored at ingest, at the tolerance the record's
    ``rtol``/``atol`` give; with ``rtol`` or ``atol`` (the other then diverge's
    default) every comparison is counted again at that tolerance from its stored
    images (exactly: numpy over the decompressed files, as at ingest), and its status
    (match or diverged) and its worst pixels' ``outside`` follow."""
    if rtol is not None or atol is not None:
        rtol, atol = RTOL if rtol is None else rtol, ATOL if atol is None else atol
        check_tolerance(rtol, atol)
    rows = queries.records(*queries.fetch(bind, "images", case=case, stamp=stamp, path=path))
    ids = {r["id"] for r in rows}
    recorded: dict[int, dict] = {}
    for m in queries.records(*queries.fetch(bind, "image_recorded")):
        if m["comparison_id"] in ids:
            recorded.setdefault(m["comparison_id"], {})[m["name"]] = _recorded_value(m)
    worst_of: dict[int, list] = {}
    for w in queries.records(*queries.fetch(bind, "image_worst")):
        if w["comparison_id"] in ids and (worst is None or w["rank"] <= worst):
            worst_of.setdefault(w["comparison_id"], []).append(
                {"rank": w["rank"], "slow": w["slow"], "fast": w["fast"],
                 "ref": w["ref_text"], "cand": w["cand_text"], "abs_delta": w["abs_delta"],
                 "rel_delta": w["rel_delta"], "outside": bool(w["outside"]),
                 "traced_runs": w["traced_runs"]})
    out = []
    for r in rows:
        rec = {**r, "shape": json.loads(r["ref_shape"]), "cand_shape": json.loads(r["cand_shape"]),
               "dtype": r["ref_dtype"] if r["ref_dtype"] == r["cand_dtype"]
               else f"{r['ref_dtype']}/{r['cand_dtype']}"}
        rec["recorded"] = recorded.get(r["id"]) if r["recorded_file_id"] is not None else None
        rec["recorded_check"], rec["recorded_agreement"] = check_recorded(rec, rec["recorded"])
        rec["worst"] = worst_of.get(r["id"], [])
        if rtol is not None:
            _recount(bind, rec, rtol, atol)
        out.append(rec)
    return queries.Rows(out, JSON_COLUMNS)


def _recount(bind, rec: dict, rtol: float, atol: float) -> None:
    """``rec``'s tolerance count, status and worst pixels' ``outside`` at rtol/atol."""
    from ..ingest import imagemath

    rec["rtol"], rec["atol"] = rtol, atol
    if rec["status"] == "shape_mismatch":  # nothing compared, at any tolerance
        return
    ref, cand = image_array(bind, rec["ref_sha256"]), image_array(bind, rec["cand_sha256"])
    rec["outside_tolerance"] = imagemath.outside_tolerance(ref, cand, rtol, atol)
    if rec["status"] != "nonfinite":
        rec["status"] = "match" if rec["outside_tolerance"] == 0 else "diverged"
    for w in rec["worst"]:  # the pixels' values, not their shortest float32 text
        w["outside"] = imagemath.pixel_outside(float(ref[w["slow"], w["fast"]]),
                                               float(cand[w["slow"], w["fast"]]), rtol, atol)


def next_pixels(bind, n: int, *, case: str | None = None, stamp: str | None = None
                ) -> queries.Rows:
    """The ``n`` worst pixels of each comparison that no run traces yet."""
    return queries.records(*queries.fetch(bind, "next_pixels", n=n, case=case, stamp=stamp))


def image_array(bind, sha256: str):
    """A stored image as a numpy array (slow x fast), from its compressed file."""
    import numpy as np

    from ..ingest import imagemath
    from ..ingest.files import decompress_blob

    rows = queries.records(*queries.fetch(bind, "image_content", sha256=sha256))
    if not rows:
        raise KeyError(sha256)
    r = rows[0]
    data = decompress_blob(r["compression"], bytes(r["content"]))
    if r["format"] == "npy":
        return imagemath.read_npy(data).array
    return np.frombuffer(data, dtype=r["dtype"]).reshape(json.loads(r["shape"]))


def stored_image_problems(conn) -> list[str]:
    """Images whose stored file does not give back the image as recorded: its
    SHA-256 (the image's key), size, or shape. Read one image at a time."""
    import hashlib

    from ..ingest.files import decompress_blob
    from ..ingest.imagemath import ImageProblem, read_npy

    out = []
    rows = conn.exec_driver_sql("SELECT sha256, format, dtype, shape, size, compression, "
                                "content FROM image ORDER BY sha256",
                                execution_options={"stream_results": True})
    for sha, fmt, dtype, shape, size, compression, content in rows:
        try:
            data = decompress_blob(compression, bytes(content))
        except Exception as exc:  # noqa: BLE001 - any failure to decompress is the finding
            out.append(f"{sha[:12]}: does not decompress ({type(exc).__name__})")
            continue
        if hashlib.sha256(data).hexdigest() != sha:
            out.append(f"{sha[:12]}: content does not match its SHA-256")
        elif len(data) != size:
            out.append(f"{sha[:12]}: {len(data)} bytes, recorded {size}")
        else:
            try:
                got = read_npy(data).shape if fmt == "npy" else None
            except ImageProblem as exc:
                out.append(f"{sha[:12]}: {exc}")
                continue
            want = json.loads(shape)
            if got is None:  # a raw floatimage: its bytes must fill the shape
                width = 4 if dtype == "float32" else 8
                got = want if len(data) == width * math.prod(want) else [len(data)]
            if got != want:
                out.append(f"{sha[:12]}: shape {got}, recorded {want}")
    return out


#: The floor of a divergence map: pixels that agree exactly are drawn there.
MAP_FLOOR = -16.0


def divergence_map(bind, record: dict, max_side: int = 1024):
    """log10 of the relative difference |cand-ref| / max(|ref|, |cand|) of a
    comparison (exact agreement at MAP_FLOOR, a NaN or infinity on one side only at
    0), reduced by block maxima to at most ``max_side`` pixels a side; and the
    block size. None for a comparison of images whose shapes differ."""
    import numpy as np

    if record["status"] == "shape_mismatch":
        return None, 1
    a = image_array(bind, record["ref_sha256"]).astype(np.float64)
    b = image_array(bind, record["cand_sha256"]).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mag = np.maximum(np.abs(a), np.abs(b))
        rel = np.abs(b - a) / mag
        rel[(a == b) | (np.isnan(a) & np.isnan(b))] = 0.0
        rel[~np.isfinite(rel)] = 1.0
        grid = np.log10(np.where(rel > 0, rel, 10.0 ** MAP_FLOOR))
    grid = np.maximum(grid, MAP_FLOOR)
    block = max(1, math.ceil(max(grid.shape) / max_side))
    if block > 1:
        s, f = (math.ceil(n / block) * block for n in grid.shape)
        padded = np.full((s, f), MAP_FLOOR)
        padded[:grid.shape[0], :grid.shape[1]] = grid
        grid = padded.reshape(s // block, block, f // block, block).max(axis=(1, 3))
    return grid, block


def traced_pixels(bind) -> list[tuple[int, int]]:
    """Every pixel some run traces."""
    return [(r["slow"], r["fast"]) for r in
            queries.records(*queries.fetch(bind, "traced_pixels"))]
