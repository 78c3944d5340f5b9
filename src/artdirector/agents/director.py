"""The Director: request -> generate -> evaluate -> decide -> refine -> evaluate -> ... -> stop, with a trace."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from artdirector.agents.evaluation import AgentReport, EvaluationAgent
from artdirector.agents.generation import GenerationAgent
from artdirector.agents.memory import TRACE_VERSION, Memory, Step
from artdirector.agents.policies import Policy, State
from artdirector.agents.refinement import RefinementAgent
from artdirector.agents.types import Action, Request, Samples, Stop
from artdirector.io import atomic_write, save_grid, write_json, write_text

log = logging.getLogger(__name__)


@dataclass
class Result:
    request: Request
    samples: Samples
    report: AgentReport
    memory: Memory
    stop_reason: str
    target_met: bool
    output_dir: Path


class Director:
    """Runs the loop until the FID target is met, the budget (steps, seconds) is spent, or the policy stops
    (no action helps). A refinement is kept only if it lowers FID; either way it is in the trace."""

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
        n: int = 64,
        tensorboard: bool = True,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.gen, self.eval, self.refiner, self.policy = generation, evaluation, refinement, policy
        self.output_dir = Path(output_dir)
        self.target_fid, self.max_steps, self.max_seconds, self.n = target_fid, max_steps, max_seconds, n
        self.config = config or {}
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.output_dir / "tensorboard"))

    def _evaluate(self, samples: Samples) -> AgentReport:
        return self.eval.evaluate(samples, self.gen.model)

    def run(self, request: Request, base: Samples | None = None) -> Result:
        start = time.perf_counter()
        memory = Memory()
        t0 = time.perf_counter()
        samples = self.gen.generate(request, self.n, base=base)
        report = self._evaluate(samples)
        memory.record(
            Step(
                0,
                "generate",
                {"task": request.task, "n": len(samples), "model": self.gen.why},
                None,
                report.metrics(),
                True,
                time.perf_counter() - t0,
                request.understood,
            )
        )
        self._log_step(0, "generate", samples, report, accepted=True)
        stop_reason = ""
        while True:
            if report.fid <= self.target_fid:
                stop_reason = f"target met: FID {report.fid:.3f} <= {self.target_fid}"
                break
            elapsed = time.perf_counter() - start
            if len(memory.refinements) >= self.max_steps or elapsed >= self.max_seconds:
                spent = (
                    f"{len(memory.refinements)} steps"
                    if len(memory.refinements) >= self.max_steps
                    else f"{elapsed:.0f} s"
                )
                stop_reason = (
                    f"budget spent ({spent}) before the target: FID {report.fid:.3f} > {self.target_fid}"
                    " (the target may be unreachable with these actions)"
                )
                break
            decision = self.policy.decide(
                State(
                    request.task,
                    report.fid,
                    self.target_fid,
                    len(memory.refinements),
                    samples.latents is not None,
                ),
                memory,
            )
            if isinstance(decision, Stop):
                stop_reason = decision.reason
                break
            samples, report = self._act(decision, samples, report, memory)
        log.info("stop: %s", stop_reason)
        result = Result(
            request, samples, report, memory, stop_reason, report.fid <= self.target_fid, self.output_dir
        )
        self._write(result, time.perf_counter() - start)
        return result

    def _act(self, action: Action, samples: Samples, report: AgentReport, memory: Memory):
        t0 = time.perf_counter()
        params = self.refiner.params(action)
        new = self.refiner.refine(samples, action)
        new_report = self._evaluate(new)
        seconds = time.perf_counter() - t0
        accepted = new_report.fid < report.fid
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
            )
        )
        log.info(
            "step %d %s: FID %.3f -> %.3f (%s, %.1fs)",
            step.index,
            action.name,
            report.fid,
            new_report.fid,
            "kept" if accepted else "reverted",
            seconds,
        )
        self._log_step(step.index, action.name, new, new_report, accepted)
        return (new, new_report) if accepted else (samples, report)

    # ---- outputs --------------------------------------------------------------------------------
    def _log_step(
        self, index: int, action: str, samples: Samples, report: AgentReport, accepted: bool
    ) -> None:
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
                f"step {index}: **{action}** FID {report.fid:.3f} ({'kept' if accepted else 'reverted'})",
                index,
            )

    def _write(self, result: Result, seconds: float) -> None:
        out = self.output_dir
        final = out / "final"
        for i, img in enumerate(result.samples.images):
            save_grid(img.unsqueeze(0), final / f"{i:04d}.png", nrow=1)
        atomic_write(final / "images.pt", lambda p: torch.save(result.samples.images.clone(), p))
        if result.samples.latents is not None:
            atomic_write(final / "latents.pt", lambda p: torch.save(result.samples.latents.clone(), p))
        save_grid(result.samples.images[:64], out / "grid.png")
        trace = {
            "version": TRACE_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "request": {
                "text": result.request.text,
                "task": result.request.task,
                "understood": result.request.understood,
            },
            "model": {"checkpoint": str(self.gen.ckpt), "why": self.gen.why},
            "policy": type(self.policy).__name__,
            "target": {"fid": self.target_fid},
            "budget": {"steps": self.max_steps, "seconds": self.max_seconds},
            "evaluator": {
                "name": self.eval.evaluator.name,
                "feature_network": self.eval.evaluator.identity,
                "reference": self.eval.evaluator.reference_key,
            },
            "n": len(result.samples),
            "steps": result.memory.to_list(),
            "stop": {"reason": result.stop_reason, "target_met": result.target_met},
            "final": {
                "metrics": result.report.metrics(),
                "history": result.samples.history,
                "model": result.samples.model,
            },
            "seconds": round(seconds, 3),
            "config": self.config,
        }
        write_json(out / "trace.json", trace)
        write_text(out / "report.md", render_report(trace))
        if self.writer is not None:
            self.writer.add_text("agent/report", render_report(trace), 0)
            self.writer.close()


def render_report(trace: dict[str, Any]) -> str:
    """A Markdown page with the request, what was understood, each step's grid and a metrics table."""
    first, last = trace["steps"][0]["metrics_after"], trace["final"]["metrics"]
    lines = [
        "# artdirector run",
        "",
        f"**Request:** {trace['request']['text']!r}  ",
        f"**Understood:** {trace['request']['understood']} (task `{trace['request']['task']}`)  ",
        f"**Model:** {trace['model']['why']}  ",
        f"**Policy:** {trace['policy']}, target FID <= {trace['target']['fid']}, budget "
        f"{trace['budget']['steps']} steps / {trace['budget']['seconds']} s  ",
        f"**Evaluator:** {trace['evaluator']['name']} ({trace['evaluator']['feature_network']}), "
        f"{trace['n']} samples vs {trace['evaluator']['reference'].get('n')} real "
        f"{trace['evaluator']['reference'].get('dataset')}/{trace['evaluator']['reference'].get('split')}  ",
        f"**Stopped:** {trace['stop']['reason']}  ",
        f"**FID:** {first['fid']:.3f} -> {last['fid']:.3f} in {trace['seconds']:.1f} s",
        "",
        "## Final images",
        "",
        "![final](grid.png)",
        "",
        "## Steps",
        "",
        "| step | action | FID before | FID after | KID after | precision | recall | mean D logit | kept | s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|:-:|---:|",
    ]
    for s in trace["steps"]:
        b, a = s["metrics_before"], s["metrics_after"]
        lines.append(
            f"| {s['index']} | {s['action']} | {b['fid']:.3f} | "
            if b
            else f"| {s['index']} | {s['action']} | - | "
        )
        lines[-1] += (
            f"{a['fid']:.3f} | {a['kid']:.4f} | {a['precision']:.3f} | {a['recall']:.3f} | "
            f"{a['mean_d_logit']:.3f} | {'yes' if s['accepted'] else 'no'} | {s['seconds']:.1f} |"
        )
    lines += ["", "## Step by step", ""]
    for s in trace["steps"]:
        lines += [
            f"### {s['index']}. {s['action']}",
            "",
            f"{s['note']}  ",
            f"parameters: `{s['params']}`",
            "",
            f"![step {s['index']}](steps/{s['index']:02d}_{s['action']}.png)",
            "",
        ]
    return "\n".join(lines) + "\n"
