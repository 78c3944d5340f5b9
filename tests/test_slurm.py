"""Against a real SLURM (``scripts/slurm_local.sh`` brings one up on a Debian machine): the README's sweep, a
2-task DDP job, and a job that outlives its 1-minute limit and finishes through requeues with the weights
of an uninterrupted run. Marked ``slurm`` (run with ``pytest -m slurm``); skipped where no SLURM answers.

The request checks (a request that cannot run is refused before anything is submitted) need no SLURM: they
are among the bad inputs of ``test_edges.py``.
"""

from __future__ import annotations

import json
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
    "trainer.max_epochs=40",
    "seed=5",
]


@pytest.mark.slurm
@needs_slurm
def test_a_job_past_its_time_limit_finishes_through_requeues_bit_identical(tmp_path) -> None:
    """About 2 minutes of training under a 1-minute limit: SIGUSR2 20 s before the limit, submitit requeues,
    the next attempt resumes from last.ckpt; the final weights equal an uninterrupted run's, bit for bit."""
    ref = run_script("train.py", *REQUEUE, f"hydra.run.dir={tmp_path / 'ref'}", cwd=tmp_path, timeout=900)
    assert ref.returncode == 0, ref.stderr[-3000:]
    _sweep(
        tmp_path,
        *REQUEUE,
        "hydra/launcher=slurm_cpu",
        "hydra.launcher.partition=debug",
        "hydra.launcher.timeout_min=1",
        "hydra.launcher.signal_delay_s=20",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        timeout=1800,
    )
    run = json.loads((tmp_path / "sweep" / "0" / "run.json").read_text())
    assert run["slurm"]["restart_count"] >= 1 and run["resumed_from"].endswith("last.ckpt")
    a = torch.load(tmp_path / "ref" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "sweep" / "0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 40 * 16 * 2
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
