"""The compositor: ask a class-conditional creator for each object of a plan and place it in its cell.

Every object is one draw, ``creator.sample(1, condition=[label], seed=...)``, recorded as a :class:`Drawing`
(which creator, which seed and options, or the chosen latent) so that a scene can be re-rendered exactly and the
director can redraw one object without touching the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from artdirector.scenes.canvas import blank, local, paste
from artdirector.scenes.layout import Item, Plan


@dataclass
class Drawing:
    image: torch.Tensor  # (C, h, w) in [-1, 1], as the creator drew it
    creator: str
    seed: int
    how: str = "sample"  # "sample", "drs x8" (best of 8 by the critic), ...
    options: dict[str, Any] = field(default_factory=dict)
    # style words applied after drawing ("a thick 7"): per word its target and the attribute before/after
    style: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        out = {"creator": self.creator, "seed": self.seed, "how": self.how, "options": dict(self.options)}
        if self.style:
            out["style"] = [dict(s) for s in self.style]
        return out


def style_reached(drawing: Drawing, tolerance: float = 0.25) -> bool:
    """Every style edit of the drawing reached its goal: |after - goal| <= tolerance |goal - before| (the
    tolerance of :func:`artdirector.editing.measure.measure_edit`)."""
    return all(
        abs(s["after"] - s["goal"]) <= tolerance * abs(s["goal"] - s["before"]) + 1e-9 for s in drawing.style
    )


def styled(drawing: Drawing, words: list[str]) -> Drawing:
    """The drawing with each style word's pixel edit applied in turn (Morpho-MNIST perturbations,
    :func:`artdirector.editing.morpho.morpho_edit`), each recorded with the attribute before and after: a
    creator drawing one object has no batch to fit a latent direction on, and the edit is deterministic."""
    if not words:
        return drawing
    from artdirector.editing.morpho import morpho_edit
    from artdirector.editing.targets import measure_attribute, target_for_word

    image, record = drawing.image.unsqueeze(0), []
    for word in words:
        target = target_for_word(word)
        before = float(measure_attribute(image, target.attribute)[0])
        image, _ = morpho_edit(image, target)
        after = float(measure_attribute(image, target.attribute)[0])
        goal = float(target.goal(torch.tensor([before]))[0])
        record.append(
            {"word": word, "target": target.describe(), "before": before, "after": after, "goal": goal}
        )
    return Drawing(image[0], drawing.creator, drawing.seed, drawing.how, dict(drawing.options), record)


def item_seed(seed: int, index: int, attempt: int, salt: str = "") -> int:
    """A seed per (scene seed, object, attempt): independent streams, the same on every machine. ``salt``
    keeps the draws of a scene's edits apart from the scene's own ("edit1": the first edit's)."""
    key = f"{seed}/{index}/{attempt}" + (f"/{salt}" if salt else "")
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:4], "little")


def render(plan: Plan, images: list[torch.Tensor], channels: int = 1) -> torch.Tensor:
    """The canvas (C, H, W) in [-1, 1]: every image pasted into its item's cell."""
    canvas = blank(plan.height, plan.width)
    if channels != 1:
        canvas = canvas.expand(channels, -1, -1).clone()
    for item, img in zip(plan.items, images, strict=True):
        paste(canvas, img.detach().cpu(), item.box)
    return canvas


class Compositor:
    """Draws objects with one class-conditional creator per dataset (``{"mnist": creator, ...}``)."""

    def __init__(self, creators: dict[str, Any]) -> None:
        for dataset, c in creators.items():
            if "class" not in c.accepts:
                raise ValueError(
                    f"the {dataset} creator {c.name} accepts no class: scenes need a conditional one"
                )
        self.creators = dict(creators)

    def creator_for(self, item: Item) -> Any:
        dataset, _ = local(item.gid)
        if dataset not in self.creators:
            raise KeyError(dataset)
        return self.creators[dataset]

    def draw(
        self,
        item: Item,
        seed: int,
        candidates: int = 1,
        score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        **options: Any,
    ) -> Drawing:
        """One image of ``item``'s class. With ``candidates > 1`` and a ``score`` (images, labels -> one number
        each, e.g. a GAN's critic): draw that many and keep the best, rejection sampling in its simplest,
        deterministic form (Azadi et al. 2019). The agents pass the score: this room knows no models."""
        creator = self.creator_for(item)
        _, label = local(item.gid)
        k = candidates if score is not None else 1
        cond = torch.full((k,), label, dtype=torch.long, device=creator.device)
        drawn = creator.sample(k, condition=cond, seed=seed, **options)
        pick, how = 0, "sample"
        if k > 1:
            pick, how = int(score(drawn.images, drawn.labels).argmax()), f"best of {k} by the score"
        return Drawing(drawn.images[pick].detach().float().cpu(), creator.name, seed, how, dict(options))
