"""Training throughput of GANModule under a Lightning Trainer vs a plain PyTorch loop.

Same networks, batch, optimisers, data and step order (D on detached fakes, then G with D frozen),
in one process. Prints a table of images/s and the Lightning/plain ratio.

    python scripts/bench_train.py                       # CPU, fp32
    python scripts/bench_train.py --device cuda --precision bf16-mixed --channels-last --compile
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import DataLoader, TensorDataset

from artdirector.runtime import CONFIG_DIR


def build(args):
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["model=dcgan"])
    model = instantiate(cfg.model, _recursive_=False)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.compile:
        model.generator = torch.compile(model.generator)
        model.discriminator = torch.compile(model.discriminator)
    return model


def loader(args) -> DataLoader:
    n = args.batch_size * (args.warmup + args.steps)
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return DataLoader(
        TensorDataset(x, torch.zeros(n)), batch_size=args.batch_size, shuffle=True, drop_last=True
    )


class _Timer(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.start = warmup, None

    def _sync(self, pl_module):
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step // 2 == self.warmup and self.start is None:  # 2 optimiser steps per batch
            self._sync(pl_module)
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self._sync(pl_module)
        self.elapsed = time.perf_counter() - self.start


def run_lightning(args) -> float:
    torch.manual_seed(0)
    model = build(args)
    timer = _Timer(args.warmup)
    trainer = L.Trainer(
        accelerator=args.device,
        devices=1,
        precision=args.precision,
        max_steps=2 * (args.warmup + args.steps),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, loader(args))
    return args.steps * args.batch_size / timer.elapsed


def run_plain(args) -> float:
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build(args).to(device)
    g, d = model.generator.train(), model.discriminator.train()
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-7)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-7)
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(args.precision)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "16-mixed")
    start = None
    for i, (real, _) in enumerate(loader(args)):
        if i == args.warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        real = real.to(device, non_blocking=True)
        if args.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        with autocast if dtype else contextlib.nullcontext():
            fake = g(torch.randn(real.shape[0], 100, device=device))
            d_real, d_fake = d(real), d(fake.detach())
            d_loss = F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        opt_d.zero_grad(set_to_none=True)
        scaler.scale(d_loss).backward()
        scaler.step(opt_d)
        d.requires_grad_(False)  # as Lightning's toggled_optimizer: no D weight grads in the G step
        with autocast if dtype else contextlib.nullcontext():
            g_logits = d(fake)
            g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
        opt_g.zero_grad(set_to_none=True)
        scaler.scale(g_loss).backward()
        scaler.step(opt_g)
        scaler.update()
        d.requires_grad_(True)
        # the Lightning module checks both losses are finite every step (a host sync): do the same
        torch.isfinite(d_loss).item(), torch.isfinite(g_loss).item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.steps * args.batch_size / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed", "16-mixed"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3, help="alternating runs of each; the median is reported")
    args = p.parse_args()

    plain, light = [], []
    for _ in range(args.repeats):  # alternate so that drift in machine load hits both equally
        plain.append(run_plain(args))
        light.append(run_lightning(args))
    mp, ml = statistics.median(plain), statistics.median(light)
    print(
        f"\ndevice={args.device} precision={args.precision} channels_last={args.channels_last} "
        f"compile={args.compile} batch={args.batch_size} steps={args.steps} repeats={args.repeats} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print("| loop | images/s (median) | runs |\n|---|---:|---|")
    print(f"| plain PyTorch | {mp:,.0f} | {', '.join(f'{v:,.0f}' for v in plain)} |")
    print(f"| Lightning GANModule | {ml:,.0f} | {', '.join(f'{v:,.0f}' for v in light)} |")
    print(f"\nLightning / plain = {ml / mp:.3f}  (overhead {100 * (1 - ml / mp):+.1f}%)")


if __name__ == "__main__":
    main()
