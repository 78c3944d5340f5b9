"""Editing a finished scene: find the objects an edit names, change only those, and place what moved.

A scene here is **flat**: one object per instance (count 1, its own size and style words), object ``k`` is
plan item ``k``, the prompt's relations are between instances, and each object has its drawing (the pixels
that were pasted). :func:`flatten` turns a scene run's prompt and plan into that form; the verifier's check
of a flat prompt is the check of the original one.

:func:`apply` gives the scene after an edit. Every object the edit does not name keeps its drawing and its
box, so its pixels on the new canvas are the old ones. What the edit names:

- **change** ("make the 7 bigger", "make the 3 thicker"): a new size keeps the drawing and re-places its box
  (the same centre when that is free); a style word edits the drawing's pixels (``compose.styled``);
- **remove**: the object and its relations go;
- **add** ("add a 5 below the 7"): a new object, drawn by the agent, placed where its relation holds;
- **replace** ("replace the 4 with a 9"): a new object in the old one's place, with its relations;
- **move** ("move the 3 to the right of the 7"): the object's old relations go (they were about where it
  was), the new one holds; its drawing is kept;
- **swap**: the two exchange places (each keeps its size) and every relation follows them.

An add, remove or move changes the scene's arrangement, so a row, column or grid it was asked as becomes the
relations it implies between the objects that stay (a row of three: each left of the ones after it); the
other edits keep the layout. Objects that move are placed by :func:`place`: the free spot nearest to where
they belong, apart from every other box and with every relation that involves them holding with the
planner's margin; an edit with no such spot, or that names an object the scene does not have (or one of
several without saying which), is a :class:`~artdirector.prompts.PromptError` that lists the scene's objects.
"""

from __future__ import annotations

import copy
import random
import statistics
from dataclasses import dataclass, field
from typing import Any

from artdirector.prompts import ObjectSpec, Prompt, PromptError, Relation
from artdirector.prompts.edits import Edit, ObjectRef
from artdirector.scenes.canvas import SIZE_SCALE, center, class_name, global_id
from artdirector.scenes.compose import Drawing, styled
from artdirector.scenes.layout import Item, Plan, apart
from artdirector.scenes.relations import arrangement_holds, relation_holds

SIZES = ("small", None, "large")  # the sizes a scene draws, smallest first
_AXES = {"left": (0, min), "right": (0, max), "top": (1, min), "bottom": (1, max)}


@dataclass
class Scene:
    """A flat scene: object ``k`` of the prompt is item ``k`` of the plan and has drawing ``k``."""

    prompt: Prompt
    plan: Plan
    drawings: list[Drawing | None]

    def describe(self, k: int) -> str:
        o, box = self.prompt.objects[k], self.plan.items[k].box
        cx, cy = center(box)
        words = [o.size, *o.style, o.name]
        return f"{'an' if o.name[0] in '8aeiou' else 'a'} {' '.join(w for w in words if w)} at ({cx:.0f}, {cy:.0f})"

    def inventory(self) -> str:
        """What the scene has, each object with its centre in pixels: for the messages of refused edits."""
        parts = [self.describe(k) for k in range(len(self.prompt.objects))]
        listed = ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else "".join(parts)
        return f"the scene has {listed}" if parts else "the scene is empty"


@dataclass
class Applied:
    """The scene after an edit, and what the edit touched (indices into the new scene)."""

    scene: Scene
    parent_index: list[int | None]  # each object's index in the scene before (None: new)
    draw: list[int]  # objects the agent draws (new ones)
    editable: set[int]  # objects the repair loop may redraw or re-place: what the edit names
    movable: list[int]  # objects whose box the edit (re)placed
    prefer: dict[
        int, tuple[float, float]
    ]  # where each movable object belongs (its place is the nearest free)
    named: dict[str, Any] = field(default_factory=dict)  # the objects the edit named, resolved
    notes: list[str] = field(default_factory=list)


