"""A scene run's ``trace.json`` (or an edit's) as a :class:`~artdirector.agents.report_model.Report`: the
verdict, the prompt as parsed, the creators and the verifier, the canvas (before and after, for an edit) and
the canvas with each detection boxed, each object's verdict, the relations, style edits, the upscale and
layout checks, and every repair round."""

from __future__ import annotations

from typing import Any

from artdirector.agents.report_model import (
    Block,
    Image,
    Images,
    Inline,
    Paragraph,
    Report,
    Section,
    Table,
    code,
    para,
    strong,
    verdict,
)


def _asked(o: dict[str, Any]) -> str:
    """A planned object as its verdict names it: its size word, then its class."""
    return (f"{o['size']} " if o["size"] else "") + o["name"]


def _coords(box) -> str:
    return ", ".join(f"{c:.0f}" for c in box)


def _edit(trace: dict[str, Any]) -> list[Paragraph]:
    """What an edit was of, what it understood, what it kept and changed."""
    parent, edit = trace["parent"], trace["edit"]
    asked = {o["index"]: _asked(o) for o in trace["rounds"][-1]["verdict"]["objects"]}
    kept = sum(p is not None and k not in edit["changed"] for k, p in enumerate(edit["parent_index"]))
    changed = ", ".join(f"{k} ({asked[k]})" for k in edit["changed"]) or "none"
    return [
        para(
            f"Edit of {parent['run']} ({parent['request']!r}, {'passed' if parent['passed'] else 'failed'}): ",
            strong(edit["understood"]),
            f". Objects kept as they were (drawing and box): {kept} of {len(edit['parent_index'])}; "
            f"changed: {changed}.",
        ),
        *(para(f"{n[0].upper()}{n[1:]}.") for n in edit["notes"]),
        para("Before (the parent's canvas), after, and after with each detection boxed:"),
    ]


def _parsed(trace: dict[str, Any], is_edit: bool) -> str:
    p = trace["request"]["prompt"]
    objs = p["objects"]
    text = "After the edit: " if is_edit else "Parsed: "
    text += f"{len(objs)} object{'' if is_edit else ' kind'}(s) "
    text += ", ".join(f"{o['count']} x {(o['size'] + ' ') if o['size'] else ''}{o['name']}" for o in objs)
    if p["relations"]:
        rels = (
            f"{objs[r['subject']]['name']} {r['relation']} {objs[r['object']]['name']}"
            for r in p["relations"]
        )
        text += f"; relations: {', '.join(rels)}"
    if p.get("layout"):
        text += f"; layout: {p['layout']}"
    return text


def _header(trace: dict[str, Any]) -> list[Block]:
    final, one, is_edit = trace["final"], trace["one_shot"], "edit" in trace
    det = trace["detector"]
    creators = "; ".join(f"{ds}: {', '.join(c['name'] for c in cs)}" for ds, cs in trace["creators"].items())
    shown = [
        Image("canvas.png", "canvas", "after the edit" if is_edit else "", width=384),
        Image("annotated.png", "annotated", "each detection boxed and labelled with its verdict", width=512),
    ]
    if is_edit:  # the parent's canvas beside the new one
        shown.insert(0, Image("before.png", "before", "the parent's canvas", width=384))
    return [
        *(_edit(trace) if is_edit else []),
        para(
            strong("PASS" if final["passed"] else "FAIL"),
            f" after {final['rounds']} repair round(s), {final['seconds']:.1f} s ({final['stop']}). One-shot: "
            + ("pass" if one["passed"] else "fail (" + "; ".join(one["reasons"]) + ")")
            + ".",
        ),
        para(_parsed(trace, is_edit)),
        para(
            f"Creators: {creators}. Verifier: {det.get('name', det.get('class'))} at threshold "
            f"{trace['settings']['threshold']}."
        ),
        Images(shown),
    ]


