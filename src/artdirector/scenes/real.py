"""A creator that "draws" real images: a seeded random image of the requested class from a fixed pool.

It follows the creator protocol (``artdirector.creators``) closely enough for the compositor and the scene
director: it accepts a class, has no critic and no guidance (so a repair is a new real image of that class,
drawn with a new seed), and ``sample`` returns the images with their labels.

What it is for: fed from the **test** split (``from_datamodule(dm, "report")``, images no detector trained
on), the one-shot pass rate of a prompt benchmark with it is the verifier's own error rate on real-object
scenes: the benchmark is only as good as its judge.
"""

from __future__ import annotations

from typing import Any

import torch

from artdirector.creators import Drawn


class RealCreator:
    kind = "real"
    accepts = frozenset({"class"})
    capabilities: frozenset[str] = frozenset()
    cost_per_image = None
    card = None

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, name: str = "real", source: str = ""
    ) -> None:
        """``images`` (N, 1, 28, 28) in [-1, 1] (uint8 (N, 28, 28) is converted), ``labels`` (N,) int."""
        if images.dtype == torch.uint8:
            images = images.float().div(127.5).sub(1.0)
        if images.ndim == 3:
            images = images.unsqueeze(1)
        labels = torch.as_tensor(labels).long().reshape(-1)
        if images.shape[0] != labels.shape[0] or images.shape[0] == 0:
            raise ValueError(f"need as many labels as images, got {images.shape[0]} and {labels.shape[0]}")
        self.images = images.float().contiguous()
        self.labels = labels
        self.name = name
        self.source = source or name
        self.num_classes = int(labels.max()) + 1
        self.pools = [torch.nonzero(labels == c).flatten() for c in range(self.num_classes)]

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @classmethod
    def from_datamodule(cls, datamodule: Any, split: str = "report", name: str | None = None) -> RealCreator:
        """Every image of one split of a datamodule (``report``: the official test split)."""
        images, labels = datamodule.real_images(split), datamodule.real_labels(split)
        what = datamodule.describe()
        return cls(images, labels, name or f"real_{what}_{split}", source=f"{what} {split} split")

    def sample(self, n: int, condition: torch.Tensor | None = None, seed: int = 0, **options: Any) -> Drawn:
        """``n`` real images of the classes in ``condition`` (one label, or ``n``), a function of ``seed``."""
        if options:
            raise ValueError(f"real images take no sampling options, got {sorted(options)}")
        if condition is None:
            labels = torch.arange(n) % self.num_classes
        else:
            labels = torch.as_tensor(condition).long().reshape(-1).cpu()
            labels = labels.expand(n).clone() if labels.numel() == 1 else labels
        if labels.shape != (n,) or labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"condition must be {n} class labels in [0, {self.num_classes}), got {labels}")
        g = torch.Generator().manual_seed(int(seed))
        picks = []
        for c in labels.tolist():
            pool = self.pools[c]
            if len(pool) == 0:
                raise ValueError(f"{self.name} has no image of class {c}")
            picks.append(pool[int(torch.randint(len(pool), (1,), generator=g))])
        index = torch.stack(picks)
        return Drawn(self.images[index].clone(), labels, seed=int(seed), options={"index": index.tolist()})

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "checkpoint": None,  # real images: no model
            "kind": self.kind,
            "source": self.source,
            "images": int(self.images.shape[0]),
            "accepts": sorted(self.accepts),
            "capabilities": sorted(self.capabilities),
        }
