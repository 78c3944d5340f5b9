"""A Director run's outputs: final images, ``trace.json``, and the run's report
(:mod:`artdirector.agents.report_batch`) as ``report.md`` and a ``report.html`` that opens from disk with
nothing beside it (:mod:`artdirector.agents.report_render`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import torch

from artdirector.agents.evaluation import Result
from artdirector.agents.memory import TRACE_VERSION
from artdirector.agents.report_batch import batch_report
from artdirector.agents.report_render import to_html, to_markdown
from artdirector.io import atomic_write, save_grid, write_json, write_text


def build_trace(d: Any, result: Result, target: float, seconds: float) -> dict[str, Any]:
    """``trace.json`` of ``result``; ``d``: the Director that ran (its agents, policy, budget, config)."""
    ev_sel, ev_rep = d.eval.selection, d.eval.report
    verdict = {k: v for k, v in result.verdict.items() if k != "images"}
    return {
        "version": TRACE_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "request": {
            "text": result.request.text,
            "task": result.request.task,
            "understood": result.request.understood,
            "classes": list(result.request.classes) if result.request.classes else None,
        },
        "model": {
            "checkpoint": str(result.memory.steps[0].params.get("model", "")),
            "why": d.gen.why,
            "creator": getattr(d, "creator_info", None) or d.gen.creator.describe(),
            "candidates": d.gen.candidates,
        },
        "policy": type(d.policy).__name__,
        "target": {"fid": target, "fid_over_floor": d.target_over_floor, "split": "selection"},
        "budget": {"steps": d.max_steps, "seconds": d.max_seconds},
        "decision_rule": d.decision_rule,
        "evaluator": {
            "name": ev_sel.name,
            "feature_network": ev_sel.identity,
            "reference": ev_sel.reference_key,
            "report_reference": ev_rep.reference_key,
        },
        "n": len(result.samples),
        "floor": result.floor,
        "steps": result.memory.to_list(),
        "chain": [
            {"action": c.action, "params": c.params, "model": c.model_path, "finishing": c.finishing}
            for c in result.chain
        ],
        "stop": {"reason": result.stop_reason, "target_met": result.target_met},
        "final": {
            "metrics": result.report.metrics(),
            "split": "selection",
            "history": result.samples.history,
            "model": str(d.gen.ckpt),
            "class_counts": result.report.class_counts(),
        },
        "finish": {
            "actions": [{"action": c["action"], "params": c["params"]} for c in result.finish],
            "checks": result.finish,
            "met": all(c["met"] for c in result.finish),
            "outputs": {"grid": f"grid_{result.finish_tag}.png", "images": f"final_{result.finish_tag}/"},
            "metrics": result.finished_report.metrics(),
            "history": result.finished.history,
            "size": list(result.finished.images.shape[-2:]),
        }
        if result.finished is not None
        else None,
        "verdict": verdict,
        "memory": d.policy.prior.to_trace(result.memory) if getattr(d.policy, "prior", None) else None,
        "seconds": round(seconds, 3),
        "config": d.config,
    }


def _save_batch(samples: Any, folder, grid, tensors: tuple[str, ...]) -> None:
    """Each image as ``folder/NNNN.png``, each of ``tensors`` the samples have as ``folder/<name>.pt``, and
    the first 64 images as the PNG ``grid``."""
    for i, img in enumerate(samples.images):
        save_grid(img.unsqueeze(0), folder / f"{i:04d}.png", nrow=1)
    for name in tensors:
        if (t := getattr(samples, name)) is not None:
            atomic_write(folder / f"{name}.pt", lambda p, t=t: torch.save(t.clone(), p))
    save_grid(samples.images[:64], grid)


def write_outputs(d: Any, result: Result, target: float, seconds: float) -> dict[str, Any]:
    """The run's images, ``trace.json``, ``report.md`` and ``report.html`` under ``d.output_dir``."""
    out = d.output_dir
    _save_batch(result.samples, out / "final", out / "grid.png", ("images", "latents", "labels"))
    if result.finished is not None:  # what the finishing actions made (e.g. x4 images), beside the final ones
        tag = result.finish_tag
        _save_batch(result.finished, out / f"final_{tag}", out / f"grid_{tag}.png", ("images",))
    for name, images in result.verdict.get("images", {}).items():
        save_grid(images, out / "verdict" / f"{name}.png")
    trace = build_trace(d, result, target, seconds)
    write_json(out / "trace.json", trace)
    report = batch_report(trace)
    markdown = to_markdown(report, out)
    write_text(out / "report.md", markdown)
    write_text(out / "report.html", to_html(report, out))
    if d.writer is not None:
        d.writer.add_text("agent/report", markdown, 0)
        d.writer.close()
    return trace
