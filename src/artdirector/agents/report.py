"""A Director run's outputs: final images, ``trace.json``, ``report.md`` and a ``report.html`` whose images
(base64 PNG) and charts (SVG) are inline, so that it opens from disk with nothing beside it: the request as
understood, the model and why, the decision rule, per-step metrics with their uncertainty, the floor, the
held-out verdict, a class histogram and the FID-against-seconds curve."""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from typing import Any

import torch

from artdirector.agents.evaluation import Result
from artdirector.agents.memory import TRACE_VERSION
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
    write_text(out / "report.md", render_markdown(trace))
    write_text(out / "report.html", render_html(trace, out))
    if d.writer is not None:
        d.writer.add_text("agent/report", render_markdown(trace), 0)
        d.writer.close()
    return trace


def _pm(m: dict[str, float] | None, key: str = "fid", se: str = "fid_se", digits: int = 2) -> str:
    if not m:
        return "-"
    return f"{m[key]:.{digits}f} ± {m.get(se, float('nan')):.{digits}f}"


def _ref(key: dict[str, Any] | None) -> str:
    key = key or {}
    return f"{key.get('n')} real {key.get('dataset')} images of the {key.get('split')} split"


def _floor_line(trace: dict[str, Any]) -> str:
    f = trace["floor"]
    if not f:
        return "not measured (fewer spare real images than n)"
    return (
        f"real vs real at n={f['n']}: selection {f['selection']['fid']:.2f} ± {f['selection']['sd']:.2f}, "
        f"report {f['report']['fid']:.2f} ± {f['report']['sd']:.2f} ({f['real']})"
    )


def _verdict_line(trace: dict[str, Any]) -> str:
    v = trace["verdict"]
    if not v:
        return "not measured (replay=false)"
    line = (
        f"report-split FID raw {_pm(v['raw'])} -> directed {_pm(v['directed'])}: gain {v['gain']:+.2f} ± "
        f"{v['gain_se']:.2f} ({100 * v['relative_gain']:+.1f} %), chain {v['chain'] or 'empty'}; {v['note']}"
    )
    if c := v.get("copy_rate"):
        line += (
            f". Copy rate {100 * c['copy_rate']:.1f} ± {100 * c['se']:.1f} % of {c['n_samples']} directed samples "
            f"nearer a training image (of {c['n_train']}) than {100 * (1 - c['quantile']):g} % of held-out real images are "
            f"(`verdict/copies.png`)"
        )
    return line


def _finish_lines(trace: dict[str, Any]) -> list[str]:
    """One line per finishing action: its check on the selection split and, replayed, on the report split."""
    f = trace.get("finish")
    if not f:
        return []
    # the replay checks the same finishing actions in the same order: pair them by position
    held = list((trace.get("verdict") or {}).get("finish") or [])
    lines = []
    for i, c in enumerate(f["checks"]):
        line = f"`{c['action']}` {c['params']}: selection split, {c['summary']}"
        h = held[i] if i < len(held) and held[i]["action"] == c["action"] else None
        if h is not None:
            line += f". Held-out replay, report split, {h['summary']}"
        if not c["met"] or (h is not None and not h["met"]):
            line = "**CHECK FAILED (output kept as asked):** " + line
        lines.append(line)
    return lines


def _candidate_rows(trace: dict[str, Any]) -> list[list[str]]:
    """The routing table: each candidate creator, its evidence, and whether (and why not) it was eligible."""
    rows = []
    for c in trace["model"].get("candidates") or []:
        fid = "-" if c.get("fid") is None else f"{c['fid']:.2f} ± {c.get('fid_se') or float('nan'):.2f}"
        conf = "-" if c.get("conformance") is None else f"{100 * c['conformance']:.1f} %"
        spi = c.get("seconds_per_image")
        spi = "-" if spi is None else f"{1000 * spi:.3g} ms ({c.get('device')})"
        verdict = f"rank {c['rank']}" if c.get("rank") else (c.get("excluded_by") or "-")
        variety = c.get("variety_check") or "-"  # recall and within-class variety against collapse
        rows.append([str(c["name"]), ", ".join(c.get("accepts", [])), fid, conf, variety, spi, verdict])
    return rows


_CANDIDATE_HEAD = ["creator", "accepts", "FID (routing evidence)", "conformance", "variety"]
_CANDIDATE_HEAD += ["time / image", "routing"]