def flatten(prompt: Prompt, plan: Plan) -> Prompt:
    """One object per plan item (count 1, the item's size), relations between instances."""
    objects = [
        ObjectSpec(**{**copy.deepcopy(vars(prompt.objects[it.obj])), "count": 1, "size": it.size})
        for it in plan.items
    ]
    of = {}
    for k, it in enumerate(plan.items):
        of.setdefault(it.obj, []).append(k)
    relations = [
        Relation(a, r.relation, b)
        for r in prompt.relations
        for a in of.get(r.subject, [])
        for b in of.get(r.object, [])
    ]
    layout = copy.deepcopy(prompt.layout)
    return Prompt(prompt.text, prompt.task, objects, relations, layout)


def flat_plan(plan: Plan) -> Plan:
    items = [Item(k, it.gid, it.size, tuple(it.box)) for k, it in enumerate(plan.items)]
    return Plan(
        plan.height, plan.width, plan.base, items, plan.seed, copy.deepcopy(plan.layout), plan.scale, []
    )


def side(plan: Plan, size: str | None) -> int:
    """The cell side of an object of this size word in this plan (as the planner sizes it)."""
    return max(1, int(round(plan.base * SIZE_SCALE[size]) * plan.scale))


def resolve(scene: Scene, ref: ObjectRef, text: str) -> int:
    """The index of the one object ``ref`` names; :class:`PromptError` listing the scene's objects when
    there is none, or several and ``ref`` does not say which."""
    gid = global_id(ref.dataset, ref.label)
    objs, items = scene.prompt.objects, scene.plan.items
    kind = [k for k, it in enumerate(items) if it.gid == gid]
    if not kind:
        raise PromptError(f"{text!r} names {ref.describe()}, which is not in the scene: {scene.inventory()}")
    said = [
        k
        for k in kind
        if (ref.size is None or objs[k].size == ref.size) and all(w in objs[k].style for w in ref.style)
    ]
    if not said:
        raise PromptError(
            f"{text!r} names {ref.describe()}: no {class_name(gid)} of the scene is that; {scene.inventory()}"
        )
    for place in ref.places:
        said = _pick(scene, said, place)
        if not said:
            raise PromptError(
                f"{text!r} names {ref.describe()}: no one {class_name(gid)} is the {place} one; {scene.inventory()}"
            )
    if len(said) > 1:
        boxes = [center(items[k].box) for k in said]
        xs, ys = [b[0] for b in boxes], [b[1] for b in boxes]
        a, b = ("left", "right") if max(xs) - min(xs) >= max(ys) - min(ys) else ("top", "bottom")
        name = class_name(gid)
        raise PromptError(
            f"{text!r} names {ref.describe()}, and {len(said)} objects of the scene are that: say which, e.g. 'the {a} "
            f"{name}' or 'the {name} on the {b}'; {scene.inventory()}"
        )
    return said[0]


def _pick(scene: Scene, ks: list[int], place: str) -> list[int]:
    """The objects among ``ks`` that are the ``place`` ones: within a quarter of the smallest cell of the
    extreme centre along the axis ("left": the smallest x; a row or column of a grid lines up closer than
    that), or the median along the axis they spread over most."""
    boxes = {k: scene.plan.items[k].box for k in ks}
    tol = min(b[2] - b[0] for b in boxes.values()) / 4
    if place == "middle":
        cs = {k: center(b) for k, b in boxes.items()}
        spread = [max(c[a] for c in cs.values()) - min(c[a] for c in cs.values()) for a in (0, 1)]
        axis = 0 if spread[0] >= spread[1] else 1
        if len(ks) % 2 == 0:
            return []
        mid = statistics.median(c[axis] for c in cs.values())
        return [k for k in ks if abs(cs[k][axis] - mid) <= tol]
    axis, extreme = _AXES[place]
    end = extreme(center(b)[axis] for b in boxes.values())
    return [k for k in ks if abs(center(boxes[k])[axis] - end) <= tol]


