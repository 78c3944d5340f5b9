"""Test-only callbacks, importable by Hydra ``_target_`` (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import lightning as L
import torch

REPO = Path(__file__).resolve().parents[1]


class PoisonGeneratorAt(L.Callback):
    """Sets one generator weight to NaN at the start of ``epoch``: the next loss is NaN."""

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                next(pl_module.generator.parameters()).view(-1)[0] = float("nan")


# A tiny, fast CPU run of the seed model (any dataset) ...
TINY_MODEL = [
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.log_every_n_steps=1",
    "callbacks.fid.every_n_epochs=1",
    "callbacks.fid.n_samples=64",
    "evaluator.kid_subsets=10",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "model.generator.base_channels=32",
    "model.discriminator.base_channels=8",
]
# ... and on 128 fake images.
TINY = ["data=fake", "data.n_train=128", "data.n_report=64", "data.batch_size=32", *TINY_MODEL]

# The zoo's conditional GAN recipe (model=cgan), as tiny.
TINY_CGAN = [
    "model=cgan",
    "data=fake",
    "data.n_train=128",
    "data.n_report=64",
    "data.batch_size=32",
    *[o for o in TINY_MODEL if "base_channels" not in o],
    "model.generator.base_channels=8",
    "model.discriminator.base_channels=8",
]

# A tiny classifier run: a checkpoint of the wrong kind for the GAN-only entry points.
TINY_CLASSIFIER = [
    "model=classifier",
    "data=fake",
    "data.n_train=64",
    "data.n_report=32",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "callbacks=classifier",
    "+trainer.enable_progress_bar=false",
]


def run_script(
    script: str, *args: str, cwd: Path, timeout: int = 600, python_args: list[str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``scripts/<script>`` as a user would, with tests/ importable for test-only ``_target_``s
    (``python_args``: options of the interpreter itself, e.g. ``-X importtime``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *(python_args or []), str(REPO / "scripts" / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class RecordRankNoise(L.Callback):
    """Writes, per rank, a digest of the noise the first training batch will draw (the RNG state)."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0 and trainer.current_epoch == 0:
            import hashlib

            digest = hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest()
            self.dirpath.mkdir(parents=True, exist_ok=True)
            (self.dirpath / f"rank{trainer.global_rank}.txt").write_text(digest)


class HTMLPage(HTMLParser):
    """A report page read back: its text, images, tags, captions and SVGs, and whether every element closes
    where it opened (``errors`` empty and ``stack`` empty)."""

    VOID = frozenset({"meta", "img", "br", "hr", "input", "link"})

    def __init__(self, page: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[dict[str, str]] = []
        self.text: list[str] = []
        self.tags: list[str] = []
        self.captions = 0
        self.svgs = 0
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))
        self.svgs += tag == "svg"
        self.captions += tag == "figcaption"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def real_mnist5k():
    """A creator of real digits from the 5,000 bundled with the package (offline)."""
    from artdirector.data.datamodules import load_mnist5k
    from artdirector.scenes.real import RealCreator

    images, labels = load_mnist5k()
    return RealCreator(images, labels, "real_mnist5k", source="the bundled mnist5k digits")


# tiny diffusion backbones for tests: model=ddpm / model=dit at a size that trains in seconds
TINY_UNET = [
    "model=ddpm",
    "model.backbone.block_out_channels=[16,16,32]",
    "model.backbone.layers_per_block=1",
    "model.backbone.norm_num_groups=8",
    "model.backbone.attention_head_dim=8",
]
TINY_DIT = [
    "model=dit",
    "model.backbone.num_layers=1",
    "model.backbone.num_attention_heads=2",
    "model.backbone.attention_head_dim=16",
    "model.backbone.patch_size=4",
]


def build_model(make_cfg, overrides):
    """The model a train config with these overrides builds (``make_cfg``: the conftest fixture)."""
    from hydra.utils import instantiate

    cfg = make_cfg("train", overrides)
    return instantiate(cfg.model, _recursive_=False)


def save_checkpoint(model, path: Path) -> Path:
    """``model`` (untrained is fine) saved as a Lightning checkpoint at ``path``."""
    import lightning as L

    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, max_epochs=0)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


def straight_and_resumed(make_cfg, overrides: list[str], tmp_path: Path) -> tuple[Path, Path, Path]:
    """The exact-resume experiment: train 2 epochs straight, and 1 epoch then resumed to 2 from its
    ``last.ckpt``. Returns the ``last.ckpt`` of the straight, first and resumed runs."""
    from artdirector.train import train

    train(make_cfg("train", [*overrides, "trainer.max_epochs=2"], out=tmp_path / "straight"))
    train(make_cfg("train", [*overrides, "trainer.max_epochs=1"], out=tmp_path / "first"))
    first = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(
        make_cfg(
            "train", [*overrides, "trainer.max_epochs=2", f"ckpt_path={first}"], out=tmp_path / "resumed"
        )
    )
    return (
        tmp_path / "straight" / "checkpoints" / "last.ckpt",
        first,
        tmp_path / "resumed" / "checkpoints" / "last.ckpt",
    )


def fit_steps(model, datamodule, steps: int = 2, callbacks=()):
    """``steps`` optimiser steps of ``model`` on the CPU with ``callbacks`` and nothing else (no logger,
    checkpoints, validation or progress bar); the trainer, for its callback metrics. A GAN steps twice per
    batch."""
    import lightning as L

    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=list(callbacks),
    )
    trainer.fit(model, datamodule=datamodule)
    return trainer


def load_script(name: str, as_name: str | None = None):
    """``scripts/<name>.py`` imported as a module (under ``as_name``, default ``name``), for its functions."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(as_name or name, REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