def _data_line(trace: dict[str, Any]) -> str:
    """The Data Agent's card as the run read it: splits, labels, and every warning."""
    card = (trace.get("config") or {}).get("data_card")
    if not card:
        return "no data card read"
    n = card.get("n_per_split", {})
    line = (
        f"{card.get('dataset')}: train {n.get('train')}, selection {n.get('selection')}, report "
        f"{n.get('report')} images; {'labelled' if card.get('has_labels') else 'unlabelled'}"
    )
    for w in card.get("warnings") or []:
        line += f"; **warning:** {w}"
    return line


def _kept(s: dict[str, Any]) -> str:
    if s.get("finishing"):
        return "finish: check " + ("met" if s["check"]["met"] else "NOT met")
    return "yes" if s["accepted"] else "no"


def render_markdown(trace: dict[str, Any]) -> str:
    """A Markdown page: the request, the decision rule, the floor, the verdict, each step's metrics and grid."""
    ref = trace["evaluator"]["reference"]
    lines = [
        "# artdirector run",
        "",
        f"**Request:** {trace['request']['text']!r}  ",
        f"**Understood:** {trace['request']['understood']} (task `{trace['request']['task']}`)  ",
        f"**Model:** {trace['model']['why']}; final images from {trace['final']['model']}  ",
        f"**Policy:** {trace['policy']}, target selection FID <= {trace['target']['fid']:.3f}, budget "
        f"{trace['budget']['steps']} steps / {trace['budget']['seconds']} s  ",
        f"**Evaluator:** {trace['evaluator']['name']} ({trace['evaluator']['feature_network']}), "
        f"{trace['n']} samples vs {ref.get('n')} real {ref.get('dataset')}/{ref.get('split')} (decisions)  ",
        f"**Decision rule:** {trace['decision_rule']}  ",
        f"**Floor:** {_floor_line(trace)}  ",
        f"**Stopped:** {trace['stop']['reason']}  ",
        f"**Held-out verdict:** {_verdict_line(trace)}  ",
        *(f"**Finishing:** {line}  " for line in _finish_lines(trace)),
        f"**Data:** {_data_line(trace)}",
        "",
        *(
            [
                "## Creators considered",
                "",
                "| " + " | ".join(_CANDIDATE_HEAD) + " |",
                "|" + "---|" * len(_CANDIDATE_HEAD),
                *("| " + " | ".join(r) + " |" for r in _candidate_rows(trace)),
                "",
            ]
            if len(trace["model"].get("candidates") or []) > 1
            else []
        ),
        "## Final images",
        "",
        "![final](grid.png)",
        "",
        *(
            [
                f"Finished ({' -> '.join(a['action'] for a in trace['finish']['actions'])}, "
                f"{'x'.join(map(str, trace['finish']['size']))} px; `{trace['finish']['outputs']['images']}`):",
                "",
                f"![finished]({trace['finish']['outputs']['grid']})",
                "",
            ]
            if trace.get("finish")
            else []
        ),
        "## Steps (selection split)",
        "",
        "| step | action | FID before | FID after | gain ± SE | KID after | precision | recall | kept | s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|:-:|---:|",
    ]
    for s in trace["steps"]:
        a = s["metrics_after"]
        gain = f"{s['gain']:+.2f} ± {s['gain_se']:.2f}" if s["index"] else "-"
        lines.append(
            f"| {s['index']} | {s['action']} | {_pm(s['metrics_before'])} | {_pm(a)} | {gain} | "
            f"{a['kid']:.4f} | {a['precision']:.3f} | {a['recall']:.3f} | {_kept(s)} | "
            f"{s['seconds']:.1f} |"
        )
    lines += ["", "## Step by step", ""]
    for s in trace["steps"]:
        lines += [
            f"### {s['index']}. {s['action']}",
            "",
            f"{s['note']}  ",
            f"parameters: `{s['params']}`  ",
            *([f"decision: {s['decision']}  "] if s["decision"] else []),
            "",
            f"![step {s['index']}](steps/{s['index']:02d}_{s['action']}.png)",
            "",
        ]
    return "\n".join(lines) + "\n"


# ---- HTML --------------------------------------------------------------------------------------------
def _img(path, alt: str) -> str:
    if not path.is_file():
        return f"<p><em>({html.escape(alt)}: not written)</em></p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(alt)}</figcaption></figure>"
    )


