"""Write a synthetic nanoBragg-shaped campaign with planted divergences.

    python -m benchmarks.generate OUT --pixels 200 --stamps 2 --seed 1

Layout (the real bundle layout):

    OUT/reports/bench/phase_<k>/<C_STAMP>/c_traces/pixel_<s>_<f>.log
    OUT/reports/bench/phase_<k>/<PY_STAMP>/py_traces/pixel_<s>_<f>.log (+ _metadata.json)
    ... commands.txt, env/trace_env.json in every bundle
    OUT/truth.json   {"<py_stamp>": {"<s>,<f>": "<first diverged tap key>" | null}}

Every trace has ~72 taps (~150 values) in all the shapes of PRODUCT.md: name=value
and name v1 v2 lines, labelled components, matrices, strings, -0, per-phi key=value
records (every 4th pixel), indexed sources, tricubic grids (every 8th pixel) and
free text. C prints %.15g, PyTorch %.15e, so unplanted taps match at rtol 1e-12;
planted drifts (1e-4 relative) stay beyond the 6-digit print precision of %g.
Each PyTorch trace has, with probability 0.8, one planted divergence at a tap
chosen from the seed (a unit factor, a small drift, or a changed string); the
first divergence in reference order is recorded in truth.json. Deterministic
from the seed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

N_PHI = 10
GRID = 4

# (name, kind, n) in trace order; kind: vec, lab, mat, str, rec
BASE_TAPS: list[tuple[str, str, int]] = [
    ("fdet_after_rotz", "vec", 3), ("sdet_after_rotz", "vec", 3),
    ("odet_after_rotz", "vec", 3), ("twotheta_axis", "vec", 3),
    ("detector_convention", "str", 1), ("angles_rad", "lab", 4),
    ("beam_center_m", "lab", 3), ("initial_fdet", "vec", 3), ("initial_sdet", "vec", 3),
    ("initial_odet", "vec", 3), ("Rx", "mat", 9), ("Ry", "mat", 9), ("Rz", "mat", 9),
    ("R_total", "mat", 9), ("fdet_after_rotz", "vec", 3), ("sdet_after_rotz", "vec", 3),
    ("Fbeam_m", "vec", 1), ("Sbeam_m", "vec", 1), ("distance_m", "vec", 1),
    ("term_fast", "vec", 3), ("term_slow", "vec", 3), ("term_beam", "vec", 3),
    ("pix0_vector_meters", "vec", 3), ("fdet_vec", "vec", 3), ("sdet_vec", "vec", 3),
    ("pixel_pos_meters", "vec", 3), ("R_distance_meters", "vec", 1),
    ("omega_pixel_sr", "vec", 1), ("close_distance_meters", "vec", 1),
    ("obliquity_factor", "vec", 1), ("diffracted_vec", "vec", 3), ("incident_vec", "vec", 3),
    ("lambda_meters", "vec", 1), ("lambda_angstroms", "vec", 1),
    ("scattering_vec_A_inv", "vec", 3), ("rot_a_angstroms", "vec", 3),
    ("rot_b_angstroms", "vec", 3), ("rot_c_angstroms", "vec", 3),
    ("rot_a_star_A_inv", "vec", 3), ("rot_b_star_A_inv", "vec", 3),
    ("rot_c_star_A_inv", "vec", 3), ("hkl_frac", "vec", 3), ("hkl_rounded", "vec", 3),
    ("F_latt_a", "vec", 1), ("F_latt_b", "vec", 1), ("F_latt_c", "vec", 1),
    ("F_latt", "vec", 1), ("F_cell", "vec", 1), ("I_before_scaling", "vec", 1),
    ("r_e_meters", "vec", 1), ("r_e_sqr", "vec", 1), ("fluence_photons_per_m2", "vec", 1),
    ("steps", "vec", 1), ("oversample_thick", "vec", 1), ("oversample_polar", "vec", 1),
    ("oversample_omega", "vec", 1), ("capture_fraction", "vec", 1), ("polar", "vec", 1),
    ("omega_pixel", "vec", 1), ("cos_2theta", "vec", 1), ("source_weight", "vec", 1),
    ("source_direction", "vec", 3), ("mosaic_weight", "vec", 1), ("thickness_m", "vec", 1),
    ("phi_deg_start", "vec", 1), ("spindle_axis", "vec", 3), ("a_star_scale", "vec", 1),
    ("V_cell", "vec", 1), ("V_star", "vec", 1), ("I_pixel_final", "vec", 1),
    ("floatimage_accumulated", "vec", 1),
]
FACTORS = {"1e3": 1e3, "1e10": 1e10, "1e-3": 1e-3, "rad/deg": 180 / math.pi}


def _values(rng: random.Random, kind: str, n: int) -> list[float]:
    if kind == "mat":
        return [1.0, 0.0, 0.0, 0.0, 1.0, -0.0, 0.0, 0.0, 1.0]
    return [rng.uniform(-1, 1) * 10 ** rng.randint(-12, 8) for _ in range(n)]


def _fmt(v: float, side: str) -> str:
    return f"{v:.15g}" if side == "c" else f"{v:.15e}"


def _tap_line(side: str, name: str, kind: str, vals, labels=None) -> str:
    if kind == "str":
        return f"TRACE_C:{name}={vals}" if side == "c" else f"TRACE_PY: {name} {vals}"
    if kind == "lab":
        body = " ".join(f"{lab}:{_fmt(v, side)}" for lab, v in zip(labels, vals, strict=True))
    elif kind == "mat":
        f = [("-0" if (v == 0 and math.copysign(1, v) < 0 and side == "c") else
              ("0" if v == 0 else f"{v:g}")) for v in vals]
        body = f"[{f[0]} {f[1]} {f[2]}; {f[3]} {f[4]} {f[5]}; {f[6]} {f[7]} {f[8]}]"
    else:
        body = " ".join(_fmt(v, side) for v in vals)
    if side == "c":
        return f"TRACE_C:{name}={body}" if kind in ("lab", "mat") else f"TRACE_C: {name} {body}"
    return f"TRACE_PY: {name} {body}"


def pixel_taps(rng: random.Random):
    """The taps of one pixel: [(key, line_builder(side, perturb) -> [lines])]."""
    taps = []
    for name, kind, n in BASE_TAPS:
        if kind == "str":
            vals = "MOSFLM"
        else:
            vals = _values(rng, kind, n)
        labels = {"angles_rad": ["rotx", "roty", "rotz", "twotheta"],
                  "beam_center_m": ["X", "Y", "pixel_mm"]}.get(name)
        taps.append((name, kind, vals, labels))
    return taps


def write_campaign(out: Path, pixels: int, stamps: int, seed: int,
                   divergence_rate: float = 0.8) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    side_len = max(1, int(math.ceil(math.sqrt(pixels))))
    pix = [(100 + 7 * (i // side_len), 200 + 5 * (i % side_len)) for i in range(pixels)]
    truth: dict = {}
    values = 0
    for k in range(stamps):
        c_stamp = f"2025{1 + k % 12:02d}{1 + k // 12:02d}T100000Z"
        py_stamp = f"2025{1 + k % 12:02d}{1 + k // 12:02d}T110000Z"
        phase = out / "reports" / "bench" / f"phase_{k}"
        cdir = phase / c_stamp / "c_traces"
        pdir = phase / py_stamp / "py_traces"
        cdir.mkdir(parents=True, exist_ok=True)
        pdir.mkdir(parents=True, exist_ok=True)
        for stamp, side in ((c_stamp, "c"), (py_stamp, "py")):
            (phase / stamp / "env").mkdir(exist_ok=True)
            (phase / stamp / "env" / "trace_env.json").write_text(json.dumps(
                {"git_sha": f"{seed:08x}{k:032x}", "git_branch": "bench", "side": side}))
            (phase / stamp / "commands.txt").write_text(
                f"# synthetic campaign seed {seed}, {pixels} pixels\n")
        truth[py_stamp] = {}
        for i, (s, f) in enumerate(pix):
            prng = random.Random(hash((seed, k, i)) & 0xFFFFFFFF)
            taps = pixel_taps(prng)
            # planted divergence: index into the pixel's tap keys (reference order)
            keys = _keys(taps, i)
            planted = None
            if prng.random() < divergence_rate:
                planted = prng.randrange(len(keys))
            c_lines, py_lines, n_vals = _render(taps, i, planted, keys, prng)
            values += 2 * n_vals
            (cdir / f"pixel_{s}_{f}.log").write_text(
                "nanoBragg nanocrystal diffraction simulator - synthetic\n"
                + "\n".join(c_lines) + "\n")
            (pdir / f"pixel_{s}_{f}.log").write_text("\n".join(py_lines) + "\n")
            (pdir / f"pixel_{s}_{f}_metadata.json").write_text(json.dumps(
                {"timestamp_utc": py_stamp, "pixel_slow": s, "pixel_fast": f,
                 "device": "cpu", "dtype": "torch.float64"}))
            truth[py_stamp][f"{s},{f}"] = None if planted is None else keys[planted]
    (out / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True))
    return {"pixels": pixels, "stamps": stamps, "runs": 2 * pixels * stamps,
            "values": values}


def _keys(taps, i: int) -> list[str]:
    keys = []
    seen: dict = {}
    for name, kind, _v, _l in taps:
        if kind == "str":
            continue  # strings diverge by text; keep planted ones numeric for clean truth
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    if i % 4 == 0:
        keys += [f"PHI:F_latt[phi_tic={t}]" for t in range(N_PHI)]
    return keys


def _render(taps, i: int, planted: int | None, keys: list[str], prng):
    c_lines, py_lines = [], []
    n_vals = 0
    seen: dict = {}
    key_i = 0
    mode = prng.choice(list(FACTORS) + ["drift", "drift"])
    for name, kind, vals, labels in taps:
        py_vals = vals
        if kind != "str":
            seen[name] = seen.get(name, 0) + 1
            if planted is not None and key_i == planted:
                py_vals = _perturb(vals, kind, mode)
            key_i += 1
        c_lines.append(_tap_line("c", name, kind, vals, labels))
        py_lines.append(_tap_line("py", name, kind, py_vals, labels))
        n_vals += 1 if kind == "str" else len(vals)
    if i % 4 == 0:  # per-phi records
        for t in range(N_PHI):
            k = -0.59 + 0.002 * t
            fl = 1.35 - 0.3 * t
            py_fl = fl * (1 + 1e-4) if planted is not None and key_i == planted else fl
            c_lines.append(f"TRACE_C_PHI phi_tic={t} phi_deg={t * 0.01:.15g} "
                           f"k_frac={k:.15g} F_latt={fl:.15g}")
            py_lines.append(f"TRACE_PY_PHI phi_tic={t} phi_deg={t * 0.01:.15e} "
                            f"k_frac={k:.15e} F_latt={py_fl:.15e}")
            key_i += 1
            n_vals += 3
    if i % 8 == 0:  # tricubic grid and indexed sources, PyTorch only
        for a in range(GRID):
            for b in range(GRID):
                py_lines.append(f"TRACE_PY_TRICUBIC: [{a},{b},0]={100 + a + b / 10:.15g}")
        py_lines.append("TRACE_PY_SOURCE 0: wavelength_angstroms 9.768000245094299e-01")
        py_lines.append("TRACE_PY_BASE: ========== synthetic end ==========")
    return c_lines, py_lines, n_vals


def _perturb(vals, kind: str, mode: str):
    if kind == "mat":
        return [v + 0.5 if j == 4 else v for j, v in enumerate(vals)]
    if mode == "drift" or any(v == 0 for v in vals):
        return [v * (1 + 1e-4) + (1e-300 if v == 0 else 0) for v in vals]
    return [v / FACTORS[mode] for v in vals]


def write_large_files(out: Path, c_lines: int, phi_lines: int, seed: int = 1) -> dict:
    """Two bundles of one large file each (the one-large-file benchmark):

    - ``c/.../c_traces/pixels.log``: a C trace of ``c_lines`` lines that traces pixel
      after pixel (a marker, then the ~72 taps of BASE_TAPS each time);
    - ``phi/.../c_traces/pixel_5_5.log``: ``phi_lines`` per-phi records of one pixel
      (a long phi sweep: every record has its own phi_tic, so its own pairing keys).

    Returns {case: path of its bundle}.
    """
    rng = random.Random(seed)
    cdir = out / "c" / "reports" / "bench" / "phase_0" / "20250101T100000Z" / "c_traces"
    pdir = out / "phi" / "reports" / "bench" / "phase_0" / "20250101T100000Z" / "c_traces"
    cdir.mkdir(parents=True, exist_ok=True)
    pdir.mkdir(parents=True, exist_ok=True)
    with open(cdir / "pixels.log", "w") as fh:
        fh.write("nanoBragg nanocrystal diffraction simulator - synthetic\n")
        n, i = 1, 0
        while n < c_lines:
            block = [f"TRACE_C_TAP5: pixel {i // 1000} {i % 1000}"]
            for name, kind, vals, labels in pixel_taps(rng):
                block.append(_tap_line("c", name, kind, vals, labels))
            block = block[:c_lines - n]
            fh.write("\n".join(block) + "\n")
            n += len(block)
            i += 1
    with open(pdir / "pixel_5_5.log", "w") as fh:
        for t in range(phi_lines):
            fh.write(f"TRACE_C_PHI phi_tic={t} phi_deg={t * 0.01:.15g} "
                     f"k_frac={rng.uniform(-1, 1):.15g} F_latt={rng.uniform(0, 2):.15g}\n")
    return {"one_c_file": out / "c" / "reports", "one_phi_file": out / "phi" / "reports"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--pixels", type=int, default=100)
    ap.add_argument("--stamps", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print(json.dumps(write_campaign(a.out, a.pixels, a.stamps, a.seed)))


if __name__ == "__main__":
    main()