def _objects(v: dict[str, Any]) -> Table:
    rows: list[list[Inline]] = []
    for o in v["objects"]:
        score = o["score"] if o["score"] is not None else "-"
        rows.append(
            [
                str(o["index"]),
                _asked(o),
                verdict("ok" if o["ok"] else o["problem"], o["ok"]),
                o["found_name"] or "-",
                _coords(o["found"] or o["planned"]),
                str(score),
            ]
        )
    for e in v["extras"]:
        rows.append(
            ["-", "(nothing)", verdict("extra", False), e["name"], _coords(e["box"]), str(e["score"])]
        )
    return Table(["#", "asked", "verdict", "found", "box (x0, y0, x1, y1)", "score"], rows, frozenset({5}))


def _style(trace: dict[str, Any]) -> list[Any]:
    rows: list[list[Inline]] = [
        [str(k), s["word"], s["target"], f"{s['before']:.2f}", f"{s['after']:.2f}", f"{s['goal']:.2f}"]
        for k, dr in enumerate(trace["drawings"])
        for s in dr.get("style") or []
    ]
    if not rows:
        return []
    note = (
        "Each style word is a pixel edit of its object's drawing (Morpho-MNIST), measured on the drawing; "
        "the detector's verdict above does not judge style."
    )
    head = ["object", "word", "target", "before", "after", "goal"]
    return [Section("Style", [para(note), Table(head, rows, frozenset({0, 3, 4, 5}))])]


def _checks(trace: dict[str, Any], v: dict[str, Any]) -> list[Section]:
    """The upscale's consistency and the layout, where the run has them."""
    blocks = []
    if u := trace.get("upscale"):
        blocks.append(
            para(
                f"Upscaled x{u['scale']} to {u['size'][1]}x{u['size'][0]} (",
                code(f"canvas_x{u['scale']}.png"),
                f", {u['net']}); downsampled back it {'passes' if u['verdict_downsampled'] else 'fails'} (",
                verdict("consistent" if u["consistent"] else "NOT consistent", u["consistent"]),
                " with the canvas' verdict).",
            )
        )
    if v["layout_ok"] is not None:
        kind = trace["request"]["prompt"]["layout"]["kind"]
        blocks.append(
            para(f"Layout {kind}: ", verdict("ok" if v["layout_ok"] else "fails", v["layout_ok"]), ".")
        )
    return [Section("Upscale and layout", blocks)] if blocks else []


def _action(a: dict[str, Any]) -> str:
    why = ", ".join(x for x in (a.get("why"), a.get("how")) if x)
    return " ".join(x for x in (a["action"], a.get("object")) if x) + (f" ({why})" if why else "")


def _rounds(trace: dict[str, Any]) -> Table:
    rows: list[list[Inline]] = []
    for rd in trace["rounds"]:
        v = rd["verdict"]
        rows.append(
            [
                str(rd["round"]),
                "; ".join(_action(a) for a in rd["actions"]),
                verdict("pass" if v["passed"] else "; ".join(v["reasons"]), v["passed"]),
            ]
        )
    return Table(["round", "actions", "verdict"], rows, frozenset({0}))


def scene_report(trace: dict[str, Any]) -> Report:
    """The report of a scene run, or of an edit of one, from its ``trace.json``."""
    text = trace["request"]["text"]
    final_verdict = trace["rounds"][-1]["verdict"]  # the last round's is the canvas' verdict
    sections = [
        Section("", _header(trace)),
        Section("Objects (final round)", [_objects(final_verdict)]),
    ]
    if final_verdict["relations"]:
        rows = [
            [f"{r['subject']} {r['relation']} {r['object']}", verdict("ok" if r["ok"] else "fails", r["ok"])]
            for r in final_verdict["relations"]
        ]
        sections.append(Section("Relations", [Table(["relation", "verdict"], rows)]))
    sections += [
        *_style(trace),
        *_checks(trace, final_verdict),
        Section("Rounds", [_rounds(trace)]),
    ]
    return Report(f"Scene edit: {text}" if "edit" in trace else f"Scene: {text}", sections)
