"""When do boxes stand in a relation? One set of predicates for the planner (with a margin) and the verifier.

With ``(dx, dy)`` the offset from the centre of box ``a`` to the centre of box ``b`` and ``s`` the mean side of
the two boxes:

- ``a left of b``: ``dx > |dy| + margin * s`` (b lies to the right, more than above or below); ``right of``,
  ``above`` (``dy > |dx| + margin * s``) and ``below`` alike. This is GenEval's reading of position (Ghosh et al.
  2023): the dominant direction of the offset between the objects' centres.
- ``a next to b``: side by side (``|dx| > |dy| + margin * s``) with a horizontal gap between the boxes of at
  most 1.5 times the larger box side (a quarter of it when planning, ``margin > 0``: the ink of a thin digit
  such as a 1 sits well inside its cell, so the verifier, which sees ink, must allow more than the plan uses).
- a row: at least two boxes, each centre within half the median height of the median centre line, no two
  overlapping horizontally; a column likewise, transposed; an r x c grid: exactly r*c boxes that split by
  height into r rows of c (each a row) whose columns line up (centres within half the median width).
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from artdirector.scenes.canvas import Box, center

RELATIONS = ("left of", "right of", "above", "below", "next to")


def relation_holds(relation: str, a: Box, b: Box, margin: float = 0.0) -> bool:
    (ax, ay), (bx, by) = center(a), center(b)
    dx, dy = bx - ax, by - ay
    s = ((a[2] - a[0]) + (a[3] - a[1]) + (b[2] - b[0]) + (b[3] - b[1])) / 4
    m = margin * s
    if relation == "left of":
        return dx > abs(dy) + m
    if relation == "right of":
        return -dx > abs(dy) + m
    if relation == "above":
        return dy > abs(dx) + m
    if relation == "below":
        return -dy > abs(dx) + m
    if relation == "next to":
        gap = max(a[0], b[0]) - min(a[2], b[2])
        side = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1])
        return abs(dx) > abs(dy) + m and gap <= side * (0.25 if margin > 0 else 1.5)
    raise ValueError(f"unknown relation {relation!r}: one of {RELATIONS}")


def _line(boxes: list[Box], vertical: bool) -> bool:
    if len(boxes) < 2:
        return False
    a, b = (1, 0) if vertical else (0, 1)  # along, across
    across = [center(x)[b] for x in boxes]
    extent = statistics.median((x[b + 2] - x[b]) for x in boxes)
    mid = statistics.median(across)
    if any(abs(c - mid) > extent / 2 for c in across):
        return False
    ordered = sorted(boxes, key=lambda x: center(x)[a])
    return all(p[a + 2] <= q[a] + 1 for p, q in itertools.pairwise(ordered))


def arrangement_holds(layout: dict[str, Any], boxes: list[Box]) -> bool:
    kind = layout["kind"]
    if kind == "row":
        return _line(boxes, vertical=False)
    if kind == "column":
        return _line(boxes, vertical=True)
    if kind == "grid":
        rows, cols = layout["rows"], layout["cols"]
        if len(boxes) != rows * cols:
            return False
        by_y = sorted(boxes, key=lambda x: center(x)[1])
        grid = [sorted(by_y[r * cols : (r + 1) * cols], key=lambda x: center(x)[0]) for r in range(rows)]
        if cols > 1 and not all(_line(row, vertical=False) for row in grid):
            return False
        return rows == 1 or all(_line([grid[r][c] for r in range(rows)], vertical=True) for c in range(cols))
    raise ValueError(f"unknown layout {kind!r}")
