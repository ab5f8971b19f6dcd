"""A DataTable that is refreshed from snapshots and keeps the cursor on the same row key.

DataTable's cursor is an index and ``clear()`` resets both it and the scroll, so a naive
refresh makes the cursor jump whenever rows move. ``sync`` diffs by row key: when the keys
are unchanged only the changed cells are updated; otherwise the rows are rebuilt and the
cursor is put back on the row with the same key, at the same height on screen.

Column widths follow the table's width and its data (``columns.layout_columns``): they are
recomputed on every resize and every sync, and the rows are rebuilt when they change.
Cells come in whole; the table cuts them to their columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from ..columns import ColumnSpec, Layout, as_column, layout_columns


@dataclass(frozen=True)
class TableRow:
    key: str
    cells: tuple[Text, ...]
    sort: tuple = ()  # raw values per column, for ``s`` (sort by column)


def _signature(cell: Text) -> tuple:
    return cell.plain, str(cell.style), tuple(cell.spans)


class KeyedTable(DataTable):
    """Rows keyed by id; ``j``/``k``, ``g``/``G``; ``s`` cycles the sort column."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "first", "Top", show=False),
        Binding("G", "last", "Bottom", show=False),
        Binding("home", "first", "Top", show=False),
        Binding("end", "last", "Bottom", show=False),
        Binding("s", "cycle_sort", "Sort", show=False),
    ]

    class EdgeReached(Message):
        """The cursor tried to move past the loaded rows (``down``: towards older rows)."""

        def __init__(self, table: KeyedTable, direction: str, jump: bool = False) -> None:
            super().__init__()
            self.table = table
            self.direction = direction
            self.jump = jump  # g/G: go to the very first/last page

        @property
        def control(self) -> KeyedTable:
            return self.table

    def __init__(self, columns: Sequence[ColumnSpec], *, sortable: bool = True,
                 id: str | None = None, classes: str | None = None) -> None:  # fmt: skip
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self._column_spec = [as_column(column) for column in columns]
        self._layout: Layout | None = None
        self._rows: dict[str, tuple[tuple, ...]] = {}
        self._order: list[str] = []
        self._last: list[TableRow] = []
        self.sortable = sortable
        self.sort_column: int | None = None
        self.sort_reverse = False
        self.cursor_blink = False
        self.text_filter: tuple[str, ...] = ()  # words every shown row holds (``/``)

    def on_mount(self) -> None:
        self._set_columns(layout_columns(self._column_spec, None))

    def on_resize(self, event: events.Resize) -> None:
        """A new width shares the room out again (the 80-column layout must not stay)."""
        self.resort()

    # ------------------------------------------------------------------ layout

    def _available(self) -> int | None:
        """Cells for the columns: the width less the vertical scrollbar, always reserved
        so that the layout does not jump when the rows start to overflow."""
        width = self.size.width
        if width <= 0:  # not laid out yet
            return None
        return max(0, width - self.styles.scrollbar_size_vertical)

    def _set_columns(self, layout: Layout) -> None:
        self.clear(columns=True)
        for index, width in zip(layout.indexes, layout.widths, strict=True):
            column = self._column_spec[index]
            self.add_column(Text(column.label), key=column.key, width=width)
        self._layout = layout
        self._order = []

    @property
    def column_widths(self) -> dict[str, int]:
        """The width of each column shown, by key."""
        layout = self._layout
        if layout is None:
            return {}
        return {
            self._column_spec[i].key: w for i, w in zip(layout.indexes, layout.widths, strict=True)
        }

    # ------------------------------------------------------------------ reading

    def current_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - an out-of-range cursor means: no current row
            return None

    @property
    def keys(self) -> list[str]:
        return list(self._order)

    # ------------------------------------------------------------------ writing

    def _sorted(self, rows: Sequence[TableRow]) -> list[TableRow]:
        column = self.sort_column
        if column is None:
            return list(rows)

        def key(row: TableRow):
            value = row.sort[column] if column < len(row.sort) else row.cells[column].plain
            return (value is None, value if value is not None else 0)

        try:
            return sorted(rows, key=key, reverse=self.sort_reverse)
        except TypeError:
            return sorted(rows, key=lambda r: r.cells[column].plain, reverse=self.sort_reverse)

    def _kept(self, rows: Sequence[TableRow]) -> list[TableRow]:
        if not self.text_filter:
            return list(rows)
        return [row for row in rows
                if all(word in " ".join(c.plain for c in row.cells).casefold()
                       for word in self.text_filter)]  # fmt: skip

    def set_text_filter(self, text: str) -> None:
        """Keep only the rows whose text holds every word of ``text`` (any case)."""
        self.text_filter = tuple(text.casefold().split())
        self.resort()

    @property
    def hidden_count(self) -> int:
        """Rows of the last snapshot that the text filter hides."""
        return len(self._last) - len(self._order)

    def sync(self, rows: Sequence[TableRow], anchor: str | None = None) -> None:
        """Show ``rows`` (those the text filter keeps); the cursor stays on ``anchor``
        (default: the current row's key)."""
        self._last = list(rows)
        rows = self._sorted(self._kept(rows))
        anchor = anchor if anchor is not None else self.current_key()
        old_index = self.cursor_row
        old_screen_offset = old_index - int(self.scroll_y)
        new_order = [row.key for row in rows]
        layout = layout_columns(self._column_spec, self._available(), [r.cells for r in rows])
        with self.app.batch_update():
            if layout != self._layout:
                self._set_columns(layout)
            cells = {row.key: layout.fit_row(self._column_spec, row.cells) for row in rows}
            if new_order == self._order:
                column_keys = [self._column_spec[i].key for i in layout.indexes]
                for key, row_cells in cells.items():
                    old = self._rows.get(key, ())
                    for index, cell in enumerate(row_cells):
                        if index >= len(old) or old[index] != _signature(cell):
                            self.update_cell(key, column_keys[index], cell)
            else:
                self.clear()
                for key, row_cells in cells.items():
                    self.add_row(*row_cells, key=key)
            self._rows = {key: tuple(_signature(c) for c in row_cells)
                          for key, row_cells in cells.items()}  # fmt: skip
            self._order = new_order
            if new_order and anchor in self._rows:
                new_index = new_order.index(anchor)
                if new_index != self.cursor_row:
                    self.move_cursor(row=new_index, animate=False, scroll=False)
                    target = max(0, new_index - old_screen_offset)
                    self.call_after_refresh(self.scroll_to, y=target, animate=False)
            elif new_order:
                self.move_cursor(row=min(max(0, old_index), len(new_order) - 1), animate=False)

    def resort(self) -> None:
        self.sync(self._last)

    # ------------------------------------------------------------------ keys

    def action_cursor_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1:
            self.post_message(self.EdgeReached(self, "down"))
            return
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.cursor_row <= 0:
            self.post_message(self.EdgeReached(self, "up"))
            return
        super().action_cursor_up()

    def action_page_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1:
            self.post_message(self.EdgeReached(self, "down"))
            return
        super().action_page_down()

    def action_page_up(self) -> None:
        if self.cursor_row <= 0:
            self.post_message(self.EdgeReached(self, "up"))
            return
        super().action_page_up()

    def action_first(self) -> None:
        self.post_message(self.EdgeReached(self, "up", jump=True))
        if self.row_count:
            self.move_cursor(row=0, animate=False)

    def action_last(self) -> None:
        self.post_message(self.EdgeReached(self, "down", jump=True))
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def action_scroll_top(self) -> None:
        self.action_first()

    def action_scroll_bottom(self) -> None:
        self.action_last()

    def action_cycle_sort(self) -> None:
        """Sort by the next column, then the same column reversed, then back to none."""
        if not self.sortable:
            return
        count = len(self._column_spec)
        if self.sort_column is None:
            self.sort_column, self.sort_reverse = 0, False
        elif not self.sort_reverse:
            self.sort_reverse = True
        else:
            nxt = self.sort_column + 1
            self.sort_column, self.sort_reverse = (None, False) if nxt >= count else (nxt, False)
        label = "none" if self.sort_column is None else self._column_spec[self.sort_column].label
        self.notify(f"sorted by {label}{' (reversed)' if self.sort_reverse else ''}",
                    markup=False, timeout=2)  # fmt: skip
        self.resort()
