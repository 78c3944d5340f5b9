"""``python scripts/agent.py ckpt=PATH request="generate new art" policy=threshold``: run the Director."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from artdirector.agents import (
    Director,
    EvaluationAgent,
    GenerationAgent,
    RefinementAgent,
    Request,
    Result,
    Samples,
    interpret,
    load_input,
)
from artdirector.errors import at_least, check_settings, report_user_errors
from artdirector.runtime import CONFIG_DIR, ZOO_DIR, resolve_device

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[Director, Request, Samples | None]:
    """Wire the agents, the policy and the Director from config; also the request and its input."""
    check_settings(
        cfg,
        {
            "n": (
                at_least(2),
                "an integer >= 2 (FID needs two samples; 1,000 or more for decisions you trust)",
            ),
            "n_real": (at_least(2), "an integer >= 2"),
            "budget.steps": (at_least(0), "a number of refinement steps >= 0"),
            "budget.seconds": (at_least(0), "a number of seconds >= 0"),
            "target.fid": (at_least(0), "a FID >= 0 (0: no target, spend the budget)"),
            "decision.z": (at_least(0), "a number of standard errors >= 0"),
        },
    )
    device = resolve_device(cfg.device)
    request = interpret(cfg.request, has_input=cfg.get("input") is not None)
    log.info("request %r: %s", request.text, request.understood)
    if cfg.ckpt is None:  # straight after install: the shipped zoo's seed DCGAN
        ckpts = [str(ZOO_DIR / "dcgan.ckpt")]
        log.info("no ckpt= given: using the shipped zoo model %s (see docs/zoo.md)", ckpts[0])
    else:
        ckpts = list(cfg.ckpt) if OmegaConf.is_list(cfg.ckpt) else [cfg.ckpt]
    generation = GenerationAgent(ckpts, device=device, evaluator=cfg.evaluator.name, seed=cfg.seed)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    # decisions against the selection split, the verdict against the report split, at equal reference n
    n_ref = min(cfg.n_real, datamodule.num_images("selection"), datamodule.num_images("report"))
    selection = instantiate(cfg.evaluator).to(device)
    selection.set_reference_from(datamodule, "selection", n_ref, progress=True)
    report = selection.copy_for(datamodule, "report", n_ref, progress=True)
    # DRS calibrates on real images the discriminator never trained on (Azadi et al.): the selection split
    calibration = datamodule.real_images("selection", min(1000, datamodule.num_images("selection")))
    # the floors: real images of neither reference (the train split), three draws of n
    floor_images = datamodule.real_images("train", min(3 * cfg.n, datamodule.num_images("train")))
    output_dir = Path(cfg.paths.output_dir)
    refinement = RefinementAgent(
        generation,
        real_images=calibration,
        datamodule=datamodule,
        output_dir=output_dir,
        defaults=OmegaConf.to_container(cfg.refinement, resolve=True),
    )
    policy = instantiate(cfg.policy)
    base = load_input(cfg.input, generation) if cfg.get("input") else None
    director = Director(
        generation,
        EvaluationAgent(selection, report),
        refinement,
        policy,
        output_dir,
        target_fid=cfg.target.fid,
        target_fid_over_floor=cfg.target.get("fid_over_floor"),
        max_steps=cfg.budget.steps,
        max_seconds=cfg.budget.seconds,
        n=cfg.n,
        z=cfg.decision.z,
        floor_images=floor_images,
        replay=cfg.replay,
        replay_seed=cfg.seed + 1_000_003,
        config=OmegaConf.to_container(
            OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True
        ),
    )
    return director, request, base


def run_agent(cfg: DictConfig) -> Result:
    director, request, base = build(cfg)
    result = director.run(request, base=base)
    v = result.verdict
    if v:
        log.info(
            "held-out verdict (report split, fresh latents): FID %.2f ± %.2f raw -> %.2f ± %.2f directed",
            v["raw"]["fid"],
            v["raw"]["fid_se"],
            v["directed"]["fid"],
            v["directed"]["fid_se"],
        )
    log.info("wrote %s (report.html, report.md, trace.json, grid.png, final/)", director.output_dir)
    return result


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="agent")
@report_user_errors
def main(cfg: DictConfig) -> float:
    return run_agent(cfg).report.fid
