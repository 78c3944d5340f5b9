"""The configs' layout: shared blocks live in one file, and train.yaml's defaults list shows the callbacks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from artdirector.runtime import CONFIG_DIR

CONFIGS = Path(CONFIG_DIR)
MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))
CARD = yaml.safe_load((CONFIGS / "card" / "default.yaml").read_text())


def _yaml_files() -> list[Path]:
    return sorted(CONFIGS.rglob("*.yaml"))


def _flat(node: object, prefix: str = "") -> dict[str, object]:
    """``{"a.b": leaf}`` for every leaf of a parsed YAML mapping."""
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    out: dict[str, object] = {}
    for key, value in node.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def test_the_card_block_is_written_once() -> None:
    copies = [
        str(path.relative_to(CONFIGS))
        for path in _yaml_files()
        if path.parent.name != "card"
        and isinstance(card := (yaml.safe_load(path.read_text()) or {}).get("card"), dict)
        and set(CARD) <= set(card)
    ]
    assert not copies, f"the whole card: block is repeated in {copies}; use the card group (configs/card)"


@pytest.mark.parametrize("config_name", ["train", "prepare", "agent"])
def test_every_card_reader_takes_the_card_group(make_cfg, config_name: str) -> None:
    cfg = make_cfg(config_name)
    assert cfg.hydra.runtime.choices.card == "default"
    assert OmegaConf.to_container(cfg.card) == CARD


def test_train_yaml_lists_the_callbacks_and_no_model_brings_its_own() -> None:
    defaults = yaml.safe_load((CONFIGS / "train.yaml").read_text())["defaults"]
    assert any(isinstance(d, dict) and "callbacks" in d for d in defaults)
    for model in MODELS:
        text = (CONFIGS / "model" / f"{model}.yaml").read_text()
        assert "callbacks" not in str(yaml.safe_load(text).get("defaults", [])), model


@pytest.mark.parametrize("model", MODELS)
def test_every_model_composes_with_its_own_callbacks(make_cfg, model: str) -> None:
    cfg = make_cfg("train", [f"model={model}"])
    assert cfg.hydra.runtime.choices.callbacks == model
    assert cfg.callbacks and all("_target_" in c for c in cfg.callbacks.values())
    assert make_cfg("train", [f"model={model}", "callbacks=none"]).callbacks == {}


@pytest.mark.parametrize(
    ("model", "monitored"),
    [
        ("dcgan", "val/fid"),
        ("cgan", "val/fid"),
        ("cdcgan", "val/fid"),
        ("ddpm", "val/fid"),
        ("dit", "val/fid"),
        ("classifier", "val/acc"),
        ("detector", "val/map50"),
        ("sr", "val/psnr"),
    ],
)
def test_the_best_checkpoint_follows_the_models_metric(make_cfg, model: str, monitored: str) -> None:
    callbacks = make_cfg("train", [f"model={model}"]).callbacks
    monitors = {c.get("monitor") for c in callbacks.values()} - {None}
    assert monitors == {monitored}
    if model in ("ddpm", "dit"):  # sampling is the slow part: rarer grids and smaller FIDs than the GANs'
        assert callbacks.fid.n_samples == 1000 and callbacks.fixed_noise_grid.every_n_epochs == 5


def test_experiments_still_change_the_models_callbacks(make_cfg) -> None:
    zoo = make_cfg("train", ["experiment=zoo_ddpm"])
    assert zoo.hydra.runtime.choices.callbacks == "ddpm"
    assert zoo.callbacks.fid is None and zoo.callbacks.best_checkpoint is None
    assert zoo.callbacks.model_checkpoint.every_n_epochs == 1
    judge = make_cfg("train", ["experiment=judge_mnist"]).callbacks  # model=null: callbacks named outright
    assert set(judge) == {"model_checkpoint"} and judge.model_checkpoint.monitor == "val/acc"


def test_the_diffusion_model_takes_its_backbone_from_a_group(make_cfg) -> None:
    """model=ddpm and model=dit are model=diffusion with a backbone chosen from model/backbone/, and repeat
    nothing of it; model/backbone=dit on model=diffusion composes the same model as model=dit."""
    base = _flat(yaml.safe_load((CONFIGS / "model" / "diffusion.yaml").read_text()))
    for model in ("ddpm", "dit"):
        own = _flat(yaml.safe_load((CONFIGS / "model" / f"{model}.yaml").read_text()))
        assert not {k for k in own if k in base and own[k] == base[k]}, model
        assert not any(k.startswith("backbone.") for k in own), f"{model}.yaml names its backbone's keys"
    dit = make_cfg("train", ["model=dit"]).model
    assert make_cfg("train", ["model=diffusion", "model/backbone=dit"]).model == dit
    assert dit.backbone._target_ == "diffusers.DiTTransformer2DModel" and dit.optimizer.lr == 1.0e-4
    unet = make_cfg("train", ["model=ddpm"]).model
    assert unet == make_cfg("train", ["model=diffusion"]).model and unet.optimizer.lr == 2.0e-4


def test_agent_blocks_keep_their_key_paths(make_cfg) -> None:
    cfg = make_cfg("agent", ["scene.max_rounds=20", "refinement.drs.burn_in=100"])
    assert cfg.scene.max_rounds == 20 and cfg.scene.canvas == 128
    assert cfg.refinement.drs.burn_in == 100 and cfg.refinement.steps.factor == 2.0
    assert cfg.memory.enabled is True and cfg.decision.z == 2.0
    assert make_cfg("agent", ["memory=false"]).memory is False  # a value, not a config group's choice


def test_the_gan_callback_set_is_one_file_per_callback() -> None:
    """callbacks/default.yaml lists its callbacks, each in a file of its own whose one key is the file's
    name; no other file of the group repeats a callback it lists."""
    group = CONFIGS / "callbacks"
    listed = yaml.safe_load((group / "default.yaml").read_text())["defaults"]
    assert len(listed) >= 5 and all(isinstance(name, str) for name in listed)
    for name in listed:
        assert list(yaml.safe_load((group / f"{name}.yaml").read_text())) == [name]
    for path in group.glob("*.yaml"):
        if path.stem in listed or path.stem == "default":
            continue
        body = yaml.safe_load(path.read_text()) or {}
        repeated = [k for k, v in body.items() if k in listed and isinstance(v, dict) and "_target_" in v]
        assert path.stem in {"classifier", "detector", "sr"} or not repeated, (path.name, repeated)
