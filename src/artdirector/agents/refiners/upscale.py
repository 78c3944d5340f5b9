"""Super-resolution as a finishing action: the shipped ESPCN x4 (x2 through it), checked for consistency."""

from __future__ import annotations

import math
from typing import Any

import torch

from artdirector.agents.refiners.base import Context, FinishingRefiner
from artdirector.agents.types import Samples


class Upscale(FinishingRefiner):
    """x2 or x4 super-resolution through the shipped ESPCN (``artdirector/weights/sr_x4.pt``; x2 is its x4
    output area-averaged 2x2: :func:`artdirector.models.superres.upscale`). Images stay in [-1, 1] and in
    order (paired with the input); latents, labels, seed and options are kept, so the replay can redo it.
    Images in, images out: any creator."""

    name = "upscale"
    # the consistency check: met when |FID difference| <= CONSISTENCY_Z x its paired bootstrap SE
    CONSISTENCY_Z = 2.0

    def refined(self, samples: Samples, ctx: Context, factor: int = 4) -> Samples:
        from artdirector.models.superres import check_factor, upscale

        factor = check_factor(factor)
        images = upscale(samples.images, factor)
        return samples.derived(images, samples.latents, f"upscale(x{factor}, ESPCN sr_x4)")

    def tag(self, params: dict[str, Any]) -> str:
        return f"x{params.get('factor', 4)}"

    def check(
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
