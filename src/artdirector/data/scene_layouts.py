"""The training scenes' layouts: ``n`` square cells (x0, y0, side) in canvas pixels that do not overlap, placed
as a scatter, a row, a column or a grid, with cell sides near the scene planner's own (so that the detector
trains on the sizes and arrangements it will be asked to read)."""

from __future__ import annotations

import numpy as np

LAYOUTS = ("scatter", "row", "column", "grid")
PLANNER_CELLS = (19, 22, 24, 32, 48)  # the planner's small / row-packed / normal / large cells


def _cell_side(rng: np.random.Generator, lo: int, hi: int) -> int:
    """A cell side in [lo, hi]: uniform half of the time, near one of the planner's cells otherwise."""
    if hi <= lo:
        return int(max(hi, 1))
    if rng.random() < 0.5:
        return int(rng.integers(lo, hi + 1))
    near = [c for c in PLANNER_CELLS if lo <= c <= hi] or [lo]
    return int(np.clip(near[rng.integers(len(near))] + rng.integers(-2, 3), lo, hi))


def _line(n: int, rng, length: int, across: int, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """n cells along one axis (gap 2-8 px), centred on a common line across: (along, across, side)."""
    gap = int(rng.integers(2, 9))
    fit = (length - (n - 1) * gap) // n
    if fit < lo:  # pack tighter
        gap, fit = 2, (length - (n - 1) * 2) // n
    hi = max(1, min(hi, fit))
    lo = min(lo, hi)
    if rng.random() < 0.7:  # one size for the line, as the planner draws a row
        sides = [_cell_side(rng, lo, hi)] * n
    else:
        sides = [_cell_side(rng, lo, hi) for _ in range(n)]
    total = sum(sides) + (n - 1) * gap
    start = int(rng.integers(0, length - total + 1))
    big = max(sides)
    centre = int(rng.integers(big // 2, across - (big - big // 2) + 1))
    cells, pos = [], start
    for s in sides:
        cells.append((pos, centre - s // 2, s))
        pos += s + gap
    return cells


def _grid(n: int, rng, width: int, height: int, lo: int, hi: int) -> list[tuple[int, int, int]]:
    rows, cols = (2, 2) if n <= 4 and rng.random() < 0.75 else ((2, 3) if rng.random() < 0.5 else (3, 2))
    gap = int(rng.integers(2, 9))
    fit = min((width - (cols - 1) * gap) // cols, (height - (rows - 1) * gap) // rows)
    side = _cell_side(rng, min(lo, fit), min(hi, fit))
    x0 = int(rng.integers(0, width - (cols * side + (cols - 1) * gap) + 1))
    y0 = int(rng.integers(0, height - (rows * side + (rows - 1) * gap) + 1))
    slots = [(x0 + c * (side + gap), y0 + r * (side + gap), side) for r in range(rows) for c in range(cols)]
    keep = sorted(rng.choice(len(slots), size=min(n, len(slots)), replace=False))
    return [slots[int(i)] for i in keep]


def _scatter(n: int, rng, width: int, height: int, lo: int, hi: int) -> list[tuple[int, int, int]]:
    cells: list[tuple[int, int, int]] = []
    for _ in range(n):
        for attempt in range(60):
            s = _cell_side(rng, lo, hi if attempt < 30 else max(lo, (lo + hi) // 2))
            s = min(s, width, height)
            x, y = int(rng.integers(0, width - s + 1)), int(rng.integers(0, height - s + 1))
            if all(
                x + s + 1 <= cx or cx + cs + 1 <= x or y + s + 1 <= cy or cy + cs + 1 <= y
                for cx, cy, cs in cells
            ):
                cells.append((x, y, s))
                break
    return cells


def layout_cells(
    layout: str, n: int, rng: np.random.Generator, width: int, height: int, min_cell: int, max_cell: int
) -> list[tuple[int, int, int]]:
    """``n`` non-overlapping square cells (x0, y0, side) of a layout on a (height, width) canvas (scatter
    may place fewer when the canvas is full)."""
    if n == 0:
        return []
    if layout == "row":
        return _line(n, rng, width, height, min_cell, max_cell)
    if layout == "column":
        return [(x, y, s) for y, x, s in _line(n, rng, height, width, min_cell, max_cell)]
    if layout == "grid":
        return _grid(n, rng, width, height, min_cell, max_cell)
    if layout == "scatter":
        return _scatter(n, rng, width, height, min_cell, max_cell)
    raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
