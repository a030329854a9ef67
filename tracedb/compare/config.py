"""What two runs were asked to do, compared before any value: each run's options
from its metadata (``dtype``, ``device``, ``mode``, a ``configuration`` or ``config``
object, ``args``) and from the simulator command of its bundle's ``commands.txt``
(the nanoBragg or nanobrag_torch command line that traced its pixel), normalised to
nanoBragg's option names, and their differences.

An option differs when both sides record it with different values, or when one
side's command line gives it and the other side's command line (a full record of
what that program was told) does not; an option only one side's metadata mentions is
listed as recorded on one side only, not as a difference.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import lru_cache

from sqlalchemy import select

from ..errors import TracedbError
from ..store.queries import connection, fetch

#: Other names of nanoBragg's options (as metadata and PyTorch write them).
SYNONYMS = {"wavelength": "lambda", "wavelength_a": "lambda", "lambda_a": "lambda",
            "n_cells": "n", "ncells": "n", "pixel_mm": "pixel", "pixel_size_mm": "pixel",
            "distance_mm": "distance", "detector_distance_mm": "distance",
            "default_f": "default_f", "hkl_file": "hkl", "detector_convention": "convention",
            "xbeam_mm": "xbeam", "ybeam_mm": "ybeam", "oversample_thick": "oversample_thick",
            "phi_steps": "phisteps", "mosaic_domains": "mosaic_dom", "beam_size_mm": "beamsize",
            "exposure_s": "exposure"}
#: Options that say where and what to trace or write, not what to compute.
NOT_PHYSICS = frozenset({"trace_pixel", "floatfile", "intfile", "noisefile", "pgmfile",
                         "out_dir", "outdir", "tag", "printout", "printout_pixel", "pixel_coords",
                         "timestamp_utc", "timestamp", "pixel_slow", "pixel_fast",
                         "final_intensity", "git_sha", "git_branch"})
#: Top-level metadata keys that record how a run was made.
META_KEYS = ("dtype", "device", "mode", "convention", "detector_convention")
#: Metadata objects that hold options.
META_OBJECTS = ("configuration", "config", "params", "options")
#: A command line of the simulator (either side).
PROGRAM = re.compile(r"(nanoBragg\b|\$\{?NB_C_BIN\}?|nanobrag_torch)")


@lru_cache(maxsize=65536)
def option_name(name: str) -> str:
    """An option's name as nanoBragg spells it, lower case: ``-Xbeam`` -> ``xbeam``,
    ``wavelength_A`` -> ``lambda``."""
    key = name.lstrip("-").replace("-", "_").lower()
    return SYNONYMS.get(key, key)


def _value(v) -> str:
    """An option's value as compared: numbers in one spelling (``500.0`` = ``500``), a
    list of one repeated number as that number (``5 5 5`` = ``5``), words as written."""
    return _spelled(tuple(map(str, v)) if isinstance(v, list) else str(v))


@lru_cache(maxsize=65536)
def _spelled(v: str | tuple[str, ...]) -> str:
    """:func:`_value` of a scalar's text, or of a list's items as text; cached by the
    text (values that compare equal, such as 0.0 and -0.0 or 1 and True, are spelled
    apart), since the same few values recur in every run of a campaign."""
    words = list(v) if isinstance(v, tuple) else v.replace(",", " ").split()
    out = []
    for w in words:
        try:
            out.append(repr(float(w)))
        except ValueError:
            out.append(w)
    if len(out) > 1 and len(set(out)) == 1 and all(o[0].isdigit() or o[0] == "-" for o in out):
        out = out[:1]
    return " ".join(out)


#: shlex's (POSIX) character classes: a line without its quotes, escape and comment
#: characters is its words between its blanks.
_SHLEX = shlex.shlex(posix=True)
_SHELL_QUOTING = re.compile(f"[{re.escape(_SHLEX.quotes + _SHLEX.escape + _SHLEX.commenters)}]")
_WORD = re.compile(f"[^{re.escape(_SHLEX.whitespace)}]+")
_OPTION = re.compile(r"--?[A-Za-z]")


def _words(line: str) -> list[str]:
    """``shlex.split(line, comments=True)`` (its blank-separated words where it cannot
    read the line), without shlex for a line with no quoting, escape or comment (13 us
    against 117 us a line: a commands.txt may hold a command per traced pixel)."""
    if not _SHELL_QUOTING.search(line):
        return _WORD.findall(line)
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def parse_command(line: str) -> dict[str, str]:
    """The options of one simulator command line: ``-name value ...`` (a flag alone
    as ``on``), up to a redirection or pipe."""
    opts: dict[str, list[str]] = {}
    current = None
    for w in _words(line):
        if w in ("|", ">", ">>", "2>&1", "&&", ";") or w.startswith((">", "2>")):
            break
        if _OPTION.match(w):
            current = option_name(w)
            opts[current] = []
        elif current is not None:
            opts[current].append(w)
    return {k: _value(v) if v else "on" for k, v in opts.items() if k not in NOT_PHYSICS}


@lru_cache(maxsize=256)
def commands_of(text: str | None) -> tuple[str, ...]:
    """The simulator command lines of a commands.txt (continuations joined); every run
    of a bundle shares its commands.txt."""
    if not text:
        return ()
    joined = re.sub(r"\\\n", " ", text)
    return tuple(ln.strip() for ln in joined.splitlines()
                 if PROGRAM.search(ln)
                 and not ln.lstrip().startswith(("#", "cd ", "make", "export")))


def _command_for(text: str | None, pixel) -> str | None:
    """The command of a commands.txt (``text``) that traced ``pixel`` (slow, fast): its
    ``-trace_pixel`` (or ``--pixel``) names it (the first that does); the only command
    when there is one."""
    commands = commands_of(text)
    found = _traced_pixels(text).get(pixel) if pixel is not None else None
    return found if found is not None else commands[0] if len(commands) == 1 else None


@lru_cache(maxsize=256)
def _traced_pixels(text: str | None) -> dict[tuple[int, int], str]:
    """{(slow, fast): the first command that traces that pixel}, made once per
    commands.txt rather than searched once per run (cached by the text, whose hash
    Python keeps: a tuple of 28,800 commands was hashed anew, 181 us, at every run)."""
    out: dict[tuple[int, int], str] = {}
    for c in commands_of(text):
        m = re.search(r"-(?:trace_pixel|-pixel)\s+(\d+)\s+(\d+)", c)
        if m:
            out.setdefault((int(m[1]), int(m[2])), c)
    return out


def run_options(row: dict) -> tuple[dict[str, str], dict[str, str]]:
    """A run's options: (from its simulator command, from its metadata)."""
    pixel = None if row["slow"] is None else (int(row["slow"]), int(row["fast"]))
    command = _command_for(row["commands_text"], pixel)
    from_command = parse_command(PROGRAM.split(command, maxsplit=1)[-1]) if command else {}
    meta: dict[str, str] = {}
    try:
        data = json.loads(row["metadata_json"]) if row["metadata_json"] else None
    except ValueError:
        data = None
    if data and isinstance(data, dict):
        for k in META_KEYS:
            v = data.get(k)
            if isinstance(v, (str, int, float)):
                meta[option_name(k)] = _value(v)
        for obj in META_OBJECTS:
            v = data.get(obj)
            if isinstance(v, dict):
                for k, x in v.items():
                    if isinstance(x, (str, int, float, list)) and option_name(k) not in NOT_PHYSICS:
                        meta[option_name(k)] = _value(x)
        if isinstance(data.get("args"), str):
            meta.update(parse_command(data["args"]))
    return from_command, meta


