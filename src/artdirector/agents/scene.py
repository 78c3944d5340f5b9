"""The Director for scenes: plan, compose, verify, repair what failed, until every check passes or the
budget is spent.

Round 0 is the **one-shot** canvas: the plan, one draw per object. Each later round repairs only what the
verifier found wrong:

- an object that is missing, of the wrong class, of the wrong size, or split in two is **redrawn** in its cell
  with a new seed: for a GAN by discriminator rejection sampling (the best of ``drs_candidates`` by its critic,
  doubling with each failed attempt), for a diffusion creator at stronger guidance; after ``switch_after`` failed
  attempts another creator of the same dataset draws it, if there is one;
- an extra object is charged to the nearest planned object, which is redrawn;
- an object that failed ``move_after`` (2) redraws in a row is moved: the layout is re-planned (a new layout
  seed, the drawings kept), because a detector's response depends on where an object sits on its grid (a
  GAN's one "3" moved by 2 px went from a score of 0.28 to 0.61, across the 0.3 threshold);
- when every object is right but a relation or the layout is not, the layout is **re-planned** (a new layout
  seed; the drawings are kept).

Everything lands in ``trace.json`` (the parsed prompt, the plan, each round's detections, object verdicts with
their boxes, relation verdicts and actions) and in ``report.md`` / ``report.html`` with the annotated canvas.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from artdirector.creators import critic_logits
from artdirector.io import atomic_write, write_json, write_text
from artdirector.prompts import Prompt
from artdirector.scenes.canvas import center
from artdirector.scenes.compose import Compositor, Drawing, item_seed, render, style_reached, styled
from artdirector.scenes.layout import Plan, plan
from artdirector.scenes.verify import Verdict, verify

log = logging.getLogger(__name__)
SCENE_TRACE_VERSION = "scene/1"


@dataclass
class SceneResult:
    prompt: Prompt
    plan: Plan
    canvas: torch.Tensor
    verdict: Verdict
    one_shot: Verdict
    rounds: list[dict[str, Any]]
    stop: str
    seconds: float
    drawings: list[Drawing] = field(default_factory=list)
    upscaled: torch.Tensor | None = None
    upscale_check: dict[str, Any] | None = None
    # an edit of an earlier scene run: that run, the edit as parsed and resolved, its canvas
    parent: dict[str, Any] | None = None
    edit: dict[str, Any] | None = None
    before: torch.Tensor | None = None

    @property
    def style_ok(self) -> bool:
        """Every styled object's edit reached its goal (True when nothing was styled)."""
        return all(style_reached(d) for d in self.drawings)

    @property
    def passed(self) -> bool:
        """The detector's blind check passes and every style edit reached its goal."""
        return self.verdict.passed and self.style_ok


