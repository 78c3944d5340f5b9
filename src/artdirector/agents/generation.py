"""The Generation Agent: picks the model for a request and samples from it."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from artdirector.agents.types import Request, RequestError, Samples
from artdirector.errors import InputError
from artdirector.io import file_sha256
from artdirector.models.gan import GANModule

log = logging.getLogger(__name__)


def catalogue(ckpt: Path, evaluator: str) -> list[dict[str, Any]]:
    """The usable entries ``scripts/evaluate.py`` wrote for ``ckpt`` with ``evaluator``: measured on the report
    split, for these very checkpoint bytes (an entry left from an earlier file of the same name is stale)."""
    entries, digest = [], None
    for path in sorted(ckpt.parent.glob(f"{ckpt.stem}.{evaluator}-*.metrics.json")):
        try:
            e = json.loads(path.read_text())
            entry = {
                "n": int(e["n_samples"]),
                "features": str(e["feature_network"]),
                "split": (e.get("reference") or {}).get("split"),
                "fid": float(e["metrics"]["fid"]),
                "fid_se": e["metrics"].get("fid_se"),
                "sha256": e.get("checkpoint_sha256"),
                "path": str(path),
            }
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable catalogue entry %s", path)
            continue
        digest = digest or file_sha256(ckpt)
        if entry["sha256"] != digest:
            log.info("ignoring %s: it was written for other bytes of %s", path, ckpt.name)
        elif entry["split"] != "report":
            log.info("ignoring %s: measured on the %s split, not report", path, entry["split"])
        else:
            entries.append(entry)
    return entries


def rank_by_catalogue(paths: list[Path], evaluator: str) -> tuple[list[Path], str]:
    """Order checkpoints by catalogued FID, comparing only entries of one (n, feature network) on the
    report split: the combination most candidates have (the larger n on a tie). Uncatalogued ones last."""
    cats = {p: catalogue(p, evaluator) for p in paths}  # each catalogue read once
    keys = Counter(
        (e["n"], e["features"])
        for es in cats.values()
        for e in {(x["n"], x["features"]): x for x in es}.values()
    )
    if not keys:
        return paths, f"{paths[0]} (no usable catalogue entries: the first candidate)"
    (n, feats), _ = max(keys.items(), key=lambda kv: (kv[1], kv[0][0]))
    fid = {
        p: min((e["fid"] for e in es if (e["n"], e["features"]) == (n, feats)), default=None)
        for p, es in cats.items()
    }
    ranked = sorted(paths, key=lambda p: (fid[p] is None, fid[p] or 0.0))
    best = ranked[0]
    why = (
        f"{best} has the lowest catalogued FID ({fid[best]:.3f}) of {sum(v is not None for v in fid.values())} "
        f"comparable entries ({evaluator} features {feats}, n={n}, report split)"
    )
    return ranked, why


class GenerationAgent:
    """Chooses a checkpoint (the lowest catalogued FID among ``ckpts``) and samples from it.

    Args:
        ckpts: one checkpoint path or several; with several, the metrics JSON files that
            ``scripts/evaluate.py`` wrote beside them decide (uncatalogued ones come last).
        evaluator: which catalogue entries to compare (``lenet``, ``inception``).
        seed: seeds every draw, so a run is repeatable.
    """

    def __init__(
        self,
        ckpts: str | list[str],
        device: str | torch.device = "cpu",
        evaluator: str = "lenet",
        seed: int = 0,
    ) -> None:
        paths = [Path(p).expanduser() for p in ([ckpts] if isinstance(ckpts, str | Path) else ckpts)]
        if not paths:
            raise RequestError("no checkpoint given: pass ckpt=<path to a .ckpt from scripts/train.py>")
        self.device = torch.device(device)
        if len(paths) > 1:
            ranked, self.why = rank_by_catalogue(paths, evaluator)
        else:
            ranked, self.why = paths, f"{paths[0]} (the only candidate)"
        self.ckpt = ranked[0]
        self.model = GANModule.from_checkpoint(self.ckpt, map_location=self.device)
        if self.model.num_classes:
            raise RequestError(
                f"{self.ckpt} is a class-conditional creator; the agents do not carry class labels through "
                "refinement yet: pass an unconditional checkpoint (model=dcgan), e.g. the zoo's default"
            )
        self.model_version = 0  # +1 whenever the model changes (what depends on the model re-fits)
        self.seed = seed
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    def use_model(self, model: GANModule, ckpt: Path | str) -> None:
        """Switch to another model (e.g. a finetuned one the Director accepted)."""
        if model is not self.model:
            self.model, self.ckpt = model.to(self.device).eval(), Path(ckpt)
            self.model_version += 1

    def reseed(self, seed: int) -> None:
        """Restart the latent stream from ``seed`` (the held-out replay draws latents no decision saw)."""
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    def latents(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=self.generator)

    def from_latents(
        self, z: torch.Tensor, history: list[str] | None = None, model: GANModule | None = None
    ) -> Samples:
        """Images of latents ``z`` from the current model (or ``model``, e.g. a candidate not yet kept)."""
        images = (model or self.model).sample(z=z.to(self.device)).cpu()
        return Samples(images=images, latents=z.cpu(), model=str(self.ckpt), history=history or [])

    def generate(self, request: Request, n: int, base: Samples | None = None, spread: float = 0.5) -> Samples:
        """``create``: n fresh samples. ``variations``: n samples near ``base``'s latents (z + spread * noise).
        ``refine``: ``base`` itself (the Refinement Agent improves it)."""
        if request.task == "create":
            return self.from_latents(self.latents(n), ["create"])
        if base is None:
            raise RequestError(
                f"'{request.task}' needs something to start from: input=<image .png/.pt, latents "
                ".pt or an earlier run's directory>"
            )
        if request.task == "refine":
            return base
        idx = torch.arange(n) % len(base)
        z = base.latents[idx] + spread * torch.randn(n, self.latent_dim, generator=self.generator)
        return self.from_latents(z, [*base.history, f"variations(spread={spread})"])

    def invert(
        self, images: torch.Tensor, steps: int = 300, lr: float = 0.05, restarts: int = 4, prior: float = 1e-3
    ) -> Samples:
        """GAN inversion: latents whose images reconstruct ``images`` (MSE + a small Gaussian prior on z),
        the best of ``restarts`` random starts per image. Zhu et al. 2016, "Generative Visual Manipulation on
        the Natural Image Manifold", https://arxiv.org/abs/1609.03552 (the optimisation-based projection)."""
        x = images.to(self.device)
        n = x.shape[0]
        z = (
            torch.randn(restarts * n, self.latent_dim, generator=self.generator)
            .to(self.device)
            .requires_grad_(True)
        )
        target = x.repeat(restarts, 1, 1, 1)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            err = F.mse_loss(self.model.generate(z), target, reduction="none").flatten(1).mean(1)
            (err + prior * z.pow(2).mean(1)).sum().backward()
            opt.step()
        with torch.no_grad():
            err = F.mse_loss(self.model.generate(z), target, reduction="none").flatten(1).mean(1)
            best = err.view(restarts, n).argmin(0)
            z_best = z.detach().view(restarts, n, -1)[best, torch.arange(n)]
        samples = self.from_latents(z_best.cpu(), ["invert"])
        log.info(
            "inverted %d images: reconstruction MSE %.4f",
            n,
            float(err.view(restarts, n).min(0).values.mean()),
        )
        return samples


