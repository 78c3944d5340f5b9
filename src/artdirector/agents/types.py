"""The values agents pass each other: requests, samples, actions, decisions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch

from artdirector.creators import Drawn
from artdirector.errors import UserError

Task = Literal["create", "variations", "refine"]


class RequestError(UserError, ValueError):
    """A request the agents cannot act on (empty, not understood, or missing what it needs)."""


@dataclass
class Request:
    text: str
    task: Task
    understood: str  # a sentence for the trace: what the request was taken to mean, and why
    # the classes asked for ("draw a 7", "threes and fives"); None: any class. A class request goes only to
    # creators that accept a class condition.
    classes: tuple[int, ...] | None = None
    # the parsed prompt when the request names objects (artdirector.prompts); a scene when prompt.is_scene
    prompt: Any = None

    @property
    def scene(self) -> bool:
        """A canvas with exactly the named objects ("a 3 left of a 7"), made by the scene director."""
        return self.prompt is not None and self.prompt.is_scene

    @property
    def style_words(self) -> list[str]:
        """Style words of the prompt ("thick sevens"): each is a ``style`` finishing action."""
        return list(self.prompt.style) if self.prompt is not None else []

    @property
    def sharp(self) -> bool:
        """The prompt asks for resolution ("sharp sevens"): an ``upscale`` finishing action (x4)."""
        return bool(self.prompt is not None and self.prompt.sharp)

    @property
    def needs(self) -> frozenset[str]:
        """What a creator must accept to serve this request (see artdirector.creators)."""
        return frozenset({"class"}) if self.classes else frozenset()


def requested_classes(text: str) -> tuple[int, ...] | None:
    """The classes a request names, in order of first mention ("a 3 and two sevens" -> (3, 7)), read by the
    request grammar (:func:`artdirector.prompts.parse`: a word it cannot place is an error)."""
    from artdirector.prompts import parse

    return parse(text).classes


def interpret(text: str | None, has_input: bool) -> Request:
    """Read a plain-text request through the request grammar (every word placed, or a
    :class:`~artdirector.prompts.PromptError` naming it) and say what was understood and why: a scene when it
    asks for exact objects, image-to-image for "make this 3 look like an 8", otherwise a task by the seed's
    rules (refine words -> refine, create words -> create, variation words -> variations, else variations of
    an input)."""
    text = (text or "").strip()
    if not text:
        raise RequestError(
            'empty request: say what you want, e.g. request="generate new art", '
            'request="variations of this" input=<image/latents/run dir>, request="refine" input=...'
        )
    from artdirector.prompts import parse, task_words

    prompt = parse(text)
    if prompt.is_scene:
        if prompt.task not in (None, "create"):
            raise RequestError(
                f"{text!r} asks to {prompt.task} a scene; scenes are created (drop {prompt.task!r}, e.g. "
                f'request="a 3 left of a 7"), and refine/variations work on batches of images'
            )
        return Request(
            text,
            "create",
            f"a scene of {describe_prompt(prompt)} -> plan, compose, verify, repair",
            prompt.classes if all(o.dataset == "mnist" for o in prompt.objects) else None,
            prompt,
        )
    if prompt.target is not None:
        src, dst = prompt.objects[0].name, prompt.target.name
        return Request(
            text,
            "variations",
            f"make the input ({src}) look like a {dst} -> image-to-image under class {dst} (SDEdit with a "
            "diffusion creator; GAN inversion under the class with a GAN)",
            prompt.classes,
            prompt,
        )
    classes = prompt.classes
    named = prompt if prompt.objects else None
    of = (
        f"; classes {', '.join(map(str, classes))} named -> class-conditional creators only"
        if classes
        else ""
    )
    said = task_words(text)
    if said:
        word, task = said[0]
        why = {
            "refine": "asks to improve images",
            "create": "asks for new images",
            "variations": "asks for variations",
        }[task]
        return Request(text, task, f"{word!r} {why} -> {task}{of}", classes, named)
    if has_input:
        return Request(
            text,
            "variations",
            f"no task word; an input was given -> variations of it (the seed's default){of}",
            classes,
            named,
        )
    if classes:
        return Request(text, "create", f"no task word; {of[2:]}: create them", classes, named)
    raise RequestError(
        f"could not tell what {text!r} asks for, and there is no input to make variations of. Use "
        "'new'/'create'/'generate' for new images, 'refine'/'improve' (with input=...) to improve "
        "images, or 'variations' with input=<image, latents or earlier run>"
    )


def describe_prompt(prompt: Any) -> str:
    """ "1 x 3, 1 x 7; 3 left of 7" """
    objs = ", ".join(f"{o.count} x {(o.size + ' ') if o.size else ''}{o.name}" for o in prompt.objects)
    rels = "; ".join(
        f"{prompt.objects[r.subject].name} {r.relation} {prompt.objects[r.object].name}"
        for r in prompt.relations
    )
    lay = prompt.layout and (
        f"a {prompt.layout['rows']}x{prompt.layout['cols']} grid"
        if prompt.layout["kind"] == "grid"
        else f"in a {prompt.layout['kind']}"
    )
    return "; ".join(x for x in (objs, rels, lay) if x)


@dataclass
class Samples(Drawn):
    """A creator's batch (:class:`~artdirector.creators.Drawn`: images, labels, and the latents or seed and
    options that replay them) and its provenance: the checkpoint that drew it, the actions applied so far,
    and for image-to-image the input images SDEdit started from (``options["strength"]`` says how far; a
    resample redoes the edit from them)."""

    model: str = ""  # the checkpoint that produced them
    history: list[str] = field(default_factory=list)  # actions applied so far
    source: torch.Tensor | None = None

    @classmethod
    def of(cls, drawn: Drawn, model: str, history: list[str]) -> Samples:
        """A creator's draw as the agents' batch."""
        return cls(**vars(drawn), model=model, history=list(history))

    def __len__(self) -> int:
        return self.images.shape[0]

    def derived(
        self,
        images: torch.Tensor,
        latents: torch.Tensor | None,
        action: str,
        model: str | None = None,
        labels: torch.Tensor | None = None,
        options: dict[str, Any] | None = None,
    ):
        """Refined samples: the same labels (one per image, in order) unless ``labels`` says otherwise; every
        other field (seed, SDEdit source) carried over."""
        return replace(
            self,
            images=images,
            latents=latents,
            model=model or self.model,
            labels=self.labels if labels is None else labels,
            history=[*self.history, action],
            options=dict(self.options if options is None else options),
        )


@dataclass
class Candidate:
    """What a refinement proposes: new samples and, when the action changed the model (``finetune``), the new
    creator and its checkpoint. The Director keeps both or neither."""

    samples: Samples
    creator: Any = None  # the new creator (behind the Creator protocol), or None when it is unchanged
    model_path: str | None = None
    paired: bool = False  # samples correspond one to one with the input's (the same latents, refined)

    @property
    def changes_model(self) -> bool:
        return self.creator is not None


@dataclass
class Action:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    why: str = ""


@dataclass
class Stop:
    reason: str
