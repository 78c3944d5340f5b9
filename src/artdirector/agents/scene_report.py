"""A scene run's files: ``trace.json``, ``report.md`` / ``report.html`` (one Markdown source, two views),
``canvas.png``, ``annotated.png`` (each detection boxed), ``canvas.pt`` and ``objects.pt`` (what an edit of the
run reads back: :mod:`artdirector.agents.scene_input`), and the result they are written from."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

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
    from torchvision.utils import draw_bounding_boxes

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
    return draw_bounding_boxes(img, t, labels=labels, colors=colors, width=2)


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


def _objects_table(v: Verdict) -> list[str]:
    rows = ["| # | asked | verdict | found | box (x0, y0, x1, y1) | score |", "|---|---|---|---|---|---:|"]
    for o in v.objects:
        asked = (f"{o.size} " if o.size else "") + o.name
        box = ", ".join(f"{c:.0f}" for c in (o.found or o.planned))
        rows.append(
            f"| {o.index} | {asked} | {'ok' if o.ok else o.problem} | {o.found_name or '-'} | {box} | "
            f"{o.score if o.score is not None else '-'} |"
        )
    for e in v.extras:
        rows.append(
            f"| - | (nothing) | extra | {e['name']} | {', '.join(f'{c:.0f}' for c in e['box'])} | {e['score']} |"
        )
    return rows


def _md_to_html(md: str) -> str:
    """The report's own Markdown (headings, paragraphs, pipe tables, **bold**) as HTML: one source, two views."""
    import re

    def inline(t: str) -> str:
        return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(t))

    out, table = [], []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split("|")])
            continue
        if table:
            head, *rows = [r for r in table if not all(set(c) <= set("-:") for c in r)]
            out.append(
                "<table><tr>"
                + "".join(f"<th>{inline(c)}</th>" for c in head)
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows)
                + "</table>"
            )
            table = []
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            out.append(f"<p>{line}</p>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    return "\n".join(out)


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
    shown = [("canvas", "canvas.png", canvas_png, 384), ("annotated", "annotated.png", ann_png, 512)]
    if res.before is not None:  # an edit: the parent's canvas beside the new one
        before_png = _png(_to_uint8(res.before))
        atomic_write(out / "before.png", lambda p: p.write_bytes(before_png))
        shown.insert(0, ("before", "before.png", before_png, 384))
    if res.upscaled is not None:
        up = _png(_to_uint8(res.upscaled))
        atomic_write(out / f"canvas_x{d.upscale}.png", lambda p: p.write_bytes(up))
    status = "PASS" if res.passed else "FAIL"
    images = " ".join(f"![{alt}]({name})" for alt, name, _, _ in shown)
    lines = [f"# Scene edit: {res.prompt.text}" if res.edit else f"# Scene: {res.prompt.text}", ""]
    if res.edit is not None:
        lines += [
            f"Edit of {res.parent['run']} ({res.parent['request']!r}, "
            f"{'passed' if res.parent['passed'] else 'failed'}): **{res.edit['understood']}**. Objects kept as "
            f"they were (drawing and box): {sum(p is not None and k not in res.edit['changed'] for k, p in enumerate(res.edit['parent_index']))} "
            f"of {len(res.edit['parent_index'])}; changed: "
            + (", ".join(f"{k} ({item_name(res.plan.items[k])})" for k in res.edit["changed"]) or "none")
            + ".",
            "",
            *[f"{n[0].upper()}{n[1:]}." for n in res.edit["notes"]],
            "Before (the parent's canvas), after, and after with each detection boxed:",
            "",
        ]
    lines += [
        f"**{status}** after {len(res.rounds) - 1} repair round(s), {res.seconds:.1f} s ({res.stop}). "
        f"One-shot: {'pass' if res.one_shot.passed else 'fail (' + '; '.join(res.one_shot.reasons) + ')'}.",
        "",
        ("After the edit: " if res.edit else "Parsed: ")
        + f"{len(res.prompt.objects)} object{' kind' if not res.edit else ''}(s) "
        + ", ".join(f"{o.count} x {(o.size + ' ') if o.size else ''}{o.name}" for o in res.prompt.objects)
        + (
            f"; relations: {', '.join(f'{res.prompt.objects[r.subject].name} {r.relation} {res.prompt.objects[r.object].name}' for r in res.prompt.relations)}"
            if res.prompt.relations
            else ""
        )
        + (f"; layout: {res.prompt.layout}" if res.prompt.layout else ""),
        "",
        "Creators: "
        + "; ".join(f"{ds}: {', '.join(c.name for c in cs)}" for ds, cs in d.creators.items())
        + f". Verifier: {trace['detector'].get('name', trace['detector'].get('class'))} at threshold {d.threshold}.",
        "",
        images,
        "",
        "## Objects (final round)",
        "",
        *_objects_table(res.verdict),
        "",
    ]
    if res.verdict.relations:
        lines += ["## Relations", "", "| relation | verdict |", "|---|---|"]
        lines += [
            f"| {r.subject} {r.relation} {r.object} | {'ok' if r.ok else 'fails'} |"
            for r in res.verdict.relations
        ]
        lines.append("")
    styled = [(k, d) for k, d in enumerate(res.drawings) if d.style]
    if styled:
        lines += [
            "## Style",
            "",
            "Each style word is a pixel edit of its object's drawing (Morpho-MNIST), measured on the drawing; "
            "the detector's verdict above does not judge style.",
            "",
            "| object | word | target | before | after | goal |",
            "|---:|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {k} | {s['word']} | {s['target']} | {s['before']:.2f} | {s['after']:.2f} | {s['goal']:.2f} |"
            for k, d in styled
            for s in d.style
        ]
        lines.append("")
    if res.upscale_check:
        u = res.upscale_check
        lines += [
            f"Upscaled x{u['scale']} to {u['size'][1]}x{u['size'][0]} (`canvas_x{u['scale']}.png`, {u['net']}); "
            f"downsampled back it {'passes' if u['verdict_downsampled'] else 'fails'} "
            f"({'consistent' if u['consistent'] else 'NOT consistent'} with the canvas' verdict).",
            "",
        ]
    if res.verdict.layout_ok is not None:
        lines += [f"Layout {res.prompt.layout['kind']}: {'ok' if res.verdict.layout_ok else 'fails'}.", ""]
    lines += ["## Rounds", "", "| round | actions | verdict |", "|---:|---|---|"]
    for rd in res.rounds:
        acts = "; ".join(
            f"{a['action']} {a.get('object', '')} ({a.get('why', '')}{', ' + a['how'] if 'how' in a else ''})".replace(
                " ()", ""
            )
            for a in rd["actions"]
        )
        v = rd["verdict"]
        lines.append(f"| {rd['round']} | {acts} | {'pass' if v['passed'] else '; '.join(v['reasons'])} |")
    md = "\n".join(lines) + "\n"
    write_text(out / "report.md", md)
    embedded = " ".join(
        f'<img width={width} alt="{alt}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for alt, _, png, width in shown
    )
    page = (
        "<!doctype html><meta charset=utf-8>"
        f"<title>{html.escape(res.prompt.text)}: {status}</title>"
        "<style>body{font-family:sans-serif;max-width:64em;margin:2em auto}img{image-rendering:pixelated;margin:4px;vertical-align:top}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style>"
        + _md_to_html(md).replace(f"<p>{images}</p>", embedded)
    )
    write_text(out / "report.html", page)


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
