"""The trained detector for inference: :func:`load_detector` reads the weights file that
``artdirector.models.detector.DetectorModule`` exports (by default the shipped ``weights/detector_scenes.pt``)
into a :class:`SceneDetector`, whose ``detect`` returns :class:`Detection` lists. Nothing here imports
Lightning (2.4 s of CPU on its own), so a scene request can load its detector from this module without it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from artdirector.errors import UserError
from artdirector.models.detection.decode import decode, relabel
from artdirector.models.nets.detector import CenterNet
from artdirector.prompts.words import CLASS_NAMES

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
SHIPPED = WEIGHTS_DIR / "detector_scenes.pt"
RECIPE = "python scripts/train.py experiment=detector"
# the net's identity in configs and weights files (the path it is importable at)
NET_TARGET = "artdirector.models.detector.CenterNet"


@dataclass(frozen=True)
class Detection:
    """One detected object: global class id, box (x0, y0, x1, y1) in canvas pixels, score in (0, 1)."""

    gid: int
    box: tuple[float, float, float, float]
    score: float

    @property
    def name(self) -> str:
        return CLASS_NAMES[self.gid]


class DetectorWeightsError(UserError, FileNotFoundError):
    """The detector's weights file is missing or is not one :func:`load_detector` can read."""


class SceneDetector:
    """A trained :class:`CenterNet` for inference: ``detect(canvases)`` -> one list of
    :class:`Detection` per canvas. ``info`` holds what the weights file says about itself (metrics, recipe)."""

    def __init__(
        self,
        net: CenterNet,
        top_k: int = 50,
        nms_iou: float = 0.5,
        info: Mapping[str, Any] | None = None,
        batch_size: int = 64,
    ) -> None:
        self.net = net.eval()
        self.top_k, self.nms_iou, self.batch_size = top_k, nms_iou, batch_size
        self.info = dict(info or {})

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _check(self, canvases: torch.Tensor) -> torch.Tensor:
        if not isinstance(canvases, torch.Tensor) or canvases.ndim not in (3, 4) or canvases.shape[-3] != 1:
            shape = tuple(canvases.shape) if isinstance(canvases, torch.Tensor) else type(canvases).__name__
            raise ValueError(f"expected canvases (B, 1, H, W) in [-1, 1], got {shape}")
        if canvases.shape[-1] % 4 or canvases.shape[-2] % 4:
            raise ValueError(
                f"canvas height and width must be divisible by 4, got {tuple(canvases.shape[-2:])}"
            )
        return canvases if canvases.ndim == 4 else canvases[None]

    def predict(self, canvases: torch.Tensor, threshold: float = 0.3) -> list[dict[str, torch.Tensor]]:
        """Like :meth:`detect`, as tensors (what the metrics read)."""
        x = self._check(canvases)
        was_training = self.net.training
        self.net.eval()
        results: list[dict[str, torch.Tensor]] = []
        with torch.inference_mode():
            for chunk in x.split(self.batch_size):
                chunk = chunk.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
                out = self.net(chunk)
                dets = decode(
                    out, threshold, self.top_k, self.nms_iou, self.net.stride, tuple(chunk.shape[-2:])
                )
                results += [{k: v.cpu() for k, v in r.items()} for r in relabel(self.net, chunk, dets)]
        self.net.train(was_training)
        return results

    def detect(self, canvases: torch.Tensor, threshold: float = 0.3) -> list[list[Detection]]:
        """Objects on each canvas (B, 1, H, W) in [-1, 1], H and W divisible by 4: score >= ``threshold``,
        best first."""
        return [
            [
                Detection(int(g), tuple(float(v) for v in box), float(s))
                for box, s, g in zip(
                    r["boxes"].tolist(), r["scores"].tolist(), r["labels"].tolist(), strict=True
                )
            ]
            for r in self.predict(canvases, threshold)
        ]


def build_net(spec: Mapping[str, Any]) -> CenterNet:
    """A :class:`CenterNet` from its config (only that target: nothing else is built from a file)."""
    target = spec.get("_target_", NET_TARGET)
    if target != NET_TARGET:
        raise DetectorWeightsError(f"the detector net must be {NET_TARGET}, the file names {target}")
    return CenterNet(**{k: v for k, v in spec.items() if not str(k).startswith("_")})


def load_detector(path: str | Path | None = None, map_location: str | torch.device = "cpu") -> SceneDetector:
    """The detector in a file :class:`DetectorModule` exported (``None``: the shipped
    ``artdirector/weights/detector_scenes.pt``), read with ``weights_only=True``, in eval mode."""
    path = Path(path) if path is not None else SHIPPED
    if not path.is_file():
        how = (
            f"it ships with artdirector; reinstall the package, or rebuild it with `{RECIPE}` and copy "
            "<run dir>/detector.pt there"
            if path == SHIPPED
            else f"pass a detector.pt written by `{RECIPE}`"
        )
        raise DetectorWeightsError(f"detector weights not found at {path}: {how}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DetectorWeightsError(
            f"{path} could not be read as detector weights ({type(err).__name__})"
        ) from err
    if not isinstance(payload, dict) or "state_dict" not in payload or "net" not in payload:
        raise DetectorWeightsError(f"{path} is not a detector weights file (no state_dict / net)")
    net = build_net(payload["net"])
    net.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    net = net.to(map_location).to(memory_format=torch.channels_last).eval()
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    info["path"] = str(path)
    return SceneDetector(net, info=info)
