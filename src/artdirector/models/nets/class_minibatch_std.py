"""Minibatch standard deviation within each class, a feature map for a conditional discriminator.

Karras et al. (2018, "Progressive Growing of GANs") give D one extra feature map near its end: the standard
deviation of the features over a group of the batch, averaged to one number. A generator that draws too
little variety gives smaller numbers than the data, and D can see it. In a class-conditional GAN the
variety that collapses is within a class, while a group of mixed classes mostly measures how the classes
differ; so here the group is each class present in the batch: every image gets the spread of the features
of the images of its own label. G draws the real batch's labels, so real and fake batches have the same
class counts and the statistic differs between them only by the spread within each class. A class seen once
in a batch gets sqrt(eps), for real and fake alike.

The statistic depends on the batch: score a batch that holds several images of each class, as training
did, not images one at a time.
"""

from __future__ import annotations

import torch


def class_minibatch_std(
    h: torch.Tensor, labels: torch.Tensor, num_classes: int, eps: float = 1e-8
) -> torch.Tensor:
    """(N, C, H, W) features and (N,) labels -> (N, C + 1, H, W): ``h`` with one more channel holding, for each
    image, the standard deviation over the images of its class (per feature and position, averaged)."""
    n = h.shape[0]
    y = labels.long()
    x = h.float().flatten(1)
    counts = torch.bincount(y, minlength=num_classes).clamp(min=1).to(x.dtype)[:, None]
    mean = x.new_zeros(num_classes, x.shape[1]).index_add_(0, y, x) / counts
    var = x.new_zeros(num_classes, x.shape[1]).index_add_(0, y, (x - mean[y]) ** 2) / counts
    std = (var + eps).sqrt().mean(1)  # (num_classes,)
    stat = std[y].to(h.dtype).view(n, 1, 1, 1).expand(n, 1, *h.shape[2:])
    return torch.cat([h, stat], dim=1)
