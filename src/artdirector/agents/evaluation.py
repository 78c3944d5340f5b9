"""The Evaluation Agent: batch metrics and per-sample scores that drive every decision."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from artdirector.agents.types import Samples
from artdirector.evaluation import Evaluator, Report
from artdirector.models.gan import GANModule


@dataclass
class AgentReport:
    """An evaluator report plus the discriminator's per-sample logits."""

    report: Report
    d_logits: torch.Tensor  # (N,) the current model's discriminator on each sample

    @property
    def fid(self) -> float:
        return self.report.fid

    def metrics(self) -> dict[str, float]:
        m = self.report.metrics()
        m.update(mean_d_logit=float(self.d_logits.mean()), mean_realism=float(self.report.realism.mean()))
        if self.report.confidence is not None:
            m["mean_confidence"] = float(self.report.confidence.mean())
        return m


class EvaluationAgent:
    """Scores a batch: FID/KID/precision/recall against cached real statistics (torchmetrics), and per sample
    the discriminator logit, the realism score and the classifier confidence."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    @torch.no_grad()
    def evaluate(self, samples: Samples, model: GANModule) -> AgentReport:
        report = self.evaluator.evaluate(samples.images)
        logits = torch.cat([model.discriminate(c.to(model.device)).cpu() for c in samples.images.split(500)])
        return AgentReport(report=report, d_logits=logits)
