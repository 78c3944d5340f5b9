"""Super-resolution against bicubic upsampling on the report (test) split: PSNR and SSIM (torchmetrics).

    python scripts/bench_sr.py outputs/<run>/checkpoints/best.ckpt --data mnist fashion_mnist --data-root data
    python scripts/bench_sr.py --factor 2 4      # the shipped net (artdirector/weights/sr_x4.pt), x2 and x4

For each net (a ``model=sr`` checkpoint, an exported ``sr.pt``, or none given: the shipped x4 net), factor
and dataset: the report split's real 28 px images are degraded the way the net was trained
(``models.superres.degrade``: bicubic, antialiased, by the factor: 28 -> 7 at x4, 28 -> 14 at x2), then
upsampled back to 28 px by :func:`models.superres.upscale` (x4: the net; x2: the x4 net, 14 -> 56, then 2x2
area averaging, 56 -> 28, exactly what the ``upscale`` action does to 28 px images) and by bicubic
interpolation; PSNR is the mean of per-image PSNRs (images in [-1, 1], ``data_range=2``), SSIM the mean over
images, each with its bootstrap standard error (1,000 resamples of the images); the gain is paired (the same
images). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from artdirector.data import TorchvisionDataModule
from artdirector.models.checkpoint import load_module
from artdirector.models.superres import FACTORS, SHIPPED, bicubic, degrade, load_sr, upscale


def load_net(path: str):
    """The upsampling net of a ``model=sr`` checkpoint (.ckpt) or an exported ``sr.pt``."""
    if path.endswith(".ckpt"):
        return load_module(path, kinds=("sr",)).net.eval()
    return load_sr(path)


def per_image(out: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    psnr = peak_signal_noise_ratio(out, hr, data_range=2.0, dim=(1, 2, 3), reduction="none")
    ssim = structural_similarity_index_measure(out, hr, data_range=2.0, reduction="none")
    return psnr, ssim


def boot_se(x: torch.Tensor, n: int = 1000, seed: int = 0) -> float:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(x), (n, len(x)), generator=g)
    return float(x[idx].mean(1).std())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpts", nargs="*", help="model=sr checkpoints or sr.pt files (none: the shipped x4 net)")
    ap.add_argument("--factor", nargs="+", type=int, default=[4], choices=FACTORS)
    ap.add_argument("--data", nargs="+", default=["mnist", "fashion_mnist"])
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--n", type=int, default=10000, help="report images per dataset (all 10,000 by default)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    rows = []
    for name in args.data:
        dm = TorchvisionDataModule(
            dataset=name, root=args.data_root, download=False, fallback_to_bundled=False
        )
        hr = dm.real_images("report", args.n)
        for path in args.ckpts or [str(SHIPPED)]:
            net = load_net(path)
            for r in args.factor:
                lr = degrade(hr, r)
                sr = upscale(lr, r, net)
                how = (
                    "net" if r == net.scale else f"x{net.scale} net + {net.scale // r}x{net.scale // r} area"
                )
                p_sr, s_sr = per_image(sr, hr)
                p_bi, s_bi = per_image(bicubic(lr, r), hr)
                rows.append(
                    f"| {name} | x{r} ({how}) | {len(hr)} | {p_bi.mean():.2f} ± {boot_se(p_bi):.2f} | "
                    f"{p_sr.mean():.2f} ± {boot_se(p_sr):.2f} | **{(p_sr - p_bi).mean():+.2f} ± "
                    f"{boot_se(p_sr - p_bi):.2f}** | {s_bi.mean():.3f} | {s_sr.mean():.3f} | `{path}` |"
                )
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        "| data (report split) | scale | n | PSNR bicubic (dB) | PSNR SR (dB) | gain (dB, paired) | SSIM bicubic | SSIM SR | checkpoint |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
