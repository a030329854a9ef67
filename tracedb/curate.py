"""What users curate: tap aliases (and the rekey they imply), accepted divergences,
factor models and the dependency graph of taps. All of it is data in tables, edited
here or by any SQL client."""

from __future__ import annotations

import ast
import re

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from .errors import TracedbError
from .paths import portable_path, same_file
from .store.health import restamp_digests, stale_shapes
from .store.queries import fetch, records, run_step

REKEY_STEPS = ("rekey_names", "rekey_occurrence", "rekey_register", "rekey_values",
               "rekey_taps", "rekey_values_finish")


# --------------------------------------------------------------------------- aliases


def add_alias(db, name: str, canonical: str, channel: str = "*",
              note: str | None = None) -> None:
    """Pair taps named ``name`` with taps named ``canonical`` (and rekey them)."""
    _alias(db, alias_row("name", name, canonical, channel, note), name)


def add_channel_alias(db, channel: str, canonical: str, note: str | None = None) -> None:
    """Pair every tap written on ``channel`` on channel ``canonical`` instead (and
    rekey): a PyTorch tap file's ``tap_id`` with the C program's ``TRACE_C_<channel>``."""
    _alias(db, alias_row("channel", "*", canonical, channel, note), None)


def alias_row(kind: str, name: str, canonical: str, channel: str,
              note: str | None) -> dict:
    """A tap_alias row, refused (one line) where it could never pair or be removed:
    a name alias names two taps, a channel alias two channels (its name is ``*``)."""
    if kind == "channel":
        if channel == "*" or canonical == "*" or not channel or not canonical:
            raise TracedbError("a channel alias names two channels; '*' is not one")
        if name != "*":
            raise TracedbError(f"a channel alias pairs every tap of channel {channel!r}; "
                               f"it names no tap ({name!r})")
    elif kind == "name":
        if "*" in (name, canonical) or not name or not canonical:
            raise TracedbError("a name alias names two taps; '*' is not one")
    else:
        raise TracedbError(f"an alias's kind is 'name' or 'channel', not {kind!r}")
    return dict(name=name, canonical=canonical, channel=channel, kind=kind, note=note)


def _alias(db, row: dict, name: str | None) -> None:
    t = db.tables["tap_alias"]
    with db.store.write_connection(db.engine) as conn, conn.begin():
        conn.execute(t.delete().where((t.c.name == row["name"])
                                      & (t.c.channel == row["channel"])))
        conn.execute(t.insert(), row)
        rekey(conn, name)


def rekey(conn: Connection, name: str | None) -> None:
    """Recompute the pairing keys of taps named ``name`` (every tap when None) from
    tap_alias, move their values with them and refresh the run shapes and digest
    lists; for every tap, also the digests that are not their values' (``tracedb db
    check`` finds them)."""
    for step in REKEY_STEPS:
        params = {"name": name} if step in ("rekey_names", "rekey_occurrence") else {}
        run_step(conn, step, **params)
    if name is None:
        from .ingest.rows import digest

        restamp_digests(conn, digest)
    changed = stale_shapes(conn)  # new key ids or digests: new run shapes, digest lists
    if changed:
        conn.execute(text("UPDATE run SET shape_sig = :sig, tap_digests = :digests "
                          "WHERE id = :id"), changed)


# --------------------------------------------------------------------------- accepted


def accept(db, name: str, reason: str, now: str, channel: str = "*",
           loop_key: str | None = None, run_id: int | None = None) -> int:
    """Record a known, accepted divergence of tap ``name`` (optionally for one run)."""
    if not reason.strip():
        raise TracedbError("an accepted divergence needs a reason")
    t = db.tables["accepted_divergence"]
    with db.store.write_connection(db.engine) as conn, conn.begin():
        return conn.execute(t.insert().returning(t.c.id), dict(
            name=name, reason=reason, channel=channel, loop_key=loop_key, run_id=run_id,
            created_at=now)).scalar_one()


# --------------------------------------------------------------------------- factor models

_FORMULA_HELP = "write e.g. 'I_pixel_final = r_e_sqr * F_cell^2 / steps'"
#: A factor is a tap name as traces write it (not a Python identifier: ``lambda``,
#: ``a.b``), with an optional ^exponent (a plain decimal number).
_TAP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_EXPONENT = re.compile(r"[-+]?\d+(?:\.\d+)?\Z")


