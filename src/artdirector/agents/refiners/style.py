"""Style adjustment as a finishing action: move an attribute (thickness, slant, size) and keep the class."""

from __future__ import annotations

from typing import Any

from artdirector.agents.refiners.base import Context, FinishingRefiner
from artdirector.agents.types import Samples


class Style(FinishingRefiner):
    """Move ``attribute`` of every image by ``amount`` (``"+50%"``, ``"+15"``, ``"=0"``) and keep its class
    (:mod:`artdirector.editing.style`). ``method`` ``auto`` tries the creator's own technique first
    (InterFaceGAN latent directions for a GAN, attribute guidance for a diffusion creator) and falls back
    to the Morpho-MNIST pixel edit when that one misses the request (attribute within 25 %, conformance
    down at most 1 point by the classifier given to the agent); every attempt is in the history. Any
    creator: the pixel edit needs only the images."""

    name = "style"

    def refined(
        self,
        samples: Samples,
        ctx: Context,
        attribute: str,
        amount: Any,
        method: str = "auto",
        max_alpha: float = 3.0,
    ) -> Samples:
        from artdirector.editing.measure import measure_edit
        from artdirector.editing.style import candidates, edit
        from artdirector.editing.targets import StyleTarget

        target = StyleTarget.parse(attribute, amount)
        tried, best = [], None
        # the creator's own technique needs the samples' latents (GAN) or seed (diffusion)
        own = (samples.latents is not None or samples.seed is not None) and samples.source is None
        for m in candidates(ctx.gen.capabilities if own else frozenset(), attribute, method):
            images, latents, info = edit(
                ctx.gen.creator,
                samples.images,
                target,
                m,
                latents=samples.latents,
                labels=samples.labels,
                seed=samples.seed,
                options=samples.options,
                max_alpha=max_alpha,
            )
            result = measure_edit(samples.images, images, target, ctx.classify, samples.labels)
            tried.append(f"{m}: {'met' if result['met'] else 'missed'}")
            best = (m, images, latents, info)
            if result["met"]:
                break
        m, images, latents, info = best
        what = f"style({target.describe()}, {m}; tried {', '.join(tried)})"
        # the edited latents replay a latent edit; a pixel or guided edit's images are not G(z) any more
        return samples.derived(images, latents if m == "latent" else None, what)

    def tag(self, params: dict[str, Any]) -> str:
        return "styled"

    def check(
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
        from artdirector.editing.measure import measure_edit
        from artdirector.editing.targets import StyleTarget

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
