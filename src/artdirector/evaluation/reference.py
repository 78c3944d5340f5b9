"""Real-data features cached on disk, keyed by everything that changes them."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from artdirector.io import atomic_write

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def tensor_digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


class ReferenceCache:
    """``load_or_build(key, build)``: the features for ``key`` from ``cache_dir``, built (and saved) once.

    The key holds the dataset, split, feature network (with its weights' hash) and sample count; the file
    name is a hash of it, so any change is a different entry. A file that cannot be read, or whose key or
    checksum does not match, is reported and rebuilt.
    """

    def __init__(self, cache_dir: str | Path | None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.hits = 0
        self.builds = 0

    def path_for(self, key: dict[str, Any]) -> Path:
        if self.cache_dir is None:
            raise ValueError("no cache_dir set")
        blob = json.dumps({**key, "cache_version": CACHE_VERSION}, sort_keys=True)
        fields = "_".join(str(key.get(k, "")) for k in ("dataset", "split", "n"))
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", fields)
        return self.cache_dir / f"{slug}_{hashlib.sha1(blob.encode()).hexdigest()[:16]}.pt"

    def _read(self, path: Path, key: dict[str, Any]) -> torch.Tensor | None:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            features = payload["features"]
            if payload["key"] != {**key, "cache_version": CACHE_VERSION}:
                raise ValueError("key mismatch")
            if payload["sha256"] != tensor_digest(features):
                raise ValueError("checksum mismatch")
            return features
        except Exception as err:
            log.warning(
                "reference cache %s is unusable (%s: %s); rebuilding it", path, type(err).__name__, err
            )
            return None

    def load_or_build(self, key: dict[str, Any], build: Callable[[], torch.Tensor]) -> torch.Tensor:
        path = self.path_for(key) if self.cache_dir else None
        if path is not None and path.is_file():
            features = self._read(path, key)
            if features is not None:
                self.hits += 1
                log.info("reference features from cache %s", path)
                return features
        features = build().detach().float().cpu()
        self.builds += 1
        if path is not None:
            payload = {
                "key": {**key, "cache_version": CACHE_VERSION},
                "features": features,
                "sha256": tensor_digest(features),
            }
            atomic_write(path, lambda p: torch.save(payload, p))
            log.info("reference features cached at %s", path)
        return features
