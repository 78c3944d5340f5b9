"""The values agents pass each other: requests, samples, actions, decisions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from artdirector.errors import UserError

Task = Literal["create", "variations", "refine"]


class RequestError(UserError, ValueError):
    """A request the agents cannot act on (empty, not understood, or missing what it needs)."""


@dataclass
class Request:
    text: str
    task: Task
    understood: str  # a sentence for the trace: what the request was taken to mean, and why


# The seed's rules, with their synonyms: "refine" -> refine; "new" -> create; otherwise variations.
_REFINE = re.compile(r"\b(refine|improve|enhance|fix|polish|better)\w*", re.I)
_CREATE = re.compile(r"\b(new|create|generate|make|draw|fresh)\w*", re.I)
_VARY = re.compile(r"\b(variation|vary|varied|similar|like|alike|more of|riff)\w*", re.I)


def interpret(text: str | None, has_input: bool) -> Request:
    """Map a plain-text request to a task as the seed does, saying what was understood and why."""
    text = (text or "").strip()
    if not text:
        raise RequestError(
            'empty request: say what you want, e.g. request="generate new art", '
            'request="variations of this" input=<image/latents/run dir>, request="refine" input=...'
        )
    if m := _REFINE.search(text):
        return Request(text, "refine", f"'{m.group(0)}' asks to improve images -> refine")
    if m := _CREATE.search(text):
        return Request(text, "create", f"'{m.group(0)}' asks for new images -> create")
    if m := _VARY.search(text):
        return Request(text, "variations", f"'{m.group(0)}' asks for variations -> variations")
    if has_input:
        return Request(
            text,
            "variations",
            "no keyword matched; an input was given -> variations of it (the seed's default)",
        )
    raise RequestError(
        f"could not tell what {text!r} asks for, and there is no input to make variations of. Use "
        "'new'/'create'/'generate' for new images, 'refine'/'improve' (with input=...) to improve "
        "images, or 'variations' with input=<image, latents or earlier run>"
    )


@dataclass
class Samples:
    """A batch of generated images in [-1, 1] with the latents that made them (None if unknown)."""

    images: torch.Tensor
    latents: torch.Tensor | None
    model: str  # the checkpoint that produced them
    labels: torch.Tensor | None = None
    history: list[str] = field(default_factory=list)  # actions applied so far

    def __len__(self) -> int:
        return self.images.shape[0]

    def derived(
        self, images: torch.Tensor, latents: torch.Tensor | None, action: str, model: str | None = None
    ):
        return Samples(
            images=images,
            latents=latents,
            model=model or self.model,
            labels=None,
            history=[*self.history, action],
        )


@dataclass
class Candidate:
    """What a refinement proposes: new samples and, when the action changed the model (``finetune``), the new
    model and its checkpoint. The Director keeps both or neither."""

    samples: Samples
    model: Any = None  # the new model object, or None when the model is unchanged
    model_path: str | None = None
    paired: bool = False  # samples correspond one to one with the input's (the same latents, refined)

    @property
    def changes_model(self) -> bool:
        return self.model is not None


@dataclass
class Action:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    why: str = ""


@dataclass
class Stop:
    reason: str
