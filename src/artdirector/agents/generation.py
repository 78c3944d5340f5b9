"""The Generation Agent: picks the creator for a request from measured evidence and samples from it.

Every model kind is reached through the Creator protocol (:mod:`artdirector.creators`): what it accepts
(nothing, a class label) and what it can do (latents, a critic, guidance, steps, further training). The choice
among several checkpoints is :func:`artdirector.creators.routing.route`: filter by what the request needs,
rank by a configurable objective, and write every candidate and the reason into the trace.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from artdirector.agents.types import Request, RequestError, Samples
from artdirector.creators import Creator, load_creator, wrap
from artdirector.creators.routing import read_evidence, route
from artdirector.errors import InputError
from artdirector.io import load_user_tensor
from artdirector.models.base import balanced_labels

log = logging.getLogger(__name__)


class GenerationAgent:
    """Chooses a creator for the request among ``ckpts`` and samples from it.

    Args:
        ckpts: one checkpoint path or several (any creator kind). With several, each one's evidence (its
            card, else the ``scripts/evaluate.py`` catalogue beside it) decides; see
            :mod:`artdirector.creators.routing`.
        evaluator: which catalogue entries to read when a candidate has no card (``lenet``, ``inception``).
        seed: seeds every draw (latents, diffusion seeds), so a run is repeatable.
        request: what the creator must serve (a class request needs a class-conditional creator).
        selection: the routing objective, ``quality`` (lowest FID) or ``fastest`` (above ``quality_bar``).
        max_seconds_per_image, min_conformance, min_recall, min_variety: constraints on the candidates (see
            routing).
        dataset: only creators trained on it (their card says) are candidates; None: no such filter.
        strength: image-to-image with a diffusion creator (SDEdit): how far an input is noised, in [0, 1].
    """

    def __init__(
        self,
        ckpts: str | list[str],
        device: str | torch.device = "cpu",
        evaluator: str = "lenet",
        seed: int = 0,
        request: Request | None = None,
        selection: str = "quality",
        max_seconds_per_image: float | None = None,
        quality_bar: float | None = None,
        min_conformance: float = 0.0,
        dataset: str | None = None,
        strength: float = 0.5,
        min_recall: float = 0.0,
        min_variety: float = 0.0,
    ) -> None:
        if not 0.0 <= float(strength) <= 1.0:
            raise RequestError(
                f"img2img strength must be in [0, 1] (0 keeps the input, 1 ignores it), got {strength}"
            )
        self.strength = float(strength)
        paths = [Path(p).expanduser() for p in ([ckpts] if isinstance(ckpts, str | Path) else ckpts)]
        if not paths:
            raise RequestError("no checkpoint given: pass ckpt=<path to a .ckpt from scripts/train.py>")
        self.device = torch.device(device)
        creators = [load_creator(p, map_location=self.device) for p in paths]
        needs = request.needs if request is not None else frozenset()
        classes = request.classes if request is not None else None
        evidence = [read_evidence(c, evaluator) for c in creators]
        r = route(
            evidence,
            needs,
            classes,
            selection,
            max_seconds_per_image,
            quality_bar,
            min_conformance,
            dataset,
            min_recall=min_recall,
            min_variety=min_variety,
        )
        if r.chosen < 0 and dataset and all("trained on" in (row["excluded_by"] or "") for row in r.table):
            raise RequestError(
                f"none of {', '.join(str(p) for p in paths)} was trained on {dataset} ("
                + "; ".join(f"{row['name']}: {row['excluded_by']}" for row in r.table)
                + "): pass ckpt= of a creator trained on it, or set data= to what they were trained on"
            )
        if r.chosen < 0:
            raise RequestError(
                f"the request names classes {list(classes or ())}, and none of {', '.join(str(p) for p in paths)} "
                "is class-conditional: pass ckpt= of a model=cdcgan, ddpm or dit checkpoint (the zoo's "
                "cdcgan ships), or drop the class from the request"
            )
        self.candidates = r.table
        self.why = r.why if len(paths) > 1 else f"{paths[0]} (the only candidate)"
        self.creator: Creator = creators[r.chosen]
        self.creator.model.eval()
        self.ckpt = self.creator.path
        self.classes = classes
        self.model_version = 0  # +1 whenever the model changes (what depends on the model re-fits)
        self.seed = seed
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    # ---- what the creator is and can do -----------------------------------------------------------
    @property
    def capabilities(self) -> frozenset[str]:
        return self.creator.capabilities

    def can(self, capability: str) -> bool:
        return capability in self.creator.capabilities

    @property
    def latent_dim(self) -> int:
        if not self.can("latent"):
            raise RequestError(f"{self.creator.name} ({self.creator.kind}) has no latents")
        return self.creator.latent_dim

    def with_model(self, model: Any, ckpt: Path | str) -> Creator:
        """A module trained from this creator (``finetune``'s), behind the protocol, on this agent's device."""
        return wrap(model.to(self.device).eval(), ckpt)

    def use_creator(self, creator: Creator) -> None:
        """Switch to another creator (e.g. a finetuned one the Director accepted)."""
        if creator is not self.creator:
            self.creator = creator
            self.ckpt = Path(creator.path)
            self.model_version += 1

    def reseed(self, seed: int) -> None:
        """Restart the latent/seed stream from ``seed`` (the held-out replay draws what no decision saw)."""
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    def labels(self, n: int) -> torch.Tensor | None:
        """The class of each of n images: the requested classes in turn, or all classes in turn for a
        conditional creator asked for nothing in particular; None for an unconditional one."""
        if not self.creator.num_classes:
            return None
        if self.classes:
            return torch.tensor(self.classes, dtype=torch.long)[torch.arange(n) % len(self.classes)]
        return balanced_labels(n, self.creator.num_classes)

    # ---- drawing --------------------------------------------------------------------------------
    def latents(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=self.generator)

    def from_latents(
        self,
        z: torch.Tensor,
        history: list[str] | None = None,
        creator: Creator | None = None,
        labels: torch.Tensor | None = None,
    ) -> Samples:
        """Images of latents ``z`` (with ``labels`` for a conditional GAN; the requested ones when None) from
        the current creator, or ``creator`` (e.g. a candidate not yet kept)."""
        if labels is None:
            labels = self.labels(z.shape[0])
        images = (creator or self.creator).from_latents(z, labels)
        return Samples(
            images=images, latents=z.cpu(), model=str(self.ckpt), labels=labels, history=history or []
        )

    def draw(self, n: int, labels: torch.Tensor | None = None, history: list[str] | None = None) -> Samples:
        """n fresh samples of any creator: latents for a GAN, a seed (and the sampling options) otherwise."""
        labels = self.labels(n) if labels is None else labels
        if self.can("latent"):
            return self.from_latents(self.latents(n), history or ["create"], labels=labels)
        seed = int(torch.randint(0, 2**31 - 1, (), generator=self.generator))
        return Samples.of(self.creator.sample(n, labels, seed=seed), str(self.ckpt), history or ["create"])

    def resample(self, samples: Samples, action: str, **options: Any) -> Samples:
        """The same seed and labels drawn again with other sampling options (guidance scale, steps); for
        image-to-image samples, the same edit of the same input."""
        if samples.seed is None:
            raise RequestError(f"{action} re-samples a seed; these samples have none (a diffusion creator's)")
        opts = {**samples.options, **options}
        if samples.source is not None:
            images = self.sdedit(samples.source, samples.labels, samples.seed, **opts)
            return samples.derived(images, None, action, options=opts)
        d = self.creator.sample(len(samples), samples.labels, seed=samples.seed, **opts)
        return samples.derived(d.images, None, action, options=d.options)

    def critic(
        self, images: torch.Tensor, labels: torch.Tensor | None = None, creator: Creator | None = None
    ) -> torch.Tensor:
        """The creator's critic on each image (a GAN's discriminator logit), on the CPU."""
        return (creator or self.creator).critic_scores(images, labels)

    def generate(self, request: Request, n: int, base: Samples | None = None, spread: float = 0.5) -> Samples:
        """``create``: n fresh samples. ``variations``: n samples near ``base``'s latents (z + spread * noise,
        the same labels). ``refine``: ``base`` itself (the Refinement Agent improves it)."""
        if request.task == "create":
            return self.draw(n)
        if base is None:
            raise RequestError(
                f"'{request.task}' needs something to start from: input=<image .png/.pt, latents "
                ".pt or an earlier run's directory>"
            )
        if request.task == "refine":
            return base
        if not self.can("latent") and self.can("guidance"):  # a diffusion creator: SDEdit of the input
            return self.img2img(base, n)
        if base.latents is None or not self.can("latent"):
            raise RequestError(
                f"variations move latents; {self.creator.name} ({self.creator.kind}) has none: ask for new "
                "images, or use a GAN checkpoint"
            )
        idx = torch.arange(n) % len(base)
        z = base.latents[idx] + spread * torch.randn(n, self.latent_dim, generator=self.generator)
        labels = None if base.labels is None else base.labels[idx]
        return self.from_latents(z, [*base.history, f"variations(spread={spread})"], labels=labels)

    def sdedit(
        self,
        source: torch.Tensor,
        labels: torch.Tensor | None,
        seed: int,
        creator: Creator | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """SDEdit of ``source`` by the current creator (or ``creator``, e.g. a candidate not yet kept) at
        ``options["strength"]`` (default: the agent's) with the sampling options among ``options``."""
        strength = float(options.pop("strength", self.strength))
        return (creator or self.creator).sdedit(source, labels, strength=strength, seed=seed, **options)

    def img2img(self, base: Samples, n: int) -> Samples:
        """SDEdit (Meng et al. 2022) of ``base``'s images, each ``n // len(base)`` times or more (images in
        turn, a seed per call): noised to ``strength`` and denoised under the requested class (translation,
        "make this 3 look like an 8"), else under the input's own labels, else unconditionally."""
        idx = torch.arange(n) % len(base)
        source = base.images[idx]
        if self.classes and self.creator.num_classes:
            labels = self.labels(n)
        elif base.labels is not None:
            labels = base.labels[idx]
        else:
            labels = None
        seed = int(torch.randint(0, 2**31 - 1, (), generator=self.generator))
        options = {**self.creator.defaults, "strength": self.strength}
        images = self.sdedit(source, labels, seed, **options)
        return Samples(
            images=images,
            latents=None,
            model=str(self.ckpt),
            labels=labels,
            history=[*base.history, f"sdedit(strength={self.strength:g})"],
            seed=seed,
            options=options,
            source=source,
        )

    def invert(
        self, images: torch.Tensor, steps: int = 300, lr: float = 0.05, restarts: int = 4, prior: float = 1e-3
    ) -> Samples:
        """GAN inversion: latents whose images reconstruct ``images`` (MSE + a small Gaussian prior on z),
        the best of ``restarts`` random starts per image. Zhu et al. 2016, "Generative Visual Manipulation on
        the Natural Image Manifold", https://arxiv.org/abs/1609.03552 (the optimisation-based projection).
        A conditional GAN inverts under the requested class."""
        if not self.can("latent"):
            raise RequestError(
                f"{self.creator.name} ({self.creator.kind}) has no latents to invert images into: use a GAN "
                "checkpoint for refine/variations of images"
            )
        if self.creator.num_classes and not self.classes:
            raise RequestError(
                f"{self.creator.name} is class-conditional: say which class the input images are "
                '(e.g. request="variations of this 7")'
            )
        x = images.to(self.device)
        n = x.shape[0]
        labels = self.labels(n)
        y = None if labels is None else labels.repeat(restarts).to(self.device)
        z = (
            torch.randn(restarts * n, self.latent_dim, generator=self.generator)
            .to(self.device)
            .requires_grad_(True)
        )
        target = x.repeat(restarts, 1, 1, 1)
        opt = torch.optim.Adam([z], lr=lr)
        c = self.creator
        with c.frozen():  # the reconstruction is differentiated with respect to z alone
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                err = F.mse_loss(c.decode(z, y), target, reduction="none").flatten(1).mean(1)
                (err + prior * z.pow(2).mean(1)).sum().backward()
                opt.step()
        with torch.no_grad():
            err = F.mse_loss(c.decode(z, y), target, reduction="none").flatten(1).mean(1)
            best = err.view(restarts, n).argmin(0)
            z_best = z.detach().view(restarts, n, -1)[best, torch.arange(n)]
        samples = self.from_latents(z_best.cpu(), ["invert"], labels=labels)
        log.info(
            "inverted %d images: reconstruction MSE %.4f",
            n,
            float(err.view(restarts, n).min(0).values.mean()),
        )
        return samples


def check_input_images(t: torch.Tensor, path: Path, shape: tuple[int, ...] = (1, 28, 28)) -> torch.Tensor:
    """Images from a user's file: (N, *shape) (the creator's image shape), finite, in [-1, 1]; else an
    :class:`InputError`."""
    if t.ndim != 4 or tuple(t.shape[1:]) != tuple(shape):
        raise InputError(
            f"images in {path} have shape {tuple(t.shape)}; expected (N, {', '.join(map(str, shape))}) in [-1, 1]"
        )
    if not t.is_floating_point():
        raise InputError(
            f"images in {path} are {t.dtype}; expected floats in [-1, 1] (x / 127.5 - 1 for uint8)"
        )
    if not torch.isfinite(t).all():
        raise InputError(f"images in {path} hold NaN or infinite values; expected finite values in [-1, 1]")
    if t.min() < -1.001 or t.max() > 1.001:
        raise InputError(f"images in {path} must be in [-1, 1], got [{t.min():.3g}, {t.max():.3g}]")
    return t.float()


def load_input(path: str | Path, agent: GenerationAgent, invert_steps: int = 300) -> Samples:
    """What a ``variations`` or ``refine`` request starts from.

    - an earlier agent run's directory (its ``final/latents.pt`` and ``final/images.pt``);
    - a ``.pt`` tensor: latents (N, latent_dim), or images (N, C, H, W), (C, H, W) or (H, W) of any size;
    - an image file (``.png``, ``.jpg``, ...) of any size and mode, or a directory of them.

    Images are converted to the creator's shape with a note for each conversion
    (:func:`artdirector.editing.inputs.read_images`; the notes go into the samples' history and the trace);
    a GAN inverts them to latents, a diffusion creator takes them as they are (image-to-image, SDEdit).
    Anything else, or a file that cannot be used, is an :class:`InputError` saying why.
    """
    from artdirector.editing.inputs import read_images

    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"input not found: {path}")
    shape = agent.creator.image_shape
    if not agent.can("latent"):  # image-to-image: the images themselves
        images, notes = read_images(path, shape)
        labels = None
        if path.is_dir() and (path / "final" / "labels.pt").is_file() and agent.creator.num_classes:
            t = load_user_tensor(path / "final" / "labels.pt")
            if isinstance(t, torch.Tensor) and t.shape == (images.shape[0],):
                labels = t.long().clamp(0, agent.creator.num_classes - 1)
        return Samples(
            images=images,
            latents=None,
            model=str(agent.ckpt),
            labels=labels,
            history=[f"loaded {path}", *notes],
        )
    if path.is_dir() and not (path / "final").is_dir():  # a directory of image files
        images, notes = read_images(path, shape)
        inverted = agent.invert(images, steps=invert_steps)
        inverted.history = [f"loaded {path}", *notes, *inverted.history]
        return inverted
    if path.is_dir():
        final = path / "final"
        if not (final / "latents.pt").is_file():
            raise InputError(f"{path} is not an agent run directory (no final/latents.pt)")
        z, images = load_user_tensor(final / "latents.pt"), load_user_tensor(final / "images.pt")
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != agent.latent_dim:
            raise InputError(
                f"{final / 'latents.pt'} does not hold latents of this model (N, {agent.latent_dim})"
            )
        if not torch.isfinite(z).all():
            raise InputError(f"latents in {final / 'latents.pt'} hold NaN or infinite values")
        images = check_input_images(images, final / "images.pt", shape)
        labels = None
        if agent.creator.num_classes:
            if not (final / "labels.pt").is_file():
                raise InputError(
                    f"{path} was made by an unconditional creator (no final/labels.pt); "
                    f"{agent.creator.name} needs the class of each latent"
                )
            labels = load_user_tensor(final / "labels.pt")
            if not isinstance(labels, torch.Tensor) or labels.shape != (z.shape[0],):
                raise InputError(f"{final / 'labels.pt'} does not hold one class label per latent")
            if labels.min() < 0 or labels.max() >= agent.creator.num_classes:
                raise InputError(
                    f"{final / 'labels.pt'} holds labels outside [0, {agent.creator.num_classes})"
                )
            labels = labels.long()
        return Samples(
            images=images, latents=z, model=str(agent.ckpt), labels=labels, history=[f"loaded {path}"]
        )
    if path.suffix == ".pt":
        t = load_user_tensor(path)
        if isinstance(t, torch.Tensor) and t.ndim == 2 and t.shape[1] == agent.latent_dim:
            if not torch.isfinite(t).all():
                raise InputError(f"latents in {path} hold NaN or infinite values")
            return agent.from_latents(t.float(), [f"latents from {path.name}"])
        if not (isinstance(t, torch.Tensor) and t.ndim in (3, 4)):  # 3-D/4-D: images of any size, below
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise InputError(
                f"input {path} holds {got}; expected latents (N, {agent.latent_dim}) or images (N, C, H, W) or (C, H, W)"
            )
    # images (a .pt tensor, an image file): converted to the creator's shape, then inverted to latents
    images, notes = read_images(path, shape)
    inverted = agent.invert(images, steps=invert_steps)
    inverted.history = [f"loaded {path}", *notes, *inverted.history]
    return inverted
