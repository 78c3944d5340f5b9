"""The Refinement Agent: real techniques that improve what was generated, one method per action."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from artdirector.agents.generation import GenerationAgent
from artdirector.agents.types import Action, Candidate, Samples
from artdirector.creators import wrap
from artdirector.io import atomic_write
from artdirector.models.checkpoint import checkpoint_kind, load_module, module_class, read_checkpoint

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)


# What each action needs of a creator (its capabilities; see artdirector.creators). Policies offer only the
# actions the creator in use can do.
REQUIRES: dict[str, frozenset[str]] = {
    "drs": frozenset({"latent", "critic"}),  # the samples' latents are the first candidates
    "langevin": frozenset({"latent", "critic"}),
    "dot": frozenset({"latent", "critic"}),
    "truncation": frozenset({"latent"}),
    "finetune": frozenset({"trainable"}),
    "guidance": frozenset({"guidance"}),
    "steps": frozenset({"steps"}),
    "upscale": frozenset(),  # images in, images out: any creator
    "style": frozenset(),  # the creator's own technique where it has one, else a pixel edit
}


class RefinementAgent:
    """Applies an :class:`Action` to samples and returns a :class:`Candidate`; inputs (samples, checkpoints,
    the Generation Agent's model) are never changed: the Director decides whether to keep the candidate.

    Args:
        generation: the Generation Agent (its model, latent sampler and seed).
        real_images: held-out real images in [-1, 1] (DRS logit calibration).
        real_labels: their classes (a class-conditional critic judges an image with its class).
        classify: images -> predicted class (the evaluator's LeNet): ``style`` chooses a technique that keeps it.
        datamodule: the data to continue training on (``finetune``).
        output_dir: where ``finetune`` writes its new checkpoints.
        defaults: per-action default parameters (overridden by an action's own).
    """

    ACTIONS = ("drs", "langevin", "dot", "truncation", "finetune", "guidance", "steps", "upscale", "style")
    # actions whose output sample i is input sample i refined (same latent, or same seed and label): their
    # FID difference is bootstrapped with shared indices
    PAIRED = frozenset({"langevin", "dot", "truncation", "finetune", "guidance", "steps", "upscale", "style"})
    # finishing actions: asked for by the request, applied once after the FID loop (Director(finish=...)),
    # kept whatever their FID, and judged by their own check (``check_<name>``), not by FID gain. A new one
    # (``style``) is a method ``style(samples, **params) -> Samples``, a ``check_style(...)`` with the
    # signature of ``check_upscale``, its name here, in ACTIONS and in REQUIRES.
    FINISHING = ("upscale", "style")
    # the consistency check of ``upscale``: met when |FID difference| <= CONSISTENCY_Z x its paired bootstrap
    # SE (see ``check_upscale``)
    CONSISTENCY_Z = 2.0

    def __init__(
        self,
        generation: GenerationAgent,
        real_images: torch.Tensor | None = None,
        datamodule: L.LightningDataModule | None = None,
        output_dir: str | Path = ".",
        defaults: dict[str, dict[str, Any]] | None = None,
        real_labels: torch.Tensor | None = None,
        classify: Any = None,
    ) -> None:
        self.gen = generation
        # images -> predicted classes (the evaluator's classifier): a style edit must keep the class
        self.classify = classify
        self.real_images = real_images
        self.real_labels = real_labels
        self.datamodule = datamodule
        self.output_dir = Path(output_dir)
        self.defaults = {k: dict(v) for k, v in (defaults or {}).items()}
        self._calibration: tuple[int, float, float] | None = None  # (model version, a, b)
        self._finetunes = 0
        # the run's budget: a time.perf_counter() value (None: no limit). Long actions look at the clock
        # between their steps and stop there with what they have; ``cut`` then says how far they got.
        self.deadline: float | None = None
        self.cut: str | None = None

    def out_of_time(self) -> bool:
        """Has the run's budget (``deadline``) been spent?"""
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def _stopped(self, done: int, of: int, unit: str) -> str:
        """Record that the budget stopped the action in flight after ``done`` of ``of`` ``unit``."""
        self.cut = f"stopped at the budget after {done} of {of} {unit}"
        log.warning("%s", self.cut)
        return self.cut

    @property
    def model(self) -> Any:
        return self.gen.model

    def params(self, action: Action) -> dict[str, Any]:
        return {**self.defaults.get(action.name, {}), **action.params}

    def refine(self, samples: Samples, action: Action) -> Candidate:
        if action.name not in self.ACTIONS:
            raise ValueError(f"unknown refinement action {action.name!r}; known: {', '.join(self.ACTIONS)}")
        missing = REQUIRES[action.name] - set(self.gen.capabilities)
        if missing:
            raise ValueError(
                f"{action.name} needs {', '.join(sorted(missing))}, which {self.gen.creator.name} "
                f"({self.gen.creator.kind}) does not have"
            )
        self.cut = None
        out = getattr(self, action.name)(samples, **self.params(action))
        if isinstance(out, Candidate):
            return out
        return Candidate(out, paired=action.name in self.PAIRED)

    def output_tag(self, action: Action) -> str:
        """A short name for a finishing action's outputs (``grid_<tag>.png``): ``x4`` for ``upscale``."""
        if action.name == "upscale":
            return f"x{self.params(action).get('factor', 4)}"
        if action.name == "style":
            return "styled"
        return action.name

    def check(
        self,
        action: Action,
        before: Samples,
        after: Samples,
        before_report: Any,
        after_report: Any,
        evaluator: Any = None,
    ) -> dict[str, Any]:
        """The check of a finishing action: did ``after`` (the action applied to ``before``) do what the
        request asked without spoiling the images? Dispatched to ``check_<action name>``; ``before_report``
        and ``after_report`` are their :class:`~artdirector.agents.evaluation.AgentReport` on one split and
        ``evaluator`` the :class:`~artdirector.evaluation.Evaluator` of that split. Returns a JSON-ready dict
        with at least ``met`` (bool) and ``summary`` (one sentence with the numbers), plus the numbers."""
        fn = getattr(self, f"check_{action.name}", None)
        if action.name not in self.FINISHING or fn is None:
            raise ValueError(
                f"{action.name!r} is not a finishing action; finishing actions: {', '.join(self.FINISHING)}"
            )
        out = fn(before, after, before_report, after_report, evaluator, **self.params(action))
        if not isinstance(out.get("met"), bool) or not isinstance(out.get("summary"), str):
            raise TypeError(f"check_{action.name} must return a dict with 'met' (bool) and 'summary' (str)")
        return {"action": action.name, "params": self.params(action), **out}

    # ---- finishing: super-resolution -----------------------------------------------------------------
    def upscale(self, samples: Samples, factor: int = 4) -> Samples:
        """x2 or x4 super-resolution through the shipped ESPCN (``artdirector/weights/sr_x4.pt``; x2 is its x4
        output area-averaged 2x2: :func:`artdirector.models.superres.upscale`). Images stay in [-1, 1] and in
        order (paired with the input); latents, labels, seed and options are kept, so the replay can redo it."""
        from artdirector.models.superres import check_factor, upscale

        factor = check_factor(factor)
        images = upscale(samples.images, factor)
        return samples.derived(images, samples.latents, f"upscale(x{factor}, ESPCN sr_x4)")

    def check_upscale(
        self,
        before: Samples,
        after: Samples,
        before_report: Any,
        after_report: Any,
        evaluator: Any,
        factor: int = 4,
        **_: Any,
    ) -> dict[str, Any]:
        """Consistency: the evaluator reads the upscaled images through an area-downsampled copy; their FID
        must agree with the input's at the same n within ``CONSISTENCY_Z`` paired bootstrap SEs of the
        difference (shared resampling indices: image i is input i upscaled). The tolerance is the noise of
        the difference alone, so it does not grow with a worse model's FID: a shift the evaluator can tell
        from noise at this n fails the check, whatever the input's FID. Without a bootstrap SE
        (``n_bootstrap=0``) the check cannot be judged and is not met. Also the mean per-image PSNR of
        area-downsample(upscaled) against the input (``data_range=2``): how nearly the upscaling keeps what
        was there."""
        from torchmetrics.functional.image import peak_signal_noise_ratio

        from artdirector.models.superres import area_downsample

        if evaluator is None:
            raise ValueError("the upscale check needs the evaluator of the split it is measured on")
        diff, se = evaluator.fid_difference(before_report.features, after_report.features, paired=True)
        diff = -diff  # FID(upscaled) - FID(input)
        judged = math.isfinite(se)
        tol = self.CONSISTENCY_Z * se if judged else math.nan
        met = bool(judged and abs(diff) <= tol)
        down = area_downsample(after.images, tuple(before.images.shape[-2:]))
        psnr = peak_signal_noise_ratio(
            down.float(), before.images.float(), data_range=2.0, dim=(1, 2, 3), reduction="none"
        )
        psnr = psnr[torch.isfinite(psnr)]  # an identical image has infinite PSNR
        psnr_mean = float(psnr.mean()) if len(psnr) else None  # every image identical
        size = list(after.images.shape[-2:])
        summary = (
            f"consistency {'met' if met else 'NOT met'}: {before_report.split} FID of the x{factor} images "
            f"({size[0]}x{size[1]}, read area-downsampled) {after_report.fid:.3f} vs {before_report.fid:.3f} for "
            f"the input at n={len(before)}, difference {diff:+.3f} ± {se:.3f} (paired bootstrap SE; "
            f"{abs(diff) / se if se > 0 else math.inf:.1f} SE); "
            + (
                f"{'within' if met else 'beyond'} {self.CONSISTENCY_Z:g} SE = {tol:.3f}"
                if judged
                else "no bootstrap SE (n_bootstrap=0): not judged"
            )
            + f"; PSNR of the downsampled x{factor} images against the input "
            + ("inf (identical)" if psnr_mean is None else f"{psnr_mean:.2f} dB")
        )
        return {
            "met": met,
            "summary": summary,
            "split": before_report.split,
            "factor": int(factor),
            "size": size,
            "net": "ESPCN x4 (artdirector/weights/sr_x4.pt)"
            + (", then 2x2 area average" if factor == 2 else ""),
            "fid_input": before_report.fid,
            "fid_upscaled": after_report.fid,
            "fid_difference": diff,
            "fid_difference_se": se,
            "tolerance": tol if judged else None,
            "z": self.CONSISTENCY_Z,
            "psnr_downsampled_vs_input": psnr_mean,
            "n": len(before),
        }

    # ---- finishing: style adjustment ------------------------------------------------------------------
    def style(
        self, samples: Samples, attribute: str, amount: Any, method: str = "auto", max_alpha: float = 3.0
    ) -> Samples:
        """Move ``attribute`` of every image by ``amount`` (``"+50%"``, ``"+15"``, ``"=0"``) and keep its class
        (:mod:`artdirector.editing.style`). ``method`` ``auto`` tries the creator's own technique first
        (InterFaceGAN latent directions for a GAN, attribute guidance for a diffusion creator) and falls back
        to the Morpho-MNIST pixel edit when that one misses the request (attribute within 25 %, conformance
        down at most 1 point by the classifier given to the agent); every attempt is in the history."""
        from artdirector.editing.style import StyleTarget, candidates, edit, measure_edit

        target = StyleTarget.parse(attribute, amount)
        tried, best = [], None
        # the creator's own technique needs the samples' latents (GAN) or seed (diffusion)
        own = (samples.latents is not None or samples.seed is not None) and samples.source is None
        for m in candidates(self.gen.capabilities if own else frozenset(), attribute, method):
            images, latents, info = edit(
                self.gen.creator,
                samples.images,
                target,
                m,
                latents=samples.latents,
                labels=samples.labels,
                seed=samples.seed,
                options=samples.options,
                max_alpha=max_alpha,
            )
            result = measure_edit(samples.images, images, target, self.classify, samples.labels)
            tried.append(f"{m}: {'met' if result['met'] else 'missed'}")
            best = (m, images, latents, info)
            if result["met"]:
                break
        m, images, latents, info = best
        what = f"style({target.describe()}, {m}; tried {', '.join(tried)})"
        # the edited latents replay a latent edit; a pixel or guided edit's images are not G(z) any more
        return samples.derived(images, latents if m == "latent" else None, what)

    def check_style(
        self,
        before: Samples,
        after: Samples,
        before_report: Any,
        after_report: Any,
        evaluator: Any,
        attribute: str = "thickness",
        amount: Any = "+50%",
        **_: Any,
    ) -> dict[str, Any]:
        """The attribute moved by the requested amount (mean within 25 %, with its spread over images), and
        the class was kept: conformance (the evaluator's classifier against the asked classes; agreement with
        the unedited image's predicted class for an unconditional creator) down by at most 1 point. The FID
        of both, at the same n on the evaluator's split, is stated beside it."""
        from artdirector.editing.style import StyleTarget, measure_edit

        target = StyleTarget.parse(attribute, amount)
        p0, p1 = before_report.report.labels, after_report.report.labels  # the evaluator's classes
        known = (p0.cpu(), p1.cpu()) if p0 is not None and p1 is not None else None
        out = measure_edit(before.images, after.images, target, labels=before.labels, predicted=known)
        diff, se = (
            evaluator.fid_difference(before_report.features, after_report.features, paired=True)
            if evaluator is not None
            else (float("nan"), float("nan"))
        )
        out["fid_before"], out["fid_after"] = before_report.fid, after_report.fid
        out["fid_change"], out["fid_change_se"] = -diff, se
        out["split"] = before_report.split
        out["method"] = next((h for h in reversed(after.history) if h.startswith("style(")), "")
        out["summary"] += (
            f"; {before_report.split} FID {before_report.fid:.1f} -> {after_report.fid:.1f} "
            f"({-diff:+.1f} ± {se:.1f}); {out['method']}"
        )
        return out

    # ---- discriminator rejection sampling --------------------------------------------------------
    def calibrated_logits(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's logits after Platt scaling (a * logit + b) fitted on held-out real vs generated images.
        Azadi et al. 2019 calibrate D before rejection sampling, since D's raw outputs overfit."""
        a, b = self.calibrate()
        return a * self._logits(images, labels) + b

    @torch.no_grad()
    def _logits(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.gen.critic(images, labels)

    def calibrate(self, n: int = 1000, iters: int = 200) -> tuple[float, float]:
        """Platt scaling of the current model's D on ``real_images`` (held out from D's training: the
        selection split) against as many fresh samples; refitted whenever the model changes."""
        if self._calibration is not None and self._calibration[0] == self.gen.model_version:
            return self._calibration[1:]
        if self.real_images is None:
            self._calibration = (self.gen.model_version, 1.0, 0.0)
            log.warning("no real images for DRS logit calibration: using raw logits")
            return self._calibration[1:]
        real = self.real_images[:n]
        real_labels = None
        if self.gen.creator.num_classes:  # a projection D judges an image with its class
            if self.real_labels is None:
                raise ValueError("calibrating a class-conditional critic needs the real images' labels")
            real_labels = self.real_labels[:n]
        fake = self.gen.from_latents(self.gen.latents(real.shape[0]), labels=real_labels)
        logits = torch.cat([self._logits(real, real_labels), self._logits(fake.images, fake.labels)])
        target = torch.cat([torch.ones(real.shape[0]), torch.zeros(len(fake))])
        ab = torch.tensor([1.0, 0.0], requires_grad=True)
        opt = torch.optim.LBFGS([ab], max_iter=iters)

        def closure():
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(ab[0] * logits + ab[1], target)
            loss.backward()
            return loss

        opt.step(closure)
        self._calibration = (self.gen.model_version, float(ab[0].detach()), float(ab[1].detach()))
        return self._calibration[1:]

    def drs(
        self,
        samples: Samples,
        gamma_percentile: float = 80.0,
        burn_in: int = 2000,
        max_candidates: int = 20000,
        batch: int = 500,
        eps: float = 1e-6,
    ) -> Samples:
        """Discriminator Rejection Sampling. Azadi et al. 2019, https://arxiv.org/abs/1810.06758.

        With calibrated logits l, D*_M the largest seen, accept x with probability sigmoid(F(x)) where
        F(x) = l - D*_M - log(1 - exp(l - D*_M - eps)) - gamma, and gamma the ``gamma_percentile``-th
        percentile of F over each batch (the paper's shift; higher keeps fewer, more confident samples).
        Candidates are the current samples first, then fresh draws from the generator, until len(samples)
        are accepted (or ``max_candidates``; then the best-scored rejected ones fill in, noted in the log).
        A conditional creator's samples keep their classes: each accepted candidate fills a slot of its own
        class, so the output has exactly the input's labels (in the input's order).
        """
        n = len(samples)
        if samples.latents is None:
            raise ValueError("drs draws fresh latents beside the samples'; these samples have none")
        conditional = samples.labels is not None
        burn = self.gen.from_latents(self.gen.latents(burn_in))
        d_max = float(self.calibrated_logits(burn.images, burn.labels).max())
        # slots[c]: the output positions still waiting for an image of class c (one class, -1, if unconditional)
        want = samples.labels if conditional else torch.full((n,), -1)
        slots: dict[int, list[int]] = {}
        for i, c in enumerate(want.tolist()):
            slots.setdefault(c, []).append(i)
        z_out = torch.empty_like(samples.latents)
        x_out = torch.empty_like(samples.images)
        rejected: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        pool = [(samples.latents, samples.images, want)]
        seen = filled = accepted = 0
        while filled < n and seen < max_candidates:
            if not pool and self.out_of_time():  # fill from what has been scored
                self._stopped(seen, max_candidates, "candidates")
                break
            if pool:
                z, x, y = pool.pop(0)
            else:  # fresh candidates of the classes still wanted, in proportion
                still = torch.tensor([c for c, s in slots.items() for _ in s])
                y = still[torch.randint(len(still), (batch,), generator=self.gen.generator)]
                fresh = self.gen.from_latents(self.gen.latents(batch), labels=y if conditional else None)
                z, x = fresh.latents, fresh.images
            seen += len(z)
            logit = self.calibrated_logits(x, y if conditional else None)
            d_max = max(d_max, float(logit.max()))
            f = logit - d_max - torch.log1p(-torch.exp(logit - d_max - eps).clamp(max=1 - 1e-7))
            gamma = torch.quantile(f, gamma_percentile / 100.0)
            keep = torch.rand(len(z), generator=self.gen.generator) < torch.sigmoid(f - gamma)
            accepted += int(keep.sum())
            used = torch.zeros(len(z), dtype=torch.bool)
            for j in keep.nonzero().flatten().tolist():
                free = slots.get(int(y[j]))
                if free:
                    k = free.pop(0)
                    z_out[k], x_out[k], used[j] = z[j], x[j], True
                    filled += 1
            rejected.append((f[~used], z[~used], x[~used], y[~used]))
        if filled < n:  # budget of candidates spent: fill with the highest-scored rejected of each class
            f_r = torch.cat([r[0] for r in rejected])
            z_r, x_r, y_r = (torch.cat([r[i] for r in rejected]) for i in (1, 2, 3))
            for j in f_r.argsort(descending=True).tolist():
                free = slots.get(int(y_r[j]))
                if free:
                    k = free.pop(0)
                    z_out[k], x_out[k] = z_r[j], x_r[j]
            for k in (k for free in slots.values() for k in free):  # none of its class left: keep the input
                z_out[k], x_out[k] = samples.latents[k], samples.images[k]
            log.info(
                "DRS: only %d of %d accepted in %d candidates; filled with the best rejected", filled, n, seen
            )
        log.info("DRS: acceptance rate %.3f (%d candidates)", accepted / max(seen, 1), seen)
        return samples.derived(x_out, z_out, self._what(f"drs(gamma_percentile={gamma_percentile}"))

    def _what(self, action: str) -> str:
        """The history entry of an action, ``"name(params"`` closed here, with the budget's cut if any."""
        return f"{action}{'; ' + self.cut if self.cut else ''})"

    # ---- latent refinement -----------------------------------------------------------------------
    def _labels(self, samples: Samples) -> torch.Tensor | None:
        return None if samples.labels is None else samples.labels.to(self.model.device)

    def _need_latents(self, samples: Samples, action: str) -> torch.Tensor:
        if samples.latents is None:
            raise ValueError(f"{action} refines latents; these samples have none (invert them first)")
        return samples.latents.to(self.model.device)

    @contextlib.contextmanager
    def _latent_gradients_only(self) -> Iterator[None]:
        """The latent steps differentiate d(G(z)) with respect to z alone: the creator's weights are frozen
        meanwhile, so that no backward pass computes (and throws away) gradients for them."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def langevin(
        self, samples: Samples, steps: int = 30, step_size: float = 0.01, noise: float = 1.0
    ) -> Samples:
        """Discriminator Driven Latent Sampling: Langevin dynamics on the energy
        E(z) = ||z||^2 / 2 - d(G(z)), with d the discriminator logit. Che et al. 2020,
        "Your GAN is Secretly an Energy-based Model", https://arxiv.org/abs/2003.06060.
        z <- z - step_size / 2 * grad E(z) + noise * sqrt(step_size) * N(0, I)."""
        z = self._need_latents(samples, "langevin").clone()
        m, y = self.model, self._labels(samples)
        with self._latent_gradients_only():
            for i in range(steps):
                if self.out_of_time():
                    self._stopped(i, steps, "steps")
                    break
                z.requires_grad_(True)
                energy = 0.5 * z.pow(2).sum(1) - m.discriminate(m.generate(z, y), y)
                (grad,) = torch.autograd.grad(energy.sum(), z)
                with torch.no_grad():
                    eta = torch.randn(z.shape, generator=self.gen.generator).to(z.device)
                    z = z - 0.5 * step_size * grad + noise * math.sqrt(step_size) * eta
        z = z.detach()
        return samples.derived(
            m.sample(z=z, labels=y).cpu(),
            z.cpu(),
            self._what(f"langevin(steps={steps}, step_size={step_size}"),
        )

    def dot(self, samples: Samples, steps: int = 30, lr: float = 0.01, k_pairs: int = 500) -> Samples:
        """Discriminator Optimal Transport in latent space. Tanaka 2019, https://arxiv.org/abs/1910.06832.
        Moves each z0 towards argmin_z ||z - z0|| - d(G(z)) / k_eff, with k_eff the Lipschitz constant of
        d(G(.)) estimated on random latent pairs (the paper's max over pairs of |d(G(a)) - d(G(b))| / ||a - b||),
        by Adam, and keeps for each sample the iterate with the lowest objective seen, z0 included.

        Keeping the best iterate is what makes DOT's promise hold step by step: the objective at the kept z is
        at most its value at z0, so d(G(z)) >= d(G(z0)) + k_eff ||z - z0||: no sample's critic score falls.
        Where |grad d| < k_eff at z0 the objective's minimum is z0 itself; Adam's first steps move every
        coordinate by about ``lr`` whatever the gradient's size, so its iterates circle z0 and the last one
        can be worse than the start; such a sample stays where it was. (The paper's smoothed norm
        ||z - z0 + delta|| only defines the gradient at z = z0; torch's norm has the zero subgradient there.)
        """
        z0 = self._need_latents(samples, "dot")
        m, y = self.model, self._labels(samples)
        with torch.no_grad():
            a, b = self.gen.latents(k_pairs).to(z0.device), self.gen.latents(k_pairs).to(z0.device)
            yk = None if y is None else y[torch.arange(k_pairs) % len(y)]  # pairs share a class
            da, db = m.discriminate(m.generate(a, yk), yk), m.discriminate(m.generate(b, yk), yk)
            k_eff = max(float(((da - db).abs() / (a - b).norm(dim=1)).max()), 1e-6)
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        best_z, best_x = z0.clone(), None
        best = torch.full((z0.shape[0],), math.inf, device=z0.device)
        with self._latent_gradients_only():
            for i in range(steps + 1):  # the objective at z0, at each step, and at the last iterate
                last = i == steps or self.out_of_time()
                with torch.set_grad_enabled(not last):
                    x = m.generate(z, y)
                    objective = (z - z0).norm(dim=1) - m.discriminate(x, y) / k_eff
                with torch.no_grad():
                    better = objective < best
                    best = torch.where(better, objective, best)
                    best_z[better] = z[better]
                    best_x = x.detach().clone() if best_x is None else best_x
                    best_x[better] = x[better].detach()
                if last:
                    if i < steps:
                        self._stopped(i, steps, "steps")
                    break
                (z.grad,) = torch.autograd.grad(objective.sum(), z)
                opt.step()
        moved = (best_z != z0).any(dim=1).cpu()
        images = samples.images.clone()  # a sample that stays keeps its image exactly
        images[moved] = best_x.cpu()[moved]
        return samples.derived(
            images,
            best_z.cpu(),
            self._what(f"dot(steps={steps}, k_eff={k_eff:.3g}, moved {int(moved.sum())} of {len(samples)}"),
        )

    def truncation(self, samples: Samples, threshold: float = 1.0) -> Samples:
        """The truncation trick: latent components beyond +-threshold are redrawn from N(0, 1) until they
        fall inside, i.e. z follows a truncated normal. Brock et al. 2019, "Large Scale GAN Training for High
        Fidelity Natural Image Synthesis", https://arxiv.org/abs/1809.11096. Lower thresholds trade diversity
        (recall) for fidelity (precision)."""
        z = self._need_latents(samples, "truncation").cpu().clone()
        out = z.abs() > threshold
        while out.any():
            z[out] = torch.randn(int(out.sum()), generator=self.gen.generator)
            out = z.abs() > threshold
        return samples.derived(
            self.gen.from_latents(z, labels=samples.labels).images, z, f"truncation(threshold={threshold})"
        )

    # ---- model level -----------------------------------------------------------------------------
    def finetune(self, samples: Samples, steps: int = 50, precision: str = "32-true") -> Candidate:
        """Continue the creator's own training from its checkpoint for ``steps`` batches (optimiser state
        included), write the result as a new checkpoint under the run's directory (the source is never
        touched) and redraw the same samples with it: the same latents (and labels) for a GAN, the same seeds,
        labels and sampling options for a diffusion model. The Generation Agent stays on its model unless the
        Director accepts the candidate. A weights-only checkpoint (a shipped zoo model) starts its optimisers
        afresh."""
        import lightning as L

        if self.datamodule is None:
            raise ValueError("finetune needs a data module to train on")
        src = self.gen.ckpt  # the model in effect: the source, or the last accepted finetune
        ckpt = read_checkpoint(src)
        kind = checkpoint_kind(ckpt)
        cls = module_class(kind)
        resumable = "optimizer_states" in ckpt
        start = int(ckpt.get("global_step", 0)) if resumable else 0
        model = cls(**ckpt["hyper_parameters"])
        if not resumable:
            model.load_state_dict(ckpt["state_dict"])
        accel = "gpu" if self.model.device.type == "cuda" else "cpu"
        per_batch = 2 if kind == "gan" else 1  # a GAN's global step counts G's and D's optimiser steps
        trainer = L.Trainer(
            accelerator=accel,
            devices=1,
            precision=precision,
            max_steps=start + per_batch * steps,
            max_epochs=-1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            callbacks=[_stop_at(self.deadline)] if self.deadline is not None else None,
        )
        trainer.fit(
            model, datamodule=self.datamodule, ckpt_path=str(src) if resumable else None, weights_only=True
        )
        done = (trainer.global_step - start) // per_batch
        if done < steps:
            self._stopped(done, steps, "batches")
        self._finetunes += 1
        out = self.output_dir / "checkpoints" / f"finetune_{self._finetunes:02d}.ckpt"
        atomic_write(out, lambda p: trainer.save_checkpoint(p, weights_only=False))  # full state: resumable
        new_model = load_module(out, kinds=(kind,), map_location=self.gen.device).eval()
        action = self._what(f"finetune(steps={steps}")
        if samples.latents is not None or samples.seed is None:
            z = samples.latents if samples.latents is not None else self.gen.latents(len(samples))
            images = self.gen.from_latents(z, model=new_model, labels=samples.labels).images
            new = samples.derived(images, z.cpu(), action, model=str(out))
        elif samples.source is not None:  # image-to-image: the same edit of the same input, new weights
            images = self.gen.sdedit(
                samples.source, samples.labels, samples.seed, model=new_model, **samples.options
            )
            new = samples.derived(images, None, action, model=str(out))
        else:  # the same seeds, labels and options through the new weights
            d = wrap(new_model, out).sample(
                len(samples), samples.labels, seed=samples.seed, **samples.options
            )
            new = samples.derived(d.images, None, action, model=str(out), options=d.options)
        return Candidate(
            new,
            model=new_model,
            model_path=str(out),
            paired=samples.latents is not None or samples.seed is not None,
        )

    # ---- diffusion: sampling options ------------------------------------------------------------------
    def guidance(self, samples: Samples, factor: float = 1.5, scale: float | None = None) -> Samples:
        """Classifier-free guidance (Ho & Salimans 2022), stronger or weaker: the same seeds and labels drawn
        again at guidance ``scale`` (or the current scale times ``factor``). Higher scales trade diversity
        (recall) for fidelity and class conformance."""
        current = float(samples.options.get("guidance", 1.0))
        new = float(scale) if scale is not None else current * factor
        return self.gen.resample(samples, f"guidance({current:g} -> {new:g})", guidance=new)

    def steps(self, samples: Samples, factor: float = 2.0, steps: int | None = None) -> Samples:
        """More (or fewer) sampler steps: the same seeds and labels drawn again with ``steps`` (or the current
        number times ``factor``); fewer solver steps discretise the reverse process more coarsely."""
        current = int(samples.options.get("steps", 25))
        new = int(steps) if steps is not None else max(1, round(current * factor))
        return self.gen.resample(samples, f"steps({current} -> {new})", steps=new)


def _stop_at(deadline: float):
    """A Lightning callback that ends training after the batch during which ``deadline`` (a
    time.perf_counter() value) passed."""
    import lightning as L

    class StopAt(L.Callback):
        def on_train_batch_end(self, trainer, *args: Any) -> None:
            if time.perf_counter() >= deadline:
                trainer.should_stop = True

    return StopAt()
