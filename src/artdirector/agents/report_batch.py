"""A batch Director run's ``trace.json`` as a :class:`~artdirector.agents.report_model.Report`: the request as
understood, the model and why, the decision rule, the floor, the held-out verdict, the creators considered,
the images before and after, per-step metrics with their uncertainty, the class histogram and the
FID-against-seconds curve, and each step's note, parameters, decision and grid."""

from __future__ import annotations

from typing import Any

from artdirector.agents.report_charts import curve_svg, histogram_svg
from artdirector.agents.report_model import (
    Fields,
    Figure,
    Image,
    Images,
    Inline,
    Line,
    Paragraph,
    Report,
    Section,
    Table,
    code,
    para,
    strong,
    verdict,
)


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


def _verdict_line(trace: dict[str, Any]) -> Line:
    v = trace["verdict"]
    if not v:
        return ["not measured (replay=false)"]
    line: Line = [
        strong(
            f"report-split FID raw {_pm(v['raw'])} -> directed {_pm(v['directed'])}: gain {v['gain']:+.2f} ± "
            f"{v['gain_se']:.2f} ({100 * v['relative_gain']:+.1f} %), chain {v['chain'] or 'empty'}; {v['note']}"
        )
    ]
    if c := v.get("copy_rate"):
        line += [
            f". Copy rate {100 * c['copy_rate']:.1f} ± {100 * c['se']:.1f} % of {c['n_samples']} directed samples "
            f"nearer a training image (of {c['n_train']}) than {100 * (1 - c['quantile']):g} % of held-out real "
            "images are (",
            code("verdict/copies.png"),
            ")",
        ]
    return line


def _finish_lines(trace: dict[str, Any]) -> list[Line]:
    """One line per finishing action: its check on the selection split and, replayed, on the report split."""
    f = trace.get("finish")
    if not f:
        return []
    # the replay checks the same finishing actions in the same order: pair them by position
    held = list((trace.get("verdict") or {}).get("finish") or [])
    lines = []
    for i, c in enumerate(f["checks"]):
        line: Line = [code(c["action"]), f" {c['params']}: selection split, {c['summary']}"]
        h = held[i] if i < len(held) and held[i]["action"] == c["action"] else None
        if h is not None:
            line.append(f". Held-out replay, report split, {h['summary']}")
        if not c["met"] or (h is not None and not h["met"]):
            line = [strong("CHECK FAILED (output kept as asked):"), " ", *line]
        lines.append(line)
    return lines


def _data_line(trace: dict[str, Any]) -> Line:
    """The Data Agent's card as the run read it: splits, labels, and every warning."""
    card = (trace.get("config") or {}).get("data_card")
    if not card:
        return ["no data card read"]
    n = card.get("n_per_split", {})
    line: Line = [
        f"{card.get('dataset')}: train {n.get('train')}, selection {n.get('selection')}, report "
        f"{n.get('report')} images; {'labelled' if card.get('has_labels') else 'unlabelled'}"
    ]
    for w in card.get("warnings") or []:
        line += ["; ", strong("warning:"), f" {w}"]
    return line


def _header(trace: dict[str, Any]) -> Fields:
    req, ev = trace["request"], trace["evaluator"]
    return Fields(
        [
            ("Request", [repr(req["text"])]),
            ("Understood", [f"{req['understood']} (task ", code(req["task"]), ")"]),
            ("Data", _data_line(trace)),
            ("Model", [f"{trace['model']['why']}; final images from {trace['final']['model']}"]),
            (
                "Policy and budget",
                [
                    f"{trace['policy']}; target selection FID ≤ {trace['target']['fid']:.3f}; "
                    f"{trace['budget']['steps']} steps / {trace['budget']['seconds']} s"
                ],
            ),
            (
                "Evaluator",
                [
                    f"{ev['name']} ({ev['feature_network']}), n = {trace['n']} generated; decisions against "
                    f"{_ref(ev['reference'])}, the verdict against {_ref(ev['report_reference'])}"
                ],
            ),
            ("Decision rule", [trace["decision_rule"]]),
            ("Floor", [_floor_line(trace)]),
            ("Stopped", [trace["stop"]["reason"]]),
            ("Held-out verdict", _verdict_line(trace)),
            *(("Finishing", line) for line in _finish_lines(trace)),
        ]
    )


