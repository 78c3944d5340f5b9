"""Around a job's launch: Hydra callbacks that check a run or sweep can start, and the SLURM job it runs in.

The callbacks run before any job does (``hydra.callbacks`` in ``configs/hydra/default.yaml``); what they find
wrong is one line on stderr and exit status 2, like every user error.
"""

from __future__ import annotations

import os
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from artdirector.errors import exit_user_error


def _refuse(message: str) -> None:
    exit_user_error(message, traceback_hint=False)  # a check, not an exception: no traceback to show


class OutputDirCheck(Callback):
    """A Hydra callback (``hydra.callbacks``): before a run or sweep starts, make sure its output directory
    can be created and written, else say which one and how to choose another (exit status 2)."""

    def _check(self, where: str, key: str) -> None:
        from pathlib import Path

        try:
            path = Path(where)
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".artdirector-write-check"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            _refuse(
                f"cannot write the output directory {where} ({err.strerror or err}); "
                f"set {key}=<a writable directory> or run from a directory you can write to"
            )

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        self._check(str(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        self._check(str(config.hydra.sweep.dir), "hydra.sweep.dir")


class SlurmRequestCheck(Callback):
    """Before a SLURM sweep submits anything: the request must be one Lightning can use. One task per trainer
    device (``--ntasks-per-node``, never a bare ``--ntasks``), no more GPUs than the trainer uses."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        launcher = config.hydra.get("launcher") or {}
        if "submitit" not in str(launcher.get("_target_", "")) or "Slurm" not in str(
            launcher.get("_target_")
        ):
            return
        trainer = config.get("trainer") or {}
        devices = trainer.get("devices")
        tasks, gpus = launcher.get("tasks_per_node"), launcher.get("gpus_per_node")
        extra = launcher.get("additional_parameters")
        extra = (
            OmegaConf.to_container(extra, resolve=True) if OmegaConf.is_config(extra) else dict(extra or {})
        )
        if "ntasks" in extra and "ntasks_per_node" not in extra:
            _refuse(
                f"hydra.launcher.additional_parameters.ntasks={extra['ntasks']}: Lightning needs tasks per node; "
                "remove it and set hydra.launcher.tasks_per_node (= trainer.devices)"
            )
        if isinstance(devices, int) and isinstance(tasks, int) and tasks not in (1, devices):
            _refuse(
                f"hydra.launcher.tasks_per_node={tasks} but trainer.devices={devices}: Lightning runs one task per "
                f"device; set hydra.launcher.tasks_per_node={devices} (or trainer.devices={tasks})"
            )
        if isinstance(devices, int) and isinstance(gpus, int) and gpus > devices:
            _refuse(
                f"hydra.launcher.gpus_per_node={gpus} but the trainer uses {devices} device(s): {gpus - devices} "
                f"GPU(s) would sit idle; set hydra.launcher.gpus_per_node={devices} or trainer.devices={gpus} "
                "(with trainer=ddp)"
            )


def slurm_job() -> dict[str, Any] | None:
    """This process's SLURM job (id, array task, restarts, node), or None outside SLURM."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    return {
        "job_id": os.environ["SLURM_JOB_ID"],
        "array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID"),
        "array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID"),
        "restart_count": int(os.environ.get("SLURM_RESTART_COUNT", 0)),
        "node": os.environ.get("SLURMD_NODENAME"),
    }


def check_slurm_tasks() -> None:
    """A job from a hand-written ``sbatch`` with ``--ntasks`` and no ``--ntasks-per-node``: say what to set."""
    from artdirector.errors import ConfigError

    ntasks = int(os.environ.get("SLURM_NTASKS", "1"))
    if "SLURM_JOB_ID" in os.environ and ntasks > 1 and "SLURM_NTASKS_PER_NODE" not in os.environ:
        raise ConfigError(
            f"this SLURM job was submitted with --ntasks={ntasks}; Lightning needs --ntasks-per-node "
            f"(one task per device on each node, e.g. --nodes=1 --ntasks-per-node={ntasks} with "
            f"trainer.devices={ntasks})"
        )
