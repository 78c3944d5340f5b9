"""The layout planner: a parsed prompt -> a box for every object instance, deterministic for a seed.

Cells are square: the base cell (``base``, 32 px on the default 128 px canvas: four in a row) scaled by the
object's size word (small x0.6, large x1.5). A row, column or grid is laid out as such (shrunk to fit when it
would not, with the scale written in the plan). Otherwise objects are scattered by seeded rejection sampling:
no two cells closer than ``gap`` pixels, and every relation of the prompt holding on the planned cells **with a
margin** (the same predicates the verifier applies, a fraction of a cell stricter), so a faithful rendering of
the plan passes the check.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from artdirector.prompts import Prompt, PromptError
from artdirector.scenes.canvas import SIZE_SCALE, Box, global_id
from artdirector.scenes.relations import arrangement_holds, relation_holds


@dataclass
class Item:
    """One object instance of the plan: which prompt object it is, its class, size word and cell."""

    obj: int  # index into Prompt.objects
    gid: int
    size: str | None
    box: Box


@dataclass
class Plan:
    height: int
    width: int
    base: int
    items: list[Item]
    seed: int
    layout: dict[str, Any] | None = None
    scale: float = 1.0  # < 1 when a row/column/grid was shrunk to fit the canvas
    notes: list[str] = field(default_factory=list)

    def boxes(self) -> list[Box]:
        return [it.box for it in self.items]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def instances(prompt: Prompt) -> list[tuple[int, int, str | None]]:
    """(object index, global class id, size word) for every instance the prompt asks for."""
    return [
        (i, global_id(o.dataset, o.label), o.size)
        for i, o in enumerate(prompt.objects)
        for _ in range(o.count)
    ]


def _order(prompt: Prompt, insts: list[tuple[int, int, str | None]], rng: random.Random) -> list[int]:
    """An order of instance indices along a row/column that respects left-of/above relations (a random one
    otherwise): a topological sort with seeded tie-breaks."""
    before: dict[int, set[int]] = {i: set() for i in range(len(prompt.objects))}
    for r in prompt.relations:
        if r.relation in ("left of", "above"):
            before[r.object].add(r.subject)
        elif r.relation in ("right of", "below"):
            before[r.subject].add(r.object)
    idx = list(range(len(insts)))
    rng.shuffle(idx)
    out: list[int] = []
    placed_objs: set[int] = set()
    while idx:
        ready = [k for k in idx if before[insts[k][0]] <= placed_objs | {insts[k][0]}]
        pick = ready[0] if ready else idx[0]
        out.append(pick)
        idx.remove(pick)
        obj = insts[pick][0]
        if all(insts[k][0] != obj for k in idx):
            placed_objs.add(obj)
    return out


def _line(
    insts, order, sizes, height, width, gap, rng, vertical: bool
) -> tuple[list[Box | None], float, list[str]]:
    along, across = (height, width) if vertical else (width, height)
    total = sum(sizes) + gap * (len(sizes) - 1)
    scale = min(1.0, (along - 2 * gap) / total)
    notes = []
    if scale < 1.0:
        notes.append(
            f"{len(sizes)} objects in a {'column' if vertical else 'row'} shrunk x{scale:.2f} to fit"
        )
    s = [max(1, int(sz * scale)) for sz in sizes]
    length = sum(s) + gap * (len(s) - 1)
    start = rng.randint(gap, max(gap, along - length - gap))
    biggest = max(s)
    mid = rng.randint(biggest // 2 + gap, max(biggest // 2 + gap, across - biggest // 2 - gap))
    boxes: list[Box | None] = [None] * len(insts)
    pos = start
    for k, size in zip(order, s, strict=True):
        jitter = rng.randint(-max(1, size // 10), max(1, size // 10))
        c = min(max(mid + jitter, size // 2), across - size + size // 2)
        a0, b0 = pos, c - size // 2
        x0, y0 = (b0, a0) if vertical else (a0, b0)
        boxes[k] = (float(x0), float(y0), float(x0 + size), float(y0 + size))
        pos += size + gap
    return boxes, scale, notes


def _grid(insts, sizes, rows, cols, height, width, gap, rng) -> tuple[list[Box | None], float, list[str]]:
    cell = max(sizes)
    scale = min(
        1.0,
        (width - 2 * gap) / (cols * cell + (cols - 1) * gap),
        (height - 2 * gap) / (rows * cell + (rows - 1) * gap),
    )
    notes = [f"a {rows}x{cols} grid shrunk x{scale:.2f} to fit"] if scale < 1.0 else []
    c = int(cell * scale)
    gw, gh = cols * c + (cols - 1) * gap, rows * c + (rows - 1) * gap
    x0 = rng.randint(gap, max(gap, width - gw - gap))
    y0 = rng.randint(gap, max(gap, height - gh - gap))
    order = list(range(len(insts)))
    rng.shuffle(order)
    boxes: list[Box | None] = [None] * len(insts)
    for slot, k in enumerate(order):
        r, q = divmod(slot, cols)
        size = int(sizes[k] * scale)
        ox = x0 + q * (c + gap) + (c - size) // 2
        oy = y0 + r * (c + gap) + (c - size) // 2
        boxes[k] = (float(ox), float(oy), float(ox + size), float(oy + size))
    return boxes, scale, notes


def apart(a: Box, b: Box, gap: int) -> bool:
    """Are the boxes at least ``gap`` px apart along x or y (no overlap, a clear margin between)?"""
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def plan(
    prompt: Prompt,
    height: int = 128,
    width: int = 128,
    base: int = 32,
    seed: int = 0,
    gap: int = 4,
    margin: float = 0.25,
    tries: int = 5000,
) -> Plan:
    """Boxes for every instance of ``prompt`` on a ``height`` x ``width`` canvas; the same seed, the same plan.
    :class:`PromptError` when the objects cannot fit (it says how big a canvas would)."""
    insts = instances(prompt)
    if not insts:
        raise PromptError(f"{prompt.text!r} names no object to place on a canvas")
    rng = random.Random(seed)
    sizes = [round(base * SIZE_SCALE[s]) for _, _, s in insts]
    layout = prompt.layout
    notes: list[str] = []
    scale = 1.0
    if layout and layout["kind"] == "grid":
        rows, cols = layout["rows"], layout["cols"]
        if len(insts) != rows * cols:
            raise PromptError(
                f"a {rows}x{cols} grid has {rows * cols} cells but {prompt.text!r} asks for {len(insts)} objects"
            )
        boxes, scale, notes = _grid(insts, sizes, rows, cols, height, width, gap, rng)
    elif layout:
        vertical = layout["kind"] == "column"
        boxes, scale, notes = _line(
            insts, _order(prompt, insts, rng), sizes, height, width, gap, rng, vertical
        )
    else:
        boxes = _scatter(prompt, insts, sizes, height, width, gap, margin, tries, rng)
    if scale * min(sizes) < 0.5 * base:
        raise PromptError(
            f"{len(insts)} objects do not fit a {width}x{height} canvas at a readable size; "
            f"ask for fewer or set scene.canvas to at least {int(sum(sizes) + gap * (len(sizes) + 1))}"
        )
    items = [Item(i, g, s, b) for (i, g, s), b in zip(insts, boxes, strict=True)]
    out = Plan(height, width, base, items, seed, layout, scale, notes)
    return out


def _scatter(prompt, insts, sizes, height, width, gap, margin, tries, rng) -> list[Box]:
    order = sorted(range(len(insts)), key=lambda k: -sizes[k])  # the big ones first
    for _ in range(tries):
        boxes: list[Box | None] = [None] * len(insts)
        ok = True
        for k in order:
            s = sizes[k]
            if s + 2 * gap > min(height, width):
                raise PromptError(
                    f"a {s} px object does not fit a {width}x{height} canvas; set scene.canvas larger"
                )
            for _ in range(50):
                x0, y0 = rng.randint(gap, width - s - gap), rng.randint(gap, height - s - gap)
                b = (float(x0), float(y0), float(x0 + s), float(y0 + s))
                if all(o is None or apart(b, o, gap) for o in boxes):
                    boxes[k] = b
                    break
            else:
                ok = False
                break
        if ok and satisfied(prompt, insts, boxes, margin):
            return boxes  # type: ignore[return-value]
    raise PromptError(
        f"could not lay out {prompt.text!r} on a {width}x{height} canvas in {tries} tries: "
        "ask for fewer or smaller objects, or set scene.canvas larger"
    )


def satisfied(prompt: Prompt, insts, boxes, margin: float = 0.0) -> bool:
    """Do the boxes (one per instance, in ``instances`` order) satisfy every relation and the layout?"""
    by_obj: dict[int, list[Box]] = {}
    for (i, _, _), b in zip(insts, boxes, strict=True):
        by_obj.setdefault(i, []).append(b)
    for r in prompt.relations:
        for a in by_obj.get(r.subject, []):
            for b in by_obj.get(r.object, []):
                if not relation_holds(r.relation, a, b, margin):
                    return False
    if prompt.layout:
        return arrangement_holds(prompt.layout, list(boxes))
    return True