def layout_relations(scene: Scene) -> list[Relation]:
    """The relations a row, column or grid implies between its objects, from where they are: in a row each is
    left of the ones after it, in a column above them; in a grid both, within its rows and its columns."""
    lay, items = scene.prompt.layout, scene.plan.items
    if not lay:
        return []
    by = {k: center(it.box) for k, it in enumerate(items)}

    def line(ks: list[int], axis: int, relation: str) -> list[Relation]:
        ks = sorted(ks, key=lambda k: by[k][axis])
        return [Relation(a, relation, b) for i, a in enumerate(ks) for b in ks[i + 1 :]]

    ks = list(range(len(items)))
    if lay["kind"] == "row":
        return line(ks, 0, "left of")
    if lay["kind"] == "column":
        return line(ks, 1, "above")
    rows, cols = lay["rows"], lay["cols"]
    by_y = sorted(ks, key=lambda k: by[k][1])
    grid = [sorted(by_y[r * cols : (r + 1) * cols], key=lambda k: by[k][0]) for r in range(rows)]
    out = [rel for row in grid for rel in line(row, 0, "left of")]
    return out + [rel for c in range(cols) for rel in line([grid[r][c] for r in range(rows)], 1, "above")]


def _unlayout(scene: Scene, notes: list[str]) -> None:
    if scene.prompt.layout:
        lay = scene.prompt.layout
        what = f"{lay['rows']}x{lay['cols']} grid" if lay["kind"] == "grid" else lay["kind"]
        implied = [r for r in layout_relations(scene) if r not in scene.prompt.relations]
        scene.prompt.relations += implied
        scene.prompt.layout, scene.plan.layout = None, None
        notes.append(f"the {what} the scene was asked as is kept as the {len(implied)} relations it implies")


def _drop(scene: Scene, k: int) -> None:
    """Remove object ``k`` and its relations; later indices shift down by one."""
    del scene.prompt.objects[k], scene.plan.items[k], scene.drawings[k]
    scene.prompt.relations = [
        Relation(a - (a > k), r, b - (b > k))
        for a, r, b in ((x.subject, x.relation, x.object) for x in scene.prompt.relations)
        if k not in (a, b)
    ]
    for j, it in enumerate(scene.plan.items):
        it.obj = j


def _spot(scene: Scene, k: int, relation: str | None, other: int | None, s: int) -> tuple[float, float]:
    """Where an object of side ``s`` in ``relation`` to object ``other`` belongs: beside it, one cell and a
    gap away in the relation's direction (the canvas centre without a relation)."""
    if relation is None or other is None:
        return scene.plan.width / 2, scene.plan.height / 2
    box = scene.plan.items[other].box
    cx, cy = center(box)
    d = (box[2] - box[0] + s) / 2 + 8
    dx, dy = {"left of": (-d, 0), "right of": (d, 0), "above": (0, -d), "below": (0, d), "next to": (d, 0)}[
        relation
    ]
    return cx + dx, cy + dy


