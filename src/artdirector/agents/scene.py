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

import logging
import time
from pathlib import Path
from typing import Any

import torch

from artdirector.agents.scene_input import load_scene
from artdirector.agents.scene_report import SceneResult, item_name, write_scene
from artdirector.prompts import Prompt
from artdirector.scenes.canvas import center
from artdirector.scenes.compose import Compositor, Drawing, item_seed, render, style_reached, styled
from artdirector.scenes.layout import Plan, plan
from artdirector.scenes.verify import Verdict, verify

log = logging.getLogger(__name__)


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

            return comp.draw(
                item, seed, candidates=n, score=creator.critic_scores
            ), f"drs: best of {n} by the critic"
        if "guidance" in creator.capabilities:
            g = float(creator.defaults.get("guidance", 1.0)) * self.guidance_factor**attempt
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
