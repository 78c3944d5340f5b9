"""The Evaluation Agent: batch metrics with their uncertainty, and per-sample scores, that drive every decision.

It holds two references from two real sets that are never mixed: the **selection** split (held out from
training) for every accept/reject the Director makes, and the **report** split (the test set) for the
verdict a run states. Decisions never see the report split.

A Director run's :class:`Result` (what it measured and kept, with the chain of :class:`Link` that replays
it) lives here, below both the Director that makes it and the report writer that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from artdirector.agents.memory import Memory
from artdirector.agents.types import Request, Samples

if TYPE_CHECKING:  # the evaluation stack (torchmetrics) loads with the evaluator a batch request builds
    from artdirector.evaluation import Evaluator, Report


@dataclass
class AgentReport:
    """An evaluator report plus, where the creator has them, the critic's per-sample logits and the class
    each image was asked to be; and the split it was measured on."""

    report: Report
    d_logits: torch.Tensor | None  # (N,) the creator's critic (a GAN's discriminator); None without one
    split: str = "selection"
    requested: torch.Tensor | None = None  # (N,) requested classes (conditional creators)

    @property
    def fid(self) -> float:
        return self.report.fid

    @property
    def features(self) -> torch.Tensor:
        return self.report.features

    def metrics(self) -> dict[str, float]:
        m = self.report.metrics()
        m["mean_realism"] = float(self.report.realism.mean())
        if self.d_logits is not None:
            m["mean_d_logit"] = float(self.d_logits.mean())
        if self.report.confidence is not None:
            m["mean_confidence"] = float(self.report.confidence.mean())
        if (c := self.conformance()) is not None:
            m["conformance"] = c
        return m

    def conformance(self) -> float | None:
        """The share of images the classifier assigns to the class they were asked to be."""
        if self.requested is None or self.report.labels is None:
            return None
        return float((self.report.labels.cpu() == self.requested.cpu()).float().mean())

    def class_counts(self, num_classes: int = 10) -> list[int] | None:
        """How many samples the classifier assigns to each class (mode collapse shows at a glance)."""
        if self.report.labels is None:
            return None
        return torch.bincount(self.report.labels, minlength=num_classes).tolist()


class EvaluationAgent:
    """Scores a batch against the selection reference (decisions) or the report reference (verdicts):
    FID with its bootstrap SE, KID with its std, precision/recall at equal counts (torchmetrics and
    Kynkaanniemi et al.), class conformance for conditional creators, and per sample the critic's logit
    (creators with a critic), the realism score and the classifier's confidence and label."""

    def __init__(self, selection: Evaluator, report: Evaluator | None = None) -> None:
        self.selection = selection
        self.report = report if report is not None else selection

    @property
    def evaluator(self) -> Evaluator:  # the decision evaluator (what most callers mean)
        return self.selection

    @torch.no_grad()
    def evaluate(self, samples: Samples, creator=None, split: str = "selection") -> AgentReport:
        """``creator``: the creator that made the samples; its critic, if it has one, scores each image with
        its label."""
        ev = self.selection if split == "selection" else self.report
        report = ev.evaluate(samples.images)
        has_critic = creator is not None and "critic" in creator.capabilities
        logits = creator.critic_scores(samples.images, samples.labels) if has_critic else None
        return AgentReport(report=report, d_logits=logits, split=split, requested=samples.labels)


@dataclass
class Link:
    """One accepted step of the chain, enough to replay it: the action, its parameters, and the creator it
    switched to (None when the model did not change)."""

    action: str
    params: dict[str, Any]
    creator: Any = None
    model_path: str | None = None
    paired: bool = True
    finishing: bool = False  # a finishing action (asked for by the request, judged by its own check)


@dataclass
class Result:
    """What a Director run returns: the request, the final samples and their report (selection split), the
    trace of every step, why it stopped, the accepted chain, the floor and the held-out verdict."""

    request: Request
    samples: Samples
    report: AgentReport
    memory: Memory
    stop_reason: str
    target_met: bool
    output_dir: Path
    chain: list[Link] = field(default_factory=list)
    floor: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, Any] = field(default_factory=dict)
    # the finishing stage (None / [] without one): ``samples`` after every finishing action, their report
    # (selection split), each action's check, and the tag of their outputs (``grid_<tag>.png``)
    finished: Samples | None = None
    finished_report: AgentReport | None = None
    finish: list[dict[str, Any]] = field(default_factory=list)
    finish_tag: str | None = None