def _factors(node: ast.expr, sign: float, names: dict[str, str], expr: str, text: str,
             out: list) -> None:
    """The factors of a product / quotient, left to right, with signed exponents."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Div):
        _factors(node.left, sign, names, expr, text, out)
        _factors(node.right, sign if isinstance(node.op, ast.Mult) else -sign, names, expr,
                 text, out)
        return
    base, exponent = node, "1"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, exponent = node.left, ast.get_source_segment(expr, node.right) or ""
    if not isinstance(base, ast.Name) or base.id not in names \
            or not _EXPONENT.match(exponent.replace(" ", "")):
        shown = _TAP_SLOT.sub(lambda m: names.get(m.group(0), m.group(0)),
                              ast.get_source_segment(expr, node) or "").replace("**", "^")
        raise TracedbError(f"cannot read factor {shown!r} in {text!r}; factors are tap "
                           "names with an optional ^exponent, joined by * and /")
    out.append((names[base.id], sign * float(exponent.replace(" ", ""))))


_TAP_SLOT = re.compile(r"_tap[0-9]+_")


def parse_model(text: str) -> tuple[str, list[tuple[str, float]]]:
    """'I = a * b^2 / c' -> ('I', [('a', 1), ('b', 2), ('c', -1)]).

    The formula's structure (products, quotients, powers) is read by ``ast``; the tap
    names are taken as written, so names Python would not accept (``lambda``) are
    factors too.
    """
    target, sep, expr = text.partition("=")
    target = target.strip()
    if not sep or not _TAP_NAME.fullmatch(target):
        raise TracedbError(f"cannot read factor model {text!r}; {_FORMULA_HELP}")
    if "(" in expr or ")" in expr:
        raise TracedbError(f"factor model {text!r}: no parentheses; write a / b / c "
                           "instead of a / (b * c)")
    names: dict[str, str] = {}

    def slot(m: re.Match) -> str:
        key = f"_tap{len(names)}_"
        names[key] = m.group(0)
        return key

    # numbers after ^ stay numbers; every other word is a tap name
    expr = re.sub(r"(?<![\^\d.])" + _TAP_NAME.pattern, slot, " ".join(expr.split()))
    if not expr.strip():
        raise TracedbError(f"factor model {text!r} has no factors")
    if "**" in expr:
        raise TracedbError(f"cannot read factor model {text!r}; {_FORMULA_HELP}")
    expr = expr.replace("^", "**")  # a power, binding tighter than * and /
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError:
        raise TracedbError(f"cannot read factor model {text!r}; {_FORMULA_HELP}") from None
    factors: list[tuple[str, float]] = []
    _factors(tree, 1.0, names, expr, text, factors)
    return target, factors


def set_factor_model(db, model: str, formula: str) -> list[tuple[str, float]]:
    """Define (or replace) ``model`` from 'target = a * b^2 / c'."""
    target, factors = parse_model(formula)
    t = db.tables["factor_model"]
    with db.store.write_connection(db.engine) as conn, conn.begin():
        conn.execute(t.delete().where(t.c.model == model))
        conn.execute(t.insert(), [dict(model=model, target=target, position=i, factor=f,
                                       exponent=e)
                                  for i, (f, e) in enumerate(factors, start=1)])
    return factors


def factor_models(db, model: str | None = None) -> tuple[list[str], list[tuple]]:
    """The factor model rows (all models when ``model`` is None): (columns, rows)."""
    t = db.tables["factor_model"]
    q = select(t.c.model, t.c.target, t.c.position, t.c.factor, t.c.exponent)
    if model:
        q = q.where(t.c.model == model)
    with db.engine.connect() as conn:
        res = conn.execute(q.order_by(t.c.model, t.c.position))
        return list(res.keys()), [tuple(r) for r in res.fetchall()]


# --------------------------------------------------------------------------- dependency graph
#
# A graph is the rows of tap_edge with one graph name: "TARGET is computed from
# SOURCE", by pairing-key name, with what the edge rests on. Its text form, one
# target per line, is what `tracedb graph export` writes and `import` reads:
#
#     pix0_vector <- term_fast, term_slow, term_beam  # pix0 = -Fbeam*fdet - ...
#
# Blank lines and lines starting with '#' are comments.

_NAME = re.compile(r"[^\s,#<]+")


def graph_edges(db, graph: str) -> list[dict]:
    """The edges of ``graph`` as records (target, source, basis), by target then source."""
    return records(*fetch(db.engine, "graph", graph=graph))


def _check_names(names: list[str], where: str) -> None:
    bad = [n for n in names if not _NAME.fullmatch(n)]
    if bad:
        raise TracedbError(f"{where}: {bad[0]!r} is not a tap name (no spaces, commas, "
                           "'#' or '<')")


def set_inputs(db, graph: str, target: str, sources: list[str], basis: str | None) -> None:
    """Make ``sources`` the inputs of ``target`` in ``graph`` (none: remove them)."""
    _check_names([target, *sources], "graph set")
    t = db.tables["tap_edge"]
    with db.store.write_connection(db.engine) as conn, conn.begin():
        conn.execute(t.delete().where((t.c.graph == graph) & (t.c.target == target)))
        if sources:
            conn.execute(t.insert(), [dict(graph=graph, target=target, source=s, basis=basis)
                                      for s in dict.fromkeys(sources)])


def parse_graph(text: str, origin: str) -> list[tuple[str, str, str | None]]:
    """(target, source, basis) edges of the text form above; a line that is not
    ``TARGET <- SOURCE, ...`` is an error naming ``origin`` and the line."""
    edges: list[tuple[str, str, str | None]] = []
    for no, line in enumerate(text.splitlines(), start=1):
        body, _, basis = line.partition("#")
        if not body.strip():
            continue
        target, arrow, sources = body.partition("<-")
        names = [s.strip() for s in sources.split(",") if s.strip()]
        if not arrow or not target.strip() or not names:
            raise TracedbError(f"{origin}:{no}: expected 'TARGET <- SOURCE, ...', got "
                               f"{line.strip()!r}")
        _check_names([target.strip(), *names], f"{origin}:{no}")
        edges += [(target.strip(), s, basis.strip() or None) for s in names]
    return edges


def import_graph(db, graph: str, text: str, origin: str) -> int:
    """Replace ``graph`` with the edges of ``text`` (the text form); returns how many."""
    edges = {(a, b): c for a, b, c in parse_graph(text, origin)}  # the last basis given
    t = db.tables["tap_edge"]
    with db.store.write_connection(db.engine) as conn, conn.begin():
        conn.execute(t.delete().where(t.c.graph == graph))
        if edges:
            conn.execute(t.insert(), [dict(graph=graph, target=a, source=b, basis=c)
                                      for (a, b), c in edges.items()])
    return len(edges)


def export_graph(db, graph: str) -> str:
    """``graph`` in the text form, one line per target and basis."""
    lines = _graph_groups(db, graph)
    out = [f"# tracedb dependency graph {graph}: TARGET <- SOURCE, ...  # what it rests on"]
    for (target, basis), sources in lines.items():
        out.append(f"{target} <- {', '.join(sources)}" + (f"  # {basis}" if basis else ""))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- listing


def alias_rows(db) -> list[dict]:
    """The aliases (tap_alias: name and channel aliases) as records, by kind, name and
    channel."""
    t = db.tables["tap_alias"]
    with db.engine.connect() as conn:
        res = conn.execute(select(t.c.kind, t.c.name, t.c.canonical, t.c.channel, t.c.note)
                           .order_by(t.c.kind.desc(), t.c.name, t.c.channel))
        return records(list(res.keys()), [tuple(r) for r in res])


def remove_alias(db, name: str, channel: str = "*") -> None:
    """Remove the alias of ``name`` on ``channel`` (and rekey the taps it paired)."""
    _remove_alias(db, "name", name, channel, f"no alias {name!r} on channel {channel!r}")


def remove_channel_alias(db, channel: str) -> None:
    """Remove the alias of channel ``channel`` (and rekey)."""
    _remove_alias(db, "channel", "*", channel, f"no alias of channel {channel!r}")


def _remove_alias(db, kind: str, name: str, channel: str, missing: str) -> None:
    t = db.tables["tap_alias"]
    with db.store.write_connection(db.engine) as conn, conn.begin():
        gone = conn.execute(t.delete().where((t.c.kind == kind) & (t.c.name == name)
                                             & (t.c.channel == channel)))
        if not gone.rowcount:
            raise TracedbError(f"{missing} (`tracedb alias list` shows them)")
        rekey(conn, name if kind == "name" else None)


def accepted_rows(db) -> list[dict]:
    """The accepted divergences as records, oldest first."""
    t = db.tables["accepted_divergence"]
    with db.engine.connect() as conn:
        res = conn.execute(select(t.c.id, t.c.name.label("tap"), t.c.channel, t.c.loop_key,
                                  t.c.run_id, t.c.reason, t.c.created_at).order_by(t.c.id))
        return records(list(res.keys()), [tuple(r) for r in res])


def remove_accepted(db, accepted_id: int) -> None:
    """Remove accepted divergence ``accepted_id``: that divergence counts again."""
    t = db.tables["accepted_divergence"]
    with db.store.write_connection(db.engine) as conn, conn.begin():
        if not conn.execute(t.delete().where(t.c.id == accepted_id)).rowcount:
            raise TracedbError(f"no accepted divergence {accepted_id} "
                               "(`tracedb accept list` shows them)")


# --------------------------------------------------------------------------- curation file
#
# Everything users curate, in one TOML file a team keeps beside its reports:
#
#     [[aliases]]        kind (name or channel), name, canonical, channel, note
#     [[accepted]]       tap, reason, channel, loop_key, run, created_at; run = the
#                        run's file_sha256, segment and path (as a report shows it),
#                        which any warehouse that loaded the same file resolves
#     [factor_models]    NAME = "target = a * b^2 / c"
#     [[graphs.NAME]]    target, sources, basis   (one entry per line of the text form)
#
# Importing replaces each kind the file has a section for, and leaves the others.

CURATION_VERSION = 1
_SECTIONS = ("aliases", "accepted", "factor_models", "graphs")


def format_model(target: str, factors: list[tuple[str, float]]) -> str:
    """The formula :func:`parse_model` reads back: 'I = a * b^2 / c'."""
    def power(name: str, e: float) -> str:
        return name if e == 1 else f"{name}^{e:g}"

    out = f"{target} = {power(*factors[0])}"
    for name, e in factors[1:]:
        out += f" * {power(name, e)}" if e > 0 else f" / {power(name, -e)}"
    return out


def _graph_groups(db, graph: str) -> dict[tuple[str, str | None], list[str]]:
    """A graph's sources grouped by (target, basis), as the text form lists them."""
    lines: dict[tuple[str, str | None], list[str]] = {}
    for e in graph_edges(db, graph):
        lines.setdefault((e["target"], e["basis"]), []).append(e["source"])
    return lines