def run_options_of(bind, run_ids) -> dict[int, tuple[int, tuple]]:
    """Per run id (of ``run_ids``): ``(n, (from its command, from its metadata))``,
    its options (:func:`run_options`) and ``n``, the same number for runs whose
    options are the same.

    A campaign's runs are asked the same few things: a run's options are worked out
    once per (bundle, traced pixel where its commands.txt names pixels, metadata).
    By run ids (``run_config``), so that they can be read on a connection of their
    own while the runs' comparison set is made (``compare.requests``)."""
    keys, rows = fetch(bind, "run_config", runs=json.dumps(list(set(run_ids))))
    at = {k: i for i, k in enumerate(keys)}
    i_run, i_slow, i_fast, i_meta, i_bundle = (
        at[k] for k in ("run_id", "slow", "fast", "metadata_json", "bundle_id"))
    # a bundle's commands.txt, read once (it can hold a command per traced pixel)
    commands = dict(fetch(bind, "bundle_commands", bundles=json.dumps(
        list({r[i_bundle] for r in rows})))[1])
    # a run's inputs -> its numbered options; the pixel is one of the inputs only
    # where the commands.txt names pixels (_command_for)
    options: dict[tuple, tuple[int, tuple]] = {}
    numbered: dict[tuple, tuple[int, tuple]] = {}
    out: dict[int, tuple[int, tuple]] = {}
    for r in rows:
        if r[i_bundle] not in commands:
            raise TracedbError(f"bundle {r[i_bundle]} was removed while it was compared; "
                               "run the command again")
        text = commands[r[i_bundle]]
        pixel = None if r[i_slow] is None or not _traced_pixels(text) \
            else (r[i_slow], r[i_fast])
        key = (r[i_bundle], pixel, r[i_meta])
        found = options.get(key)
        if found is None:
            from_command, meta = run_options({"slow": r[i_slow], "fast": r[i_fast],
                                              "commands_text": text,
                                              "metadata_json": r[i_meta]})
            shape = (tuple(from_command.items()), tuple(meta.items()))
            found = options[key] = numbered.setdefault(
                shape, (len(numbered), (from_command, meta)))
        out[r[i_run]] = found
    return out


