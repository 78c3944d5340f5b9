"""``python scripts/agent.py ckpt=PATH request="generate new art" policy=threshold``: run the Director.

Imports are deferred to the path a request takes: a scene request never loads the batch Director's
evaluation stack (torchmetrics' FID, Inception), the training entry point or a Lightning trainer.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from artdirector.agents.store import remember
from artdirector.agents.types import Action, Request, interpret
from artdirector.errors import ConfigError, at_least, check_settings, report_user_errors
from artdirector.runtime import CONFIG_DIR, resolve_device

if TYPE_CHECKING:
    from artdirector.agents import Director, Result, Samples

log = logging.getLogger(__name__)


def report_split_warnings(
    card: dict, n: int, n_real: int, classes: tuple[int, ...] | None = None
) -> list[str]:
    """Where the report split cannot give the precision this request needs: fewer report images than the
    reference size asked for (``n_real``), than the batch compared at equal n (``n``), or than 1,000 (FID
    below that is mostly bias and noise); for a class request, the report images of those classes."""
    n_report = int(card["splits"]["report"]["n"])
    what = "report split"
    by_split = card.get("n_per_class_by_split") or {}
    if classes and by_split.get("report"):
        counts = list(by_split["report"].values())
        n_report = sum(counts[c] for c in classes if c < len(counts))
        what = f"report split's images of classes {','.join(map(str, classes))}"
    out = []
    if n_report < n_real:
        out.append(
            f"the {what} has {n_report:,} images, fewer than n_real={n_real:,}: the verdict's reference is "
            f"{n_report:,} images, and its FID is noisier than the request asked for"
        )
    if n_report < n:
        out.append(
            f"the {what} has {n_report:,} images, fewer than the {n:,} samples compared: FID at unequal n is "
            "biased; lower n or use more data"
        )
    if n_report < 1000:
        out.append(
            f"the {what} has {n_report:,} images (< 1,000): the held-out FID is strongly biased upwards and "
            "noisy; read it against the card's floor at the same n"
        )
    return out


def _style_actions(cfg: DictConfig, spec, words: list[str]) -> list[Action]:
    """The ``style`` finishing actions: ``style={...}`` first, then the prompt's style words."""
    from artdirector.editing.targets import WORDS, StyleError, StyleTarget, targets_from_config

    out: list[Action] = []
    targets = targets_from_config(OmegaConf.to_container(spec) if OmegaConf.is_config(spec) else spec)
    said: dict[str, str] = {}
    for word in words:
        attribute, amount = WORDS[word]
        if attribute in said and said[attribute] != amount:
            raise StyleError(
                f"the request asks for {attribute} both ways ({said[attribute]} and {word!r}): say one of them"
            )
        if attribute not in said and all(t.attribute != attribute for t in targets):
            targets.append(StyleTarget.parse(attribute, amount))
        said[attribute] = amount
    method = cfg.get("style_method", "auto")
    for t in targets:
        out.append(
            Action(
                "style",
                {"attribute": t.attribute, "amount": t.spec(), "method": method},
                why=f"style asked for: {t.describe()}",
            )
        )
    return out


def finish_actions(cfg: DictConfig, request: Request | None = None) -> list[Action]:
    """The finishing actions a run asks for, in order: style edits (``style={thickness: '+50%'}``, then the
    prompt's style words: "thick sevens"), then upscaling (``upscale=2|4``, or x4 for "sharp"). A bad value
    or two words pulling one attribute both ways is a one-line error before anything runs."""
    out: list[Action] = []
    spec = cfg.get("style")
    # a scene's style words belong to their objects (the scene director edits each drawing): only a batch's
    # words are finishing actions, and only there can two of them pull one attribute both ways
    words = request.style_words if request is not None and not request.scene else []
    if spec is not None or words:  # the style module loads the evaluation stack: only when asked for
        out = _style_actions(cfg, spec, words)
    up = cfg.get("upscale")
    if up is None and request is not None and request.sharp:
        up = 4
    if up is None:
        return out
    if isinstance(up, bool) or up not in (2, 4):
        raise ConfigError(f"upscale must be 2 or 4 (or null: no upscaling), got {up!r}")
    return [
        *out,
        Action(
            "upscale",
            {"factor": int(up)},
            why=f"upscale={int(up)} asked for: x{int(up)} super-resolution through the shipped ESPCN",
        ),
    ]