def export_curation(db) -> str:
    """Aliases, accepted divergences, factor models and dependency graphs as TOML."""
    import tomli_w

    def kept(record: dict) -> dict:  # TOML has no null: a missing key is one
        return {k: v for k, v in record.items() if v is not None}

    rows = accepted_rows(db)
    runs = _run_identities(db, {r["run_id"] for r in rows if r["run_id"] is not None})
    accepted = [kept({"tap": r["tap"], "reason": r["reason"], "channel": r["channel"],
                      "loop_key": r["loop_key"], "run": runs.get(r["run_id"]),
                      "created_at": r["created_at"]}) for r in rows]
    columns, rows = factor_models(db)
    models: dict[str, tuple[str, list]] = {}
    for r in records(columns, rows):
        models.setdefault(r["model"], (r["target"], []))[1].append((r["factor"],
                                                                    r["exponent"]))
    t = db.tables["tap_edge"]
    with db.engine.connect() as conn:
        graphs = [g for (g,) in conn.execute(select(t.c.graph).distinct().order_by(t.c.graph))]
    doc = {
        "version": CURATION_VERSION,
        "aliases": [kept(r) for r in alias_rows(db)],
        "accepted": accepted,
        "factor_models": {m: format_model(target, fs) for m, (target, fs) in models.items()},
        "graphs": {g: [kept({"target": target, "sources": sources, "basis": basis})
                       for (target, basis), sources in _graph_groups(db, g).items()]
                   for g in graphs},
    }
    head = ("# tracedb curation: aliases, accepted divergences, factor models and "
            "dependency graphs.\n# `tracedb curation import FILE` makes a warehouse's "
            "curation this file's (each section present replaces that kind).\n")
    return head + tomli_w.dumps(doc)


