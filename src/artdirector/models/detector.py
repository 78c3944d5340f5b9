"""The scene verifier's detector: a small CenterNet ("Objects as Points", Zhou, Wang and Krähenbühl 2019).

:class:`CenterNet` (``models/nets/detector.py``) is fully convolutional with output stride 4: a per-class centre
heatmap (the 20 global classes of ``artdirector.prompts.words.CLASS_NAMES``: digits 0-9, FashionMNIST items
10-19), each centre's box size (w, h) and its sub-pixel offset. :class:`DetectorModule` (here) trains it on
composed scenes (``artdirector.data.scenes``, ``model=detector data=scenes``; the shipped recipe is
``python scripts/train.py experiment=detector``) and exports the weights at fit end; :func:`load_detector`
reads the exported file (by default the shipped ``weights/detector_scenes.pt``) into a
:class:`SceneDetector`, whose ``detect`` returns :class:`Detection` lists.

The parts around the net live in :mod:`artdirector.models.detection`: training targets and loss
(``targets``), decoding and NMS (``decode``), the trained detector and its weights file (``inference``), and
the metrics with their definitions (``metrics``). The detector's public names are importable from here too:
configs and weights files name the net ``artdirector.models.detector.CenterNet``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from artdirector.io import atomic_write
from artdirector.models.base import plain
from artdirector.models.checkpoint import KIND_KEY, CheckpointError, checkpoint_kind
from artdirector.models.detection.decode import decode, relabel
from artdirector.models.detection.inference import (
    NET_TARGET,
    RECIPE,
    SHIPPED,
    Detection,
    DetectorWeightsError,
    SceneDetector,
    build_net,
    load_detector,
)
from artdirector.models.detection.metrics import SceneMetrics, evaluate, match, scene_result
from artdirector.models.detection.targets import at_centres, focal_loss, render_targets
from artdirector.models.nets.detector import CenterNet
from artdirector.prompts.words import CLASS_NAMES

FORMAT_VERSION = 1


class DetectorModule(L.LightningModule):
    """CenterNet training: focal loss on the heatmaps, L1 on size (weight ``size_weight``, 0.1 as the
    paper) and offset (``offset_weight``) at the object centres; AdamW with a linear warm-up and a cosine
    decay to ``min_lr_ratio`` over the run's steps (with ``anneal_by_time``, over ``trainer.max_time`` when
    that runs out first: a busier CPU still ends annealed, at the cost of bit-exact repeatability). Validation logs ``val/map50``, ``val/count_acc``,
    ``val/class_acc``, ``val/exact`` (and ``test/...`` in ``trainer.test``). At the end of fitting, the
    net's weights (fp16), its config, the test-scene metrics and the canvas size go to ``export_path``:
    the file :func:`load_detector` reads."""

    def __init__(
        self,
        net: Any,
        optimizer: Any,
        warmup_steps: int = 200,
        min_lr_ratio: float = 0.02,
        size_weight: float = 0.1,
        offset_weight: float = 1.0,
        crop_weight: float = 1.0,
        crop_jitter: float = 0.1,
        threshold: float = 0.3,
        map_threshold: float = 0.01,
        top_k: int = 50,
        export_path: str | None = None,
        export_fp16: bool = True,
        anneal_by_time: bool = False,
    ) -> None:
        super().__init__()
        net, optimizer = plain(net), plain(optimizer)
        if not isinstance(net, Mapping):
            raise TypeError("DetectorModule's net is a config of artdirector.models.detector.CenterNet")
        self.save_hyperparameters()
        self.net = build_net(net).to(memory_format=torch.channels_last)
        self._metrics: SceneMetrics | None = None
        self._timer: Any = None

    def on_train_start(self) -> None:
        from lightning.pytorch.callbacks import Timer

        timer = next((cb for cb in self.trainer.callbacks if isinstance(cb, Timer)), None)
        budget = getattr(timer, "_duration", None)
        self._timer = timer if self.hparams.anneal_by_time and budget else None

    def _progress(self, step: int, total: float) -> float:
        """The fraction of the run done: by steps, or (``anneal_by_time`` with ``trainer.max_time``) by the
        time budget when that runs out first, so a slower or busier CPU still anneals before the stop."""
        done = (step / total) if math.isfinite(total) and total > 0 else 0.0
        if self._timer is not None:
            done = max(done, self._timer.time_elapsed("train") / self._timer._duration)
        return min(1.0, done)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(x.contiguous(memory_format=torch.channels_last))

    def _jittered(self, targets) -> list[torch.Tensor]:
        """Ground-truth boxes moved and scaled a little, as the heatmap's boxes will be: what the crop
        classifier learns from (``crop_jitter``: the largest shift, as a fraction of the side, and scale)."""
        j = float(self.hparams.crop_jitter)
        boxes = []
        for t in targets:
            b = t["boxes"].float().reshape(-1, 4)
            wh = (b[:, 2:] - b[:, :2]).clamp(min=1)
            centre = (b[:, :2] + b[:, 2:]) / 2 + (torch.rand_like(wh) * 2 - 1) * j * wh
            half = wh / 2 * (1 + (torch.rand_like(wh) * 2 - 1) * j)
            boxes.append(torch.cat([centre - half, centre + half], 1))
        return boxes

    def _loss(
        self, out: Mapping[str, torch.Tensor], targets, x: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        h, w = out["heatmap"].shape[-2:]
        gt = render_targets(targets, self.net.num_classes, h, w, self.net.stride)
        dev = out["heatmap"].device
        heat = focal_loss(out["heatmap"].float(), gt["heatmap"].to(dev))
        if "objectness" in out:
            heat = heat + focal_loss(out["objectness"].float(), gt["heatmap"].to(dev).amax(1, keepdim=True))
        n = max(len(gt["batch"]), 1)
        b, i = gt["batch"].to(dev), gt["index"].to(dev)
        size = F.l1_loss(at_centres(out["size"].float(), b, i), gt["size"].to(dev), reduction="sum") / n
        offset = F.l1_loss(at_centres(out["offset"].float(), b, i), gt["offset"].to(dev), reduction="sum") / n
        hp = self.hparams
        losses = {
            "loss": heat + hp.size_weight * size + hp.offset_weight * offset,
            "heatmap": heat,
            "size": size,
            "offset": offset,
        }
        if self.net.classifier is not None and x is not None and len(gt["batch"]):
            labels = torch.cat([t["labels"].reshape(-1) for t in targets]).to(dev)
            crop = F.cross_entropy(self.net.classify(x, self._jittered(targets)), labels)
            losses["crop"] = crop
            losses["loss"] = losses["loss"] + hp.crop_weight * crop
        return losses

    def training_step(self, batch, batch_idx):
        x, targets = batch
        losses = self._loss(self(x), targets, x)
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=len(x))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=len(x))
        for k in ("heatmap", "size", "offset", "crop"):
            if k in losses:
                self.log(f"train/{k}_loss", losses[k], batch_size=len(x))
        return losses["loss"]

    # -- evaluation: the same on val (selection scenes) and test (report scenes)
    def _eval_start(self) -> None:
        self._metrics = SceneMetrics(self.hparams.threshold, self.hparams.map_threshold)

    def _eval_step(self, batch, prefix: str) -> None:
        x, targets = batch
        out = self(x)
        self.log(f"{prefix}/loss", self._loss(out, targets, x)["loss"], batch_size=len(x))
        dets = decode(
            out, self.hparams.map_threshold, self.hparams.top_k, 0.5, self.net.stride, tuple(x.shape[-2:])
        )
        dets = relabel(self.net, x, dets)
        assert self._metrics is not None
        self._metrics.update(dets, targets)

    def _eval_end(self, prefix: str) -> None:
        assert self._metrics is not None
        result = self._metrics.compute()
        for k in ("map50", "count_acc", "class_acc", "exact"):
            self.log(f"{prefix}/{k}", result[k], prog_bar=k in ("map50", "exact"))
        self._metrics = None

    def on_validation_epoch_start(self) -> None:
        self._eval_start()

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def on_test_epoch_start(self) -> None:
        self._eval_start()

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")

    def configure_optimizers(self):
        from hydra.utils import instantiate

        spec = self.hparams.optimizer
        opt = instantiate(spec)(self.parameters()) if isinstance(spec, Mapping) else spec(self.parameters())
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else math.inf
        warmup, floor = max(1, int(self.hparams.warmup_steps)), float(self.hparams.min_lr_ratio)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            t = self._progress(step - warmup, total - warmup)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KIND_KEY] = "detector"

    @classmethod
    def from_loaded(
        cls, ckpt: dict[str, Any], path: str | Path = "<checkpoint>", map_location: str | torch.device = "cpu"
    ) -> DetectorModule:
        """Rebuild from a checkpoint read with ``read_checkpoint`` (see ``models.checkpoint.load_module``)."""
        if checkpoint_kind(ckpt) != "detector":
            raise CheckpointError(f"{path} holds a '{checkpoint_kind(ckpt)}' model, not a detector")
        model = cls(**ckpt["hyper_parameters"])
        model.load_state_dict(ckpt["state_dict"])
        return model.to(map_location).eval()

    def detector(self) -> SceneDetector:
        """This module's net as a :class:`SceneDetector` (shares the weights)."""
        return SceneDetector(self.net, top_k=self.hparams.top_k)

    def export_payload(self, metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What ``export_path`` holds: plain tensors and data (``weights_only=True`` reads it)."""
        dm = self.trainer.datamodule if self._trainer is not None else None
        dm_hp = dict(getattr(dm, "hparams", {}) or {})
        half = self.hparams.export_fp16
        state = {
            k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu()).contiguous()
            for k, v in self.net.state_dict().items()
        }
        return {
            "format": FORMAT_VERSION,
            "state_dict": state,
            "net": {"_target_": NET_TARGET, **{k: v for k, v in self.hparams.net.items() if k != "_target_"}},
            "stride": self.net.stride,
            "canvas_size": dm_hp.get("canvas_size"),
            "class_names": list(CLASS_NAMES),
            "threshold": float(self.hparams.threshold),
            "metrics": dict(metrics or {}),
            "data": {
                k: (list(v) if isinstance(v, tuple | list) else v)
                for k, v in dm_hp.items()
                if k
                in (
                    "data_used",
                    "datasets",
                    "n_selection",
                    "split_seed",
                    "seed",
                    "n_test",
                    "n_val",
                    "canvas_size",
                )
            },
            "epochs": int(self.trainer.current_epoch) if self._trainer is not None else None,
            "global_step": int(self.global_step),
            "recipe": RECIPE,
        }

    def on_fit_end(self) -> None:
        if not self.hparams.export_path or not self.trainer.is_global_zero or self.trainer.fast_dev_run:
            return
        metrics: dict[str, Any] = {}
        val = {k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")}
        if val:
            metrics["val"] = val
        dm = self.trainer.datamodule
        if dm is not None and hasattr(dm, "test_dataloader"):
            test = evaluate(
                self.detector(), dm.test_dataloader(), self.hparams.threshold, self.hparams.map_threshold
            )
            metrics["test"] = test
            for logger in self.loggers:
                logger.log_metrics({f"test/{k}": v for k, v in test.items()}, step=self.global_step)
        payload = self.export_payload(metrics)
        atomic_write(Path(self.hparams.export_path), lambda p: torch.save(payload, p))


__all__ = [
    "NET_TARGET",
    "SHIPPED",
    "CenterNet",
    "Detection",
    "DetectorModule",
    "DetectorWeightsError",
    "SceneDetector",
    "SceneMetrics",
    "load_detector",
    "match",
    "scene_result",
]
