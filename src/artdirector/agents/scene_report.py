"""A scene run's files: ``trace.json``, ``report.md`` / ``report.html`` (:mod:`artdirector.agents.report_scene`),
``canvas.png``, ``annotated.png`` (each detection boxed), ``canvas.pt`` and ``objects.pt`` (what an edit of the
run reads back: :mod:`artdirector.agents.scene_input`), and the result they are written from."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from artdirector.agents.report_render import to_html, to_markdown
from artdirector.agents.report_scene import scene_report
from artdirector.io import atomic_write, write_json, write_text
from artdirector.prompts import Prompt
from artdirector.scenes.compose import Drawing, style_reached
from artdirector.scenes.layout import Plan
from artdirector.scenes.verify import Verdict

SCENE_TRACE_VERSION = "scene/1"
OBJECTS_FILE = "objects.pt"  # each object's drawing (the pixels pasted), class and box: what an edit keeps


@dataclass
class SceneResult:
    """What a scene run (or an edit of one) ends with: the canvas, its verdicts and every round."""

    prompt: Prompt
    plan: Plan
    canvas: torch.Tensor
    verdict: Verdict
    one_shot: Verdict
    rounds: list[dict[str, Any]]
    stop: str
    seconds: float
    drawings: list[Drawing] = field(default_factory=list)
    upscaled: torch.Tensor | None = None
    upscale_check: dict[str, Any] | None = None
    # an edit of an earlier scene run: that run, the edit as parsed and resolved, its canvas
    parent: dict[str, Any] | None = None
    edit: dict[str, Any] | None = None
    before: torch.Tensor | None = None

    @property
    def style_ok(self) -> bool:
        """Every styled object's edit reached its goal (True when nothing was styled)."""
        return all(style_reached(d) for d in self.drawings)

    @property
    def passed(self) -> bool:
        """The detector's blind check passes and every style edit reached its goal."""
        return self.verdict.passed and self.style_ok


def item_name(item) -> str:
    """An object as the trace and the report name it: its size word, then its class."""
    from artdirector.scenes.canvas import class_name

    return (f"{item.size} " if item.size else "") + class_name(item.gid)


def annotated(canvas: torch.Tensor, verdict: Verdict, scale: int = 4) -> torch.Tensor:
    """The canvas, enlarged, with each detection boxed: green where its object passed, red otherwise (and
    for extras), the planned cells of missing objects dashed in orange."""
    from artdirector.scenes.draw import draw_boxes

    img = ((canvas.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    img = img.expand(3, -1, -1) if img.shape[0] == 1 else img
    img = torch.nn.functional.interpolate(img[None].float(), scale_factor=scale, mode="nearest")[0].to(
        torch.uint8
    )
    boxes, labels, colors = [], [], []
    for o in verdict.objects:
        if o.found is not None:
            boxes.append(o.found)
            labels.append(f"{o.found_name} ok" if o.ok else f"{o.found_name}: {o.problem}")
            colors.append("lime" if o.ok and verdict.passed else ("yellow" if o.ok else "red"))
        else:
            boxes.append(o.planned)
            labels.append(f"{o.name}: {o.problem}")
            colors.append("orange")
    for e in verdict.extras:
        boxes.append(tuple(e["box"]))
        labels.append(f"extra {e['name']}")
        colors.append("red")
    if not boxes:
        return img
    t = torch.tensor(boxes, dtype=torch.float) * scale
    return draw_boxes(img, t, labels, colors, width=2)


def _to_uint8(canvas: torch.Tensor) -> torch.Tensor:
    """A canvas in [-1, 1] as 3-channel uint8, for a PNG."""
    return ((canvas.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).expand(3, -1, -1)


def _png(img: torch.Tensor) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    return buf.getvalue()


def _describe_detector(det: Any) -> dict[str, Any]:
    """What the trace says of the verifier's detector: its file, the test metrics the file states."""
    if hasattr(det, "describe"):
        return det.describe()
    info = getattr(det, "info", {}) or {}
    return {
        "name": type(det).__name__,
        **{k: info[k] for k in ("path", "metrics", "recipe", "canvas_size") if k in info},
    }


def scene_trace(d: Any, res: SceneResult) -> dict[str, Any]:
    """What ``trace.json`` holds: ``d`` is the :class:`~artdirector.agents.scene.SceneDirector` that made ``res``."""
    out = {
        "version": SCENE_TRACE_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "request": {
            "text": res.prompt.text,
            "task": "edit" if res.edit is not None else (res.prompt.task or "create"),
            "prompt": res.prompt.to_dict(),
        },
        "creators": {ds: [c.describe() for c in cs] for ds, cs in d.creators.items()},
        "detector": _describe_detector(d.detector),
        "settings": {
            "canvas": res.plan.height,
            "base": res.plan.base,
            "max_rounds": d.max_rounds,
            "max_seconds": d.max_seconds,
            "threshold": d.threshold,
            "drs_candidates": d.drs_candidates,
            "switch_after": d.switch_after,
            "move_after": d.move_after,
            "seed": d.seed,
        },
        "plan": res.plan.to_dict(),
        "rounds": res.rounds,
        "drawings": [dr.describe() for dr in res.drawings],
        "one_shot": {"passed": res.one_shot.passed, "reasons": res.one_shot.reasons},
        "upscale": res.upscale_check,
        "final": {
            "passed": res.passed,
            "reasons": res.verdict.reasons,
            "rounds": len(res.rounds) - 1,
            "stop": res.stop,
            "seconds": round(res.seconds, 3),
        },
    }
    if res.parent is not None:
        out["parent"], out["edit"] = res.parent, res.edit
    return out


def write_scene(d: Any, res: SceneResult, out: Path) -> None:
    """Every file of a scene run into ``out``; ``d`` is the scene director that made ``res``."""
    out.mkdir(parents=True, exist_ok=True)
    trace = scene_trace(d, res)
    write_json(out / "trace.json", trace)
    atomic_write(out / "canvas.pt", lambda p: torch.save(res.canvas.clone(), p))
    atomic_write(out / OBJECTS_FILE, lambda p: torch.save(scene_objects(res), p))
    canvas_png = _png(_to_uint8(res.canvas))
    ann_png = _png(annotated(res.canvas, res.verdict))
    atomic_write(out / "canvas.png", lambda p: p.write_bytes(canvas_png))
    atomic_write(out / "annotated.png", lambda p: p.write_bytes(ann_png))
    if res.before is not None:  # an edit: the parent's canvas beside the new one
        before_png = _png(_to_uint8(res.before))
        atomic_write(out / "before.png", lambda p: p.write_bytes(before_png))
    if res.upscaled is not None:
        up = _png(_to_uint8(res.upscaled))
        atomic_write(out / f"canvas_x{d.upscale}.png", lambda p: p.write_bytes(up))
    report = scene_report(trace)
    write_text(out / "report.md", to_markdown(report, out))
    write_text(out / "report.html", to_html(report, out))


def scene_objects(res: SceneResult) -> dict[str, Any]:
    """What ``objects.pt`` holds, in plan order: per object the image it was drawn as (C, h, w) in [-1, 1],
    its class, its box and how it was drawn; plain tensors, numbers and strings, so it loads with
    ``weights_only=True``."""
    return {
        "version": 1,
        "objects": [
            {
                "image": d.image.detach().float().cpu().clone(),
                "gid": int(it.gid),
                "box": [float(v) for v in it.box],
                "drawing": d.describe(),
            }
            for it, d in zip(res.plan.items, res.drawings, strict=True)
        ],
    }
