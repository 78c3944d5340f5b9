"""Every config group option composes, every experiment instantiates, bad choices fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from artdirector.runtime import CONFIG_DIR

GROUPS = [
    "data",
    "model",
    "evaluator",
    "trainer",
    "callbacks",
    "logger",
    "debug",
    "experiment",
    "hparams_search",
]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in _options(g)])
def test_every_group_option_composes(make_cfg, group: str, option: str) -> None:
    cfg = make_cfg("train", [f"{group}={option}"])
    # every interpolation outside Hydra's own node resolves
    OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    assert cfg.model._target_ and cfg.trainer._target_


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_instantiates(make_cfg, experiment: str) -> None:
    cfg = make_cfg("train", [f"experiment={experiment}"])
    model = instantiate(cfg.model, _recursive_=False)
    datamodule = instantiate(cfg.data)
    trainer = instantiate(cfg.trainer, logger=False)
    assert model is not None and datamodule is not None and trainer.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize(
    ("overrides", "chosen", "says"),
    [
        (["data=mnist"], "lenet_mnist", "MNIST digits, 28x28 grey: the MNIST LeNet"),
        (["data=mnist5k"], "lenet_mnist", "MNIST digits"),
        (["data=fashion_mnist"], "lenet_fashion_mnist", "FashionMNIST garments, 28x28 grey"),
        (["data=mnist_fashion"], "lenet_mnist", "MNIST digits and FashionMNIST garments"),
        (["data=fake"], "lenet_mnist", "dry run"),
        (["data=fake", "data.channels=3"], "inception", "fake 28x28x3 images"),
        (["data=image_folder", "data.path=x"], "inception", "an image folder (28x28x1)"),
        (
            ["data=image_folder", "data.path=x", "data.image_size=32", "data.channels=3"],
            "inception",
            "32x32x3",
        ),
    ],
)
def test_the_default_evaluator_follows_the_data_and_says_why(
    make_cfg, caplog, overrides, chosen, says
) -> None:
    cfg = make_cfg("train", [*overrides, "evaluator.kid_subsets=7"])
    caplog.set_level("INFO")
    ev = instantiate(cfg.evaluator)
    assert ev.kid_subsets == 7  # a setting given to auto reaches the one it chose; the others are its own
    if chosen == "inception":
        assert ev.name == "inception" and ev.identity.startswith("inception-v3") and ev.batch_size == 100
        assert ev.classifier is None  # a digit classifier's confidence means nothing for this data
    else:
        assert ev.name == "lenet" and Path(ev.feature_net.path).stem == chosen and ev.batch_size == 500
    (said,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("evaluator=auto: ")]
    assert says in said


def test_every_config_that_names_an_evaluator_names_one_that_exists() -> None:
    """Default lists and overrides in configs, scripts' usage lines and the docs: evaluator=<x> exists."""
    import re

    options = set(_options("evaluator"))
    root = Path(CONFIG_DIR).parents[2]
    unknown = {}
    for path in [*Path(CONFIG_DIR).rglob("*.yaml"), *(root / "scripts").glob("*.py"), root / "README.md"]:
        for name in re.findall(r"(?:evaluator=|- evaluator: )(\w+)", path.read_text()):
            if name not in options:
                unknown[name] = str(path)
    assert not unknown


def test_hparams_search_sets_up_optuna(make_cfg) -> None:
    cfg = make_cfg("train", ["hparams_search=dcgan_optuna"])
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert cfg.optimized_metric == "val/fid"
    assert "model.optimizer_g.lr" in cfg.hydra.sweeper.params


def test_slurm_launcher_composes(make_cfg) -> None:
    cfg = make_cfg("train", ["hydra/launcher=slurm"])
    assert "submitit" in cfg.hydra.launcher._target_.lower()
    assert cfg.hydra.launcher.gpus_per_node == 1


def test_unknown_group_value_names_the_choices(make_cfg) -> None:
    with pytest.raises(ConfigCompositionException) as err:
        make_cfg("train", ["model=dcgann"])
    assert "dcgann" in str(err.value) and "dcgan" in str(err.value).replace("dcgann", "")


def test_unknown_key_is_an_error(make_cfg) -> None:
    with pytest.raises(ConfigCompositionException):
        make_cfg("train", ["model.generator.latent_dimm=10"])


def test_run_and_sweep_dirs_resolve_before_any_job_runs() -> None:
    """Launchers (submitit for SLURM) resolve hydra.sweep.dir when they are built, before HydraConfig or
    ${hydra:runtime.cwd} exist: the dirs must not depend on them."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    assert cfg.hydra.run.dir.startswith("outputs/") and cfg.hydra.sweep.dir.startswith("outputs/multirun/")


def test_each_model_kind_brings_callbacks_that_fit_it(make_cfg) -> None:
    """model=classifier used to inherit the GAN's FID callback and crash at epoch 5."""
    gan = make_cfg("train", ["model=dcgan"]).callbacks
    clf = make_cfg("train", ["model=classifier", "data=mnist"]).callbacks
    assert "fid" in gan and "best_checkpoint" in gan
    assert set(clf) == {"model_checkpoint"} and clf.model_checkpoint.monitor == "val/acc"
    assert (
        "fid" in make_cfg("train", ["model=classifier", "callbacks=default"]).callbacks
    )  # still overridable