def _candidates(trace: dict[str, Any]) -> Table:
    """The routing table: each candidate creator, its evidence, and whether (and why not) it was eligible."""
    rows: list[list[Inline]] = []
    for c in trace["model"].get("candidates") or []:
        fid = "-" if c.get("fid") is None else f"{c['fid']:.2f} ± {c.get('fid_se') or float('nan'):.2f}"
        conf = "-" if c.get("conformance") is None else f"{100 * c['conformance']:.1f} %"
        spi = c.get("seconds_per_image")
        spi = "-" if spi is None else f"{1000 * spi:.3g} ms ({c.get('device')})"
        routing = f"rank {c['rank']}" if c.get("rank") else (c.get("excluded_by") or "-")
        variety = c.get("variety_check") or "-"  # recall and within-class variety against collapse
        rows.append([str(c["name"]), ", ".join(c.get("accepts", [])), fid, conf, variety, spi, routing])
    head = [
        "creator",
        "accepts",
        "FID (routing evidence)",
        "conformance",
        "variety",
        "time / image",
        "routing",
    ]
    return Table(head, rows, frozenset({2, 3, 5}))


def _kept(s: dict[str, Any]) -> Inline:
    if s.get("finishing"):
        met = s["check"]["met"]
        return verdict("finish: check " + ("met" if met else "NOT met"), met)
    return verdict("kept" if s["accepted"] else "rejected", s["accepted"])


def _steps(trace: dict[str, Any]) -> Table:
    rows: list[list[Inline]] = []
    for s in trace["steps"]:
        a = s["metrics_after"]
        gain = f"{s['gain']:+.2f} ± {s['gain_se']:.2f}" if s["index"] else "-"
        rows.append(
            [
                str(s["index"]),
                s["action"],
                _pm(s["metrics_before"]),
                _pm(a),
                gain,
                f"{a['kid']:.4f} ± {a['kid_std']:.4f}",
                f"{a['precision']:.3f}",
                f"{a['recall']:.3f}",
                _kept(s),
                f"{s['seconds']:.1f}",
            ]
        )
    head = ["step", "action", "FID before", "FID after", "gain ± SE", "KID ± std", "precision", "recall"]
    return Table([*head, "decision", "s"], rows, frozenset({0, 2, 3, 4, 5, 6, 7, 9}))


def _images(trace: dict[str, Any]) -> list[Paragraph | Images]:
    shown = [
        Image("steps/00_generate.png", "before", "the first generated batch"),
        Image("grid.png", "final", "the final (selected) batch"),
    ]
    blocks: list[Paragraph | Images] = []
    if f := trace.get("finish"):
        blocks.append(
            para(
                f"Finished ({' -> '.join(a['action'] for a in f['actions'])}, "
                f"{'x'.join(map(str, f['size']))} px; images in ",
                code(f["outputs"]["images"]),
                ")",
            )
        )
        shown.append(Image(f["outputs"]["grid"], "finished", "after the finishing actions"))
    if trace["verdict"]:
        shown += [
            Image("verdict/raw.png", "raw", "held-out replay: raw samples"),
            Image("verdict/directed.png", "directed", "held-out replay: through the accepted chain"),
        ]
    return [*blocks, Images(shown)]


def _classes(trace: dict[str, Any]) -> list[Paragraph | Figure]:
    v = trace["verdict"]
    counts = {"selected batch": trace["final"]["class_counts"]}
    if v:
        counts = {f"held-out {k}": v["class_counts"][k] for k in ("raw", "directed")}
    series = {k: c for k, c in counts.items() if c}
    if not series:
        return [para("No classifier labels: the samples have no class histogram.")]
    n_classes = max(len(c) for c in series.values())
    data = Table(["samples", *map(str, range(n_classes))], [[k, *map(str, c)] for k, c in series.items()])
    data.right = frozenset(range(1, n_classes + 1))
    title = "class histogram of the samples"
    return [
        para("The classifier's label of every sample (a missing class is mode collapse)."),
        Figure(histogram_svg(counts, title), title, data),
    ]


def _step_section(s: dict[str, Any]) -> Section:
    lines: list[Line] = [[s["note"]], ["parameters: ", code(str(s["params"]))]]
    if s["decision"]:
        lines.append([f"decision: {s['decision']}"])
    image = Image(f"steps/{s['index']:02d}_{s['action']}.png", f"step {s['index']}", s["action"])
    return Section(f"{s['index']}. {s['action']}", [Paragraph(lines), Images([image])], level=3)


def batch_report(trace: dict[str, Any]) -> Report:
    """The report of a batch run from its ``trace.json``."""
    curve = "selection FID against cumulative seconds"
    sections = [Section("", [_header(trace)])]
    if len(trace["model"].get("candidates") or []) > 1:
        sections.append(Section("Creators considered", [_candidates(trace)]))
    sections += [
        Section("Images", _images(trace)),
        Section("Steps (selection split)", [_steps(trace)]),
        Section("Classes", _classes(trace)),
        Section(
            "FID against seconds",
            [
                para("Selection FID of the kept samples (± bootstrap SE) after each step."),
                Figure(curve_svg(trace["steps"], curve), curve),
            ],
        ),
        Section("Step by step"),
        *(_step_section(s) for s in trace["steps"]),
    ]
    return Report("artdirector run", sections)
