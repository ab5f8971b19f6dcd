"""Column layout for the console's tables: widths follow the terminal and the data.

Fixed widths cut a 6-digit count to ``119,`` and left a 200-column terminal's room unused
while errors were cut at 30 cells. Here a table's width is shared out afresh on every
resize and every refresh: a *fixed* column (counts, states, ages) is as wide as its
widest value, so a figure is never cut; a *growing* column (task, error, message) starts
at its width, takes its share of the spare room, gives some back down to ``min_width``
when the terminal is narrow, and its cells are cut with an ellipsis. Columns that matter
least can be hidden below a table width.

Pure functions on ``rich.text.Text``: no Textual here, so the arithmetic is unit-tested
alone and ``KeyedTable`` only applies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

#: Cells a DataTable adds around each column (``cell_padding`` 1 on either side).
COLUMN_PADDING = 2


@dataclass(frozen=True)
class Column:
    """One column of a table and how it takes room."""

    label: str
    key: str
    #: The width a growing column starts from; the least a fixed column gets.
    width: int
    #: Share of the spare room (0: a fixed column, as wide as its widest value).
    grow: int = 0
    #: A growing column may shrink to this when the table is short of room.
    min_width: int | None = None
    #: A growing column takes no more than this (``None``: no limit); the rest of the
    #: room goes to the other growing columns.
    max_width: int | None = None
    #: ``"left"`` cuts the start and keeps the end (a task's function name).
    clip: str = "right"
    #: Shown only when the table is at least this wide (0: always).
    hide_below: int = 0


ColumnSpec = Column | tuple[str, str, int]


def as_column(spec: ColumnSpec) -> Column:
    """A ``Column`` from itself or from the older ``(label, key, width)`` triple (fixed)."""
    return spec if isinstance(spec, Column) else Column(*spec)


@dataclass(frozen=True)
class Layout:
    """The columns shown (their indexes in a row's cells) and the width of each."""

    indexes: tuple[int, ...]
    widths: tuple[int, ...]

    def fit_row(self, columns: Sequence[Column], cells: Sequence[Text]) -> tuple[Text, ...]:
        """The row's shown cells, each cut to its column's width."""
        return tuple(fit(cells[i] if i < len(cells) else Text(""), width, columns[i].clip)
                     for i, width in zip(self.indexes, self.widths, strict=True))  # fmt: skip


def layout_columns(columns: Sequence[Column], available: int | None,
                   rows: Sequence[Sequence[Text]] = ()) -> Layout:  # fmt: skip
    """Share ``available`` cells (the table's width, ``None``: not known yet) among
    ``columns`` for these ``rows``.

    Fixed columns first take their widest value (never less than their width); growing
    columns then share what is left by weight, or give back room down to their
    ``min_width`` when there is too little. Whatever the fixed columns need, they get: a
    table wider than the terminal scrolls sideways rather than cut a count.
    """
    shown = [i for i, column in enumerate(columns)
             if available is None or available >= column.hide_below]  # fmt: skip
    widths: dict[int, int] = {}
    for i in shown:
        column = columns[i]
        if column.grow:
            widths[i] = max(column.width, cell_len(column.label))
        else:
            widest = max((cell_len(row[i].plain) for row in rows if i < len(row)), default=0)
            widths[i] = max(column.width, cell_len(column.label), widest)
    if available is not None:
        room = available - sum(widths.values()) - COLUMN_PADDING * len(shown)
        growing = [i for i in shown if columns[i].grow]
        if room > 0 and growing:
            _share(room, growing, columns, widths)
        elif room < 0:
            _shrink(-room, growing, columns, widths)
    return Layout(indexes=tuple(shown), widths=tuple(widths[i] for i in shown))


def _share(room: int, growing: list[int], columns: Sequence[Column],
           widths: dict[int, int]) -> None:  # fmt: skip
    def cap(i: int) -> int:
        limit = columns[i].max_width
        return room + widths[i] if limit is None else max(limit, widths[i])

    open_ = list(growing)
    while room > 0 and open_:
        total = sum(columns[i].grow for i in open_)
        shares = {i: room * columns[i].grow // total for i in open_}
        # the cells the integer division left over: to the heaviest columns, leftmost first
        for i in sorted(open_, key=lambda i: -columns[i].grow)[: room - sum(shares.values())]:
            shares[i] += 1
        for i in open_:
            take = min(shares[i], cap(i) - widths[i])
            widths[i] += take
            room -= take
        open_ = [i for i in open_ if widths[i] < cap(i)]


def _shrink(short: int, growing: list[int], columns: Sequence[Column],
            widths: dict[int, int]) -> None:  # fmt: skip
    def slack(i: int) -> int:
        column = columns[i]
        floor = column.min_width if column.min_width is not None else column.width
        return widths[i] - max(floor, cell_len(column.label), 1)

    while short > 0:
        roomiest = max(growing, key=slack, default=None)
        if roomiest is None or slack(roomiest) <= 0:
            return
        widths[roomiest] -= 1
        short -= 1


def fit(cell: Text, width: int, clip: str = "right") -> Text:
    """``cell`` cut to ``width`` cells with an ellipsis where it was cut (at its start
    for ``clip="left"``); styles kept."""
    width = max(1, width)
    if cell.cell_len <= width:
        return cell
    if clip == "left":
        keep, used = len(cell.plain), 0
        while keep > 0 and used + cell_len(cell.plain[keep - 1]) <= width - 1:
            keep -= 1
            used += cell_len(cell.plain[keep])
        out = Text("…", style=cell.style, no_wrap=True)
        out.append_text(cell[keep:])
        return out
    out = cell.copy()
    out.truncate(width, overflow="ellipsis")
    return out