def _load_tensor(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(
            f"input {path} could not be read as a tensor file ({first}); save tensors with torch.save"
        ) from err


def check_input_images(t: torch.Tensor, path: Path) -> torch.Tensor:
    """Images from a user's file: (N, 1, 28, 28), finite, in [-1, 1]; else an :class:`InputError`."""
    if t.ndim != 4 or t.shape[1:] != (1, 28, 28):
        raise InputError(f"images in {path} have shape {tuple(t.shape)}; expected (N, 1, 28, 28) in [-1, 1]")
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
    - a ``.pt`` tensor: latents (N, latent_dim) or images (N, 1, 28, 28) in [-1, 1] (inverted to latents);
    - a ``.png``: one 28x28 image (converted to grayscale, inverted to a latent).

    Anything else, or a file that cannot be used as it is, is an :class:`InputError` saying why.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        final = path / "final"
        if not (final / "latents.pt").is_file():
            raise InputError(f"{path} is not an agent run directory (no final/latents.pt)")
        z, images = _load_tensor(final / "latents.pt"), _load_tensor(final / "images.pt")
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != agent.latent_dim:
            raise InputError(
                f"{final / 'latents.pt'} does not hold latents of this model (N, {agent.latent_dim})"
            )
        if not torch.isfinite(z).all():
            raise InputError(f"latents in {final / 'latents.pt'} hold NaN or infinite values")
        images = check_input_images(images, final / "images.pt")
        return Samples(images=images, latents=z, model=str(agent.ckpt), history=[f"loaded {path}"])
    if path.suffix == ".pt":
        t = _load_tensor(path)
        if isinstance(t, torch.Tensor) and t.ndim == 2 and t.shape[1] == agent.latent_dim:
            if not torch.isfinite(t).all():
                raise InputError(f"latents in {path} hold NaN or infinite values")
            return agent.from_latents(t.float(), [f"latents from {path.name}"])
        if isinstance(t, torch.Tensor) and t.ndim == 4:
            return agent.invert(check_input_images(t, path), steps=invert_steps)
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise InputError(
            f"input {path} holds {shape}; expected latents (N, {agent.latent_dim}) or images (N, 1, 28, 28)"
        )
    if path.suffix.lower() == ".png":
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                gray = im.convert("L")
                img = torch.frombuffer(bytearray(gray.tobytes()), dtype=torch.uint8)
                img = img.view(1, gray.height, gray.width)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            raise InputError(
                f"input image {path} could not be decoded as a PNG; is it a valid image file?"
            ) from err
        if img.shape[-2:] != (28, 28):
            raise InputError(
                f"input image {path} is {img.shape[-1]}x{img.shape[-2]}; the model makes 28x28 "
                "grayscale images"
            )
        return agent.invert(img.float().div(127.5).sub(1).unsqueeze(0), steps=invert_steps)
    raise InputError(f"input {path}: expected a run directory, a .pt tensor or a 28x28 .png")
