"""What users curate: tap aliases (and the rekey they imply), accepted divergences and
factor models. All of it is data in tables, edited here or by any SQL client."""

from __future__ import annotations

import ast
import re

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from .errors import TracedbError
from .store.health import stale_shapes
from .store.queries import run_step

REKEY_STEPS = ("rekey_names", "rekey_occurrence", "rekey_register", "rekey_values",
               "rekey_taps", "rekey_values_finish")


# --------------------------------------------------------------------------- aliases


def add_alias(db, name: str, canonical: str, channel: str = "*",
              note: str | None = None) -> None:
    """Pair taps named ``name`` with taps named ``canonical`` (and rekey them)."""
    t = db.tables["tap_alias"]
    with db.store.write_connection(db.engine) as conn, conn.begin():
        conn.execute(t.delete().where((t.c.name == name) & (t.c.channel == channel)))
        conn.execute(t.insert(), dict(name=name, canonical=canonical, channel=channel,
                                      note=note))
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
