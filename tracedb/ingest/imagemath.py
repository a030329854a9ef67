"""Whole-image parity with numpy: read an image file, compare two images. Pure
functions, no database.

Every figure is computed in float64 over blocks of rows, so two 4096x4096 float32
images never need a float64 copy of either whole: sums and the Pearson correlation
by combining the blocks' centred moments (Chan et al.), the tolerance count and
the worst pixels block by block.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field

import numpy as np

#: Pixels per block of rows (about 2 MB per float64 temporary).
BLOCK_PIXELS = 1 << 18
#: Worst pixels kept per comparison.
WORST_K = 50


class ImageProblem(ValueError):
    """A file that cannot be read as an image (the message says why)."""


@dataclass(slots=True)
class Image:
    array: np.ndarray  # a view of the file's bytes, slow x fast
    format: str  # npy, bin

    @property
    def dtype(self) -> str:
        return self.array.dtype.name

    @property
    def shape(self) -> list[int]:
        return [int(n) for n in self.array.shape]


def read_npy(data: bytes) -> Image:
    """A ``.npy`` file's array, without copying its data."""
    f = io.BytesIO(data[:1 << 16])
    try:
        version = np.lib.format.read_magic(f)
        reader = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if reader is None:
            raise ImageProblem(f"unsupported .npy version {version}")
        shape, fortran, dtype = reader(f)
    except ImageProblem:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy raises several kinds for a bad header
        raise ImageProblem(f"not a readable .npy file ({exc})") from None
    if dtype.kind not in "fiu" or dtype.hasobject:
        raise ImageProblem(f"array of {dtype} is not a numeric image")
    count = math.prod(shape)
    offset = f.tell()
    if len(data) - offset < count * dtype.itemsize:
        raise ImageProblem(f"truncated: {len(data) - offset} data bytes for shape "
                           f"{list(shape)} of {dtype}")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    arr = arr.reshape(shape, order="F" if fortran else "C")
    if arr.ndim != 2:
        raise ImageProblem(f"shape {list(shape)} is not a 2-D image")
    return Image(arr, "npy")


_DETPIXELS = re.compile(r"-detpixels(?:_(x|y))?[\s,\"']+(\d+)")


def detpixels_in(text: str) -> list[tuple[int, int]]:
    """The (slow, fast) detector sizes a command text names: ``-detpixels N`` (N x N),
    ``-detpixels_x F -detpixels_y S`` (per command line)."""
    sizes: list[tuple[int, int]] = []
    for line in text.splitlines() or [text]:
        square = [int(n) for axis, n in _DETPIXELS.findall(line) if not axis]
        xs = [int(n) for axis, n in _DETPIXELS.findall(line) if axis == "x"]
        ys = [int(n) for axis, n in _DETPIXELS.findall(line) if axis == "y"]
        sizes.extend((n, n) for n in square)
        if xs and ys:
            sizes.append((ys[-1], xs[-1]))
    return sizes


def read_bin(data: bytes, commands: str, name: str) -> Image:
    """A raw float32 floatimage, sized by the ``-detpixels`` of the bundle's commands."""
    sizes = sorted(set(detpixels_in(commands)))
    if not sizes:
        raise ImageProblem("raw .bin image cannot be sized: no -detpixels in the bundle's "
                           "commands or recorded args")
    fits = [s for s in sizes if s[0] * s[1] * 4 == len(data)]
    if len(fits) != 1:
        named = ", ".join(f"{s}x{f}" for s, f in sizes)
        raise ImageProblem(f"raw .bin image of {len(data)} bytes cannot be sized: "
                           f"-detpixels gives {named} (float32: "
                           f"{', '.join(str(s * f * 4) for s, f in sizes)} bytes)"
                           if not fits else
                           f"raw .bin image of {len(data)} bytes fits several sizes ({named})")
    slow, fast = fits[0]
    return Image(np.frombuffer(data, dtype="<f4").reshape(slow, fast), "bin")


def nonfinite(arr: np.ndarray) -> int:
    if arr.dtype.kind != "f":
        return 0
    n = 0
    for block in _blocks(arr):
        n += int(block.size - np.count_nonzero(np.isfinite(block)))
    return n


