"""Tables for a terminal: as wide as the terminal, never wider, and no value split.

On a terminal (or wherever ``COLUMNS`` says how wide the output may be) a table that
does not fit first truncates its long columns (paths, values, hints) with an
ellipsis, the way Rich does, and then leaves out columns from the right, naming
them under the table; short values (ids, stamps, pixels, counts) are shown whole or
not at all. Piped output without ``COLUMNS`` is plain: ASCII borders, no colour,
every value whole.
"""

from __future__ import annotations

import os
import shutil
import sys

#: A column whose widest value is at most this wide is never truncated.
WHOLE = 32
#: The narrowest a truncated column is drawn.
NARROWEST = 8


def output_width() -> int | None:
    """How wide the output may be: ``COLUMNS`` when set, else the terminal's width on
    a terminal, else None (piped: no limit)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def fit(widths: list[int], limit: int | None, drop: list[int] = ()
        ) -> tuple[list[int], list[int]]:
    """Column widths that fit in ``limit`` characters of a bordered table (each
    column costs its width plus 3), and the columns shown (indexes, in order): the
    columns of ``drop`` are left out first, in that order, then from the right.
    Long columns shrink to at least NARROWEST; short ones keep their width."""
    shown = list(range(len(widths)))
    if limit is None:
        return widths, shown

    def least(cols: list[int]) -> int:
        return sum(widths[i] if widths[i] <= WHOLE else min(widths[i], NARROWEST)
                   for i in cols) + 3 * len(cols) + 1

    order = [i for i in drop if i in shown] + shown[::-1]
    while len(shown) > 1 and least(shown) > limit:
        shown.remove(next(i for i in order if i in shown))
    out = [widths[i] for i in shown]
    room = limit - (3 * len(shown) + 1)
    excess = sum(out) - room
    long = [i for i, w in enumerate(out) if w > WHOLE]
    while excess > 0 and long:  # take from the widest long column first
        i = max(long, key=lambda j: out[j])
        floor = max(NARROWEST, max((out[j] for j in long if j != i), default=NARROWEST))
        cut = min(excess, out[i] - floor) or min(excess, out[i] - NARROWEST)
        if cut <= 0:
            long.remove(i)
            continue
        out[i] -= cut
        excess -= cut
    return out, shown


def _clip(text: str, width: int, tail: bool) -> str:
    """A path keeps its end (the file name): ``…/c_traces/pixel_1792_2048.log``."""
    if not tail or len(text) <= width:
        return text
    return "\u2026" + text[len(text) - width + 1:]


def print_table(rows: list[list[str]], columns: list[str], title: str | None = None,
                drop: list[str] = ()) -> None:
    """Print rows of cell texts under ``columns`` (see the module's note); when the
    table is too wide, the columns named in ``drop`` are left out first."""
    from rich import box
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    limit = output_width()
    natural = [max([cell_len(c)] + [cell_len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    widths, shown = fit(natural, limit, [columns.index(c) for c in drop if c in columns])
    plain = not sys.stdout.isatty()
    table = Table(title=title, box=box.ASCII if plain else box.HEAVY_HEAD,
                  title_style="" if plain else "italic")
    for i, w in zip(shown, widths, strict=True):
        table.add_column(Text(columns[i]), width=w, no_wrap=True, overflow="ellipsis")
    paths = [i for i in shown if "path" in columns[i]]
    for r in rows:  # Text: a cell is never read as Rich markup ("[phi_tic=3]")
        table.add_row(*[Text(_clip(r[i], w, i in paths))
                        for i, w in zip(shown, widths, strict=True)])
    hidden = [c for i, c in enumerate(columns) if i not in shown]
    if hidden:
        table.caption = (f"hidden (terminal too narrow): {', '.join(hidden)}; "
                         "--format csv shows all")
    console = Console(width=limit if limit is not None else sum(natural) + 3 * len(columns) + 1,
                      no_color=plain, highlight=False, soft_wrap=False)
    console.print(table)