def _run_identities(db, run_ids: set[int]) -> dict[int, dict]:
    """Each run as a curation file names it, in any warehouse that loaded the same
    file: its file's SHA-256, its segment (the nth run of the file) and its path as a
    report shows it (which tells copies of one file apart)."""
    if not run_ids:
        return {}
    run, sf = db.tables["run"], db.tables["source_file"]
    with db.engine.connect() as conn:
        res = conn.execute(select(run.c.id, sf.c.sha256, run.c.segment, sf.c.path)
                           .join(sf, sf.c.id == run.c.source_file_id)
                           .where(run.c.id.in_(sorted(run_ids))))
        return {i: {"file_sha256": sha, "segment": seg, "path": portable_path(path)}
                for i, sha, seg, path in res}


def _resolve_runs(conn, tables, accepted: list[dict], origin: str) -> list[int | None]:
    """The run id, in this warehouse, of each accepted entry's ``run`` (None: any
    run); an entry whose run this warehouse does not have, or has twice, is an error
    naming it."""
    run, sf = tables["run"], tables["source_file"]
    out: list[int | None] = []
    for i, a in enumerate(accepted):
        ident = a.get("run")
        if ident is None:
            out.append(None)
            continue
        where = f"{origin}: accepted[{i}]: run"
        unknown = sorted(set(ident) - {"file_sha256", "segment", "path"})
        if unknown or not isinstance(ident.get("file_sha256"), str) \
                or type(ident.get("segment")) is not int \
                or not isinstance(ident.get("path", ""), str):
            raise TracedbError(f"{where} is {{file_sha256 = \"...\", segment = N, path = "
                               f"\"...\"}}, not {ident!r}")
        if not 0 <= ident["segment"] < 2 ** 31:
            raise TracedbError(f"{where}: segment {ident['segment']} is out of range")
        found = conn.execute(select(run.c.id, sf.c.path)
                             .join(sf, sf.c.id == run.c.source_file_id)
                             .where(sf.c.sha256 == ident["file_sha256"])
                             .where(run.c.segment == ident["segment"])).all()
        if len(found) > 1 and ident.get("path"):
            found = [f for f in found if same_file(f[1], ident["path"])]
        named = f"{ident.get('path') or ident['file_sha256'][:12]} (segment {ident['segment']})"
        if not found:
            raise TracedbError(f"{where} {named}: this warehouse has not loaded that file")
        if len(found) > 1:
            raise TracedbError(f"{where} {named}: {len(found)} runs here are that file's; "
                               "the path does not tell which")
        out.append(found[0][0])
    return out


