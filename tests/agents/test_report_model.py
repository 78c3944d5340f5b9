"""One report model for batch and scene runs: both pages come from the same blocks, say the same facts, escape
what they are given, and the HTML page is well formed with every image inline."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pytest

from artdirector.agents.report_batch import batch_report
from artdirector.agents.report_model import (
    Fields,
    Figure,
    Image,
    Images,
    Paragraph,
    Report,
    Section,
    Span,
    Table,
    code,
    para,
    strong,
    verdict,
)
from artdirector.agents.report_render import to_html, to_markdown
from artdirector.agents.report_scene import scene_report
from helpers import HTMLPage

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[\w.±%-]+", text))


def _sample(tmp_path: Path) -> Report:
    (tmp_path / "a.png").write_bytes(PNG)
    return Report(
        "run <1> & co",
        [
            Section(
                "",
                [
                    Fields(
                        [("Request", ["'<script>alert(1)</script>'"]), ("Floor", ["real vs real 4.2 ± 0.3"])]
                    ),
                    Paragraph([[strong("PASS"), " after 2 rounds"], ["parameters: ", code("{'z': 0.5}")]]),
                ],
            ),
            Section(
                "Steps",
                [
                    Table(
                        ["step", "action", "FID"],
                        [["0", "a | b", "12.5"], ["1", verdict("rejected", False), "13.0"]],
                        frozenset({0, 2}),
                    ),
                    Images([Image("a.png", "final", "the selected batch"), Image("gone.png", "lost")]),
                    Figure('<svg role="img"><title>curve</title></svg>', "the curve", Table(["x"], [["7"]])),
                ],
            ),
        ],
    )


def test_markdown_and_html_say_the_same_facts(tmp_path) -> None:
    report = _sample(tmp_path)
    md, page = to_markdown(report, tmp_path), HTMLPage(to_html(report, tmp_path))
    html_words = _words(" ".join(page.text))
    for fact in ("PASS", "rejected", "12.5", "13.0", "4.2", "Floor", "Steps", "selected", "lost", "written"):
        assert fact in _words(md) and fact in html_words, fact


def test_html_is_well_formed_escaped_and_self_contained(tmp_path) -> None:
    report = _sample(tmp_path)
    text = to_html(report, tmp_path)
    page = HTMLPage(text)
    assert not page.errors and page.stack == [], (page.errors, page.stack)
    assert "script" not in page.tags and "&lt;script&gt;" in text  # the request is shown, never run
    assert "<title>run &lt;1&gt; &amp; co</title>" in text
    (img,) = page.images  # the one written image inline; the missing one said to be missing
    assert img["alt"] == "final" and base64.b64decode(img["src"].split(",", 1)[1]) == PNG
    assert "(lost: not written)" in text and "final: the selected batch" in text
    assert "<svg" in text and page.tags.count("table") == 1  # the figure drawn, its numbers not repeated
    assert '<span class="no">rejected</span>' in text and "<strong>PASS</strong>" in text


def test_markdown_tables_links_and_spans(tmp_path) -> None:
    md = to_markdown(_sample(tmp_path), tmp_path)
    assert md.startswith("# run <1> & co\n")
    assert "| step | action | FID |\n|---:|---|---:|\n| 0 | a \\| b | 12.5 |\n| 1 | rejected | 13.0 |" in md
    assert "![final](a.png) *(lost: not written)*  \n*final: the selected batch*" in md
    assert "**PASS** after 2 rounds  \nparameters: `{'z': 0.5}`" in md
    assert "**Request:** '<script>alert(1)</script>'  \n**Floor:**" in md
    assert "*the curve (a chart in report.html)*\n\n| x |" in md  # a chart's numbers stand in for it
    assert to_markdown(Report("t", [Section("", [para(code("a`b"))])])).endswith("``a`b``\n")


def test_a_span_style_is_checked() -> None:
    with pytest.raises(ValueError, match="not one of"):
        Span("x", "blink")


def _batch_trace(**over) -> dict:
    step = {
        "index": 0,
        "action": "generate",
        "params": {},
        "note": "first batch",
        "decision": "",
        "accepted": True,
        "gain": 0.0,
        "gain_se": 0.0,
        "seconds": 1.0,
        "elapsed": 1.0,
        "metrics_before": None,
        "metrics_after": {
            "fid": 50.0,
            "fid_se": 1.0,
            "kid": 0.01,
            "kid_std": 0.001,
            "precision": 0.5,
            "recall": 0.4,
        },
    }
    cand = {"name": "dcgan", "accepts": ["none"], "fid": 40.0, "fid_se": 1.0, "rank": 1}
    trace = {
        "request": {"text": "art", "task": "create", "understood": "new images"},
        "model": {"why": "best FID", "candidates": [cand, {"name": "vae", "excluded_by": "collapsed"}]},
        "final": {"model": "m.ckpt", "class_counts": [3] * 10},
        "policy": "RulePolicy",
        "target": {"fid": 10.0},
        "budget": {"steps": 2, "seconds": 60},
        "evaluator": {"name": "fid", "feature_network": "lenet", "reference": {}, "report_reference": {}},
        "n": 32,
        "decision_rule": "keep if it helps",
        "floor": None,
        "stop": {"reason": "budget spent"},
        "verdict": None,
        "steps": [step],
        "config": {"data_card": {"dataset": "mnist", "n_per_split": {}, "warnings": ["few labels"]}},
    }
    return trace | over


def test_the_batch_report_shows_routing_warnings_and_class_counts_on_both_pages(tmp_path) -> None:
    report = batch_report(_batch_trace())
    md, page = to_markdown(report, tmp_path), HTMLPage(to_html(report, tmp_path))
    text = re.sub(r"\s+", " ", html.unescape(" ".join(page.text)))
    for fact in (
        "Creators considered",
        "collapsed",
        "rank 1",
        "warning: few labels",
        "budget spent",
        "m.ckpt",
    ):
        assert fact in md.replace("**", "") and fact in text, fact
    assert "| selected batch | 3 | 3 |" in md  # the histogram's counts, where Markdown cannot draw it
    gone = "(before: the first generated batch: not written)"  # no run folder here: no image written
    assert gone in text and f"*{gone}*" in md
    one = batch_report(_batch_trace(model={"why": "only one", "candidates": [{"name": "dcgan"}]}))
    assert "Creators considered" not in to_markdown(one)


def _scene_trace(passed: bool) -> dict:
    obj = {"index": 0, "name": "7", "size": None, "planned": [0, 0, 32, 32], "ok": passed}
    obj |= {"problem": None if passed else "missing", "found": [1, 2, 30, 31] if passed else None}
    obj |= {"found_name": "7" if passed else None, "score": 0.9 if passed else None}
    v = {"passed": passed, "reasons": [] if passed else ["1 7 missing"], "objects": [obj], "extras": []}
    v |= {"relations": [], "layout_ok": None, "detections": []}
    return {
        "request": {
            "text": "a <7>",
            "prompt": {"objects": [{"count": 1, "size": None, "name": "7"}], "relations": []},
        },
        "creators": {"mnist": [{"name": "cgan"}]},
        "detector": {"name": "det"},
        "settings": {"threshold": 0.3},
        "plan": {"items": [{"obj": 0, "gid": 7, "size": None, "box": [0, 0, 32, 32]}]},
        "rounds": [{"round": 0, "actions": [{"action": "plan"}], "verdict": v}],
        "drawings": [{}],
        "one_shot": {"passed": passed, "reasons": v["reasons"]},
        "final": {"passed": passed, "rounds": 0, "seconds": 1.23, "stop": "done"},
    }


@pytest.mark.parametrize("passed", [True, False])
def test_the_scene_report_states_its_verdict_and_each_object(tmp_path, passed) -> None:
    report = scene_report(_scene_trace(passed))
    md, text = to_markdown(report, tmp_path), to_html(report, tmp_path)
    status = "PASS" if passed else "FAIL"
    assert md.startswith("# Scene: a <7>\n") and "<title>Scene: a &lt;7&gt;</title>" in text
    assert (
        f"**{status}** after 0 repair round(s), 1.2 s (done)" in md and f"<strong>{status}</strong>" in text
    )
    row = (
        "| 0 | 7 | ok | 7 | 1, 2, 30, 31 | 0.9 |" if passed else "| 0 | 7 | missing | - | 0, 0, 32, 32 | - |"
    )
    assert row in md
    assert "Creators: mnist: cgan. Verifier: det at threshold 0.3." in md