class SceneDirector:
    def __init__(
        self,
        creators: dict[str, list[Any]],
        detector: Any,
        canvas: int = 128,
        base: int = 32,
        max_rounds: int = 10,
        max_seconds: float = 120.0,
        threshold: float = 0.3,
        drs_candidates: int = 8,
        switch_after: int = 3,
        move_after: int = 2,
        guidance_factor: float = 1.5,
        seed: int = 0,
        upscale: int | None = None,
        upscaler: Any = None,
    ) -> None:
        """``creators``: for each dataset ("mnist", "fashion_mnist"), its class-conditional creators, best
        first (the first draws; the others are the fallbacks)."""
        self.creators = {k: list(v) for k, v in creators.items() if v}
        self.detector = detector
        self.canvas, self.base = int(canvas), int(base)
        self.max_rounds, self.max_seconds = int(max_rounds), float(max_seconds)
        self.threshold, self.drs_candidates = float(threshold), int(drs_candidates)
        self.switch_after, self.guidance_factor, self.seed = (
            int(switch_after),
            float(guidance_factor),
            int(seed),
        )
        self.move_after = max(1, int(move_after))
        if upscale not in (None, 1, 2, 4):
            raise ValueError(f"scene.upscale must be 2 or 4 (or null), got {upscale}")
        self.upscale = None if upscale in (None, 1) else int(upscale)
        self.upscaler = upscaler  # a x4 super-resolution net (models/superres.py load_sr)

    def _compositor(self, choice: dict[str, int]) -> Compositor:
        return Compositor({ds: cs[choice.get(ds, 0) % len(cs)] for ds, cs in self.creators.items()})

    def _check_domains(self, prompt: Prompt, why: str = "") -> None:
        from artdirector.errors import ConfigError

        missing = sorted({o.dataset for o in prompt.objects} - set(self.creators))
        if missing:
            raise ConfigError(
                f"{prompt.text!r} needs a class-conditional creator of {', '.join(missing)}{why}, and none was "
                "given or shipped: pass one with scene.creators or ckpt="
            )

    def _redraw(
        self, comp: Compositor, plan_: Plan, k: int, attempt: int, salt: str = ""
    ) -> tuple[Drawing, str]:
        item = plan_.items[k]
        creator = comp.creator_for(item)
        seed = item_seed(self.seed, k, attempt, salt)
        if "critic" in creator.capabilities:
            n = min(self.drs_candidates * 2 ** (attempt - 1), 64)

            def critic(images, labels, model=creator.model):
                return critic_logits(model, images, labels)

            return comp.draw(item, seed, candidates=n, score=critic), f"drs: best of {n} by the critic"
        if "guidance" in creator.capabilities:
            g = float(creator.model.defaults.get("guidance", 1.0)) * self.guidance_factor**attempt
            return comp.draw(item, seed, guidance=g), f"new seed at guidance {g:.2f}"
        return comp.draw(item, seed), "new seed"

    def run(self, prompt: Prompt, output_dir: str | Path | None = None) -> SceneResult:
        self._check_domains(prompt)
        start = time.monotonic()
        plan_ = plan(prompt, self.canvas, self.canvas, self.base, seed=self.seed)
        choice: dict[str, int] = {}
        comp = self._compositor(choice)
        drawings = [
            styled(comp.draw(it, item_seed(self.seed, k, 0)), prompt.objects[it.obj].style)
            for k, it in enumerate(plan_.items)
        ]
        actions = [{"action": "compose", "why": "the one-shot canvas: one draw per object"}]

        def replan(n: int) -> Plan:  # a new layout: every object moves, the drawings are kept
            return plan(prompt, self.canvas, self.canvas, self.base, seed=self.seed + n)

        result = self._direct(prompt, plan_, drawings, actions, start, choice, replan)
        return self._finish(result, output_dir)

    def edit(self, text: str, parent_dir: str | Path, output_dir: str | Path | None = None) -> SceneResult:
        """An edit of an earlier scene run ("make the 7 bigger", "remove the 3", ...): only what it names
        changes (:mod:`artdirector.scenes.edit`); every other object keeps its drawing and its box. New
        objects are drawn, the canvas is verified again, and the repair loop may redraw or re-place only the
        objects the edit named. :class:`~artdirector.prompts.PromptError` (one line, listing the scene's
        objects) for an edit the scene cannot hold."""
        from artdirector.prompts.edits import parse_edit
        from artdirector.scenes.edit import apply, place

        edit = parse_edit(text)
        parent = load_scene(parent_dir)
        start = time.monotonic()
        applied = apply(edit, parent.scene)
        scene = applied.scene
        prompt = scene.prompt
        self._check_domains(
            Prompt(text, "edit", [prompt.objects[k] for k in sorted(applied.editable)]),
            ", to draw what it names",
        )
        generation = int((parent.trace.get("parent") or {}).get("generation", 0)) + 1
        salt = f"edit{generation}"
        choice: dict[str, int] = {}
        comp = self._compositor(choice)
        for k in applied.draw:
            item = scene.plan.items[k]
            scene.drawings[k] = styled(
                comp.draw(item, item_seed(self.seed, k, 0, salt)), prompt.objects[k].style
            )
        scene.plan.seed = 0
        actions = [
            {
                "action": "edit",
                "why": edit.describe(),
                "changed": sorted(applied.editable),
                "drawn": list(applied.draw),
                "placed": list(applied.movable),
            }
        ]

        def replan(n: int) -> Plan:  # only the objects the edit placed move
            place(applied, seed=n)
            scene.plan.seed = n
            return scene.plan

        result = self._direct(
            prompt,
            scene.plan,
            scene.drawings,
            actions,
            start,
            choice,
            replan if applied.movable else None,
            editable=applied.editable,
            salt=salt,
        )
        result.parent = {
            "run": str(parent.path.resolve()),
            "request": parent.trace["request"]["text"],
            "passed": bool(parent.trace["final"]["passed"]),
            "generation": generation,
        }
        result.edit = {
            **edit.to_dict(),
            "named": applied.named,
            "parent_index": applied.parent_index,
            "changed": sorted(applied.editable),
            "placed": list(applied.movable),
            "notes": applied.notes,
        }
        result.before = parent.canvas
        log.info("edit %r of %s: %s", text, parent.path, edit.describe())
        return self._finish(result, output_dir)

    def _finish(self, result: SceneResult, output_dir: str | Path | None) -> SceneResult:
        if self.upscale:
            result.upscaled, result.upscale_check = self._upscale(
                result.prompt, result.plan, result.canvas, result.verdict
            )
        if output_dir is not None:
            write_scene(self, result, Path(output_dir))
        return result

    def _direct(
        self,
        prompt: Prompt,
        plan_: Plan,
        drawings: list[Drawing],
        actions: list[dict[str, Any]],
        start: float,
        choice: dict[str, int],
        replan: Any,
        editable: set[int] | None = None,
        salt: str = "",
    ) -> SceneResult:
        """Verify, repair what failed, until every check passes or the budget is spent. ``replan(n)`` gives
        the n-th new plan (None: nothing may move); ``editable``: the only items a repair may touch (None:
        all), an edit's; ``salt`` keeps an edit's redraws apart from the scene's own seeds."""
        comp = self._compositor(choice)
        attempts = [0] * len(plan_.items)
        rounds: list[dict[str, Any]] = []
        one_shot = None
        stop = ""
        replans = 0
        for r in range(self.max_rounds + 1):
            canvas = render(plan_, [d.image for d in drawings])
            verdict = verify(prompt, plan_, canvas, self.detector, self.threshold)
            rounds.append(
                {
                    "round": r,
                    "actions": actions,
                    "plan_seed": plan_.seed,
                    "boxes": [list(it.box) for it in plan_.items],
                    "verdict": verdict.to_dict(),
                    "seconds": round(time.monotonic() - start, 3),
                }
            )
            one_shot = one_shot or verdict
            # a styled object whose edit missed its goal is redrawn like one the detector failed
            missed = [k for k, d in enumerate(drawings) if not style_reached(d)]
            if missed:
                rounds[-1]["style_missed"] = missed
            log.info(
                "scene round %d: %s%s",
                r,
                "pass" if verdict.passed else "; ".join(verdict.reasons),
                f"; style missed its goal for object(s) {missed}" if missed else "",
            )
            if verdict.passed and not missed:
                stop = "every check passes"
                break
            if r == self.max_rounds:
                stop = f"budget spent: {self.max_rounds} repair rounds"
                break
            if time.monotonic() - start > self.max_seconds:
                stop = f"budget spent: {self.max_seconds:.0f} s"
                break
            failed = set(verdict.failed_items) | set(missed)
            for extra in verdict.extras:  # an extra is charged to the nearest planned object
                cx, cy = center(tuple(extra["box"]))
                failed.add(
                    min(
                        range(len(plan_.items)),
                        key=lambda k: (
                            (center(plan_.items[k].box)[0] - cx) ** 2
                            + (center(plan_.items[k].box)[1] - cy) ** 2
                        ),
                    )
                )
            if editable is not None:  # an edit repairs only what it named
                untouched = sorted(failed - editable)
                failed &= editable
                if untouched and not failed:
                    stop = f"object(s) {untouched} fail the check, and the edit does not touch them"
                    break
            actions = []
            if not failed:
                if replan is None:
                    stop = "the arrangement fails, and the edit moves nothing"
                    break
                replans += 1
                plan_ = replan(replans)
                actions.append(
                    {
                        "action": "replan",
                        "why": "; ".join(verdict.reasons) or "arrangement",
                        "seed": plan_.seed,
                    }
                )
                continue
            for k in sorted(failed):
                attempts[k] += 1
                item = plan_.items[k]
                ds = comp.creator_for(item)
                dataset = next(d for d, cs in self.creators.items() if ds in cs)
                switched = ""
                if (
                    attempts[k] > self.switch_after
                    and len(self.creators[dataset]) > 1
                    and attempts[k] % self.switch_after == 1
                ):
                    choice[dataset] = choice.get(dataset, 0) + 1
                    comp = self._compositor(choice)
                    switched = f"switched {dataset} to {comp.creators[dataset].name}; "
                problem = (
                    next((o.problem for o in verdict.objects if o.index == k), None)
                    or ("its style edit missed its goal" if k in missed else None)
                    or "an extra object near it"
                )
                drawings[k], how = self._redraw(comp, plan_, k, attempts[k], salt)
                drawings[k] = styled(drawings[k], prompt.objects[item.obj].style)
                actions.append(
                    {
                        "action": "redraw",
                        "item": k,
                        "object": item_name(item),
                        "why": problem,
                        "how": switched + how,
                        "creator": drawings[k].creator,
                        "seed": drawings[k].seed,
                    }
                )
            stuck = [k for k in sorted(failed) if attempts[k] % self.move_after == 0]
            if (
                stuck and replan is not None
            ):  # redrawn in the same cell again and again: the detector may not see it there
                replans += 1
                plan_ = replan(replans)
                actions.append(
                    {
                        "action": "replan",
                        "why": f"object(s) {stuck} failed {self.move_after} redraws in their cells: a new "
                        + (
                            "layout moves every object"
                            if editable is None
                            else "place for what the edit moved"
                        )
                        + " (the drawings are kept)",
                        "seed": plan_.seed,
                    }
                )
        return SceneResult(
            prompt, plan_, canvas, verdict, one_shot, rounds, stop, time.monotonic() - start, drawings
        )

    @torch.no_grad()
    def _upscale(self, prompt: Prompt, plan_: Plan, canvas: torch.Tensor, verdict: Verdict):
        """The canvas through the x4 super-resolution net (x2: then 2x2 area averaging;
        :func:`artdirector.models.superres.upscale`, as the batch Director's ``upscale``), and the check that
        it still says the same: the upscaled canvas, area-downsampled back, gets the same verdict."""
        from artdirector.models.superres import area_downsample, upscale

        if self.upscaler is None:
            raise ValueError("scene.upscale needs a super-resolution net (upscaler=load_sr())")
        big = upscale(canvas[None], self.upscale, self.upscaler)
        back = area_downsample(big, tuple(canvas.shape[-2:]))[0]
        again = verify(prompt, plan_, back, self.detector, self.threshold)
        check = {
            "scale": self.upscale,
            "size": list(big.shape[-2:]),
            "net": "ESPCN x4 (artdirector/weights/sr_x4.pt)"
            + (", then 2x2 area average" if self.upscale == 2 else ""),
            "verdict_downsampled": again.passed,
            "consistent": again.passed == verdict.passed,
            "max_abs_difference": round(float((back - canvas).abs().max()), 4),
        }
        return big[0], check


