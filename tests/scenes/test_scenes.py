"""Scenes: the planner's geometry, the verifier's check, the compositor (issue 10)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import torch

from artdirector.prompts import PromptError, parse
from artdirector.scenes.canvas import Box, global_id, ink_box, paste
from artdirector.scenes.layout import instances, plan, satisfied
from artdirector.scenes.relations import arrangement_holds, relation_holds
from artdirector.scenes.verify import check, size_ok

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "src" / "artdirector" / "agents" / "scene_trace_schema.json").read_text()
)
PROMPTS = [
    "a 3 left of a 7",
    "a 7 right of a 3",
    "a 2 above a 9",
    "a 4 below a 1",
    "a 5 next to a 6",
    "three sevens in a row",
    "5 twos in a row",
    "a 3, a 4 and a 5 in a column",
    "a 2x2 grid of sneakers",
    "a 2x3 grid of 8s",
    "two 3s left of a 7",
    "a small 3 above a large 8",
    "five 2s",
    "a bag next to a 1",
    "a large dress",
]


@pytest.mark.parametrize("text", PROMPTS)
def test_planner_geometry(text):
    p = parse(text)
    insts = instances(p)
    plans = [plan(p, seed=s) for s in range(10)]
    for pl in plans:
        assert len(pl.items) == len(insts) == sum(o.count for o in p.objects)
        for it in pl.items:
            x0, y0, x1, y1 = it.box
            assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
        for a, b in itertools.combinations(pl.boxes(), 2):  # no overlaps: cells at least 4 px apart
            assert a[2] + 4 <= b[0] or b[2] + 4 <= a[0] or a[3] + 4 <= b[1] or b[3] + 4 <= a[1], (a, b)
        assert satisfied(p, insts, pl.boxes(), margin=0.0)
    assert plan(p, seed=3) == plans[3]  # deterministic for a seed
    if not p.layout or p.layout["kind"] != "grid":
        assert len({tuple(pl.boxes()) for pl in plans}) > 1  # and different seeds differ


def test_planner_sizes_and_errors():
    pl = plan(parse("a small 3 above a large 8"), seed=0)
    sides = {it.gid: it.box[2] - it.box[0] for it in pl.items}
    assert sides[3] == pytest.approx(19, abs=1) and sides[8] == pytest.approx(48, abs=1)
    five = plan(parse("5 twos in a row"), seed=0)
    assert five.scale < 1 and "shrunk" in five.notes[0]
    with pytest.raises(PromptError, match="2x2 grid has 4 cells"):
        plan(parse("a 2x2 grid of three sevens"))
    with pytest.raises(PromptError, match="canvas"):
        plan(parse("5 large twos in a row"), height=64, width=64, base=32)


def test_relation_predicates():
    a, b = (0.0, 0.0, 20.0, 20.0), (40.0, 5.0, 60.0, 25.0)
    assert relation_holds("left of", a, b) and relation_holds("right of", b, a)
    assert not relation_holds("left of", b, a) and not relation_holds("above", a, b)
    assert relation_holds("next to", a, b) and not relation_holds("next to", a, (120.0, 0.0, 140.0, 20.0))
    up, down = (10.0, 0.0, 30.0, 20.0), (5.0, 50.0, 25.0, 70.0)
    assert relation_holds("above", up, down) and relation_holds("below", down, up)
    row = [(0.0, 50.0, 20.0, 70.0), (30.0, 52.0, 50.0, 72.0), (60.0, 49.0, 80.0, 69.0)]
    assert arrangement_holds({"kind": "row"}, row)
    assert not arrangement_holds({"kind": "row"}, [*row[:2], (60.0, 90.0, 80.0, 110.0)])  # one fell out
    assert not arrangement_holds({"kind": "column"}, row)
    grid = [
        (0.0, 0.0, 20.0, 20.0),
        (30.0, 0.0, 50.0, 20.0),
        (0.0, 30.0, 20.0, 50.0),
        (30.0, 30.0, 50.0, 50.0),
    ]
    assert arrangement_holds({"kind": "grid", "rows": 2, "cols": 2}, grid)
    assert not arrangement_holds({"kind": "grid", "rows": 2, "cols": 2}, grid[:3])


@dataclass(frozen=True)
class Det:
    gid: int
    box: Box
    score: float = 0.9


def test_blind_check():
    p = parse("a 3 left of a 7")
    three, seven = Det(3, (10.0, 40.0, 30.0, 62.0)), Det(7, (70.0, 40.0, 90.0, 62.0))
    assert check(p, [three, seven], 32) == (True, [])
    assert check(p, [seven, three], 32)[0]  # the order of detections does not matter
    ok, why = check(p, [three], 32)
    assert not ok and "7 missing" in why[0]
    ok, why = check(p, [three, seven, Det(1, (100.0, 100.0, 110.0, 120.0))], 32)
    assert not ok and "extra 1" in why[0]
    ok, why = check(p, [Det(3, (70.0, 40.0, 90.0, 62.0)), Det(7, (10.0, 40.0, 30.0, 62.0))], 32)  # swapped
    assert not ok and "arrangement" in why[0]
    ok, why = check(p, [Det(3, three.box), Det(1, seven.box)], 32)  # wrong class: a 7 missing, an extra 1
    assert not ok and len(why) == 2
    # two of one class: any assignment of the detections to the instances may satisfy the relations
    q = parse("two 3s left of a 7")
    dets = [
        Det(3, (0.0, 10.0, 20.0, 30.0)),
        Det(3, (0.0, 80.0, 20.0, 100.0)),
        Det(7, (90.0, 40.0, 110.0, 62.0)),
    ]
    assert check(q, dets, 32)[0]
    # sizes: a small digit's ink is ~0.71 of its cell; small passes below 0.8 of the base cell
    assert size_ok("small", (0.0, 0.0, 10.0, 14.0), 3, 32) and not size_ok(
        "small", (0.0, 0.0, 16.0, 23.0), 3, 32
    )
    assert size_ok("large", (0.0, 0.0, 25.0, 34.0), 3, 32) and not size_ok(
        "large", (0.0, 0.0, 16.0, 23.0), 3, 32
    )
    r = parse("a 2x2 grid of sneakers")
    g = global_id("fashion_mnist", 7)
    cells = [
        (0.0, 0.0, 30.0, 30.0),
        (34.0, 0.0, 64.0, 30.0),
        (0.0, 34.0, 30.0, 64.0),
        (34.0, 34.0, 64.0, 64.0),
    ]
    assert check(r, [Det(g, c) for c in cells], 32)[0]
    assert not check(r, [Det(g, c) for c in cells[:3]], 32)[0]


def test_paste_and_ink_box():
    canvas = torch.full((1, 64, 64), -1.0)
    digit = torch.full((1, 28, 28), -1.0)
    digit[:, 4:24, 10:18] = 1.0
    paste(canvas, digit, (8.0, 8.0, 36.0, 36.0))
    assert (
        canvas[:, 12:32, 18:26].min() == 1.0 and canvas[:, :8].max() == -1.0 and canvas[:, 36:].max() == -1.0
    )
    assert ink_box(digit, (8.0, 8.0, 36.0, 36.0)) == (18.0, 12.0, 26.0, 32.0)
    big = ink_box(digit, (0.0, 0.0, 56.0, 56.0))  # resized: the ink scales with the cell
    assert big[2] - big[0] == pytest.approx(16, abs=2) and big[3] - big[1] == pytest.approx(40, abs=2)
    with pytest.raises(ValueError, match="does not fit"):
        paste(canvas, digit, (50.0, 50.0, 78.0, 78.0))


def test_compositor_with_the_zoo_cgan():
    from artdirector.creators import zoo_checkpoints
    from artdirector.creators.routing import scene_creators
    from artdirector.scenes.compose import Compositor, item_seed, render

    creators = scene_creators(zoo_checkpoints(), torch.device("cpu"))
    assert creators["mnist"][0].name == "cgan"  # the unconditional dcgan cannot draw a class
    comp = Compositor({"mnist": creators["mnist"][0]})
    pl = plan(parse("a 3 left of a 7"), seed=0)
    drawings = [comp.draw(it, item_seed(0, k, 0)) for k, it in enumerate(pl.items)]
    again = [comp.draw(it, item_seed(0, k, 0)) for k, it in enumerate(pl.items)]
    assert all(
        torch.equal(a.image, b.image) for a, b in zip(drawings, again, strict=True)
    )  # a seed replays a drawing
    canvas = render(pl, [d.image for d in drawings])
    assert canvas.shape == (1, 128, 128) and canvas.min() >= -1 and canvas.max() <= 1
    ink = canvas[0] > 0
    inside = torch.zeros_like(ink)
    for it in pl.items:
        x0, y0, x1, y1 = (int(v) for v in it.box)
        inside[y0:y1, x0:x1] = True
    assert ink.any() and not (ink & ~inside).any()  # ink only in the planned cells
    brightest = comp.draw(pl.items[0], 5, candidates=8, score=lambda x, y: x.mean((1, 2, 3)))
    eight = creators["mnist"][0].sample(8, torch.full((8,), 3), seed=5).images
    assert torch.equal(brightest.image, eight[eight.mean((1, 2, 3)).argmax()])  # the best of 8 by the score
    assert brightest.how == "best of 8 by the score"
    with pytest.raises(KeyError):
        comp.draw(plan(parse("a dress"), seed=0).items[0], 0)


# ---- the scene director, with the shipped detector and the zoo's conditional GAN --------------------------
class _Broken:
    """A creator that draws nothing (a black image) for one seed: a deliberately broken object."""

    def __init__(self, creator, broken_seed: int) -> None:
        self.inner, self.broken_seed = creator, broken_seed
        self.calls: list[int] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def sample(self, n, condition=None, seed=0, **options):
        self.calls.append(seed)
        drawn = self.inner.sample(n, condition, seed, **options)
        if seed == self.broken_seed:
            drawn.images = torch.full_like(drawn.images, -1.0)
        return drawn


@pytest.fixture(scope="module")
def zoo_mnist():
    from artdirector.creators import zoo_checkpoints
    from artdirector.creators.routing import scene_creators

    return scene_creators(zoo_checkpoints(), torch.device("cpu"))["mnist"][0]


@pytest.fixture(scope="module")
def detector():
    from artdirector.models.detection.inference import load_detector

    return load_detector()


def test_the_repair_loop_fixes_a_deliberately_broken_object(zoo_mnist, detector, tmp_path):
    from artdirector.agents.scene import SceneDirector
    from artdirector.models.superres import load_sr
    from artdirector.scenes.compose import item_seed

    broken = _Broken(zoo_mnist, item_seed(0, 1, 0))  # the 7's first drawing is black
    director = SceneDirector(
        {"mnist": [broken]}, detector, max_rounds=4, seed=0, upscale=4, upscaler=load_sr()
    )
    res = director.run(parse("a 3 left of a 7"), output_dir=tmp_path)
    first = res.rounds[0]["verdict"]
    assert not first["passed"] and not res.one_shot.passed
    assert [o["problem"] for o in first["objects"]] == [None, "missing"]  # the 3 was fine, the 7 missing
    assert res.passed and res.stop == "every check passes"
    redraws = [a for r in res.rounds[1:] for a in r["actions"]]
    assert redraws and all(a["action"] == "redraw" and a["item"] == 1 for a in redraws)  # only the 7
    trace = json.loads((tmp_path / "trace.json").read_text())
    jsonschema.validate(trace, SCHEMA)
    assert trace["final"]["passed"] and trace["one_shot"]["passed"] is False
    assert trace["request"]["prompt"]["relations"][0]["relation"] == "left of"
    assert trace["upscale"]["size"] == [512, 512] and trace["upscale"]["consistent"]  # x4, the same verdict
    for name in ("canvas.png", "annotated.png", "report.md", "report.html", "canvas.pt", "canvas_x4.png"):
        assert (tmp_path / name).is_file()
    md = (tmp_path / "report.md").read_text()
    assert "PASS" in md and "| 1 | 7 | ok | 7 |" in md and "missing" in md  # each object's verdict, its box


def test_a_relation_that_fails_is_replanned(zoo_mnist, detector, monkeypatch):
    import artdirector.agents.scene as scene_mod
    from artdirector.agents.scene import SceneDirector

    p = parse("a 2 above a 9")
    director = SceneDirector({"mnist": [zoo_mnist]}, detector, max_rounds=3, seed=0)
    real_plan = scene_mod.plan
    calls = []

    def swapped_first(prompt, *a, seed=0, **k):  # the first plan puts the 9 above the 2
        pl = real_plan(prompt, *a, seed=seed, **k)
        calls.append(seed)
        if len(calls) == 1:
            pl.items[0].box, pl.items[1].box = pl.items[1].box, pl.items[0].box
        return pl

    monkeypatch.setattr(scene_mod, "plan", swapped_first)
    res = director.run(p)
    assert not res.one_shot.passed and "arrangement" in res.one_shot.reasons[0]
    assert res.rounds[1]["actions"][0]["action"] == "replan" and res.passed


def test_style_words_in_a_scene_edit_their_object_and_say_so(zoo_mnist, detector, tmp_path):
    from artdirector.agents.scene import SceneDirector
    from artdirector.editing.targets import measure_attribute

    director = SceneDirector({"mnist": [zoo_mnist]}, detector, max_rounds=2, seed=0)
    res = director.run(parse("a thick 3 left of a 7"), output_dir=tmp_path)
    thick, plain = res.drawings
    assert [s["word"] for s in thick.style] == ["thick"] and plain.style == []
    rec = thick.style[0]
    assert rec["after"] > rec["before"] and abs(rec["after"] - rec["goal"]) <= 0.25 * (
        rec["goal"] - rec["before"]
    )
    assert float(measure_attribute(thick.image[None], "thickness")[0]) == pytest.approx(rec["after"])
    trace = json.loads((tmp_path / "trace.json").read_text())
    jsonschema.validate(trace, SCHEMA)
    assert trace["drawings"][0]["style"][0]["target"] == "thickness +50%"


def test_a_style_edit_that_missed_its_goal_is_redrawn(zoo_mnist, detector, monkeypatch):
    import artdirector.agents.scene as scene_mod
    from artdirector.scenes.compose import item_seed, styled

    first = item_seed(0, 0, 0)

    def missing_once(drawing, words):
        out = styled(drawing, words)
        if drawing.seed == first and out.style:  # the first drawing's edit "did nothing"
            out.style = [{**s, "after": s["before"]} for s in out.style]
        return out

    monkeypatch.setattr(scene_mod, "styled", missing_once)
    res = scene_mod.SceneDirector({"mnist": [zoo_mnist]}, detector, max_rounds=3, seed=0).run(
        parse("a thick 3 left of a 7")
    )
    assert res.rounds[0]["style_missed"] == [0] and res.rounds[0]["verdict"]["passed"]
    redraw = res.rounds[1]["actions"][0]
    assert redraw["item"] == 0 and redraw["why"] == "its style edit missed its goal"
    assert res.passed and res.style_ok and res.drawings[0].seed != first