def apply(edit: Edit, before: Scene, seed: int = 0) -> Applied:
    """The scene after ``edit`` (``before`` is not changed), with the moved and new objects placed."""
    scene = Scene(copy.deepcopy(before.prompt), flat_plan(before.plan), list(before.drawings))
    parent: list[int | None] = list(range(len(scene.drawings)))
    notes: list[str] = []
    text = edit.text
    target = resolve(before, edit.target, text) if edit.target is not None else None
    other = resolve(before, edit.other, text) if edit.other is not None else None
    named: dict[str, Any] = {}
    for key, k in (("target", target), ("other", other)):
        if k is not None:
            named[key] = {"index": k, "object": before.describe(k)}
    if target is not None and target == other:
        raise PromptError(
            f"{text!r} names {edit.target.describe()} twice: name two objects; {before.inventory()}"
        )
    draw: list[int] = []
    editable: set[int] = set()
    movable: list[int] = []
    prefer: dict[int, tuple[float, float]] = {}
    objs, items = scene.prompt.objects, scene.plan.items

    if edit.kind == "change":
        o, it = objs[target], items[target]
        size = o.size
        if edit.size is not None:
            size = edit.size
        elif edit.grow:
            step = SIZES.index(o.size) + edit.grow
            if not 0 <= step < len(SIZES):
                have = o.size or "normal-sized"
                raise PromptError(
                    f"{text!r}: {edit.target.describe()} is already {have}, and a scene draws objects small, "
                    f"normal or large; {before.inventory()}"
                )
            size = SIZES[step]
        if size == o.size and not edit.style:
            raise PromptError(f"{text!r}: {edit.target.describe()} is already {size}; {before.inventory()}")
        if edit.style:
            from artdirector.editing.targets import WORDS

            said = {WORDS[w][0]: w for w in edit.style}
            kept = [w for w in o.style if WORDS[w][0] not in said]
            o.style = kept + [w for w in edit.style if w not in kept]
            old = scene.drawings[target]
            new = styled(old, edit.style)
            scene.drawings[target] = Drawing(
                new.image, old.creator, old.seed, old.how, dict(old.options), [*old.style, *new.style]
            )
        if size != o.size:
            o.size, it.size = size, size
            s = side(scene.plan, size)
            cx, cy = center(it.box)
            it.box = (cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2)
            movable.append(target)
            prefer[target] = (cx, cy)
        editable.add(target)
    elif edit.kind == "remove":
        if len(objs) == 1:
            raise PromptError(
                f"{text!r} would leave the scene empty: {before.inventory()}; make a new scene instead"
            )
        _unlayout(scene, notes)
        _drop(scene, target)
        del parent[target]
    elif edit.kind == "replace":
        new = edit.new
        old = objs[target]
        size = new.size if new.size is not None else old.size
        objs[target] = ObjectSpec(new.name, new.dataset, new.label, 1, size, True, list(new.style))
        it = items[target]
        cx, cy = center(it.box)
        s = side(scene.plan, size)
        items[target] = Item(
            target, global_id(new.dataset, new.label), size, (cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2)
        )
        scene.drawings[target] = None
        parent[target] = None
        draw.append(target)
        editable.add(target)
        movable.append(target)
        prefer[target] = (cx, cy)
    elif edit.kind == "add":
        _unlayout(scene, notes)
        new = edit.new
        for _ in range(new.count):
            k = len(objs)
            objs.append(ObjectSpec(new.name, new.dataset, new.label, 1, new.size, True, list(new.style)))
            s = side(scene.plan, new.size)
            items.append(Item(k, global_id(new.dataset, new.label), new.size, (0.0, 0.0, float(s), float(s))))
            scene.drawings.append(None)
            parent.append(None)
            if edit.relation is not None:
                scene.prompt.relations.append(Relation(k, edit.relation, other))
            draw.append(k)
            editable.add(k)
            movable.append(k)
            prefer[k] = _spot(scene, k, edit.relation, other, s)
    elif edit.kind == "move":
        _unlayout(scene, notes)
        dropped = [r for r in scene.prompt.relations if target in (r.subject, r.object)]
        scene.prompt.relations = [r for r in scene.prompt.relations if r not in dropped]
        scene.prompt.relations.append(Relation(target, edit.relation, other))
        if dropped:
            notes.append(
                f"{len(dropped)} relation(s) of the moved {objs[target].name} dropped: they said where it was"
            )
        it = items[target]
        movable.append(target)
        editable.add(target)
        prefer[target] = _spot(scene, target, edit.relation, other, int(it.box[2] - it.box[0]))
    elif edit.kind == "swap":
        a, b = target, other
        ca, cb = center(items[a].box), center(items[b].box)
        for k, (cx, cy) in ((a, cb), (b, ca)):
            s = items[k].box[2] - items[k].box[0]
            items[k].box = (cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2)
            prefer[k] = (cx, cy)
        swap = {a: b, b: a}
        scene.prompt.relations = [
            Relation(swap.get(r.subject, r.subject), r.relation, swap.get(r.object, r.object))
            for r in scene.prompt.relations
        ]
        movable += [a, b]
        editable |= {a, b}
    else:
        raise ValueError(f"unknown edit kind {edit.kind!r}")
    scene.prompt.text = text
    out = Applied(scene, parent, draw, editable, movable, prefer, named, notes)
    if movable:
        try:
            place(out, seed)
        except PromptError as err:
            raise PromptError(f"{text!r} cannot hold: {err}; {before.inventory()}") from None
    problems = plan_problems(scene)
    if problems:
        raise PromptError(f"{text!r} cannot hold: {'; '.join(problems)}; {before.inventory()}")
    return out


