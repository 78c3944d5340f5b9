"""``python scripts/train.py``: compose the config, instantiate everything, fit, return the swept metric."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from artdirector.errors import ConfigError, report_user_errors
from artdirector.io import write_json
from artdirector.launch import check_slurm_tasks, slurm_job
from artdirector.models.checkpoint import read_checkpoint
from artdirector.runtime import CONFIG_DIR, versions

log = logging.getLogger(__name__)


def instantiate_list(group: DictConfig | None, **kwargs: Any) -> list[Any]:
    """Instantiate every entry with a ``_target_`` in a config group (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(c, **kwargs) for c in group.values() if isinstance(c, DictConfig) and "_target_" in c]


def _scalar(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def build_trainer(cfg: DictConfig, callbacks: list[Any], loggers: list[Logger]) -> L.Trainer:
    """The Trainer from ``cfg.trainer``; a setting Lightning rejects (precision, accelerator, devices...)
    becomes a :class:`ConfigError` naming the trainer keys."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    extra: dict[str, Any] = {}
    check_slurm_tasks()
    if slurm_job() and not cfg.trainer.get("plugins"):
        # Under SLURM, Lightning reads ranks and nodes from the SLURM environment; its own auto-requeue is
        # off because submitit's checkpoint/requeue (the launcher's) already requeues the job: never both.
        from lightning.pytorch.plugins.environments import SLURMEnvironment

        if SLURMEnvironment.detect():
            extra["plugins"] = [SLURMEnvironment(auto_requeue=False)]
    try:
        return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **extra)
    except Exception as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        if isinstance(cause, MisconfigurationException | ValueError):
            settings = ", ".join(
                f"trainer.{k}={cfg.trainer.get(k)}"
                for k in ("accelerator", "devices", "precision", "strategy")
            )
            raise ConfigError(f"the trainer settings cannot run ({settings}): {cause}") from err
        raise


def resume_path(cfg: DictConfig, output_dir: Path) -> str | None:
    """``ckpt_path`` as given; or, for a SLURM job that was requeued (preempted or timed out), the
    ``last.ckpt`` the previous attempt left in the same output directory."""
    if cfg.get("ckpt_path") is not None:
        return str(cfg.ckpt_path)
    job, last = slurm_job(), output_dir / "checkpoints" / "last.ckpt"
    if job and job["restart_count"] > 0 and last.is_file():
        log.info(
            "SLURM job %s was requeued (restart %d): resuming from %s",
            job["job_id"],
            job["restart_count"],
            last,
        )
        return str(last)
    return None


def train(cfg: DictConfig) -> float | None:
    """Fit ``cfg.model`` on ``cfg.data``; return ``cfg.optimized_metric`` (for sweepers), or None."""
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)

    datamodule: L.LightningDataModule = instantiate(cfg.data)
    # _recursive_=False: the module receives its networks and optimisers as configs and saves them,
    # so that a checkpoint alone rebuilds the model.
    model: L.LightningModule = instantiate(cfg.model, _recursive_=False)
    callbacks = instantiate_list(cfg.get("callbacks"))
    loggers: list[Logger] = instantiate_list(cfg.get("logger"))
    trainer = build_trainer(cfg, callbacks, loggers)
    ckpt_path = resume_path(cfg, output_dir)
    if ckpt_path is not None:
        read_checkpoint(
            ckpt_path
        )  # clear errors, weights_only, allow-listed targets, before Lightning reads it

    run_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])  # tests compose with hydra's node
    for logger in loggers:
        logger.log_hyperparams(
            {"seed": cfg.get("seed"), "config": OmegaConf.to_container(run_cfg, resolve=True)}
        )

    log.info("Output directory: %s", output_dir)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)

    metrics = {k: _scalar(v) for k, v in trainer.callback_metrics.items()}
    metric_name = cfg.get("optimized_metric")
    value = metrics.get(metric_name) if metric_name else None
    if metric_name and value is None and not trainer.fast_dev_run:
        log.warning("optimized_metric %r was not logged; logged metrics: %s", metric_name, sorted(metrics))
    if value is not None:
        for logger in loggers:
            logger.log_metrics({"hp_metric": value}, step=trainer.global_step)
    ckpt_cb = trainer.checkpoint_callback
    monitored = [cb for cb in trainer.checkpoint_callbacks if getattr(cb, "monitor", None)]
    best = monitored[0].best_model_path if monitored else getattr(ckpt_cb, "best_model_path", None)
    if trainer.is_global_zero:
        write_json(
            output_dir / "run.json",
            {
                "task": cfg.get("task_name", "train"),
                "data_used": getattr(datamodule, "hparams", {}).get("data_used"),
                "seed": cfg.get("seed"),
                "epochs_completed": trainer.current_epoch,
                "global_step": trainer.global_step,
                "metrics": metrics,
                "optimized_metric": {"name": metric_name, "value": value},
                "checkpoints": {
                    "last": str(last)
                    if (last := output_dir / "checkpoints" / "last.ckpt").is_file()
                    else None,
                    "best": best or None,
                    "best_monitor": monitored[0].monitor if monitored else None,
                },
                "resumed_from": ckpt_path,
                "slurm": slurm_job(),
                "versions": versions(),
            },
        )
    if value is not None and not math.isfinite(value):
        log.warning("optimized metric %s is %s", metric_name, value)
    return value


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@report_user_errors
def main(cfg: DictConfig) -> float | None:
    return train(cfg)
