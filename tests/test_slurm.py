"""Against a real SLURM (``scripts/slurm_local.sh`` brings one up on a Debian machine): the README's sweep, a
2-task DDP job, and a job that outlives its 2-minute limit and finishes through requeues with the weights
of an uninterrupted run. Marked ``slurm`` (run with ``pytest -m slurm``); skipped where no SLURM answers.

The request checks (a request that cannot run is refused before anything is submitted) need no SLURM: they
are among the bad inputs of ``test_edges.py``.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from helpers import run_script

TINY = ["trainer=cpu", "data=fake", "model.generator.base_channels=16", "model.discriminator.base_channels=8"]


def _slurm_up() -> str | None:
    """None when a SLURM node is ready, else why not."""
    if not shutil.which("sbatch") or not shutil.which("sinfo"):
        return "no SLURM client (sbatch) on this machine: run scripts/slurm_local.sh as root"
    try:
        states = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"sinfo failed ({err})"
    if not any(s.startswith(("idle", "mixed", "allocated")) for s in states.split()):
        return f"no SLURM node is up (sinfo: {states.strip() or 'nothing'}): run scripts/slurm_local.sh"
    return None


needs_slurm = pytest.mark.skipif(bool(_slurm_up()), reason=_slurm_up() or "")


def _sweep(cwd: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    res = run_script("train.py", "-m", *args, cwd=cwd, timeout=timeout)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    return res


@pytest.mark.slurm
@needs_slurm
def test_the_readme_sweep_runs_as_written_from_any_directory(tmp_path) -> None:
    """`python scripts/train.py -m ... hydra/launcher=slurm_cpu`: no path overrides, two array jobs."""
    _sweep(tmp_path, "hydra/launcher=slurm_cpu", "seed=1,2", "debug=fdr", *TINY)
    runs = sorted(tmp_path.glob("outputs/multirun/*/*/*/run.json"))
    assert len(runs) == 2
    jobs = [json.loads(p.read_text())["slurm"] for p in runs]
    assert all(j and j["job_id"] and j["array_task_id"] in ("0", "1") for j in jobs)
    sweep = runs[0].parents[1]
    assert (runs[0].parent / ".hydra" / "config.yaml").is_file()
    assert list((sweep / ".submitit").glob("*/*_log.out"))  # submitit's logs beside the jobs


@pytest.mark.slurm
@needs_slurm
def test_a_two_task_ddp_job(tmp_path) -> None:
    """trainer=ddp with 2 devices: the preset asks for 2 tasks per node; Lightning reads the ranks from SLURM."""
    _sweep(
        tmp_path,
        "hydra/launcher=slurm_cpu",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "data.n_train=128",
        "data.batch_size=32",
        *TINY[1:],
        "callbacks.fid.n_samples=64",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    run = json.loads((tmp_path / "sweep" / "0" / "run.json").read_text())
    assert run["global_step"] == 4  # 128 images, 32 per rank and step, 2 ranks: 2 batches each, D+G steps
    assert run["slurm"]["job_id"]


REQUEUE = [
    *TINY,
    "data.n_train=1024",
    "data.batch_size=64",
    "model.generator.base_channels=32",
    "callbacks.fid.every_n_epochs=1000",
    "+trainer.enable_progress_bar=false",
    "seed=5",
]
STEPS_PER_EPOCH = 1024 // 64 * 2  # a D and a G step per batch
# SLURM checks time limits every 30 s, so --signal=USR2@20 reaches a job 20 to 50 s before its limit: a 2-minute
# limit signals it 70 to 100 s in, after its imports (a signal before submitit's handler is set would kill it).
# 150 s of training outlives that on any machine (the epochs are sized from a probe below).
LIMIT_MIN, SIGNAL_S, OUTLIVE_S = 2, 20, 150


def _epochs_to_outlive(tmp_path: Path, seconds: float) -> int:
    """Epochs of REQUEUE that take ``seconds`` of fit on this machine: a short run measures one epoch, so a fast
    machine trains longer instead of finishing inside the limit (it would then never be requeued)."""
    probe = run_script(
        "train.py", *REQUEUE, "trainer.max_epochs=4", f"hydra.run.dir={tmp_path / 'probe'}", cwd=tmp_path
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    fit_s = json.loads((tmp_path / "probe" / "run.json").read_text())["fit_seconds"]
    return max(8, math.ceil(seconds / (fit_s / 4)))


@pytest.mark.slurm
@needs_slurm
def test_a_job_past_its_time_limit_finishes_through_requeues_bit_identical(tmp_path) -> None:
    """Training sized to ~2.5 minutes on this machine, under a 2-minute limit: SIGUSR2 before the limit,
    submitit requeues, the next attempt resumes from last.ckpt; the final weights equal an uninterrupted
    run's, bit for bit."""
    epochs = _epochs_to_outlive(tmp_path, OUTLIVE_S)
    args = [*REQUEUE, f"trainer.max_epochs={epochs}"]
    ref = run_script("train.py", *args, f"hydra.run.dir={tmp_path / 'ref'}", cwd=tmp_path, timeout=900)
    assert ref.returncode == 0, ref.stderr[-3000:]
    _sweep(
        tmp_path,
        *args,
        "hydra/launcher=slurm_cpu",
        "hydra.launcher.partition=debug",
        f"hydra.launcher.timeout_min={LIMIT_MIN}",
        f"hydra.launcher.signal_delay_s={SIGNAL_S}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        timeout=1800,
    )
    run = json.loads((tmp_path / "sweep" / "0" / "run.json").read_text())
    assert run["slurm"]["restart_count"] >= 1 and run["resumed_from"].endswith("last.ckpt")
    a = torch.load(tmp_path / "ref" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "sweep" / "0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == epochs * STEPS_PER_EPOCH
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
