"""The Evaluation Agent: batch metrics with their uncertainty, and per-sample scores, that drive every decision.

It holds two references from two real sets that are never mixed: the **selection** split (held out from
training) for every accept/reject the Director makes, and the **report** split (the test set) for the
verdict a run states. Decisions never see the report split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from artdirector.agents.types import Samples
from artdirector.evaluation import Evaluator, Report
from artdirector.models.gan import GANModule


@dataclass
class AgentReport:
    """An evaluator report plus the discriminator's per-sample logits, and the split it was measured on."""

    report: Report
    d_logits: torch.Tensor  # (N,) the current model's discriminator on each sample
    split: str = "selection"

    @property
    def fid(self) -> float:
        return self.report.fid

    @property
    def features(self) -> torch.Tensor:
        return self.report.features

    def metrics(self) -> dict[str, float]:
        m = self.report.metrics()
        m.update(mean_d_logit=float(self.d_logits.mean()), mean_realism=float(self.report.realism.mean()))
        if self.report.confidence is not None:
            m["mean_confidence"] = float(self.report.confidence.mean())
        return m

    def class_counts(self, num_classes: int = 10) -> list[int] | None:
        """How many samples the classifier assigns to each class (mode collapse shows at a glance)."""
        if self.report.labels is None:
            return None
        return torch.bincount(self.report.labels, minlength=num_classes).tolist()


class EvaluationAgent:
    """Scores a batch against the selection reference (decisions) or the report reference (verdicts):
    FID with its bootstrap SE, KID with its std, precision/recall at equal counts (torchmetrics and
    Kynkaanniemi et al.), and per sample the discriminator logit, the realism score and the classifier's
    confidence and label."""

    def __init__(self, selection: Evaluator, report: Evaluator | None = None) -> None:
        self.selection = selection
        self.report = report if report is not None else selection

    @property
    def evaluator(self) -> Evaluator:  # the decision evaluator (what most callers mean)
        return self.selection

    @torch.no_grad()
    def evaluate(self, samples: Samples, model: GANModule, split: str = "selection") -> AgentReport:
        ev = self.selection if split == "selection" else self.report
        report = ev.evaluate(samples.images)
        logits = torch.cat([model.discriminate(c.to(model.device)).cpu() for c in samples.images.split(500)])
        return AgentReport(report=report, d_logits=logits, split=split)
