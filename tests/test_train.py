"""train(cfg) end to end on CPU: fast runs, determinism, exact resume, sweeps, DDP, and bad inputs."""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from artdirector.data import DatasetUnavailableError
from artdirector.models.gan import NonFiniteLossError
from artdirector.train import train
from helpers import TINY, TINY_MODEL, run_script, straight_and_resumed

REPO = Path(__file__).resolve().parents[1]


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.parametrize("data", ["fake", "mnist5k"])
def test_fast_dev_run(make_cfg, tmp_path, data) -> None:
    cfg = make_cfg("train", [*TINY_MODEL, f"data={data}", "data.batch_size=32", "debug=fdr"])
    train(cfg)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["data_used"] == data and run["global_step"] == 2  # one batch: a D and a G step


def test_full_epoch_writes_checkpoints_grids_and_tensorboard(make_cfg, tmp_path) -> None:
    cfg = make_cfg("train", [*TINY, "trainer.max_epochs=2", "callbacks.model_checkpoint.every_n_epochs=1"])
    value = train(cfg)
    assert value is not None and value == pytest.approx(
        json.loads((tmp_path / "run.json").read_text())["optimized_metric"]["value"]
    )
    assert {p.name for p in (tmp_path / "checkpoints").iterdir()} == {
        "epoch_000.ckpt",
        "epoch_001.ckpt",
        "last.ckpt",
        "best.ckpt",
    }
    assert (tmp_path / "grids" / "epoch_002.png").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    ea.Reload()
    assert {
        "train/d_loss_step",
        "train/g_loss_epoch",
        "train/d_real_epoch",
        "train/d_fake_epoch",
        "val/fid",
        "val/kid",
        "val/precision",
        "val/recall",
        "hp_metric",
    } <= set(ea.Tags()["scalars"])
    assert len(ea.Images("samples/fixed_noise")) == 2
    fids = [e.value for e in ea.Scalars("val/fid")]
    assert len(fids) == 2 and value == pytest.approx(fids[-1])  # train() returns the last FID
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert best["epoch"] == fids.index(min(fids))  # best.ckpt is the epoch with the lowest FID


def test_same_seed_same_weights(make_cfg, tmp_path) -> None:
    runs = []
    for name in ("a", "b", "c"):
        seed = 7 if name != "c" else 8
        cfg = make_cfg("train", [*TINY, f"seed={seed}"], out=tmp_path / name)
        train(cfg)
        runs.append(_weights(tmp_path / name / "checkpoints" / "last.ckpt"))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_resume_is_exact(make_cfg, tmp_path) -> None:
    base = [*TINY_MODEL, "data=mnist5k", "data.limit_train=128", "data.batch_size=32", "seed=3"]
    straight_ckpt, first, resumed_ckpt = straight_and_resumed(make_cfg, base, tmp_path)
    straight, resumed = _weights(straight_ckpt), _weights(resumed_ckpt)
    once = _weights(first)
    assert not all(torch.equal(once[k], straight[k]) for k in straight)  # the second epoch did something
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


def test_nan_loss_stops_and_names_the_last_good_checkpoint(make_cfg, tmp_path) -> None:
    cfg = make_cfg("train", [*TINY, "trainer.max_epochs=3", "callbacks.model_checkpoint.every_n_epochs=1"])
    with open_dict(cfg):
        cfg.callbacks.poison = {"_target_": "helpers.PoisonGeneratorAt", "epoch": 1}
    with pytest.raises(NonFiniteLossError) as err:
        train(cfg)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert "train/d_loss became nan" in str(err.value) and str(last) in str(err.value)
    assert all(torch.isfinite(v).all() for v in _weights(last).values() if v.is_floating_point())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_records_it_and_where_to_resume(make_cfg, tmp_path, sig) -> None:
    """Ctrl-C (SIGINT) or a scheduler's SIGTERM during fit: run.json says interrupted, by which signal, and the
    checkpoint and override to resume from; train.log says so too; and that checkpoint resumes."""
    run = tmp_path / "run"
    tiny = [*TINY, "callbacks.fid=null", "callbacks.best_checkpoint=null"]
    args = [*tiny, "trainer.max_epochs=1000"]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "train.py"), *args, f"hydra.run.dir={run}"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO / "tests"), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C raises KeyboardInterrupt even when this test runs where SIGINT is ignored (a background job)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    last = run / "checkpoints" / "last.ckpt"
    try:
        deadline = time.monotonic() + 300
        while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert last.is_file(), "no epoch finished"
        time.sleep(0.5)  # into the next epoch
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    record = json.loads((run / "run.json").read_text())
    assert record["interrupted"] is True and record["signal"] == sig.name and record["epochs_completed"] >= 1
    resume = record["resume"]
    assert resume["checkpoint"] == str(last) == record["checkpoints"]["last"]
    assert resume["override"] == f"ckpt_path={last}"
    command = shlex.split(resume["command"])
    assert command[:2] == ["python", str(REPO / "scripts" / "train.py")] and command[-1] == resume["override"]
    assert set(args) <= set(command)
    log = (run / "train.log").read_text()
    assert f"interrupted by {sig.name}" in log and resume["override"] in log
    if sig == signal.SIGTERM:  # the checkpoint it names resumes (one more epoch; the same for SIGINT's)
        step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
        more = make_cfg(
            "train", [*tiny, f"trainer.max_epochs={record['epochs_completed'] + 1}"], tmp_path / "b"
        )
        with open_dict(more):
            more.ckpt_path = resume["checkpoint"]
        train(more)
        again = json.loads((tmp_path / "b" / "run.json").read_text())
        assert (
            again["resumed_from"] == str(last) and again["global_step"] > step and "interrupted" not in again
        )