def _blocks(arr: np.ndarray):
    rows = max(1, BLOCK_PIXELS // max(1, arr.shape[1]))
    for i in range(0, arr.shape[0], rows):
        yield arr[i:i + rows]


@dataclass
class Worst:
    slow: int
    fast: int
    ref: float
    cand: float
    ref_text: str
    cand_text: str
    abs_delta: float | None  # None: a NaN or infinity on one side only
    rel_delta: float | None
    outside: bool


@dataclass
class Figures:
    status: str  # match, diverged, nonfinite (NaN or inf met), shape_mismatch
    message: str | None = None
    slow: int | None = None
    fast: int | None = None
    pixels: int | None = None
    correlation: float | None = None
    mse: float | None = None
    rmse: float | None = None
    max_abs_diff: float | None = None
    ref_sum: float | None = None
    cand_sum: float | None = None
    sum_ratio: float | None = None
    outside_tolerance: int | None = None
    ref_nonfinite: int | None = None
    cand_nonfinite: int | None = None
    rtol: float = 0.0
    atol: float = 0.0
    worst: list[Worst] = field(default_factory=list)


def _num(x: float) -> float | None:
    """A figure as stored: NaN or an infinity is no number (NULL on both backends)."""
    x = float(x)
    return x if math.isfinite(x) else None


def compare(ref: np.ndarray, cand: np.ndarray, rtol: float, atol: float,
            k: int = WORST_K) -> Figures:
    with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf are counted
        return _compare(ref, cand, rtol, atol, k)


def _compare(ref: np.ndarray, cand: np.ndarray, rtol: float, atol: float, k: int) -> Figures:
    """C (``ref``) against PyTorch (``cand``), in float64.

    A pixel is outside the tolerance unless ``|a-b| <= atol + rtol*max(|a|,|b|)``, or
    both are NaN, or both the same infinity (the taps' rule). The worst pixels are
    those that differ at all, worst first: a NaN or infinity on one side only, then
    by absolute difference (ties in pixel order).
    """
    if ref.shape != cand.shape:
        return Figures("shape_mismatch", f"shapes differ: C {list(ref.shape)}, PyTorch "
                       f"{list(cand.shape)}; nothing compared", rtol=rtol, atol=atol)
    n_rows, n_cols = ref.shape
    n = 0
    mean_a = mean_b = saa = sbb = sab = 0.0
    sum_a = sum_b = sum_d2 = 0.0
    max_ad = 0.0
    outside = 0
    nonfin_a = nonfin_b = 0
    cands: list[tuple[np.ndarray, np.ndarray]] = []  # (key, flat index) per block
    base = 0
    for a32, b32 in zip(_blocks(ref), _blocks(cand), strict=True):
        a = a32.astype(np.float64).ravel()
        b = b32.astype(np.float64).ravel()
        m = a.size
        fa, fb = np.isfinite(a), np.isfinite(b)
        nonfin_a += m - int(np.count_nonzero(fa))
        nonfin_b += m - int(np.count_nonzero(fb))
        sa, sb = float(a.sum()), float(b.sum())
        ma, mb = sa / m, sb / m
        ca, cb = a - ma, b - mb
        saa2, sbb2, sab2 = float(ca @ ca), float(cb @ cb), float(ca @ cb)
        if n == 0:
            mean_a, mean_b, saa, sbb, sab = ma, mb, saa2, sbb2, sab2
        else:
            tot = n + m
            da, db = ma - mean_a, mb - mean_b
            w = n * m / tot
            saa += saa2 + da * da * w
            sbb += sbb2 + db * db * w
            sab += sab2 + da * db * w
            mean_a += da * m / tot
            mean_b += db * m / tot
        n += m
        sum_a += sa
        sum_b += sb
        d = b - a
        np.abs(d, out=d)
        sum_d2 += float(d @ d)
        both = fa & fb
        same = a == b  # equal numbers, and the same infinity
        if not both.all():
            same |= np.isnan(a) & np.isnan(b)
        max_ad = max(max_ad, float(d.max()))  # NaN when a special value is met
        outside += m - _inside(a, b, d, same, rtol, atol)
        key = np.where(same, 0.0, np.where(np.isnan(d), np.inf, d))
        hit = np.flatnonzero(key > 0)
        if hit.size > k:
            hit = hit[np.argpartition(-key[hit], k - 1)[:k]]
        if hit.size:
            cands.append((key[hit], hit + base))
        base += m
    nonfin = nonfin_a + nonfin_b
    corr = sab / math.sqrt(saa * sbb) if saa > 0 and sbb > 0 else math.nan
    mse = sum_d2 / n
    message = None
    if nonfin:
        message = (f"{nonfin_a} C and {nonfin_b} PyTorch pixels are NaN or infinite; "
                   "figures over all pixels are no numbers")
        corr = mse = max_ad = math.nan
    elif not (saa > 0 and sbb > 0):
        message = "correlation undefined: an image is constant"
    status = "nonfinite" if nonfin else "match" if outside == 0 else "diverged"
    fig = Figures(
        status, message, n_rows, n_cols, n, _num(corr), _num(mse), _num(math.sqrt(mse)),
        _num(max_ad), _num(sum_a), _num(sum_b),
        _num(sum_b / sum_a) if sum_a != 0 else None,
        outside, nonfin_a, nonfin_b, rtol, atol)
    if cands:
        keys = np.concatenate([c[0] for c in cands])
        idx = np.concatenate([c[1] for c in cands])
        for i in idx[np.lexsort((idx, -keys))[:k]]:
            s, f = divmod(int(i), n_cols)
            fig.worst.append(_worst(s, f, ref[s, f], cand[s, f], rtol, atol))
    return fig


def _inside(a: np.ndarray, b: np.ndarray, d: np.ndarray, same: np.ndarray, rtol: float,
            atol: float) -> int:
    """How many pixels of a block are within the tolerance (``d`` = |b - a|, ``same``:
    equal, both NaN or the same infinity)."""
    lim = np.maximum(np.abs(a), np.abs(b))
    lim *= rtol
    lim += atol
    inside = d <= lim
    inside |= same
    return int(np.count_nonzero(inside))


def outside_tolerance(ref: np.ndarray, cand: np.ndarray, rtol: float, atol: float) -> int:
    """The pixels outside the tolerance, counted as :func:`compare` counts them (the
    same blocks and arithmetic), at any tolerance: ``tracedb images --rtol/--atol``
    recounts the stored images with it."""
    if ref.shape != cand.shape:
        raise ValueError(f"shapes differ: {list(ref.shape)}, {list(cand.shape)}")
    outside = 0
    with np.errstate(invalid="ignore", over="ignore"):
        for a32, b32 in zip(_blocks(ref), _blocks(cand), strict=True):
            a = a32.astype(np.float64).ravel()
            b = b32.astype(np.float64).ravel()
            same = a == b
            same |= np.isnan(a) & np.isnan(b)
            d = b - a
            np.abs(d, out=d)
            outside += a.size - _inside(a, b, d, same, rtol, atol)
    return outside


def pixel_outside(a: float, b: float, rtol: float, atol: float) -> bool:
    """One pixel outside the tolerance: a NaN or infinity on one side only, or
    ``|a-b| > atol + rtol*max(|a|,|b|)``."""
    if math.isfinite(a) and math.isfinite(b):
        return abs(b - a) > atol + rtol * max(abs(a), abs(b))
    return not (a == b or (math.isnan(a) and math.isnan(b)))


def _worst(s: int, f: int, va, vb, rtol: float, atol: float) -> Worst:
    """One worst pixel: its values as written (float32 repr) and its deltas."""
    a, b = float(va), float(vb)
    if math.isfinite(a) and math.isfinite(b):
        ad = abs(b - a)
        mag = max(abs(a), abs(b))
        return Worst(s, f, a, b, str(va), str(vb), ad, ad / mag if mag > 0 else 0.0,
                     ad > atol + rtol * mag)
    # a NaN or an infinity on one side only (or two different ones): no difference
    return Worst(s, f, _num(a), _num(b), str(va), str(vb), None, None, True)