def item_name(item) -> str:
    from artdirector.scenes.canvas import class_name

    return (f"{item.size} " if item.size else "") + class_name(item.gid)


# ------------------------------------------------------------------ outputs


def annotated(canvas: torch.Tensor, verdict: Verdict, scale: int = 4) -> torch.Tensor:
    """The canvas, enlarged, with each detection boxed: green where its object passed, red otherwise (and
    for extras), the planned cells of missing objects dashed in orange."""
    from torchvision.utils import draw_bounding_boxes

    img = ((canvas.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    img = img.expand(3, -1, -1) if img.shape[0] == 1 else img
    img = torch.nn.functional.interpolate(img[None].float(), scale_factor=scale, mode="nearest")[0].to(
        torch.uint8
    )
    boxes, labels, colors = [], [], []
    for o in verdict.objects:
        if o.found is not None:
            boxes.append(o.found)
            labels.append(f"{o.found_name} ok" if o.ok else f"{o.found_name}: {o.problem}")
            colors.append("lime" if o.ok and verdict.passed else ("yellow" if o.ok else "red"))
        else:
            boxes.append(o.planned)
            labels.append(f"{o.name}: {o.problem}")
            colors.append("orange")
    for e in verdict.extras:
        boxes.append(tuple(e["box"]))
        labels.append(f"extra {e['name']}")
        colors.append("red")
    if not boxes:
        return img
    t = torch.tensor(boxes, dtype=torch.float) * scale
    return draw_bounding_boxes(img, t, labels=labels, colors=colors, width=2)


def _to_uint8(canvas: torch.Tensor) -> torch.Tensor:
    """A canvas in [-1, 1] as 3-channel uint8, for a PNG."""
    return ((canvas.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).expand(3, -1, -1)


def _png(img: torch.Tensor) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    return buf.getvalue()


def _describe_detector(det: Any) -> dict[str, Any]:
    """What the trace says of the verifier's detector: its file, the test metrics the file states."""
    if hasattr(det, "describe"):
        return det.describe()
    info = getattr(det, "info", {}) or {}
    return {
        "name": type(det).__name__,
        **{k: info[k] for k in ("path", "metrics", "recipe", "canvas_size") if k in info},
    }


def scene_trace(d: SceneDirector, res: SceneResult) -> dict[str, Any]:
    out = {
        "version": SCENE_TRACE_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "request": {
            "text": res.prompt.text,
            "task": "edit" if res.edit is not None else (res.prompt.task or "create"),
            "prompt": res.prompt.to_dict(),
        },
        "creators": {ds: [c.describe() for c in cs] for ds, cs in d.creators.items()},
        "detector": _describe_detector(d.detector),
        "settings": {
            "canvas": res.plan.height,
            "base": res.plan.base,
            "max_rounds": d.max_rounds,
            "max_seconds": d.max_seconds,
            "threshold": d.threshold,
            "drs_candidates": d.drs_candidates,
            "switch_after": d.switch_after,
            "move_after": d.move_after,
            "seed": d.seed,
        },
        "plan": res.plan.to_dict(),
        "rounds": res.rounds,
        "drawings": [dr.describe() for dr in res.drawings],
        "one_shot": {"passed": res.one_shot.passed, "reasons": res.one_shot.reasons},
        "upscale": res.upscale_check,
        "final": {
            "passed": res.passed,
            "reasons": res.verdict.reasons,
            "rounds": len(res.rounds) - 1,
            "stop": res.stop,
            "seconds": round(res.seconds, 3),
        },
    }
    if res.parent is not None:
        out["parent"], out["edit"] = res.parent, res.edit
    return out


def _objects_table(v: Verdict) -> list[str]:
    rows = ["| # | asked | verdict | found | box (x0, y0, x1, y1) | score |", "|---|---|---|---|---|---:|"]
    for o in v.objects:
        asked = (f"{o.size} " if o.size else "") + o.name
        box = ", ".join(f"{c:.0f}" for c in (o.found or o.planned))
        rows.append(
            f"| {o.index} | {asked} | {'ok' if o.ok else o.problem} | {o.found_name or '-'} | {box} | "
            f"{o.score if o.score is not None else '-'} |"
        )
    for e in v.extras:
        rows.append(
            f"| - | (nothing) | extra | {e['name']} | {', '.join(f'{c:.0f}' for c in e['box'])} | {e['score']} |"
        )
    return rows


def _md_to_html(md: str) -> str:
    """The report's own Markdown (headings, paragraphs, pipe tables, **bold**) as HTML: one source, two views."""
    import re

    def inline(t: str) -> str:
        return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(t))

    out, table = [], []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split("|")])
            continue
        if table:
            head, *rows = [r for r in table if not all(set(c) <= set("-:") for c in r)]
            out.append(
                "<table><tr>"
                + "".join(f"<th>{inline(c)}</th>" for c in head)
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows)
                + "</table>"
            )
            table = []
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            out.append(f"<p>{line}</p>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    return "\n".join(out)


def write_scene(d: SceneDirector, res: SceneResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    trace = scene_trace(d, res)
    write_json(out / "trace.json", trace)
    atomic_write(out / "canvas.pt", lambda p: torch.save(res.canvas.clone(), p))
    atomic_write(out / OBJECTS_FILE, lambda p: torch.save(scene_objects(res), p))
    canvas_png = _png(_to_uint8(res.canvas))
    ann_png = _png(annotated(res.canvas, res.verdict))
    atomic_write(out / "canvas.png", lambda p: p.write_bytes(canvas_png))
    atomic_write(out / "annotated.png", lambda p: p.write_bytes(ann_png))
    shown = [("canvas", "canvas.png", canvas_png, 384), ("annotated", "annotated.png", ann_png, 512)]
    if res.before is not None:  # an edit: the parent's canvas beside the new one
        before_png = _png(_to_uint8(res.before))
        atomic_write(out / "before.png", lambda p: p.write_bytes(before_png))
        shown.insert(0, ("before", "before.png", before_png, 384))
    if res.upscaled is not None:
        up = _png(_to_uint8(res.upscaled))
        atomic_write(out / f"canvas_x{d.upscale}.png", lambda p: p.write_bytes(up))
    status = "PASS" if res.passed else "FAIL"
    images = " ".join(f"![{alt}]({name})" for alt, name, _, _ in shown)
    lines = [f"# Scene edit: {res.prompt.text}" if res.edit else f"# Scene: {res.prompt.text}", ""]
    if res.edit is not None:
        lines += [
            f"Edit of {res.parent['run']} ({res.parent['request']!r}, "
            f"{'passed' if res.parent['passed'] else 'failed'}): **{res.edit['understood']}**. Objects kept as "
            f"they were (drawing and box): {sum(p is not None and k not in res.edit['changed'] for k, p in enumerate(res.edit['parent_index']))} "
            f"of {len(res.edit['parent_index'])}; changed: "
            + (", ".join(f"{k} ({item_name(res.plan.items[k])})" for k in res.edit["changed"]) or "none")
            + ".",
            "",
            *[f"{n[0].upper()}{n[1:]}." for n in res.edit["notes"]],
            "Before (the parent's canvas), after, and after with each detection boxed:",
            "",
        ]
    lines += [
        f"**{status}** after {len(res.rounds) - 1} repair round(s), {res.seconds:.1f} s ({res.stop}). "
        f"One-shot: {'pass' if res.one_shot.passed else 'fail (' + '; '.join(res.one_shot.reasons) + ')'}.",
        "",
        ("After the edit: " if res.edit else "Parsed: ")
        + f"{len(res.prompt.objects)} object{' kind' if not res.edit else ''}(s) "
        + ", ".join(f"{o.count} x {(o.size + ' ') if o.size else ''}{o.name}" for o in res.prompt.objects)
        + (
            f"; relations: {', '.join(f'{res.prompt.objects[r.subject].name} {r.relation} {res.prompt.objects[r.object].name}' for r in res.prompt.relations)}"
            if res.prompt.relations
            else ""
        )
        + (f"; layout: {res.prompt.layout}" if res.prompt.layout else ""),
        "",
        "Creators: "
        + "; ".join(f"{ds}: {', '.join(c.name for c in cs)}" for ds, cs in d.creators.items())
        + f". Verifier: {trace['detector'].get('name', trace['detector'].get('class'))} at threshold {d.threshold}.",
        "",
        images,
        "",
        "## Objects (final round)",
        "",
        *_objects_table(res.verdict),
        "",
    ]
    if res.verdict.relations:
        lines += ["## Relations", "", "| relation | verdict |", "|---|---|"]
        lines += [
            f"| {r.subject} {r.relation} {r.object} | {'ok' if r.ok else 'fails'} |"
            for r in res.verdict.relations
        ]
        lines.append("")
    styled = [(k, d) for k, d in enumerate(res.drawings) if d.style]
    if styled:
        lines += [
            "## Style",
            "",
            "Each style word is a pixel edit of its object's drawing (Morpho-MNIST), measured on the drawing; "
            "the detector's verdict above does not judge style.",
            "",
            "| object | word | target | before | after | goal |",
            "|---:|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {k} | {s['word']} | {s['target']} | {s['before']:.2f} | {s['after']:.2f} | {s['goal']:.2f} |"
            for k, d in styled
            for s in d.style
        ]
        lines.append("")
    if res.upscale_check:
        u = res.upscale_check
        lines += [
            f"Upscaled x{u['scale']} to {u['size'][1]}x{u['size'][0]} (`canvas_x{u['scale']}.png`, {u['net']}); "
            f"downsampled back it {'passes' if u['verdict_downsampled'] else 'fails'} "
            f"({'consistent' if u['consistent'] else 'NOT consistent'} with the canvas' verdict).",
            "",
        ]
    if res.verdict.layout_ok is not None:
        lines += [f"Layout {res.prompt.layout['kind']}: {'ok' if res.verdict.layout_ok else 'fails'}.", ""]
    lines += ["## Rounds", "", "| round | actions | verdict |", "|---:|---|---|"]
    for rd in res.rounds:
        acts = "; ".join(
            f"{a['action']} {a.get('object', '')} ({a.get('why', '')}{', ' + a['how'] if 'how' in a else ''})".replace(
                " ()", ""
            )
            for a in rd["actions"]
        )
        v = rd["verdict"]
        lines.append(f"| {rd['round']} | {acts} | {'pass' if v['passed'] else '; '.join(v['reasons'])} |")
    md = "\n".join(lines) + "\n"
    write_text(out / "report.md", md)
    embedded = " ".join(
        f'<img width={width} alt="{alt}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for alt, _, png, width in shown
    )
    page = (
        "<!doctype html><meta charset=utf-8>"
        f"<title>{html.escape(res.prompt.text)}: {status}</title>"
        "<style>body{font-family:sans-serif;max-width:64em;margin:2em auto}img{image-rendering:pixelated;margin:4px;vertical-align:top}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style>"
        + _md_to_html(md).replace(f"<p>{images}</p>", embedded)
    )
    write_text(out / "report.html", page)


# ------------------------------------------------------------------ scene runs as inputs (edits)

OBJECTS_FILE = "objects.pt"  # each object's drawing (the pixels pasted), class and box: what an edit keeps


def scene_objects(res: SceneResult) -> dict[str, Any]:
    """What ``objects.pt`` holds, in plan order: per object the image it was drawn as (C, h, w) in [-1, 1],
    its class, its box and how it was drawn; plain tensors, numbers and strings, so it loads with
    ``weights_only=True``."""
    return {
        "version": 1,
        "objects": [
            {
                "image": d.image.detach().float().cpu().clone(),
                "gid": int(it.gid),
                "box": [float(v) for v in it.box],
                "drawing": d.describe(),
            }
            for it, d in zip(res.plan.items, res.drawings, strict=True)
        ],
    }


def is_scene_run(path: str | Path) -> bool:
    """Is ``path`` the folder of a scene run (its ``trace.json`` a scene trace)?"""
    trace = Path(path).expanduser() / "trace.json"
    if not trace.is_file():
        return False
    try:
        return str(json.loads(trace.read_text()).get("version", "")).startswith("scene/")
    except (OSError, ValueError, AttributeError):
        return False


@dataclass
class SceneRun:
    """An earlier scene run, read back: its trace, the flat scene (objects, plan, drawings), its canvas."""

    path: Path
    trace: dict[str, Any]
    scene: Any  # artdirector.scenes.edit.Scene
    canvas: torch.Tensor


def _prompt_from(d: dict[str, Any]) -> Prompt:
    from dataclasses import fields

    from artdirector.prompts import ObjectSpec, Relation

    spec = {f.name for f in fields(ObjectSpec)}
    objects = [ObjectSpec(**{k: v for k, v in o.items() if k in spec}) for o in d["objects"]]
    relations = [Relation(r["subject"], r["relation"], r["object"]) for r in d.get("relations", [])]
    return Prompt(d["text"], d.get("task"), objects, relations, d.get("layout"))


def load_scene(path: str | Path) -> SceneRun:
    """An earlier scene run's folder, read safely (tensors with ``weights_only=True``) and checked: its
    objects re-rendered give its canvas exactly. :class:`~artdirector.errors.InputError` (one line) when it
    is not a scene run or cannot be used."""
    from artdirector.errors import InputError
    from artdirector.io import load_user_tensor
    from artdirector.scenes.edit import Scene, flat_plan, flatten
    from artdirector.scenes.layout import Item

    path = Path(path).expanduser()
    if not is_scene_run(path):
        raise InputError(
            f"input {path} is not a scene run (a folder with a scene's trace.json): an edit such as 'make the 7 "
            "bigger' needs the output folder of an earlier scene request"
        )
    trace = json.loads((path / "trace.json").read_text())
    if not (path / OBJECTS_FILE).is_file():
        raise InputError(
            f"input {path} has no {OBJECTS_FILE} (scene runs store their objects' drawings there since edits "
            "came in): make the scene again, then edit that run"
        )
    stored = load_user_tensor(path / OBJECTS_FILE)
    try:
        objs = stored["objects"]
        pl = trace["plan"]
        prompt = _prompt_from(trace["request"]["prompt"])
        items = [
            Item(int(i["obj"]), int(i["gid"]), i["size"], tuple(map(float, i["box"]))) for i in pl["items"]
        ]
        plan_ = Plan(
            int(pl["height"]),
            int(pl["width"]),
            int(pl["base"]),
            items,
            int(pl["seed"]),
            pl["layout"],
            float(pl["scale"]),
            list(pl.get("notes", [])),
        )
        drawings = [
            Drawing(
                o["image"].float(),
                str(o["drawing"]["creator"]),
                int(o["drawing"]["seed"]),
                str(o["drawing"]["how"]),
                dict(o["drawing"]["options"]),
                list(o["drawing"].get("style", [])),
            )
            for o in objs
        ]
        same = len(objs) == len(items) and all(
            int(o["gid"]) == it.gid
            and tuple(map(float, o["box"])) == it.box
            and isinstance(o["image"], torch.Tensor)
            for o, it in zip(objs, items, strict=False)
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(
            f"input {path}: its trace.json or {OBJECTS_FILE} is not a scene run's ({err!r})"
        ) from None
    if not same:
        raise InputError(f"input {path}: {OBJECTS_FILE} does not hold the objects its trace.json plans")
    canvas = render(plan_, [d.image for d in drawings])
    if (path / "canvas.pt").is_file():
        saved = load_user_tensor(path / "canvas.pt")
        if (
            not isinstance(saved, torch.Tensor)
            or saved.shape != canvas.shape
            or not torch.equal(saved.float(), canvas)
        ):
            raise InputError(
                f"input {path}: its objects re-rendered do not give its canvas.pt (the run was changed)"
            )
    scene = Scene(flatten(prompt, plan_), flat_plan(plan_), drawings)
    return SceneRun(path, trace, scene, canvas)


def director_from_config(cfg: Any, sharp: bool = False) -> SceneDirector:
    """The scene director a run's config asks for: the class-conditional creators among ``ckpt`` (the zoo
    when null), the shipped detector (or ``scene.detector``), the ``scene.*`` settings."""
    from omegaconf import OmegaConf

    from artdirector.agent import scene_creators, zoo_checkpoints
    from artdirector.errors import at_least, check_settings
    from artdirector.models.detector import load_detector
    from artdirector.models.superres import load_sr
    from artdirector.runtime import resolve_device

    sc = cfg.scene
    check_settings(
        cfg,
        {
            "scene.canvas": (
                at_least(16),
                "a canvas side in pixels >= 16 (default 128: four digits in a row)",
            ),
            "scene.base": (at_least(8), "a base cell in pixels >= 8"),
            "scene.max_rounds": (at_least(0), "a number of repair rounds >= 0"),
            "scene.max_seconds": (at_least(0), "a number of seconds >= 0"),
            "scene.threshold": (lambda v: 0 < v < 1, "a detection score threshold in (0, 1)"),
        },
    )
    # scene.upscale, or the run's upscale= when the scene's own is unset, or x4 for "sharp"
    upscale = sc.get("upscale") if sc.get("upscale") is not None else cfg.get("upscale")
    if upscale is None and sharp:
        upscale = 4
    device = resolve_device(cfg.device)
    ckpts = (
        zoo_checkpoints()
        if cfg.ckpt is None
        else (list(cfg.ckpt) if OmegaConf.is_list(cfg.ckpt) else [cfg.ckpt])
    )
    creators = scene_creators(ckpts, device)
    log.info("scene creators: %s", {ds: [c.name for c in cs] for ds, cs in creators.items()})
    detector = load_detector(sc.detector, map_location=device)
    if sc.get("second_stage", False):  # the shipped LeNets rename each detected object from its crop
        from artdirector.evaluation.scene_verifier import TwoStageDetector

        detector = TwoStageDetector(detector)
    return SceneDirector(
        creators,
        detector,
        canvas=sc.canvas,
        base=sc.base,
        max_rounds=sc.max_rounds,
        max_seconds=sc.max_seconds,
        threshold=sc.threshold,
        drs_candidates=sc.drs_candidates,
        switch_after=sc.switch_after,
        move_after=sc.get("move_after", 2),
        seed=cfg.seed,
        upscale=upscale,
        upscaler=load_sr(map_location=device) if upscale else None,
    )


def edit_scene(cfg: Any, request: str, parent_dir: str | Path) -> SceneResult:
    """``python scripts/agent.py input=<a scene run> request="make the 7 bigger"``: the edit, written to the
    run's output folder. The edit is read, and the parent run checked, before any model loads."""
    from artdirector.prompts import PromptError
    from artdirector.prompts.edits import looks_like_edit, parse_edit
    from artdirector.scenes.edit import apply

    try:  # the edit read and tried on the scene: a one-line error before the creators and detector load
        edit = parse_edit(request)
    except PromptError as err:
        if looks_like_edit(request):
            raise
        raise PromptError(
            f"input {parent_dir} is a scene run, so the request edits it, and {request!r} is not an edit ({err}); "
            "without input= a request makes a new scene"
        ) from None
    apply(edit, load_scene(parent_dir).scene)
    out = Path(cfg.paths.output_dir)
    result = director_from_config(cfg).edit(request, parent_dir, output_dir=out)
    log.info(
        "scene edit %r of %s: %s after %d repair round(s) (%s). Wrote %s (before.png, canvas.png, annotated.png, "
        "objects.pt, report.md, report.html, trace.json)",
        request,
        parent_dir,
        "PASS" if result.passed else "FAIL",
        len(result.rounds) - 1,
        result.stop,
        out,
    )
    return result
