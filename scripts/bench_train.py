"""Training throughput of the seed DCGAN: GANModule under Lightning, a plain PyTorch loop, and the original.

Same networks, batch, optimisers, data and update rule, in one sitting. Prints a table of images/s with the
Lightning/plain ratio and, when TensorFlow is importable (``pip install -e ".[tf]"``, or ``--tf-python`` to a
venv that has it), the original TensorFlow tutorial code (``scripts/tf_dcgan_original.py``, in a subprocess)
and the Lightning/original ratio. ``--ablation`` adds one row per speed-up, applied one after another.

    python scripts/bench_train.py                       # CPU, fp32, the seed's simultaneous rule
    python scripts/bench_train.py --ablation --original  # each CPU speed-up, and the TensorFlow original
    python scripts/bench_train.py --device cuda --precision bf16-mixed --channels-last --compile
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import DataLoader, TensorDataset

from artdirector.models.nets.dcgan import SubPixelConvTranspose2d, UniformMaskDropout
from artdirector.runtime import CONFIG_DIR

# The CPU speed-ups, in the order they were taken; --ablation undoes them from the last to the first.
SPEEDUPS = ("channels-last D", "sub-pixel last layer", "uniform-mask dropout", "simultaneous rule")


def reference_layers(model, undo: set[str]) -> None:
    """Swap the faster layers back to the plain PyTorch ones they replace (same parameters)."""
    if "sub-pixel last layer" in undo:
        seq = model.generator.upsample
        for i, m in enumerate(seq):
            if isinstance(m, SubPixelConvTranspose2d):
                plain = torch.nn.ConvTranspose2d(
                    m.in_channels, m.out_channels, 5, 2, 2, 1, bias=m.bias is not None
                )
                plain.load_state_dict(m.state_dict())
                seq[i] = plain
    if "uniform-mask dropout" in undo:
        seq = model.discriminator.features
        for i, m in enumerate(seq):
            if isinstance(m, UniformMaskDropout):
                seq[i] = torch.nn.Dropout(m.p)
    if "channels-last D" in undo:
        d = model.discriminator
        d.features.to(memory_format=torch.contiguous_format)
        d.forward = lambda x: d.head(d.features(x)).squeeze(1)


def build(args, undo: set[str] = frozenset()):
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        rule = "alternating" if "simultaneous rule" in undo else args.update_rule
        cfg = compose("train", overrides=["model=dcgan", f"model.update_rule={rule}"])
    model = instantiate(cfg.model, _recursive_=False)
    reference_layers(model, set(undo))
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


def run_lightning(args, undo: set[str] = frozenset()) -> float:
    torch.manual_seed(0)
    model = build(args, undo)
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
            if args.update_rule == "simultaneous":
                d_real, d_fake = d(real), d(fake)
            else:
                d_real, d_fake = d(real), d(fake.detach())
            d_loss = F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        if args.update_rule == "simultaneous":  # the seed's train_step: two tapes, one forward pass
            g_loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            opt_g.zero_grad(set_to_none=True)
            opt_d.zero_grad(set_to_none=True)
            scaler.scale(g_loss).backward(inputs=list(g.parameters()), retain_graph=True)
            scaler.scale(d_loss).backward(inputs=list(d.parameters()))
            scaler.step(opt_g)
            scaler.step(opt_d)
            scaler.update()
        else:
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


def run_original(args) -> dict | None:
    """The TensorFlow original in a subprocess (its own thread pools), or None if TensorFlow is missing."""
    python = args.tf_python or sys.executable
    script = Path(__file__).with_name("tf_dcgan_original.py")
    cmd = [python, str(script), "--batch-size", str(args.batch_size), "--warmup", str(args.warmup)]
    cmd += ["--steps", str(args.steps), "--threads", str(torch.get_num_threads())]
    cmd += ["--precision", args.precision]  # the original in the same precision as the PyTorch rows
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        reason = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"
        print(f"(original TensorFlow row skipped: {reason})", file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def profile(args, undo: set[str], label: str, top: int = 8) -> None:
    """The top CPU ops (self time) of 3 Lightning steps, after 2 warm-up steps."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    class _Profile(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 2:
                self.prof = torch_profile(activities=[ProfilerActivity.CPU])
                self.prof.__enter__()

        def on_train_end(self, trainer, pl_module):
            self.prof.__exit__(None, None, None)

    torch.manual_seed(0)
    cb = _Profile()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2 * 5,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[cb],
    )
    trainer.fit(build(args, undo), loader(args))
    events = sorted(cb.prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"\nprofile, {label}: {total / 3e6:.2f} s per step")
    print("| op | self CPU % | ms per step | calls per step |\n|---|---:|---:|---:|")
    for e in events[:top]:
        pct, ms = 100 * e.self_cpu_time_total / total, e.self_cpu_time_total / 3e3
        print(f"| `{e.key}` | {pct:.1f} | {ms:.0f} | {e.count / 3:g} |")


def _row(name: str, runs: list[float]) -> str:
    return f"| {name} | {statistics.median(runs):,.0f} | {', '.join(f'{v:,.0f}' for v in runs)} |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed", "16-mixed"])
    p.add_argument("--update-rule", default="simultaneous", choices=["simultaneous", "alternating"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs of each; the median is reported")
    p.add_argument("--original", action="store_true", help="add the TensorFlow original's row")
    p.add_argument("--tf-python", default=None, help="a Python with TensorFlow (default: this one)")
    p.add_argument("--ablation", action="store_true", help="one Lightning row per CPU speed-up")
    p.add_argument("--profile", action="store_true", help="top ops before and after the speed-ups")
    args = p.parse_args()
    if args.profile:
        profile(args, set(SPEEDUPS), "before the speed-ups (alternating rule, plain layers)")
        profile(args, set(), "after")

    ablation = [set(SPEEDUPS[: len(SPEEDUPS) - i]) for i in range(len(SPEEDUPS))] if args.ablation else []
    plain, light, original = [], [], []
    steps: list[list[float]] = [[] for _ in ablation]
    versions = {}
    for _ in range(args.repeats):  # interleave so that drift in machine load hits every row alike
        plain.append(run_plain(args))
        light.append(run_lightning(args))
        for runs, undo in zip(steps, ablation, strict=True):
            runs.append(run_lightning(args, undo))
        if args.original and (res := run_original(args)) is not None:
            original.append(res["images_per_s"])
            versions = {k: v for k, v in res.items() if k != "images_per_s"}
    print(
        f"\ndevice={args.device} precision={args.precision} rule={args.update_rule} "
        f"channels_last={args.channels_last} compile={args.compile} batch={args.batch_size} "
        f"steps={args.steps} repeats={args.repeats} threads={torch.get_num_threads()} torch={torch.__version__}"
        + (f" tensorflow={versions.get('tensorflow')}" if versions else "")
    )
    print("| loop | images/s (median) | runs |\n|---|---:|---|")
    if ablation:
        print(_row("Lightning, before the speed-ups (alternating rule, plain layers)", steps[0]))
        for i, runs in enumerate(steps[1:], start=1):
            print(_row(f"... + {SPEEDUPS[len(SPEEDUPS) - i]}", runs))
    print(_row("plain PyTorch", plain))
    print(_row("Lightning GANModule", light))
    if original:
        print(_row("original TensorFlow tutorial code", original))
    mp, ml = statistics.median(plain), statistics.median(light)
    print(f"\nLightning / plain = {ml / mp:.3f}  (overhead {100 * (1 - ml / mp):+.1f}%)")
    if original:
        print(f"Lightning / original TensorFlow = {ml / statistics.median(original):.3f}")


if __name__ == "__main__":
    main()
