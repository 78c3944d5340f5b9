"""``python scripts/train.py``: compose the config, instantiate everything, fit, return the swept metric.

Lightning is imported when a run starts, not with this module, so that ``--help`` and a mistyped command line
answer without waiting for it.
"""

from __future__ import annotations

import logging
import math
import shlex
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from artdirector.errors import ConfigError, report_user_errors
from artdirector.io import write_json
from artdirector.launch import check_slurm_tasks, slurm_job
from artdirector.runtime import CONFIG_DIR, versions

if TYPE_CHECKING:
    import lightning as L
    from lightning.pytorch.loggers import Logger

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


# ---- settings torch checks only when it builds the optimisers --------------------------------------------
# what torch.optim's own checks require of each argument, keyed by the words of its message
OPTIMIZER_RULES = {
    "learning rate": ("lr", "a number >= 0"),
    "epsilon": ("eps", "a number >= 0"),
    "beta": ("betas", "two numbers in [0, 1), e.g. [0.9,0.999]"),
    "weight_decay": ("weight_decay", "a number >= 0"),
    "momentum": ("momentum", "a number >= 0"),
}


def check_optimizers(node: Any, where: str = "model") -> None:
    """Build every ``torch.optim`` optimiser a model config names (schedulers aside) on one dummy parameter, so
    that a value torch refuses (a negative learning rate, a beta of 1) is a :class:`ConfigError` naming the key
    and what it must be, before anything loads or trains: torch's own checks, run early."""
    if not isinstance(node, DictConfig):
        return
    target = str(node.get("_target_", ""))
    if not target.startswith("torch.optim.") or target.startswith("torch.optim.lr_scheduler."):
        for key, child in node.items_ex(resolve=False):
            check_optimizers(child, f"{where}.{key}")
        return
    import torch

    try:
        instantiate(node, _partial_=True)([torch.zeros(1, requires_grad=True)])
    except (ValueError, TypeError) as err:
        said = " ".join(str(err).split())
        for words, (arg, need) in OPTIMIZER_RULES.items():
            if words in said.lower() and arg in node:
                value = OmegaConf.to_container(node, resolve=True)[arg]
                raise ConfigError(
                    f"{where}.{arg}={value} is not allowed ({target}: {said}): set {where}.{arg} to {need}"
                ) from err
        raise ConfigError(f"{where} cannot build {target}: {said}; fix the setting it names") from err


# ---- the evaluator that follows the data (evaluator=auto) -----------------------------------------------
LENET_DATA = {"mnist": ("MNIST", "digits"), "fashion_mnist": ("FashionMNIST", "garments")}  # shipped LeNets


def _data_kind(data: Mapping) -> str:
    return str(data.get("_target_", "")).rsplit(".", 1)[-1]


def choose_evaluator(data: Mapping) -> tuple[str | None, str]:
    """``evaluator=auto``'s choice for a data config: the shipped LeNet (its weights' name) for 28x28 grey MNIST
    digits or FashionMNIST garments, None for the FID Inception-v3 (anything else); and why."""
    kind = _data_kind(data)
    if kind == "TorchvisionDataModule":
        datasets = [data.get("dataset", "mnist")]
    elif kind == "Mnist5kDataModule":
        datasets = ["mnist"]
    elif kind == "ConcatDataModule":
        datasets = [
            p.get("dataset") if _data_kind(p) == "TorchvisionDataModule" else None for p in data.parts
        ]
    elif kind == "FakeDataModule" and data.get("channels", 1) == 1:
        return "mnist", "fake 28x28 grey images (a dry run standing in for MNIST): the MNIST LeNet"
    else:
        datasets = []
    if datasets and all(d in LENET_DATA for d in datasets):
        weights = datasets[0] if len(set(datasets)) == 1 else "mnist"  # no LeNet learnt both: fid_lenet's
        what = " and ".join(" ".join(LENET_DATA[d]) for d in dict.fromkeys(datasets))
        return weights, (
            f"{what}, 28x28 grey: the {LENET_DATA[weights][0]} LeNet (evaluator=fid_inception for FIDs "
            "comparable with published ones)"
        )
    if kind == "ImageFolderDataModule":
        size, channels = data.get("image_size", 28), data.get("channels", 1)
        what = f"an image folder ({size}x{size}x{channels}), whose content the LeNets never learnt"
    elif kind == "FakeDataModule":
        what = f"fake 28x28x{data.get('channels')} images"
    else:
        what = f"{kind or 'this data'}, not MNIST or FashionMNIST"
    return None, (
        f"{what}: the FID Inception-v3 (the LeNets of evaluator=fid_lenet read only 28x28 grey digits and "
        "garments)"
    )


def auto_evaluator(data: DictConfig, lenet: DictConfig, inception: DictConfig, **settings: Any) -> Any:
    """``evaluator=auto`` (configs/evaluator/auto.yaml): ``lenet`` (evaluator=fid_lenet) or ``inception``
    (evaluator=fid_inception) as :func:`choose_evaluator` decides for ``data``, with the ``settings`` that are
    not null put over the chosen one's. The Inception's per-sample confidence would come from a digit
    classifier, which means nothing for the data it is chosen for: it has none here."""
    weights, why = choose_evaluator(data)
    chosen = OmegaConf.merge(
        lenet if weights else inception, {k: v for k, v in settings.items() if v is not None}
    )
    if weights:
        chosen.feature_net.weights = weights
    else:
        chosen.classifier = None
    log.info("evaluator=auto: %s", why)
    return instantiate(chosen)


