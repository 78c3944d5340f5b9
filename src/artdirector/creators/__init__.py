"""The Creator protocol: what the agents may ask of any model kind, through one small adapter per kind.

A creator says what it **accepts** (``nothing``: unconditional samples; ``class``: a class label per image)
and what it **can do** (its capabilities):

- ``latent``: its images are a function of latents the caller can hold and move (GANs);
- ``critic``: it has a differentiable real/fake critic (a GAN's discriminator);
- ``trainable``: more training from its checkpoint is possible;
- ``guidance``: a guidance scale is a sampling option (classifier-free guided diffusion);
- ``steps``: the number of sampling steps is an option (diffusion).

``sample(n, condition=None, seed=0, **options)`` returns images in [-1, 1] and the state that replays them:
the latents for a GAN, the seed (and options) for a diffusion model. A ``latent`` creator also decodes
latents (``from_latents``; ``decode`` keeps the graph for techniques that move latents by gradient); a
``critic`` one scores images (``critic_scores``; ``critic`` keeps the graph); a diffusion creator edits
images (``sdedit``). ``model`` is the module itself, for training it (``trainable``) and nothing else. ``cost_per_image`` is the measured
seconds per image from the creator's card when one sits beside the checkpoint (``<stem>.card.json``,
written by ``scripts/bench_creators.py``), else None.

Agents and policies ask these questions instead of checking concrete classes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from artdirector.models.base import balanced_labels
from artdirector.models.checkpoint import KINDS, load_module, read_kind
from artdirector.models.checkpoint import module_class as module_class_of
from artdirector.runtime import ZOO_DIR

CAPABILITIES = frozenset({"latent", "critic", "trainable", "guidance", "steps"})


@dataclass
class Drawn:
    """A batch of images in [-1, 1] and what replays them exactly: the latents (GANs) or the seed and sampling
    options (diffusion), and the class each image was asked to be (None: unconditional). The agents' batch
    (:class:`artdirector.agents.types.Samples`) is this plus where it came from."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    latents: torch.Tensor | None = None  # GANs: the images are G(latents, labels)
    seed: int | None = None  # diffusion: the images are sample(labels, seed, **options)
    options: dict[str, Any] = field(default_factory=dict)


class Creator(Protocol):
    name: str
    kind: str
    accepts: frozenset[str]
    capabilities: frozenset[str]
    num_classes: int
    cost_per_image: float | None

    def sample(
        self, n: int, condition: torch.Tensor | None = None, seed: int = 0, **options: Any
    ) -> Drawn: ...


def _card(path: Path) -> dict[str, Any] | None:
    card = path.with_name(f"{path.stem}.card.json")
    return json.loads(card.read_text()) if card.is_file() else None


class _Adapter:
    def __init__(
        self,
        model: Any,
        path: str | Path,
        card: dict[str, Any] | None = None,
        *,
        build: Callable[[], Any] | None = None,
        num_classes: int | None = None,
        module_class: str | None = None,
        parameters: int | None = None,
    ) -> None:
        """``model``, or None with ``build`` (made at the model's first use) and what the adapter states
        before that: ``num_classes``, the ``module_class`` it stands for and its ``parameters``."""
        self._model, self._build = model, build
        self.path = Path(path)
        self.name = self.path.stem
        self.num_classes = int(
            num_classes if num_classes is not None else (getattr(model, "num_classes", 0) or 0)
        )
        self.accepts = frozenset({"nothing", "class"} if self.num_classes else {"nothing"})
        self.card = card if card is not None else _card(self.path)
        self.cost_per_image = self.card.get("seconds_per_image") if self.card else None
        self._module_class, self._parameters = module_class, parameters

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self._build()
        return self._model

    @model.setter
    def model(self, model: Any) -> None:
        self._model = model

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(channels, height, width) of the images it draws."""
        return tuple(getattr(self.model, "image_shape", (1, 28, 28)))

    def describe(self) -> dict[str, Any]:
        """What the trace says of the creator in use (of a deferred one, without building it)."""
        return {
            "name": self.name,
            "checkpoint": str(self.path),
            "kind": self.kind,
            "class": self._module_class or type(self.model).__name__,
            "accepts": sorted(self.accepts),
            "capabilities": sorted(self.capabilities),
            "parameters": (
                self._parameters
                if self._parameters is not None
                else sum(p.numel() for p in self.model.parameters())
            ),
        }

    def _labels(self, n: int, condition: torch.Tensor | None) -> torch.Tensor | None:
        if condition is None:
            return balanced_labels(n, self.num_classes) if self.num_classes else None
        if not self.num_classes:
            raise ValueError(f"{self.name} is unconditional: it accepts no class condition")
        condition = torch.as_tensor(condition).long().reshape(-1)
        if condition.numel() == 1:
            condition = condition.expand(n)
        if condition.shape != (n,) or condition.min() < 0 or condition.max() >= self.num_classes:
            raise ValueError(
                f"condition must be {n} class labels in [0, {self.num_classes}), got {condition}"
            )
        return condition.clone()


class GANCreator(_Adapter):
    kind = "gan"
    capabilities = frozenset({"latent", "critic", "trainable"})

    def sample(self, n: int, condition: torch.Tensor | None = None, seed: int = 0, **options: Any) -> Drawn:
        if options:
            raise ValueError(f"a GAN takes no sampling options, got {sorted(options)}")
        labels = self._labels(n, condition)
        z = torch.randn(n, self.model.latent_dim, generator=torch.Generator().manual_seed(seed))
        images = self.model.sample(z=z, labels=labels).cpu()
        return Drawn(images, labels, latents=z, seed=seed)

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    def describe(self) -> dict[str, Any]:
        """The adapter's description, and the sampling temperature when it is not the prior's (the trace then
        says that class y is drawn from G(s_y z, y))."""
        out = super().describe()
        if any(s != 1.0 for s in self.model.latent_scale):
            out["latent_scale"] = list(self.model.latent_scale)
        return out

    def from_latents(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The images of latents ``z`` (and labels, for a conditional GAN), on the CPU."""
        return self.model.sample(z=z.to(self.device), labels=labels).cpu()

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G(z) on the creator's device with its graph: for techniques that follow a gradient in latent space
        (``z`` and ``labels`` already on :attr:`device`)."""
        return self.model.generate(z, labels)

    def critic(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The discriminator's logit of each image on the creator's device, with its graph."""
        return self.model.discriminate(images, labels)

    @torch.no_grad()
    def critic_scores(
        self, images: torch.Tensor, labels: torch.Tensor | None = None, batch: int = 500
    ) -> torch.Tensor:
        """The critic (the discriminator's logit) of each image, with its class if conditional, on the CPU."""
        out = []
        for i in range(0, images.shape[0], batch):
            y = None if labels is None else labels[i : i + batch].to(self.device)
            out.append(self.critic(images[i : i + batch].to(self.device), y).cpu())
        return torch.cat(out)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Gradients through G and D with respect to their inputs alone: the weights are frozen meanwhile, so
        that no backward pass computes (and throws away) gradients for them."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)


