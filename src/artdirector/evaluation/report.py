"""What an evaluation reports: batch metrics and per-sample scores for one set of generated images."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch


@dataclass
class Report:
    """Batch metrics and per-sample scores for one set of generated images."""

    fid: float
    fid_se: float  # bootstrap standard error of ``fid`` over the generated samples
    kid: float
    kid_std: float
    precision: float
    recall: float
    n_fake: int
    n_real: int
    n_pr: int  # real and generated samples behind precision/recall (equal counts; 0 when not measured)
    feature_net: str
    seconds: float
    realism: torch.Tensor = field(
        repr=False
    )  # (N,) Kynkaanniemi realism score, > 1: inside the real manifold
    confidence: torch.Tensor | None = field(default=None, repr=False)  # (N,) max softmax of the classifier
    labels: torch.Tensor | None = field(default=None, repr=False)  # (N,) classifier's predicted class
    features: torch.Tensor | None = field(default=None, repr=False)  # (N, d) the generated features

    def metrics(self) -> dict[str, float]:
        return {
            k: v for k, v in asdict(self).items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