# ---- an interrupted run says where to resume from -------------------------------------------------------
def interrupting_signal(trainer: L.Trainer, err: BaseException) -> signal.Signals | None:
    """The signal that stopped ``trainer.fit`` (as Lightning handles them), or None for anything else. On
    SIGTERM Lightning finishes the batch and raises ``SIGTERMException``; on Ctrl-C (SIGINT) it shuts down
    gracefully and exits with status 1 from inside the ``KeyboardInterrupt``."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    if isinstance(err, SIGTERMException):
        return signal.SIGTERM
    if isinstance(err, KeyboardInterrupt) or (
        trainer.interrupted and isinstance(err, SystemExit) and isinstance(err.__context__, KeyboardInterrupt)
    ):
        return signal.SIGINT
    return None


def resume_command(checkpoint: str) -> str:
    """The command line of this run, resuming from ``checkpoint``."""
    from hydra.core.hydra_config import HydraConfig

    try:
        overrides = list(HydraConfig.get().overrides.task)
    except ValueError:  # no Hydra run (a config composed in a test)
        overrides = []
    argv0 = sys.argv[0]
    command = f"python {argv0}" if argv0.endswith(".py") else Path(argv0).name
    kept = [o for o in overrides if not o.lstrip("+~").startswith("ckpt_path=")]
    return " ".join([command, *map(shlex.quote, [*kept, f"ckpt_path={checkpoint}"])])


def train(cfg: DictConfig) -> float | None:
    """Fit ``cfg.model`` on ``cfg.data``; return ``cfg.optimized_metric`` (for sweepers), or None."""
    import lightning as L

    from artdirector.data.agent import card_summary, check_conditional, decide_diffaugment, run_data_agent
    from artdirector.models.checkpoint import read_checkpoint

    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    check_optimizers(cfg.model)

    datamodule: L.LightningDataModule = instantiate(cfg.data)
    # the Data Agent first: the data card (cached by content), which the decisions below read
    card = run_data_agent(cfg, datamodule)
    if card is not None:
        write_json(output_dir / "data_card.json", {k: v for k, v in card.items() if k != "from_cache"})
    augment = decide_diffaugment(cfg, card)
    decided: dict[str, Any] = {}
    if augment is not None:
        log.info("DiffAugment: %s", augment["reason"])
        decided["diffaugment"] = augment["policy"]  # the decided policy is what the checkpoint saves
    # _recursive_=False: the module receives its networks and optimisers as configs and saves them,
    # so that a checkpoint alone rebuilds the model.
    model: L.LightningModule = instantiate(cfg.model, _recursive_=False, **decided)
    check_conditional(int(getattr(model, "num_classes", 0) or 0), card, f"model ({cfg.model._target_})")
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

    def record(**extra: Any) -> dict[str, Any]:
        """What run.json says of this run, as far as it got."""
        monitored = [cb for cb in trainer.checkpoint_callbacks if getattr(cb, "monitor", None)]
        ckpt_cb = trainer.checkpoint_callback
        best = monitored[0].best_model_path if monitored else getattr(ckpt_cb, "best_model_path", None)
        last = output_dir / "checkpoints" / "last.ckpt"
        return {
            "task": cfg.get("task_name", "train"),
            **extra,
            "data_used": getattr(datamodule, "hparams", {}).get("data_used"),
            "seed": cfg.get("seed"),
            "epochs_completed": trainer.current_epoch,
            "global_step": trainer.global_step,
            "fit_seconds": round(
                time.perf_counter() - fit_start, 2
            ),  # this attempt's trainer.fit, wall clock
            "metrics": {k: _scalar(v) for k, v in trainer.callback_metrics.items()},
            "checkpoints": {
                "last": str(last) if last.is_file() else None,
                "best": best or None,
                "best_monitor": monitored[0].monitor if monitored else None,
            },
            "resumed_from": ckpt_path,
            "data_card": card_summary(card),
            "diffaugment": augment,
            "slurm": slurm_job(),
            "versions": versions(),
        }

    log.info("Output directory: %s", output_dir)
    fit_start = time.perf_counter()
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except BaseException as err:
        stopped_by = interrupting_signal(trainer, err)
        if stopped_by is None:
            raise
        if trainer.is_global_zero:
            run = record(interrupted=True, signal=stopped_by.name)
            last = run["checkpoints"]["last"]
            run["resume"] = {
                "checkpoint": last,
                "override": f"ckpt_path={last}" if last else None,
                "command": resume_command(last) if last else None,
            }
            write_json(output_dir / "run.json", run)
            log.warning(
                "interrupted by %s in epoch %d (step %d): %s; run.json records it",
                stopped_by.name,
                trainer.current_epoch + 1,
                trainer.global_step,
                f"to resume from its last checkpoint: {run['resume']['command']}"
                if last
                else "no epoch had finished, so there is no checkpoint to resume from: start it again",
            )
        # as a shell reports a process its signal ended (Lightning's own exits are 1 and 0)
        raise SystemExit(128 + stopped_by) from None

    run = record()
    metric_name = cfg.get("optimized_metric")
    value = run["metrics"].get(metric_name) if metric_name else None
    if metric_name and value is None and not trainer.fast_dev_run:
        log.warning(
            "optimized_metric %r was not logged; logged metrics: %s", metric_name, sorted(run["metrics"])
        )
    if value is not None:
        for logger in loggers:
            logger.log_metrics({"hp_metric": value}, step=trainer.global_step)
    if trainer.is_global_zero:
        run["optimized_metric"] = {"name": metric_name, "value": value}
        write_json(output_dir / "run.json", run)
    if value is not None and not math.isfinite(value):
        log.warning("optimized metric %s is %s", metric_name, value)
    return value


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@report_user_errors
def main(cfg: DictConfig) -> float | None:
    return train(cfg)