# the sampling options a diffusion creator takes (what replays its samples; other keys, e.g. an
# image-to-image strength, are the caller's)
SAMPLING_OPTIONS = ("sampler", "steps", "guidance")


def sampling_options(options: dict[str, Any]) -> dict[str, Any]:
    """The diffusion sampling options among ``options``."""
    return {k: options[k] for k in SAMPLING_OPTIONS if k in options}


class DiffusionCreator(_Adapter):
    kind = "diffusion"
    capabilities = frozenset({"guidance", "steps", "trainable"})

    @property
    def defaults(self) -> dict[str, Any]:
        """The sampling options a draw uses unless told otherwise (sampler, steps, guidance)."""
        return dict(self.model.defaults)

    def sample(self, n: int, condition: torch.Tensor | None = None, seed: int = 0, **options: Any) -> Drawn:
        unknown = set(options) - set(SAMPLING_OPTIONS)
        if unknown:
            raise ValueError(f"unknown sampling options {sorted(unknown)}: use sampler, steps, guidance")
        labels = self._labels(n, condition)
        options = {**self.defaults, **options}  # the state that replays them, defaults included
        images = self.model.sample(n=n, labels=labels, seed=seed, **options).cpu()
        return Drawn(images, labels, seed=seed, options=options)

    def sdedit(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        strength: float,
        seed: int,
        **options: Any,
    ) -> torch.Tensor:
        """SDEdit (Meng et al. 2022) of ``images`` to ``strength`` under ``labels``, with the sampling
        options among ``options`` (the creator's defaults for the rest), on the CPU."""
        opts = sampling_options(options)
        return self.model.sdedit(images.to(self.device), labels, strength=strength, seed=seed, **opts).cpu()


ADAPTERS = {"gan": GANCreator, "diffusion": DiffusionCreator}


def wrap(model: Any, path: str | Path) -> Creator:
    """A loaded module behind the protocol (e.g. a finetuned model the Director accepted)."""
    return ADAPTERS[model.kind](model, path)


def load_creator(path: str | Path, map_location: str | torch.device = "cpu") -> Creator:
    """Any creator's checkpoint, through the safe loader, behind the protocol."""
    model = load_module(path, kinds=tuple(ADAPTERS), map_location=map_location)
    return wrap(model, path)


def sampling_creator(path: str | Path, map_location: str | torch.device = "cpu") -> Creator:
    """A checkpoint's creator for drawing and scoring only (the scene director's), read once through the safe
    loader without building a LightningModule: a GAN as its networks alone
    (:class:`~artdirector.models.gan_sampling.GANNets`, the same pixels); a diffusion model built at its first
    draw (its schedulers and backbone are diffusers', imported then). It states what :func:`load_creator`'s
    would (kind, accepts, capabilities, class, parameters); training from it needs :func:`load_creator`."""
    ckpt, kind = read_kind(path, kinds=tuple(ADAPTERS))
    stands_for = KINDS[kind].rpartition(".")[2]
    if kind == "gan":
        from artdirector.models.gan_sampling import GANNets

        return GANCreator(GANNets.from_loaded(ckpt, path, map_location), path, module_class=stands_for)
    hp = ckpt["hyper_parameters"]
    if "num_classes" not in hp:  # a default only the module knows: build it now
        return wrap(load_module(path, kinds=(kind,), map_location=map_location), path)
    return ADAPTERS[kind](
        None,
        path,
        build=lambda: module_class_of(kind).from_loaded(ckpt, path, map_location),
        num_classes=int(hp["num_classes"] or 0),
        module_class=stands_for,
        # a diffusion module's state dict is its parameters (its backbone's and their average's) and the
        # average's integer step count: the floating-point tensors count what it would count built
        parameters=sum(v.numel() for v in ckpt["state_dict"].values() if v.is_floating_point()),
    )


def zoo_checkpoints() -> list[str]:
    """The creators the package ships (``artdirector/zoo``, docs/zoo.md), by file name."""
    return [str(p) for p in sorted(ZOO_DIR.glob("*.ckpt"))]