def _histogram_svg(counts: dict[str, list[int] | None], title: str) -> str:
    series = {k: v for k, v in counts.items() if v}
    if not series:
        return ""
    w, h, pad = 420, 180, 24
    top = max(max(v) for v in series.values()) or 1
    colours = ["#4c72b0", "#dd8452"]
    bar = (w - 2 * pad) / 10 / (len(series) + 0.5)
    parts = [
        f'<svg role="img" aria-label="{html.escape(title)}" width="{w}" height="{h + 20}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{html.escape(title)}</title>'
    ]
    for j, (name, values) in enumerate(series.items()):
        for c, v in enumerate(values):
            x = pad + c * (w - 2 * pad) / 10 + j * bar
            bh = (h - 2 * pad) * v / top
            parts.append(
                f'<rect x="{x:.1f}" y="{h - bh:.1f}" width="{bar:.1f}" height="{bh:.1f}" '
                f'fill="{colours[j % 2]}"><title>{name}: class {c}, {v}</title></rect>'
            )
        parts.append(f'<rect x="{pad}" y="{4 + 14 * j}" width="10" height="10" fill="{colours[j % 2]}"/>')
        parts.append(f'<text x="{pad + 14}" y="{13 + 14 * j}" font-size="11">{html.escape(name)}</text>')
    for c in range(10):
        parts.append(
            f'<text x="{pad + (c + 0.3) * (w - 2 * pad) / 10:.1f}" y="{h + 14}" font-size="11">{c}</text>'
        )
    return "".join(parts) + "</svg>"


def _curve_svg(steps: list[dict[str, Any]], title: str) -> str:
    """Selection FID (± SE) of the kept samples against cumulative seconds."""
    pts, best = [], None
    for s in steps:
        if s["accepted"] or best is None:
            best = s["metrics_after"]
        pts.append((s["elapsed"], best["fid"], best.get("fid_se", 0.0)))
    w, h, pad = 420, 200, 40
    t_max = max(p[0] for p in pts) or 1.0
    lo = min(p[1] - 2 * p[2] for p in pts)
    hi = max(p[1] + 2 * p[2] for p in pts)
    span = (hi - lo) or 1.0

    def xy(t: float, f: float) -> tuple[float, float]:
        return pad + (w - 2 * pad) * t / t_max, h - pad - (h - 2 * pad) * (f - lo) / span

    parts = [
        f'<svg role="img" aria-label="{html.escape(title)}" width="{w}" height="{h}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{html.escape(title)}</title>',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#888"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#888"/>',
    ]
    line = " ".join("{:.1f},{:.1f}".format(*xy(t, f)) for t, f, _ in pts)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#4c72b0" stroke-width="2"/>')
    for t, f, se in pts:
        x, y = xy(t, f)
        (_, y0), (_, y1) = xy(t, f - se), xy(t, f + se)
        parts.append(f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y1:.1f}" stroke="#4c72b0"/>')
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#4c72b0"><title>{t:.0f} s: FID {f:.2f} ± {se:.2f}</title></circle>'
        )
    parts.append(
        f'<text x="{pad}" y="{h - 8}" font-size="11">0 s</text>'
        f'<text x="{w - pad - 30}" y="{h - 8}" font-size="11">{t_max:.0f} s</text>'
        f'<text x="2" y="{pad - 6}" font-size="11">{hi:.1f}</text>'
        f'<text x="2" y="{h - pad}" font-size="11">{lo:.1f}</text>'
    )
    return "".join(parts) + "</svg>"


