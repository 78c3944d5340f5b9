"""Shared fixtures: configs composed the way ``scripts/*.py`` compose them, writing into ``tmp_path``."""

from __future__ import annotations

import logging
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
# Hydra runs inside earlier tests leave log handlers on streams pytest has since closed; a record sent to one
# must not print logging's own "--- Logging error ---" report into a later test's captured stderr
logging.raiseExceptions = False


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


# ---- a tiny trained GAN and the agents around it, shared by the agent and director tests --------------
@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    from artdirector.train import train
    from helpers import TINY_MODEL

    out = tmp_path_factory.mktemp("tiny_gan")
    train(
        compose_cfg(
            "train",
            [
                *TINY_MODEL,
                "data=mnist5k",
                "data.limit_train=1024",
                "data.batch_size=64",
                "trainer.max_epochs=2",
                "model.discriminator.base_channels=16",
                # a faster recipe, so that the fixture's discriminator already tells real from fake
                "model.optimizer_g.lr=1e-3",
                "model.optimizer_d.lr=1e-3",
                "model.optimizer_g.betas=[0.5,0.999]",
                "model.optimizer_d.betas=[0.5,0.999]",
                "model.update_rule=alternating",  # at lr 1e-3, 2 epochs, the stabler of the two rules
            ],
            out,
        )
    )
    return out / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def data():
    from artdirector.data import Mnist5kDataModule

    dm = Mnist5kDataModule(batch_size=64)
    dm.setup()
    return dm


@pytest.fixture
def agents(tiny_ckpt, data, tmp_path):
    """(GenerationAgent, EvaluationAgent with selection and report references, RefinementAgent)."""
    from artdirector.agents import EvaluationAgent, GenerationAgent, RefinementAgent
    from artdirector.evaluation import Evaluator, LeNetFeatures

    gen = GenerationAgent(str(tiny_ckpt), seed=0)
    ev = Evaluator(LeNetFeatures("mnist"), name="lenet", kid_subsets=5, kid_subset_size=50, n_bootstrap=20)
    report = ev.copy_for(data, "report", 300)
    ev.set_reference_from(data, "selection", 300)
    ref = RefinementAgent(
        gen,
        real_images=data.real_images("selection", 300),
        datamodule=data,
        output_dir=tmp_path,
        defaults={"drs": {"burn_in": 300, "max_candidates": 2000}},
    )
    return gen, EvaluationAgent(ev, report), ref
