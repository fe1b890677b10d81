"""Which line of an import file first gave each listing, kept compactly across batches."""

from __future__ import annotations

from array import array


class FirstLines:
    """The file line that first gave each listing an import wrote, by primary key: 4 bytes an
    id (dense: one table's ids), where a dict by external id took ~130 bytes a listing (~100 MB
    for the 725,000 listings of a 1,000,000-row file)."""

    def __init__(self) -> None:
        self._lines = array("I")

    def get(self, pk: int) -> int | None:
        return (self._lines[pk] or None) if pk < len(self._lines) else None

    def remember(self, pk: int, line: int) -> None:
        if pk >= len(self._lines):  # doubling: O(log n) copies for n listings
            grow = max(pk + 1, 2 * len(self._lines), 1024) - len(self._lines)
            self._lines.frombytes(bytes(grow * self._lines.itemsize))
        if not self._lines[pk]:
            self._lines[pk] = line
