"""What users curate: tap aliases (and the rekey they imply), accepted divergences,
factor models and the dependency graph of taps. All of it is data in tables, edited
here or by any SQL client."""

from __future__ import annotations

import ast
import re

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from .errors import TracedbError
from .store.health import stale_shapes
from .store.queries import fetch, records, run_step

REKEY_STEPS = ("rekey_names", "rekey_occurrence", "rekey_register", "rekey_values",
               "rekey_taps", "rekey_values_finish")


# --------------------------------------------------------------------------- aliases


def add_alias(db, name: str, canonical: str, channel: str = "*",
              note: str | None = None) -> None:
    """Pair taps named ``name`` with taps named ``canonical`` (and rekey them)."""
    _alias(db, dict(name=name, canonical=canonical, channel=channel, kind="name", note=note),
           name)


def add_channel_alias(db, channel: str, canonical: str, note: str | None = None) -> None:
    """Pair every tap written on ``channel`` on channel ``canonical`` instead (and
    rekey): a PyTorch tap file's ``tap_id`` with the C program's ``TRACE_C_<channel>``."""
    if channel == "*" or canonical == "*":
        raise TracedbError("a channel alias names two channels; '*' is not one")
    _alias(db, dict(name="*", canonical=canonical, channel=channel, kind="channel",
                    note=note), None)


def _alias(db, row: dict, name: str | None) -> None:
    t = db.tables["tap_alias"]
    with db.store.write_connection(db.engine) as conn, conn.begin():
        conn.execute(t.delete().where((t.c.name == row["name"])
                                      & (t.c.channel == row["channel"])))
        conn.execute(t.insert(), row)
        rekey(conn, name)


def rekey(conn: Connection, name: str | None) -> None:
    """Recompute the pairing keys of taps named ``name`` (every tap when None) from
    tap_alias, move their values with them and refresh the run shapes."""
    for step in REKEY_STEPS:
        params = {"name": name} if step in ("rekey_names", "rekey_occurrence") else {}
        run_step(conn, step, **params)
    changed = stale_shapes(conn)  # new key ids: new run shapes
    if changed:
        conn.execute(text("UPDATE run SET shape_sig = :sig WHERE id = :id"), changed)


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
    lines: dict[tuple[str, str | None], list[str]] = {}
    for e in graph_edges(db, graph):
        lines.setdefault((e["target"], e["basis"]), []).append(e["source"])
    out = [f"# tracedb dependency graph {graph}: TARGET <- SOURCE, ...  # what it rests on"]
    for (target, basis), sources in lines.items():
        out.append(f"{target} <- {', '.join(sources)}" + (f"  # {basis}" if basis else ""))
    return "\n".join(out) + "\n"
