"""experiment=quick runs; scripts/judge_run.py tells digits from what merely looks confident to the judge."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
from hydra.utils import instantiate

from artdirector.runtime import ZOO_DIR
from artdirector.train import train
from helpers import run_script


def _judge(path: Path, tmp_path: Path, *args: str) -> dict:
    r = run_script("judge_run.py", str(path), *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_quick_runs_debug_fdr(make_cfg, tmp_path) -> None:
    cfg = make_cfg("train", ["experiment=quick", "debug=fdr", "+trainer.enable_progress_bar=false"])
    train(cfg)
    assert (tmp_path / "run.json").is_file()


def test_judge_run_tells_digits_from_what_merely_looks_confident(make_cfg, tmp_path) -> None:
    """The judge is sure of noise too (uniform noise reads as 8 with probability ~1.0), so what separates
    digits from an untrained G's blobs is the share read as the asked class and the spread of classes read."""
    untrained = instantiate(make_cfg("train", ["model=cgan"], out=tmp_path / "cfg").model, _recursive_=False)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, max_epochs=0)
    trainer.strategy.connect(untrained)
    trainer.save_checkpoint(tmp_path / "untrained.ckpt")
    blobs = _judge(tmp_path / "untrained.ckpt", tmp_path, "--n", "200")
    digits = _judge(ZOO_DIR / "cgan.ckpt", tmp_path, "--n", "200")
    assert blobs["n"] == digits["n"] == 200 and len(digits["conformance_per_class"]) == 10
    assert blobs["conformance"] < 0.3 < 0.9 < digits["conformance"]
    assert blobs["read_as_entropy"] < 0.9 < digits["read_as_entropy"]
    assert digits["confidence"] > 0.9


def test_judge_run_wants_a_checkpoint(tmp_path) -> None:
    r = run_script("judge_run.py", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and "has no checkpoints/last.ckpt" in r.stderr
    assert "Traceback" not in r.stderr