def class_predictor(evaluator, device):
    """images -> the class the evaluator's classifier predicts (its LeNet's head), or None without one."""
    net = evaluator.feature_net
    if hasattr(net, "logits_from_features"):
        head = net.logits_from_features
    elif evaluator.classifier is not None:
        return lambda x: evaluator._classify(x.to(device)).argmax(1).cpu()
    else:
        return None

    @torch.no_grad()
    def predict(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(net(b.to(device))).argmax(1).cpu() for b in x.split(500)])

    return predict


def _check_settings(cfg: DictConfig) -> None:
    """The agent's numeric settings, each refused in one line when out of range."""
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


def _creator_paths(cfg: DictConfig) -> list:
    """The checkpoints to route among: ``ckpt=`` (one or a list), or every creator the package ships."""
    from artdirector.creators import zoo_checkpoints

    if cfg.ckpt is None:  # straight after install: every creator the package ships, routed by its card
        ckpts = zoo_checkpoints()
        log.info(
            "no ckpt= given: choosing among the shipped zoo %s (see docs/zoo.md)",
            [Path(c).stem for c in ckpts],
        )
    else:
        ckpts = list(cfg.ckpt) if OmegaConf.is_list(cfg.ckpt) else [cfg.ckpt]
    return ckpts


def _generation_agent(cfg: DictConfig, ckpts: list, device, request: Request):
    """The Generation Agent: the creator routed from ``ckpts`` by the config's constraints."""
    from artdirector.agents import GenerationAgent

    generation = GenerationAgent(
        ckpts,
        device=device,
        evaluator=cfg.evaluator.name,
        seed=cfg.seed,
        request=request,
        selection=cfg.selection,
        max_seconds_per_image=cfg.get("max_seconds_per_image"),
        quality_bar=cfg.get("quality_bar"),
        min_conformance=cfg.get("min_conformance", 0.0),
        min_recall=cfg.get("min_recall", 0.0),
        min_variety=cfg.get("min_variety", 0.0),
        dataset=cfg.data.get("dataset"),
        strength=cfg.get("strength", 0.5),
    )
    log.info("creator: %s", generation.why)
    return generation


def _data_entry(cfg: DictConfig, card, classes) -> dict | None:
    """The data card's summary for the trace, with the report split's warnings for this request."""
    from artdirector.data.agent import card_summary

    data_entry = card_summary(card)
    if data_entry is not None:
        data_entry["warnings"] = data_entry["warnings"] + report_split_warnings(
            card, cfg.n, cfg.n_real, classes
        )
        for w in data_entry["warnings"][len(card.get("warnings", [])) :]:
            log.warning("data: %s", w)
    return data_entry


def _references(cfg: DictConfig, datamodule, selection, classes):
    """Set the selection evaluator's reference and make the report split's; the real images of the floors.
    Decisions read the selection split and the verdict the report split, at equal reference n; a class request
    is judged against real images of those classes only (class-conditional FID)."""
    if not classes:
        # decisions against the selection split, the verdict against the report split, at equal reference n
        n_ref = min(cfg.n_real, datamodule.num_images("selection"), datamodule.num_images("report"))
        selection.set_reference_from(datamodule, "selection", n_ref, progress=True)
        report = selection.copy_for(datamodule, "report", n_ref, progress=True)
        # the floors: real images of neither reference (the train split), three draws of n
        floor_images = datamodule.real_images("train", min(3 * cfg.n, datamodule.num_images("train")))
    else:
        # a class request is judged against real images of those classes only (class-conditional FID)
        sel_x, _ = datamodule.labelled("selection", classes=classes)
        rep_x, _ = datamodule.labelled("report", classes=classes)
        n_ref = min(cfg.n_real, len(sel_x), len(rep_x))
        name = f"{datamodule.describe()}[classes {','.join(map(str, classes))}]"
        selection.set_reference(sel_x[:n_ref], dataset=name, split="selection", progress=True)
        report = copy.copy(selection)
        report.set_reference(rep_x[:n_ref], dataset=name, split="report", progress=True)
        floor_images, _ = datamodule.labelled("train", 3 * cfg.n, classes=classes)
        log.info("class request %s: references of %d real images of those classes per split", classes, n_ref)
    return report, floor_images


