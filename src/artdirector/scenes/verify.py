"""The verifier: does a canvas show exactly what the prompt asked for?

The detector (``artdirector.models.detector``) looks at the canvas **without the layout** and returns every
object it finds. The verdict then has two parts:

- **the check** (pass or fail), blind to the plan: the detected classes are exactly the requested ones, as a
  multiset (an extra, a missing or a wrong object fails it); and some assignment of the detections to the
  requested instances satisfies every size word, relation and layout (``scenes.relations``, no margin). This is
  what the benchmark counts.
- **the attribution**, for the repair loop and the report: each planned object gets the detection whose centre
  lies in its cell (``ok``, ``missing``, ``wrong class``, ``too small`` ...), and a detection in no cell is an
  extra. The plan only says *which object to redraw*; it never makes a canvas pass.

Sizes: a detected (tight) box is turned into the cell it was drawn in (``canvas.estimated_cell``); "small"
passes below 0.8 x the base cell, "large" above 1.25 x (the planner draws them at 0.6 and 1.5 x).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from artdirector.prompts import Prompt
from artdirector.scenes.canvas import Box, center, class_name, estimated_cell
from artdirector.scenes.layout import Plan, instances, satisfied
from artdirector.scenes.relations import relation_holds

SMALL_BELOW, LARGE_ABOVE = 0.8, 1.25


def size_ok(size: str | None, box: Box, gid: int, base: float) -> bool:
    if size is None:
        return True
    cell = estimated_cell(box, gid) / base
    return cell < SMALL_BELOW if size == "small" else cell > LARGE_ABOVE


@dataclass
class ObjectVerdict:
    index: int  # the plan item
    name: str
    size: str | None
    planned: Box
    ok: bool
    problem: str | None = None  # None when ok: "missing", "wrong class (saw 1)", "too large", "2 objects"
    found: Box | None = None
    found_name: str | None = None
    score: float | None = None


@dataclass
class RelationVerdict:
    subject: str
    relation: str
    object: str
    ok: bool


@dataclass
class Verdict:
    passed: bool
    reasons: list[str]
    objects: list[ObjectVerdict]
    extras: list[dict[str, Any]] = field(default_factory=list)
    relations: list[RelationVerdict] = field(default_factory=list)
    layout_ok: bool | None = None
    detections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_items(self) -> list[int]:
        return [o.index for o in self.objects if not o.ok]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _det(d) -> dict[str, Any]:
    return {
        "name": class_name(d.gid),
        "gid": int(d.gid),
        "box": [round(v, 1) for v in d.box],
        "score": round(d.score, 3),
    }


def check(prompt: Prompt, detections: list, base: float) -> tuple[bool, list[str]]:
    """The blind check: (passed, what failed)."""
    insts = instances(prompt)
    want = Counter(g for _, g, _ in insts)
    have = Counter(d.gid for d in detections)
    reasons = []
    for g in sorted(set(want) | set(have)):
        if have[g] < want[g]:
            reasons.append(f"{want[g] - have[g]} {class_name(g)} missing (asked {want[g]}, found {have[g]})")
        elif have[g] > want[g]:
            reasons.append(f"{have[g] - want[g]} extra {class_name(g)} (asked {want[g]}, found {have[g]})")
    if reasons:
        return False, reasons
    # every way of giving the detections of each class to that class's instances
    slots = {g: [k for k, (_, gg, _) in enumerate(insts) if gg == g] for g in want}
    dets = {g: [d for d in detections if d.gid == g] for g in want}
    groups = sorted(want)
    for perms in itertools.product(*(itertools.permutations(dets[g]) for g in groups)):
        boxes: list[Box] = [(0.0, 0.0, 0.0, 0.0)] * len(insts)
        for g, perm in zip(groups, perms, strict=True):
            for k, d in zip(slots[g], perm, strict=True):
                boxes[k] = d.box
        if all(size_ok(s, b, g, base) for (_, g, s), b in zip(insts, boxes, strict=True)) and satisfied(
            prompt, insts, boxes
        ):
            return True, []
    sized = [f"{s} {class_name(g)}" for _, g, s in insts if s]
    what = [f"relations {[f'{r.relation}' for r in prompt.relations]}" if prompt.relations else None]
    what += [f"the {prompt.layout['kind']} layout" if prompt.layout else None]
    what += [f"sizes ({', '.join(sized)})" if sized else None]
    return False, ["the right objects, but not in the asked arrangement: " + ", ".join(w for w in what if w)]


def attribute(plan: Plan, detections: list) -> tuple[list[ObjectVerdict], list]:
    """Each planned object's detection (the one whose centre is in its cell) and the detections in no cell."""
    verdicts, used = [], set()
    for k, item in enumerate(plan.items):
        x0, y0, x1, y1 = item.box
        inside = [
            (j, d)
            for j, d in enumerate(detections)
            if x0 <= center(d.box)[0] <= x1 and y0 <= center(d.box)[1] <= y1
        ]
        used.update(j for j, _ in inside)
        v = ObjectVerdict(k, class_name(item.gid), item.size, item.box, ok=False)
        if not inside:
            v.problem = "missing"
        else:
            _, d = max(inside, key=lambda jd: (jd[1].gid == item.gid, jd[1].score))
            v.found, v.found_name, v.score = (
                tuple(round(c, 1) for c in d.box),
                class_name(d.gid),
                round(d.score, 3),
            )
            if d.gid != item.gid:
                v.problem = f"wrong class (saw {class_name(d.gid)})"
            elif len(inside) > 1:
                v.problem = f"{len(inside)} objects found in its cell"
            elif not size_ok(item.size, d.box, d.gid, plan.base * plan.scale):
                v.problem = "too large" if item.size == "small" else "too small"
            else:
                v.ok = True
        verdicts.append(v)
    extras = [d for j, d in enumerate(detections) if j not in used]
    return verdicts, extras


def verify(prompt: Prompt, plan: Plan, canvas, detector, threshold: float = 0.3) -> Verdict:
    """Detect on ``canvas`` (C, H, W), check it blind, attribute for repair."""
    detections = detector.detect(canvas[None], threshold=threshold)[0]
    passed, reasons = check(prompt, detections, plan.base * plan.scale)
    objects, extras = attribute(plan, detections)
    found = {o.index: o.found for o in objects if o.ok}
    rels = []
    for r in prompt.relations:
        subj = [k for k, it in enumerate(plan.items) if it.obj == r.subject]
        obj = [k for k, it in enumerate(plan.items) if it.obj == r.object]
        ok = all(
            a in found and b in found and relation_holds(r.relation, found[a], found[b])
            for a in subj
            for b in obj
        )
        rels.append(
            RelationVerdict(prompt.objects[r.subject].name, r.relation, prompt.objects[r.object].name, ok)
        )
    layout_ok = None
    if prompt.layout:
        from artdirector.scenes.relations import arrangement_holds

        layout_ok = len(found) == len(plan.items) and arrangement_holds(prompt.layout, list(found.values()))
    if passed and not all(o.ok for o in objects):
        # the blind check passed (right objects, right arrangement) though not where the plan put them
        for o in objects:
            if not o.ok:
                o.problem = f"{o.problem}; the blind check passed"
    return Verdict(
        passed, reasons, objects, [_det(d) for d in extras], rels, layout_ok, [_det(d) for d in detections]
    )
