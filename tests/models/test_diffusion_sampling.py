"""Diffusion sampling precision and the zoo export's hyperparameter overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from artdirector.models.checkpoint import KIND_KEY, load_module
from helpers import TINY_UNET

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def model(make_cfg):
    torch.manual_seed(0)
    m = instantiate(make_cfg("train", TINY_UNET).model, _recursive_=False)
    with torch.no_grad():  # an untrained net predicts ~0 everywhere; make its output depend on the input
        for p in m.backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
    m.ema.module.load_state_dict(m.backbone.state_dict())
    return m.eval()


def test_bf16_sampling_runs_the_network_in_bf16_and_stays_close(model) -> None:
    dtypes = []
    hook = model.sampling_net().register_forward_hook(lambda mod, inp, out: dtypes.append(out.sample.dtype))
    labels = torch.arange(4)
    fp32 = model.sample(labels=labels, seed=0, steps=3, guidance=2.0)
    model.sampling_precision = "bf16"
    bf16 = model.sample(labels=labels, seed=0, steps=3, guidance=2.0)
    hook.remove()
    assert set(dtypes[:3]) == {torch.float32} and set(dtypes[3:]) == {torch.bfloat16}
    assert bf16.dtype == torch.float32 and not torch.equal(fp32, bf16)
    assert (fp32 - bf16).abs().mean() < 0.05  # the same images, up to bf16 rounding of the noise prediction


def _checkpoint(model, path: Path) -> Path:
    torch.save(
        {
            KIND_KEY: "diffusion",
            "hyper_parameters": OmegaConf.to_container(OmegaConf.create(dict(model.hparams)), resolve=True),
            "state_dict": model.state_dict(),
            "epoch": 0,
            "global_step": 0,
        },
        path,
    )
    return path


def test_export_sets_a_hyperparameter_and_refuses_an_unknown_one(model, tmp_path) -> None:
    src = _checkpoint(model, tmp_path / "last.ckpt")
    export = [sys.executable, str(REPO / "scripts" / "export_zoo.py"), str(src), "--name", "tiny"]
    ok = subprocess.run(
        [*export, "--out", str(tmp_path / "zoo"), "--hp", "sampling_precision=bf16", "steps=7"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    shipped = load_module(tmp_path / "zoo" / "tiny.ckpt")
    assert shipped.sampling_precision == "bf16" and shipped.defaults["steps"] == 7
    assert model.sampling_precision == "fp32"
    bad = subprocess.run(
        [*export, "--out", str(tmp_path / "zoo2"), "--hp", "sampling_precison=bf16"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "sampling_precison" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "zoo2" / "tiny.ckpt").exists()