def build(cfg: DictConfig) -> tuple[Director, Request, Samples | None]:
    """Wire the agents, the policy and the Director from config; also the request and its input."""
    from artdirector.agents import Director, EvaluationAgent, RefinementAgent, load_input
    from artdirector.agents.store import MemoryPrior
    from artdirector.data.agent import run_data_agent
    from artdirector.evaluation.copying import copy_check

    _check_settings(cfg)
    device = resolve_device(cfg.device)
    request = interpret(cfg.request, has_input=cfg.get("input") is not None)
    finish = finish_actions(cfg, request)
    log.info("request %r: %s", request.text, request.understood)
    ckpts = _creator_paths(cfg)
    generation = _generation_agent(cfg, ckpts, device, request)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    classes = request.classes
    output_dir = Path(cfg.paths.output_dir)
    selection = instantiate(cfg.evaluator).to(device)
    # the Data Agent first (the cached card, or built now): its summary and its warnings go into the trace
    card = run_data_agent(cfg, datamodule, selection)
    if card is not None and classes and not card["has_labels"]:
        raise ConfigError(
            f"the request asks for classes {list(classes)} but {card['dataset']} has no labels (a flat image "
            "folder): put the images in one subfolder per class, or ask without classes"
        )
    data_entry = _data_entry(cfg, card, classes)
    report, floor_images = _references(cfg, datamodule, selection, classes)
    # DRS calibrates on real images the discriminator never trained on (Azadi et al.): the selection split,
    # with their labels for a class-conditional critic
    calibration, calibration_labels = datamodule.labelled(
        "selection", min(1000, datamodule.num_images("selection")), classes=classes
    )
    refinement = RefinementAgent(
        generation,
        real_images=calibration,
        real_labels=calibration_labels,
        datamodule=datamodule,
        output_dir=output_dir,
        defaults=OmegaConf.to_container(cfg.refinement, resolve=True),
        classify=class_predictor(selection, device),
    )
    policy = instantiate(cfg.policy)
    if hasattr(policy, "prior"):  # what earlier runs of this creator learned (memory=false: nothing)
        policy.prior = MemoryPrior.from_config(
            cfg.get("memory"), generation.creator.path, classes, selection.identity, cfg.decision.z
        )
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
        finish=finish,
        copy_check=(
            (
                lambda images, feats, grid: copy_check(
                    report, datamodule, images, feats, grid, n_train=cfg.copying.n_train
                )
            )
            if cfg.copying.enabled
            else None
        ),
        config={
            **OmegaConf.to_container(
                OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True
            ),
            "data_card": data_entry,
        },
    )
    return director, request, base


def run_scene(cfg: DictConfig, request: Request):
    """A scene request: the scene director with the class-conditional creators and the shipped detector."""
    from artdirector.agents.scene_config import director_from_config

    director = director_from_config(cfg, sharp=request.sharp)
    out = Path(cfg.paths.output_dir)
    result = director.run(request.prompt, output_dir=out)
    remember(cfg.get("memory"), out)
    log.info(
        "scene %r: %s after %d repair round(s) (%s); one-shot %s. Wrote %s (canvas.png, annotated.png, "
        "report.md, report.html, trace.json)",
        request.text,
        "PASS" if result.passed else "FAIL",
        len(result.rounds) - 1,
        result.stop,
        "pass" if result.one_shot.passed else "fail",
        out,
    )
    return result


def run_agent(cfg: DictConfig) -> Result:
    director, request, base = build(cfg)
    result = director.run(request, base=base)
    remember(cfg.get("memory"), director.output_dir)
    v = result.verdict
    if v:  # {} when not measured (replay=false, or the budget was spent first: see the stop reason)
        log.info(
            "held-out verdict (report split, fresh latents): FID %.2f ± %.2f raw -> %.2f ± %.2f directed",
            v["raw"]["fid"],
            v["raw"]["fid_se"],
            v["directed"]["fid"],
            v["directed"]["fid_se"],
        )
    for check in result.finish:
        (log.info if check["met"] else log.warning)("%s: %s", check["action"], check["summary"])
    extra = f", grid_{result.finish_tag}.png, final_{result.finish_tag}/" if result.finish_tag else ""
    log.info("wrote %s (report.html, report.md, trace.json, grid.png, final/%s)", director.output_dir, extra)
    return result


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="agent")
@report_user_errors
def main(cfg: DictConfig) -> float:
    if cfg.get("input") is not None:
        from artdirector.agents.scene_config import edit_scene
        from artdirector.agents.scene_input import is_scene_run

        if is_scene_run(cfg.input):  # an earlier scene run: the request edits it ("make the 7 bigger")
            return float(edit_scene(cfg, cfg.request, cfg.input).passed)
    request = interpret(cfg.request, has_input=cfg.get("input") is not None)
    finish_actions(cfg, request)  # a bad upscale= or style= fails here, before anything loads
    if request.scene:  # a canvas with exactly the named objects: the scene director; 1.0 when it passes
        log.info("request %r: %s", request.text, request.understood)
        return float(run_scene(cfg, request).passed)
    return run_agent(cfg).report.fid