def place(applied: Applied, seed: int = 0, gap: int = 4, margin: float = 0.25) -> None:
    """Give each movable object the free spot nearest to where it belongs (seed 0; a later seed jitters that
    point by up to a cell per seed, for the repair loop): inside the canvas, ``gap`` px apart from every other
    box, every relation between it and a placed object holding with the planner's ``margin``, and the
    layout (when the scene keeps one) holding once all are placed. :class:`PromptError` when there is none."""
    scene = applied.scene
    pl, rels = scene.plan, scene.prompt.relations
    rng = random.Random(seed)
    placed = set(range(len(pl.items))) - set(applied.movable)
    for n, k in enumerate(applied.movable):
        it = pl.items[k]
        s = round(it.box[2] - it.box[0])
        if s + 2 * gap > min(pl.width, pl.height):
            raise PromptError(f"a {s} px {class_name(it.gid)} does not fit the {pl.width}x{pl.height} canvas")
        px, py = applied.prefer[k]
        if seed:
            px += rng.uniform(-1, 1) * s * seed
            py += rng.uniform(-1, 1) * s * seed
        mine = [r for r in rels if k in (r.subject, r.object)]
        last = n == len(applied.movable) - 1
        spots = sorted(
            (
                (x0, y0)
                for x0 in range(gap, pl.width - s - gap + 1)
                for y0 in range(gap, pl.height - s - gap + 1)
            ),
            key=lambda p: (p[0] + s / 2 - px) ** 2 + (p[1] + s / 2 - py) ** 2,
        )
        for x0, y0 in spots:
            box = (float(x0), float(y0), float(x0 + s), float(y0 + s))
            if not all(apart(box, pl.items[j].box, gap) for j in placed):
                continue
            boxes = {**{j: pl.items[j].box for j in placed}, k: box}
            if not all(
                relation_holds(r.relation, boxes[r.subject], boxes[r.object], margin)
                for r in mine
                if r.subject in boxes and r.object in boxes
            ):
                continue
            if (
                last
                and scene.prompt.layout
                and not arrangement_holds(scene.prompt.layout, [*(pl.items[j].box for j in placed), box])
            ):
                continue
            it.box = box
            placed.add(k)
            break
        else:
            what = [
                f"{r.relation} the {scene.prompt.objects[r.object if r.subject == k else r.subject].name}"
                for r in mine
            ]
            raise PromptError(
                f"there is no free {s} px spot for the {class_name(it.gid)}"
                + (f" {' and '.join(what)}" if what else "")
                + f" {gap} px clear of every other object on the {pl.width}x{pl.height} canvas"
            )


def plan_problems(scene: Scene, gap: int = 4) -> list[str]:
    """What is wrong with a flat scene's plan, re-checked after an edit: boxes that overlap (closer than
    ``gap``) or leave the canvas, relations that do not hold on the boxes, a layout that does not."""
    items, out = scene.plan.items, []
    for k, it in enumerate(items):
        x0, y0, x1, y1 = it.box
        if x0 < 0 or y0 < 0 or x1 > scene.plan.width or y1 > scene.plan.height:
            out.append(f"the {class_name(it.gid)} (object {k}) leaves the canvas")
    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            if not apart(items[a].box, items[b].box, gap):
                out.append(f"the {class_name(items[a].gid)} and the {class_name(items[b].gid)} overlap")
    for r in scene.prompt.relations:
        if not relation_holds(r.relation, items[r.subject].box, items[r.object].box):
            names = scene.prompt.objects
            out.append(f"the {names[r.subject].name} is not {r.relation} the {names[r.object].name}")
    if scene.prompt.layout and not arrangement_holds(scene.prompt.layout, [it.box for it in items]):
        out.append(f"the objects are no longer a {scene.prompt.layout['kind']}")
    return out