def differences(bind, pairs: dict[int, tuple[int | None, int | None]],
                options: dict[int, tuple[int, tuple]] | None = None) -> dict[int, dict]:
    """Per comparison id of ``pairs`` (id -> (reference run id, candidate run id), None
    for a missing run): ``{"differ": [{option, ref, cand}], "only_ref": {option:
    value}, "only_cand": {...}}`` (see above), options in name order, from the runs'
    ``options`` (:func:`run_options_of`, read from ``bind`` when not given).

    The differences are worked out once per pair of distinct option sets; each
    comparison gets its own outer record (``causes.explain`` adds its ``taps``)
    around the shared lists and objects, which nothing changes."""
    if options is None:
        options = run_options_of(bind, [r for pair in pairs.values() for r in pair
                                        if r is not None])
    none = (-1, ({}, {}))  # a missing run records nothing
    made: dict[tuple[int, int], tuple] = {}
    out = {}
    for cid, runs in pairs.items():
        try:
            (ref_no, ref), (cand_no, cand) = (none if r is None else options[r] for r in runs)
        except KeyError as exc:
            raise TracedbError(f"run {exc.args[0]} was removed while it was compared; "
                               "run the command again") from None
        found = made.get((ref_no, cand_no))
        if found is None:
            found = made[(ref_no, cand_no)] = _differ(ref, cand)
        out[cid] = {"differ": found[0], "only_ref": found[1], "only_cand": found[2]}
    return out


def set_differences(db, set_id: int) -> dict[int, dict]:
    """:func:`differences` of every comparison of a set."""
    t_cmp = db.tables["comparison"]
    reads = db.reads(set_id)
    with connection(reads) as conn:
        pairs = {cid: (ref, cand) for cid, ref, cand in conn.execute(
            select(t_cmp.c.id, t_cmp.c.ref_run_id, t_cmp.c.cand_run_id)
            .where(t_cmp.c.set_id == set_id))}
    return differences(reads, pairs)


def _differ(ref_options: tuple[dict, dict], cand_options: tuple[dict, dict]
            ) -> tuple[list[dict], dict, dict]:
    """(differ, only_ref, only_cand) of two runs' (command, metadata) options."""
    (ref_cmd, ref_meta), (cand_cmd, cand_meta) = ref_options, cand_options
    ref, cand = {**ref_meta, **ref_cmd}, {**cand_meta, **cand_cmd}
    differ, only_ref, only_cand = [], {}, {}
    for name in sorted(set(ref) | set(cand)):
        a, b = ref.get(name), cand.get(name)
        if a is not None and b is not None:
            if a != b:
                differ.append({"option": name, "ref": a, "cand": b})
        # a command line is the whole record of what its program was told: an
        # option it lacks that the other side's command gives is a difference
        elif a is not None and cand_cmd and name in ref_cmd:
            differ.append({"option": name, "ref": a, "cand": None})
        elif b is not None and ref_cmd and name in cand_cmd:
            differ.append({"option": name, "ref": None, "cand": b})
        elif a is not None:
            only_ref[name] = a
        else:
            only_cand[name] = b
    return differ, only_ref, only_cand
