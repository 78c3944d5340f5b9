"""Shared fixtures: configs composed the way ``scripts/*.py`` compose them, writing into ``tmp_path``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from artdirector.runtime import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]

torch.set_num_threads(2)


def compose_cfg(config_name: str, overrides: Sequence[str], out: Path) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(REPO)
        cfg.paths.outputs_root = str(out)
        cfg.paths.output_dir = str(out)
        cfg.paths.cache_dir = str(out / "cache")
        cfg.hydra.runtime.output_dir = str(out)
    HydraConfig().set_config(cfg)
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg("train", ["data=fake"], out=...)``: a composed config writing under ``tmp_path``."""

    def _make(
        config_name: str = "train", overrides: Sequence[str] = (), out: Path | None = None
    ) -> DictConfig:
        return compose_cfg(config_name, overrides, out or tmp_path)

    return _make