_CSS = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
td:nth-child(2),th:nth-child(2){text-align:left}figure{display:inline-block;margin:.5em}
img{image-rendering:pixelated;width:320px}dt{font-weight:600;margin-top:.4em}.no{color:#a33}.yes{color:#282}"""


def render_html(trace: dict[str, Any], out) -> str:
    e = html.escape
    v = trace["verdict"]
    rows = []
    for s in trace["steps"]:
        a = s["metrics_after"]
        gain = f"{s['gain']:+.2f} ± {s['gain_se']:.2f}" if s["index"] else "-"
        kept = '<span class="yes">kept</span>' if s["accepted"] else '<span class="no">rejected</span>'
        if s.get("finishing"):
            met = s["check"]["met"]
            kept = f'<span class="{"yes" if met else "no"}">{e(_kept(s))}</span>'
        rows.append(
            f"<tr><td>{s['index']}</td><td>{e(s['action'])}</td><td>{_pm(s['metrics_before'])}</td>"
            f"<td>{_pm(a)}</td><td>{gain}</td><td>{a['kid']:.4f} ± {a['kid_std']:.4f}</td>"
            f"<td>{a['precision']:.3f}</td><td>{a['recall']:.3f}</td><td>{kept}</td><td>{s['seconds']:.1f}</td></tr>"
        )
    counts = {"selected batch": trace["final"]["class_counts"]}
    if v:
        counts = {f"held-out {k}": v["class_counts"][k] for k in ("raw", "directed")}
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>artdirector run</title>"
        f"<style>{_CSS}</style></head><body><h1>artdirector run</h1><dl>",
        f"<dt>Request</dt><dd>{e(trace['request']['text'])}</dd>",
        f"<dt>Understood</dt><dd>{e(trace['request']['understood'])} (task {e(trace['request']['task'])})</dd>",
        f"<dt>Data</dt><dd>{e(_data_line(trace).replace('**', ''))}</dd>",
        f"<dt>Model</dt><dd>{e(trace['model']['why'])}<br>final images from {e(trace['final']['model'])}"
        + (
            "<table><tr>"
            + "".join(f"<th>{e(h)}</th>" for h in _CANDIDATE_HEAD)
            + "</tr>"
            + "".join(
                "<tr>" + "".join(f"<td>{e(x)}</td>" for x in r) + "</tr>" for r in _candidate_rows(trace)
            )
            + "</table>"
            if len(trace["model"].get("candidates") or []) > 1
            else ""
        )
        + "</dd>",
        f"<dt>Policy and budget</dt><dd>{e(trace['policy'])}; target selection FID &le; {trace['target']['fid']:.3f};"
        f" {trace['budget']['steps']} steps / {trace['budget']['seconds']} s</dd>",
        f"<dt>Evaluator</dt><dd>{e(trace['evaluator']['name'])} ({e(trace['evaluator']['feature_network'])}), "
        f"n = {trace['n']} generated; decisions against {e(_ref(trace['evaluator']['reference']))}, the verdict "
        f"against {e(_ref(trace['evaluator']['report_reference']))}</dd>",
        f"<dt>Decision rule</dt><dd>{e(trace['decision_rule'])}</dd>",
        f"<dt>Floor</dt><dd>{e(_floor_line(trace))}</dd>",
        f"<dt>Stopped</dt><dd>{e(trace['stop']['reason'])}</dd>",
        f"<dt>Held-out verdict</dt><dd><strong>{e(_verdict_line(trace))}</strong></dd>",
        *(f"<dt>Finishing</dt><dd>{e(line.replace('**', ''))}</dd>" for line in _finish_lines(trace)),
        "</dl>",
        "<h2>Images</h2>",
        _img(out / "steps" / "00_generate.png", "before: the first generated batch"),
        _img(out / "grid.png", "after: the final (selected) batch"),
    ]
    if trace.get("finish"):
        parts.append(_img(out / trace["finish"]["outputs"]["grid"], "finished: after the finishing actions"))
    if v:
        parts += [
            _img(out / "verdict" / "raw.png", "held-out replay: raw samples"),
            _img(out / "verdict" / "directed.png", "held-out replay: through the accepted chain"),
        ]
    parts += [
        "<h2>Steps (selection split)</h2><table><tr><th>step</th><th>action</th><th>FID before</th>"
        "<th>FID after</th><th>gain ± SE</th><th>KID ± std</th><th>precision</th><th>recall</th>"
        "<th>decision</th><th>s</th></tr>",
        *rows,
        "</table>",
        "<h2>Classes</h2><p>The classifier's label of every sample (a missing class is mode collapse).</p>",
        _histogram_svg(counts, "class histogram of the samples"),
        "<h2>FID against seconds</h2><p>Selection FID of the kept samples (± bootstrap SE) after each step.</p>",
        _curve_svg(trace["steps"], "selection FID against cumulative seconds"),
        "<h2>Step by step</h2>",
    ]
    for s in trace["steps"]:
        parts.append(
            f"<h3>{s['index']}. {e(s['action'])}</h3><p>{e(s['note'])}<br>parameters: "
            f"<code>{e(str(s['params']))}</code><br>{e(s['decision'])}</p>"
        )
        parts.append(
            _img(out / "steps" / f"{s['index']:02d}_{s['action']}.png", f"step {s['index']}: {s['action']}")
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