def test_missing_dataset_with_fallback_off_is_an_error(make_cfg, tmp_path) -> None:
    cfg = make_cfg(
        "train",
        [
            *TINY_MODEL,
            "data=mnist",
            "data.batch_size=32",
            f"data.root={tmp_path / 'empty'}",
            "data.download=false",
            "data.fallback_to_bundled=false",
        ],
    )
    with pytest.raises(DatasetUnavailableError, match="fallback_to_bundled=true"):
        train(cfg)


def test_missing_dataset_uses_the_repository_copy(make_cfg, tmp_path, caplog) -> None:
    """A data root without the files reads the idx files shipped in the repository's data/ (full MNIST)."""
    cfg = make_cfg(
        "train",
        [
            *TINY_MODEL,
            "data=mnist",
            "data.batch_size=32",
            f"data.root={tmp_path / 'empty'}",
            "data.download=false",
            "debug=fdr",
        ],
    )
    with caplog.at_level(logging.INFO):
        train(cfg)
    assert "using the copy shipped in the repository" in caplog.text
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["data_used"] == "mnist"


def test_missing_dataset_falls_back_loudly_and_records_it(make_cfg, tmp_path, caplog, monkeypatch) -> None:
    import artdirector.data.datamodules as dms

    monkeypatch.setattr(dms, "SHIPPED_DATA", tmp_path / "no_shipped_copy")  # a wheel install: no data/
    cfg = make_cfg(
        "train",
        [
            *TINY_MODEL,
            "data=mnist",
            "data.batch_size=32",
            f"data.root={tmp_path / 'empty'}",
            "data.download=false",
            "debug=fdr",
        ],
    )
    train(cfg)
    assert "FALLING BACK" in caplog.text
    assert json.loads((tmp_path / "run.json").read_text())["data_used"].startswith("mnist5k (fallback")


def test_multirun_sweep_of_two_jobs(tmp_path) -> None:
    res = run_script(
        "train.py", "-m", *TINY, "debug=fdr", "seed=1,2", f"hydra.sweep.dir={tmp_path}", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr[-3000:]
    runs = sorted(tmp_path.glob("*/run.json"))
    assert len(runs) == 2
    assert sorted(json.loads(p.read_text())["seed"] for p in runs) == [1, 2]


def test_main_job_writes_under_outputs(tmp_path) -> None:
    res = run_script("train.py", *TINY, "debug=fdr", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = tmp_path.glob("outputs/*/*/run.json")
    assert (run.parent / ".hydra" / "config.yaml").is_file()
    assert {p.name for p in tmp_path.iterdir()} == {"outputs"}  # nothing written elsewhere


def test_ddp_two_processes_on_cpu(tmp_path) -> None:
    res = run_script(
        "train.py",
        *TINY,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        f"hydra.run.dir={tmp_path}",
        "+callbacks.rank_noise._target_=helpers.RecordRankNoise",
        f"+callbacks.rank_noise.dirpath={tmp_path / 'ranks'}",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    run = json.loads((tmp_path / "run.json").read_text())
    # 128 images, 32 per process and step, 2 processes: 2 batches per process, 2 optimiser steps each
    assert run["global_step"] == 4
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    # every rank draws its own noise and dropout: the ranks' fake batches are not copies
    digests = [(tmp_path / "ranks" / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert digests[0] != digests[1]
    # each rank's RNG state is in the checkpoint (exact resume on every rank), and FID named best.ckpt
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert len(ckpt["rng_states_per_rank"]) == 2
    assert not torch.equal(ckpt["rng_states_per_rank"][0]["torch"], ckpt["rng_states_per_rank"][1]["torch"])
    assert (
        run["checkpoints"]["best"].endswith("best.ckpt") and run["checkpoints"]["best_monitor"] == "val/fid"
    )


def test_optuna_hparams_search_runs_trials_into_persistent_storage(tmp_path) -> None:
    """The search the config suggests, with an SQLite study (Optuna 2.x on SQLAlchemy < 2)."""
    db = tmp_path / "optuna.db"
    res = run_script(
        "train.py",
        *TINY,
        "debug=fdr",
        "hparams_search=dcgan_optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=1",
        f"hydra.sweeper.storage=sqlite:///{db}",
        f"hydra.sweep.dir={tmp_path}",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    import optuna

    study = optuna.load_study(study_name="dcgan_lr", storage=f"sqlite:///{db}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert all("model.optimizer_g.lr" in t.params for t in study.trials)

    # a driver killed mid-sweep left a trial running; the same command with n_trials=3 resumes the study:
    # the interrupted trial is marked failed, the two finished ones are not rerun, one new trial runs
    study.ask()
    again = run_script(
        "train.py",
        *TINY,
        "debug=fdr",
        "hparams_search=dcgan_optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.n_startup_trials=1",
        f"hydra.sweeper.storage=sqlite:///{db}",
        f"hydra.sweep.dir={tmp_path / 'resumed'}",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    states = [
        t.state.name for t in optuna.load_study(study_name="dcgan_lr", storage=f"sqlite:///{db}").trials
    ]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert len(list((tmp_path / "resumed").glob("*/run.json"))) == 1
    runs = sorted(tmp_path.glob("*/run.json"))
    assert len(runs) == 2
    metric_names = {json.loads(p.read_text())["optimized_metric"]["name"] for p in runs}
    assert metric_names == {"val/fid"}
    best = (tmp_path / "optimization_results.yaml").read_text()
    assert "best_params" in best and "model.optimizer_g.lr" in best and "best_value" in best