def _entries(doc: dict, section: str, origin: str, required: tuple[str, ...],
             optional: tuple[str, ...]) -> list[dict]:
    items = doc[section]
    if not isinstance(items, list):
        raise TracedbError(f"{origin}: {section} must be a list of tables ([[{section}]])")
    for i, item in enumerate(items):
        where = f"{origin}: {section}[{i}]"
        if not isinstance(item, dict):
            raise TracedbError(f"{where} must be a table")
        missing = [k for k in required if k not in item]
        unknown = sorted(set(item) - set(required) - set(optional))
        if missing or unknown:
            raise TracedbError(f"{where}: " + (f"needs {', '.join(missing)}" if missing
                                               else f"unknown key(s) {', '.join(unknown)}"))
        for key, value in item.items():
            wanted = dict if key == "run" else list if key == "sources" else str
            if not isinstance(value, wanted) or isinstance(value, bool):
                raise TracedbError(f"{where}: {key} must be {wanted.__name__}, "
                                   f"not {value!r}")
    return items


def import_curation(db, text: str, origin: str, now: str) -> dict[str, int]:
    """Make the warehouse's curation that of ``text`` (:func:`export_curation`'s TOML):
    each kind the file has a section for is replaced, in one transaction; a file that
    does not read is an error naming ``origin`` and the entry. Returns counts."""
    import tomllib

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TracedbError(f"{origin}: not TOML: {exc}") from None
    unknown = sorted(set(doc) - set(_SECTIONS) - {"version"})
    if unknown:
        raise TracedbError(f"{origin}: unknown section(s) {', '.join(unknown)}; a curation "
                           f"file has {', '.join(_SECTIONS)}")
    if doc.get("version", CURATION_VERSION) != CURATION_VERSION:
        raise TracedbError(f"{origin}: curation file version {doc['version']!r}; this "
                           f"tracedb reads version {CURATION_VERSION}")
    counts: dict[str, int] = {}
    aliases = accepted = edges = None
    models: dict[str, tuple[str, list]] | None = None
    if "aliases" in doc:
        aliases = _entries(doc, "aliases", origin, ("name", "canonical"),
                           ("kind", "channel", "note"))
        rows, seen = [], {}
        for i, a in enumerate(aliases):
            kind = a.get("kind", "name")
            try:
                rows.append(alias_row(kind, a["name"], a["canonical"],
                                      a.get("channel", "*"), a.get("note")))
            except TracedbError as exc:
                raise TracedbError(f"{origin}: aliases[{i}]: {exc}") from None
            key = (rows[-1]["channel"], rows[-1]["name"])
            if key in seen:
                raise TracedbError(f"{origin}: aliases[{i}] repeats aliases[{seen[key]}] "
                                   f"(channel {key[0]!r}, name {key[1]!r})")
            seen[key] = i
        aliases = rows
    if "accepted" in doc:
        accepted = _entries(doc, "accepted", origin, ("tap", "reason"),
                            ("channel", "loop_key", "run", "created_at"))
        for i, a in enumerate(accepted):
            if not a["reason"].strip():
                raise TracedbError(f"{origin}: accepted[{i}] needs a reason")
    if "factor_models" in doc:
        if not isinstance(doc["factor_models"], dict):
            raise TracedbError(f"{origin}: factor_models must be a table of NAME = formula")
        models = {}
        for name, formula in doc["factor_models"].items():
            if not isinstance(formula, str):
                raise TracedbError(f"{origin}: factor_models.{name} must be a formula")
            try:
                models[name] = parse_model(formula)
            except TracedbError as exc:
                raise TracedbError(f"{origin}: factor_models.{name}: {exc}") from None
    if "graphs" in doc:
        if not isinstance(doc["graphs"], dict):
            raise TracedbError(f"{origin}: graphs must be tables [[graphs.NAME]]")
        edges = {}
        for graph in doc["graphs"]:
            for i, e in enumerate(_entries(doc["graphs"], graph, f"{origin}: graphs",
                                           ("target", "sources"), ("basis",))):
                _check_names([e["target"], *e["sources"]], f"{origin}: graphs.{graph}[{i}]")
                for s in e["sources"]:
                    edges[(graph, e["target"], s)] = e.get("basis")
    tables = db.tables
    with db.store.write_connection(db.engine) as conn, conn.begin():
        if accepted is not None:
            run_ids = _resolve_runs(conn, tables, accepted, origin)
            t = tables["accepted_divergence"]
            conn.execute(t.delete())
            if accepted:
                conn.execute(t.insert(), [dict(
                    name=a["tap"], reason=a["reason"], channel=a.get("channel", "*"),
                    loop_key=a.get("loop_key"), run_id=run_id,
                    created_at=a.get("created_at", now))
                    for a, run_id in zip(accepted, run_ids, strict=True)])
            counts["accepted"] = len(accepted)
        if models is not None:
            t = tables["factor_model"]
            conn.execute(t.delete())
            rows = [dict(model=m, target=target, position=i, factor=f, exponent=e)
                    for m, (target, factors) in models.items()
                    for i, (f, e) in enumerate(factors, start=1)]
            if rows:
                conn.execute(t.insert(), rows)
            counts["factor_models"] = len(models)
        if edges is not None:
            t = tables["tap_edge"]
            conn.execute(t.delete())
            if edges:
                conn.execute(t.insert(), [dict(graph=g, target=a, source=b, basis=c)
                                          for (g, a, b), c in edges.items()])
            counts["graph_edges"] = len(edges)
        if aliases is not None:
            t = tables["tap_alias"]
            conn.execute(t.delete())
            if aliases:
                conn.execute(t.insert(), aliases)
            rekey(conn, None)
            counts["aliases"] = len(aliases)
    return counts
