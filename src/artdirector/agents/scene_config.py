"""A scene request from a run's config: the scene director it asks for (creators, detector, settings), and
an edit of an earlier scene run, read and checked before any model loads."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from artdirector.agents.scene import SceneDirector
from artdirector.agents.scene_input import load_scene
from artdirector.agents.scene_report import SceneResult

log = logging.getLogger(__name__)


def director_from_config(cfg: Any, sharp: bool = False) -> SceneDirector:
    """The scene director a run's config asks for: the class-conditional creators among ``ckpt`` (the zoo
    when null), the shipped detector (or ``scene.detector``), the ``scene.*`` settings."""
    from omegaconf import OmegaConf

    from artdirector.creators import zoo_checkpoints
    from artdirector.creators.routing import scene_creators
    from artdirector.errors import at_least, check_settings
    from artdirector.models.detection.inference import load_detector
    from artdirector.models.superres import load_sr
    from artdirector.runtime import resolve_device

    sc = cfg.scene
    check_settings(
        cfg,
        {
            "scene.canvas": (
                at_least(16),
                "a canvas side in pixels >= 16 (default 128: four digits in a row)",
            ),
            "scene.base": (at_least(8), "a base cell in pixels >= 8"),
            "scene.max_rounds": (at_least(0), "a number of repair rounds >= 0"),
            "scene.max_seconds": (at_least(0), "a number of seconds >= 0"),
            "scene.threshold": (lambda v: 0 < v < 1, "a detection score threshold in (0, 1)"),
        },
    )
    # scene.upscale, or the run's upscale= when the scene's own is unset, or x4 for "sharp"
    upscale = sc.get("upscale") if sc.get("upscale") is not None else cfg.get("upscale")
    if upscale is None and sharp:
        upscale = 4
    device = resolve_device(cfg.device)
    ckpts = (
        zoo_checkpoints()
        if cfg.ckpt is None
        else (list(cfg.ckpt) if OmegaConf.is_list(cfg.ckpt) else [cfg.ckpt])
    )
    creators = scene_creators(
        ckpts, device, min_recall=cfg.get("min_recall", 0.0), min_variety=cfg.get("min_variety", 0.0)
    )
    log.info("scene creators: %s", {ds: [c.name for c in cs] for ds, cs in creators.items()})
    detector = load_detector(sc.detector, map_location=device)
    if sc.get("second_stage", False):  # the shipped LeNets rename each detected object from its crop
        from artdirector.evaluation.scene_verifier import TwoStageDetector

        detector = TwoStageDetector(detector)
    return SceneDirector(
        creators,
        detector,
        canvas=sc.canvas,
        base=sc.base,
        max_rounds=sc.max_rounds,
        max_seconds=sc.max_seconds,
        threshold=sc.threshold,
        drs_candidates=sc.drs_candidates,
        switch_after=sc.switch_after,
        move_after=sc.get("move_after", 2),
        seed=cfg.seed,
        upscale=upscale,
        upscaler=load_sr(map_location=device) if upscale else None,
    )


def edit_scene(cfg: Any, request: str, parent_dir: str | Path) -> SceneResult:
    """``python scripts/agent.py input=<a scene run> request="make the 7 bigger"``: the edit, written to the
    run's output folder. The edit is read, and the parent run checked, before any model loads."""
    from artdirector.prompts import PromptError
    from artdirector.prompts.edits import looks_like_edit, parse_edit
    from artdirector.scenes.edit import apply

    try:  # the edit read and tried on the scene: a one-line error before the creators and detector load
        edit = parse_edit(request)
    except PromptError as err:
        if looks_like_edit(request):
            raise
        raise PromptError(
            f"input {parent_dir} is a scene run, so the request edits it, and {request!r} is not an edit ({err}); "
            "without input= a request makes a new scene"
        ) from None
    apply(edit, load_scene(parent_dir).scene)
    out = Path(cfg.paths.output_dir)
    result = director_from_config(cfg).edit(request, parent_dir, output_dir=out)
    log.info(
        "scene edit %r of %s: %s after %d repair round(s) (%s). Wrote %s (before.png, canvas.png, annotated.png, "
        "objects.pt, report.md, report.html, trace.json)",
        request,
        parent_dir,
        "PASS" if result.passed else "FAIL",
        len(result.rounds) - 1,
        result.stop,
        out,
    )
    return result
