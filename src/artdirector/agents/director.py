"""The Director: request -> generate -> evaluate -> decide -> refine -> evaluate -> ... -> stop -> verdict.

Decisions and verdicts use different data. Every accept/reject is measured against the **selection** split
and keeps a step only when its FID gain beats ``z`` bootstrap standard errors of that gain. The run's stated
result is the **held-out replay**: fresh latents that no decision saw, sent through the accepted chain of
actions (with the models it accepted), measured against the **report** split beside the same fresh latents
sampled raw. A rejected step leaves samples *and* model as they were.

Some actions are asked for by the request rather than chosen to lower FID (``upscale``, ``style``):
the **finishing stage** applies each of ``Director(finish=[...])`` once, in order, after the FID loop stops,
keeps its output whatever its FID, and judges it by its own check
(:meth:`~artdirector.agents.refiners.Refiner.check`), stated plainly in the trace and the report
when it fails. Finishing actions join the chain, so the held-out replay applies them too and states their
check again on the report split.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artdirector.agents.evaluation import AgentReport, EvaluationAgent, Link, Result
from artdirector.agents.generation import GenerationAgent
from artdirector.agents.memory import Memory, Step
from artdirector.agents.policies import Policy, State
from artdirector.agents.refinement import RefinementAgent
from artdirector.agents.refiners import finishing_refiner
from artdirector.agents.report import write_outputs
from artdirector.agents.types import Action, Request, Samples, Stop

log = logging.getLogger(__name__)


@dataclass
class FinishStep(Step):
    """A finishing step in the trace: kept (``accepted``) because the request asked for it; ``check`` is
    what :meth:`RefinementAgent.check` returned (``met``, ``summary`` and its numbers)."""

    check: dict[str, Any] = field(default_factory=dict)
    finishing: bool = True


class Director:
    """Runs the loop until the FID target is met, the budget (steps, seconds) is spent, or the policy stops.

    Args:
        target_fid: stop when the selection FID is at or below it (0: spend the budget).
        target_fid_over_floor: if set, the target is this multiple of the real-vs-real floor at ``n``.
        z: a step is kept when its FID gain exceeds ``z`` times the bootstrap SE of the gain.
        floor_images: real images of neither reference split (the train split) for the floors.
        replay: measure the held-out verdict (fresh latents, report split) at the end.
        copy_check: if given, the verdict also states the directed samples' copy rate against the train split
            (:func:`artdirector.evaluation.copying.copy_check`).
        finish: finishing actions the request asked for (``Action("upscale", {"factor": 4})``), applied once
            each, in order, after the FID loop; judged by ``refinement.check``, not by FID gain.
    """

    def __init__(
        self,
        generation: GenerationAgent,
        evaluation: EvaluationAgent,
        refinement: RefinementAgent,
        policy: Policy,
        output_dir: str | Path,
        target_fid: float = 0.0,
        max_steps: int = 6,
        max_seconds: float = 600.0,
        n: int = 1000,
        z: float = 2.0,
        target_fid_over_floor: float | None = None,
        floor_images: Any = None,
        replay: bool = True,
        replay_seed: int = 1_000_003,
        tensorboard: bool = True,
        config: dict[str, Any] | None = None,
        copy_check: Any = None,
        finish: list[Action] | None = None,
    ) -> None:
        self.gen, self.eval, self.refiner, self.policy = generation, evaluation, refinement, policy
        self.finish = list(finish or [])
        for action in self.finish:
            finishing_refiner(action.name)  # an error unless it is a finishing action
        self.output_dir = Path(output_dir)
        self.target_fid, self.max_steps, self.max_seconds, self.n = target_fid, max_steps, max_seconds, n
        self.z, self.target_over_floor = z, target_fid_over_floor
        self.floor_images, self.replay, self.replay_seed = floor_images, replay, replay_seed
        self.config = config or {}
        # (images, features, grid path) -> the copy rate of the verdict's samples against the train split
        self.copy_check = copy_check
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.output_dir / "tensorboard"))

    @property
    def decision_rule(self) -> str:
        ev = self.eval.selection
        return (
            f"keep a step when its FID gain on the selection split exceeds {self.z:g} x the bootstrap "
            f"standard error of the gain ({ev.n_bootstrap} replicates; shared indices when the step refines "
            "the same latents, independent otherwise)"
        )

    def _evaluate(self, samples: Samples, creator: Any = None, split: str = "selection") -> AgentReport:
        return self.eval.evaluate(samples, creator or self.gen.creator, split=split)

    def _floors(self) -> dict[str, Any]:
        if self.floor_images is None or len(self.floor_images) < self.n:
            return {}
        out = {"n": self.n, "real": "train split (in neither reference)"}
        feats = self.eval.selection.features(self.floor_images)  # both splits share the feature network
        for split, ev in (("selection", self.eval.selection), ("report", self.eval.report)):
            f = ev.floor_features(feats, self.n)
            out[split] = {"fid": f["mean"], "sd": f["sd"]}
        return out

    def run(self, request: Request, base: Samples | None = None) -> Result:
        start = time.perf_counter()
        # the budget in seconds covers the whole run: the Refinement Agent's long actions look at the clock
        # between their steps, and the finishing stage and the held-out verdict start only while time is left
        self.refiner.deadline = start + self.max_seconds
        try:
            return self._run(request, base, start)
        finally:
            self.refiner.deadline = None

    def _run(self, request: Request, base: Samples | None, start: float) -> Result:
        memory, chain = Memory(), []
        self._cut = ""  # the last step the budget stopped part way, for the stop reason
        initial = self.gen.creator
        self.creator_info = self.gen.creator.describe()
        floor = self._floors()
        target = self.target_fid
        if self.target_over_floor is not None and floor:
            target = self.target_over_floor * floor["selection"]["fid"]
        samples = self.gen.generate(request, self.n, base=base)
        report = self._evaluate(samples)
        elapsed = time.perf_counter() - start
        memory.record(
            Step(
                0,
                "generate",
                {"task": request.task, "n": len(samples), "model": self.gen.why},
                None,
                report.metrics(),
                True,
                elapsed,
                request.understood,
                elapsed=elapsed,
            )
        )
        self._log_step(0, "generate", samples, report, accepted=True)
        while True:
            if report.fid <= target:
                stop_reason = f"target met: selection FID {report.fid:.3f} <= {target:.3f}"
                break
            elapsed = time.perf_counter() - start
            if len(memory.refinements) >= self.max_steps or elapsed >= self.max_seconds:
                spent = (
                    f"{len(memory.refinements)} steps"
                    if len(memory.refinements) >= self.max_steps
                    else f"{elapsed:.0f} s of {self.max_seconds:g} s"
                )
                stop_reason = (
                    f"budget spent ({spent}) before the target: selection FID {report.fid:.3f} > {target:.3f}"
                    " (the target may be unreachable with these actions)"
                )
                if elapsed >= self.max_seconds and self._cut:
                    stop_reason += f"; {self._cut}"
                break
            state = State(
                request.task,
                report.fid,
                target,
                len(memory.refinements),
                samples.latents is not None,
                self.gen.capabilities,  # what the creator in use can do
                self.max_steps,
            )
            decision = self.policy.decide(state, memory)
            if isinstance(decision, Stop):
                stop_reason = decision.reason
                break
            samples, report = self._act(decision, samples, report, memory, chain, start)
        finished, finished_report, checks = self._finish(samples, report, memory, chain, start)
        if len(checks) < len(self.finish):
            stop_reason += (
                f"; the budget was spent before the finishing action(s) "
                f"{', '.join(a.name for a in self.finish[len(checks) :])} (not applied)"
            )
        verdict: dict[str, Any] = {}  # {} when not measured (replay=false, or no time left for it)
        if self.replay and self.refiner.out_of_time():
            stop_reason += "; held-out verdict not measured: the budget was spent before the replay"
        elif self.replay:
            verdict = self._verdict(request, base, chain, initial)
            if "skipped" in verdict:
                stop_reason += f"; held-out verdict not measured: {verdict.pop('skipped')}"
        log.info("stop: %s", stop_reason)
        result = Result(
            request,
            samples,
            report,
            memory,
            stop_reason,
            report.fid <= target,
            self.output_dir,
            chain,
            floor,
            verdict,
            finished,
            finished_report,
            checks,
            "_".join(dict.fromkeys(self.refiner.output_tag(a) for a in self.finish[: len(checks)])) or None,
        )
        write_outputs(self, result, target, time.perf_counter() - start)
        return result

    def _act(self, action: Action, samples, report, memory: Memory, chain: list[Link], start: float):
        t0 = time.perf_counter()
        params = self.refiner.params(action)
        cand = self.refiner.refine(samples, action)
        cut = self.refiner.cut  # the budget stopped the action part way: its partial result is judged
        new_report = self._evaluate(cand.samples, cand.creator)
        gain, se = self.eval.selection.fid_difference(report.features, new_report.features, cand.paired)
        accepted = gain > self.z * se and gain > 0
        decision = f"gain {gain:+.3f} {'>' if accepted else '<='} {self.z:g} x SE {se:.3f}: " + (
            "kept" if accepted else "rejected (samples and model stay as they were)"
        )
        if cut:
            decision += f" ({action.name} {cut})"
        if accepted:
            if cand.changes_model:
                self.gen.use_creator(cand.creator)
            chain.append(Link(action.name, params, cand.creator, cand.model_path, cand.paired))
        seconds = time.perf_counter() - t0
        step = memory.record(
            Step(
                len(memory.steps),
                action.name,
                params,
                report.metrics(),
                new_report.metrics(),
                accepted,
                seconds,
                action.why,
                gain,
                se,
                decision,
                time.perf_counter() - start,
            )
        )
        if cut:
            self._cut = f"step {step.index} ({action.name}) {cut}"
        log.info(
            "step %d %s: selection FID %.3f -> %.3f; %s (%.1fs)",
            step.index,
            action.name,
            report.fid,
            new_report.fid,
            decision,
            seconds,
        )
        self._log_step(step.index, action.name, cand.samples, new_report, accepted)
        return (cand.samples, new_report) if accepted else (samples, report)

    def _finish(self, samples: Samples, report: AgentReport, memory: Memory, chain: list[Link], start: float):
        """Apply each finishing action once, in order, to the loop's final samples; evaluate (selection
        split), check, record, keep. Returns (finished samples, their report, the checks); (None, None, [])
        without finishing actions."""
        if not self.finish:
            return None, None, []
        checks = []
        for action in self.finish:
            if self.refiner.out_of_time():
                log.warning("budget spent: finishing action %s not applied", action.name)
                break
            t0 = time.perf_counter()
            params = self.refiner.params(action)
            cand = self.refiner.refine(samples, action)
            # no critic: a finishing action may change the image size the creator's critic reads
            new_report = self.eval.evaluate(cand.samples, None, split="selection")
            gain, se = self.eval.selection.fid_difference(report.features, new_report.features, cand.paired)
            check = self.refiner.check(
                action, samples, cand.samples, report, new_report, evaluator=self.eval.selection
            )
            checks.append(check)
            decision = (
                "finishing action asked for by the request: kept; "
                if check["met"]
                else "finishing action asked for by the request: kept, but its check FAILED; "
            ) + check["summary"]
            chain.append(Link(action.name, params, None, None, cand.paired, finishing=True))
            seconds = time.perf_counter() - t0
            step = memory.record(
                FinishStep(
                    len(memory.steps),
                    action.name,
                    params,
                    report.metrics(),
                    new_report.metrics(),
                    True,
                    seconds,
                    action.why or f"{action.name}: asked for by the request (a finishing action)",
                    gain,
                    se,
                    decision,
                    time.perf_counter() - start,
                    check=check,
                )
            )
            (log.info if check["met"] else log.warning)(
                "finish %d %s: %s (%.1fs)", step.index, action.name, check["summary"], seconds
            )
            self._log_step(step.index, action.name, cand.samples, new_report, True)
            samples, report = cand.samples, new_report
        if not checks:
            return None, None, []
        return samples, report, checks

    def _verdict(self, request: Request, base, chain: list[Link], initial: Any) -> dict[str, Any]:
        """Fresh latents (a seed no decision used), raw and through the accepted chain, on the report split."""
        final = self.gen.creator
        t0 = time.perf_counter()
        try:
            self.gen.use_creator(initial)
            self.gen.reseed(self.replay_seed)
            raw = self.gen.generate(request, self.n, base=base)
            raw_report = self._evaluate(raw, split="report")
            replay = raw
            for link in (link for link in chain if not link.finishing):
                if link.creator is not None:
                    self.gen.use_creator(link.creator)
                    what = f"{link.action} (replayed: its accepted model)"
                    if replay.latents is not None:
                        images = self.gen.from_latents(replay.latents, labels=replay.labels).images
                        replay = replay.derived(images, replay.latents, what)
                    else:  # the same seeds through the accepted model
                        replay = self.gen.resample(replay, what)
                else:
                    replay = self.refiner.refine(replay, Action(link.action, dict(link.params))).samples
                    if self.refiner.cut:  # a shortened replay is not the chain that was kept
                        return {
                            "skipped": f"the budget ran out during the held-out replay ({link.action} "
                            f"{self.refiner.cut})"
                        }
            directed = self._evaluate(replay, split="report")
            before_finish, checks = replay, []
            for link in (link for link in chain if link.finishing):  # each checked again, on the report split
                action = Action(link.action, dict(link.params))
                finished = self.refiner.refine(replay, action).samples
                finished_report = self.eval.evaluate(finished, None, split="report")
                checks.append(
                    self.refiner.check(
                        action, replay, finished, directed, finished_report, evaluator=self.eval.report
                    )
                )
                replay, directed = finished, finished_report
            paired = all(link.paired for link in chain)
            gain, se = self.eval.report.fid_difference(raw_report.features, directed.features, paired)
        finally:
            self.gen.use_creator(final)
        held_out = request.task != "refine"
        copying = None
        if self.copy_check is not None:
            images = replay.images
            if images.shape[-2:] != before_finish.images.shape[-2:]:  # the pairs grid beside train images
                from artdirector.models.superres import area_downsample

                images = area_downsample(images, tuple(before_finish.images.shape[-2:]))
            copying = self.copy_check(images, directed.features, self.output_dir / "verdict" / "copies.png")
            copying = {k: v for k, v in copying.items() if k != "closest"}
        return {
            "copy_rate": copying,
            "split": "report",
            "held_out": held_out,
            "note": "fresh latents no decision saw"
            if held_out
            else "a refine request has only its input: the same images, measured on the report split",
            "chain": [link.action for link in chain],
            "finish": checks,
            "raw": raw_report.metrics(),
            "directed": directed.metrics(),
            "gain": gain,
            "gain_se": se,
            "relative_gain": gain / raw_report.fid if raw_report.fid else 0.0,
            "class_counts": {"raw": raw_report.class_counts(), "directed": directed.class_counts()},
            "seconds": time.perf_counter() - t0,
            "images": {"raw": raw.images[:64], "directed": replay.images[:64]},
        }

    def _log_step(
        self, index: int, action: str, samples: Samples, report: AgentReport, accepted: bool
    ) -> None:
        from artdirector.io import save_grid

        save_grid(samples.images[:64], self.output_dir / "steps" / f"{index:02d}_{action}.png")
        if self.writer is not None:
            from torchvision.utils import make_grid

            for k, v in report.metrics().items():
                self.writer.add_scalar(f"agent/{k}", v, index)
            self.writer.add_image(
                f"agent/step_{index:02d}_{action}",
                make_grid(samples.images[:64], nrow=8, normalize=True, value_range=(-1, 1)),
                index,
            )
            self.writer.add_text(
                "agent/trace",
                f"step {index}: **{action}** selection FID {report.fid:.3f} ({'kept' if accepted else 'reverted'})",
                index,
            )
