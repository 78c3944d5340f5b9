"""The second judge of scenes (``evaluation.scene_judge``), the false-accept benchmark built on it, the judge
columns of the prompt benchmark, and the frozen prompt set v2.

The judge's logic is tested with a stand-in classifier that names a crop by its nearest bundled MNIST digit
(the canvases are made of those digits, so a crop framed as MNIST frames digits finds its own source; a crop
framed wrongly, or holding a neighbour's ink, does not); the shipped judge classifiers are tested on a real
canvas at the end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from artdirector.data.datamodules import load_mnist5k
from artdirector.evaluation.scene_judge import SETTINGS, SceneJudge, components, frame
from artdirector.io import file_sha256
from artdirector.prompts import parse
from artdirector.scenes.canvas import blank, paste
from helpers import load_script, real_mnist5k

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_mnist5k()
    return images.float().div(127.5).sub(1).unsqueeze(1), labels


class Nearest:
    """Names a (N, 1, 28, 28) crop by its nearest reference image (pixel L2)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.x, self.y = images.flatten(1), labels

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.y[torch.cdist(images.flatten(1), self.x).argmin(1)]


@pytest.fixture(scope="module")
def judge(digits) -> SceneJudge:
    return SceneJudge({"mnist": Nearest(*digits)})


def one(digits, label: int, k: int = 0) -> torch.Tensor:
    """The k-th bundled digit of class ``label``."""
    images, labels = digits
    return images[torch.nonzero(labels == label).flatten()[k]]


def canvas(*objects: tuple[torch.Tensor, tuple[float, float, float, float]]) -> torch.Tensor:
    c = blank(128, 128)
    for img, box in objects:
        paste(c, img, box)
    return c


LEFT, RIGHT, FAR = (16.0, 48.0, 48.0, 80.0), (80.0, 48.0, 112.0, 80.0), (48.0, 90.0, 80.0, 122.0)


# ---- the check: a correct canvas passes, each kind of corrupted one fails ---------------------------------
def test_a_correct_canvas_passes_and_each_corruption_fails(digits, judge):
    p = parse("a 3 left of a 7")
    three, seven = one(digits, 3), one(digits, 7)
    right = judge.judge(p, canvas((three, LEFT), (seven, RIGHT)), 32)
    assert right.passed, right.reasons
    assert [c["read"]["mnist"] for c in right.components] == ["3", "7"]

    swapped = judge.judge(p, canvas((one(digits, 5), LEFT), (seven, RIGHT)), 32)
    assert not swapped.passed and "1 3 missing (asked 1, found 0)" in swapped.reasons
    assert "1 extra 5 (asked 0, found 1)" in swapped.reasons
    removed = judge.judge(p, canvas((seven, RIGHT)), 32)
    assert removed.reasons == ["1 3 missing (asked 1, found 0)"]
    added = judge.judge(p, canvas((three, LEFT), (seven, RIGHT), (one(digits, 7, 1), FAR)), 32)
    assert added.reasons == ["1 extra 7 (asked 1, found 2)"]
    flipped = judge.judge(p, canvas((three, RIGHT), (seven, LEFT)), 32)
    assert not flipped.passed and flipped.reasons[0].startswith("the right objects, but not")


def test_counts_sizes_and_layouts(digits, judge):
    fours = [one(digits, 4, k) for k in range(3)]
    row = [(8.0, 40.0, 40.0, 72.0), (48.0, 40.0, 80.0, 72.0), (88.0, 40.0, 120.0, 72.0)]
    diagonal = [(8.0, 8.0, 40.0, 40.0), (48.0, 48.0, 80.0, 80.0), (88.0, 88.0, 120.0, 120.0)]
    in_a_row = parse("three 4s in a row")
    assert judge.judge(in_a_row, canvas(*zip(fours, row, strict=True)), 32).passed
    assert not judge.judge(in_a_row, canvas(*zip(fours, diagonal, strict=True)), 32).passed
    assert judge.judge(parse("three 4s"), canvas(*zip(fours, diagonal, strict=True)), 32).passed
    two = judge.judge(parse("three 4s"), canvas(*zip(fours[:2], row[:2], strict=True)), 32)
    assert two.reasons == ["1 4 missing (asked 3, found 2)"]
    small, large = (40.0, 40.0, 59.0, 59.0), (30.0, 30.0, 78.0, 78.0)
    assert judge.judge(parse("a small 2"), canvas((one(digits, 2), small)), 32).passed
    assert not judge.judge(parse("a small 2"), canvas((one(digits, 2), large)), 32).passed
    assert judge.judge(parse("a large 2"), canvas((one(digits, 2), large)), 32).passed
    empty = judge.judge(parse("a 2"), blank(128, 128), 32)
    assert not empty.passed and empty.components == []


# ---- the parts: components, framing -----------------------------------------------------------------------
def test_a_broken_stroke_stays_one_object_and_neighbours_stay_apart(digits):
    s = SETTINGS["mnist"]
    c = canvas((one(digits, 0), LEFT))
    ink = torch.nonzero(c[0] > s.ink)
    mid = int(ink[:, 1].float().mean())
    broken = c.clone()
    broken[0, :, mid : mid + 2 * s.dilate] = -1.0  # a gap of 2 * dilate px through the middle of the 0
    assert len(components(c, s)) == 1 and len(components(broken, s)) == 1
    wider = c.clone()
    wider[0, :, mid : mid + 2 * s.dilate + 3] = -1.0  # three px more than dilation bridges: two pieces
    assert len(components(wider, s)) == 2
    pair = canvas((one(digits, 1), (16.0, 48.0, 48.0, 80.0)), (one(digits, 1, 1), (52.0, 48.0, 84.0, 80.0)))
    assert len(components(pair, s)) == 2  # two cells 4 px apart (the planner's gap): two objects
    speck = c.clone()
    speck[0, 5:7, 5:7] = 1.0  # 4 px of noise: not an object
    boxes = [comp.box for comp in components(speck, s)]
    assert len(boxes) == 1 and boxes[0][0] > 10


def test_a_crop_is_framed_as_mnist_frames_digits_and_holds_only_its_own_ink(digits):
    seven = one(digits, 7)
    c = canvas((seven, (10.0, 10.0, 74.0, 74.0)), (one(digits, 1), (80.0, 20.0, 112.0, 52.0)))
    comps = components(c, SETTINGS["mnist"])
    crop = frame(c, comps[0].mask, "mnist")[0]
    ys, xs = torch.nonzero(crop > -0.95, as_tuple=True)
    side = max(int(ys.max() - ys.min()), int(xs.max() - xs.min())) + 1
    assert 19 <= side <= 21  # the longer side scaled to 20 px, from a 64 px drawing
    v = (crop + 1) / 2
    cy = float((v.sum(1) * torch.arange(28)).sum() / v.sum())
    cx = float((v.sum(0) * torch.arange(28)).sum() / v.sum())
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1  # centred by its centre of mass
    # the source digit is closer to the crop than any other bundled digit: the framing is MNIST's
    images, _ = digits
    assert int(torch.cdist(crop.flatten()[None], images.flatten(1)).argmin()) == int(
        torch.nonzero((images == seven).flatten(1).all(1)).flatten()[0]
    )
    # the 1 on its right is not in the 7's crop: nothing lit in the crop's right margin
    assert float(crop[:, 25:].max()) <= -0.9


def test_a_prompt_of_both_datasets_reads_each_object_with_both_judges(digits):
    bag = torch.full((1, 28, 28), -1.0)
    bag[0, 4:24, 4:24] = 0.6  # a lit square: whatever the stand-in garment judge sees

    class Garments:
        def predict(self, images):
            return torch.full((len(images),), 8)  # "bag" for every crop

    judge = SceneJudge({"mnist": Nearest(*digits), "fashion_mnist": Garments()})
    p = parse("a 3 left of a bag")
    c = canvas((one(digits, 3), LEFT), (bag, RIGHT))
    v = judge.judge(p, c, 32)
    assert (
        v.passed
        and v.components[0]["read"]["mnist"] == "3"
        and v.components[1]["read"]["fashion_mnist"] == "bag"
    )
    assert not judge.judge(p, canvas((bag, LEFT), (one(digits, 3), RIGHT)), 32).passed  # relation flipped
    three_only = judge.judge(p, canvas((one(digits, 3), LEFT)), 32)
    assert three_only.reasons == ["1 objects found, 2 asked"]


# ---- the false-accept benchmark -----------------------------------------------------------------------------
def test_the_false_accept_bench_corrupts_every_canvas(tmp_path, digits, judge):

    fa = load_script("bench_false_accept")

    class Blind:  # a detector that finds nothing: the verifier never passes
        def detect(self, canvases, threshold=0.3):
            return [[] for _ in canvases]

    prompts = ["a 3 left of a 7", "two 5s", "a 1 next to a 6", "a 2 above a small 8"]
    data = {"version": "test", "prompts": [{"id": f"t-{i}", "category": "t", "prompt": t}
                                           for i, t in enumerate(prompts)]}  # fmt: skip
    (tmp_path / "set.json").write_text(json.dumps(data))
    out = tmp_path / "fa.json"
    argv = ["--set", str(tmp_path / "set.json"), "--out", str(out)]
    result = fa.main(argv, detector=Blind(), judge=judge, creators={"mnist": real_mnist5k()})
    rows = {r["kind"]: r for r in result["summary"]}
    assert rows["correct"]["n"] == 4 and rows["correct"]["judge"]["passed"] == 4
    assert rows["correct"]["verifier"]["passed"] == 0
    assert rows["flip"]["n"] == 2 and rows["flip"]["na"] == 2  # "two 5s" and "next to" have no direction
    for kind in ("swap", "remove", "add", "flip"):
        assert rows[kind]["judge"]["passed"] == 0, kind  # every corrupted canvas is wrong
    assert rows["all corruptions"]["n"] == rows["swap"]["n"] + rows["remove"]["n"] + rows["add"]["n"] + 2
    saved = json.loads(out.read_text())
    assert saved["results"][2]["flip"] is None and saved["results"][0]["flip"] == {
        "verifier": False,
        "judge": False,
    }


# ---- the prompt benchmark's judge columns ---------------------------------------------------------------
def test_the_prompt_table_reports_the_judge_and_the_gap():
    bench = load_script("bench_prompts")

    def rec(i, verifier, judge):
        run = {"passed": verifier, "judge_passed": judge, "seconds": 0.1, "reasons": []}
        return {"set": "real", "id": f"single-{i:03d}", "category": "single", "status": "run",
                "one_shot": dict(run), "directed": {**run, "rounds": 1}}  # fmt: skip

    records = [rec(0, True, True), rec(1, True, False), rec(2, True, False), rec(3, False, True)]
    records += [rec(4, False, False)]
    row = next(r for r in bench.summarize(records, ["real"]) if r["category"] == "single")
    assert row["directed_pass"] == 0.6 and row["directed_judge_pass"] == 0.4
    assert row["directed_judge_ci"] == bench.wilson(2, 5)
    assert (row["directed_verifier_only"], row["directed_judge_only"]) == (2, 1)
    assert row["directed_gap"] == pytest.approx(0.2)
    text = bench.table([row])
    assert (
        "| real | single | 5 | 40 % [12, 77] | 40 % [12, 77] | 60 % [23, 88] | 60 % [23, 88] | +20 pts (2 / 1) |"
        in text
    )


# ---- prompt set v2: frozen, parsed, hashed in the docs ------------------------------------------------------
def test_v2_parses_is_fresh_and_its_hash_is_the_one_in_the_docs():
    make = load_script("make_prompt_set")
    path = make.PATH
    data = json.loads(path.read_text())
    assert data["version"] == "v2" and len(data["prompts"]) >= 300
    assert len({e["prompt"] for e in data["prompts"]}) == len(data["prompts"])
    assert not {e["prompt"] for e in data["prompts"]} & make._v1_texts()  # no development prompt in it
    for e in data["prompts"]:
        p = parse(e["prompt"])  # the current grammar reads every prompt
        assert p.is_scene and p.objects, e
    docs = (REPO / "docs" / "benchmarks.md").read_text()
    block = docs[docs.index("<!-- prompt_set_v2:start -->") : docs.index("<!-- prompt_set_v2:end -->")]
    recorded = re.search(r"sha256 `([0-9a-f]{64})`", block).group(1)
    assert file_sha256(path) == recorded
    # the generator still makes it byte for byte (each prompt parsing to the structure it was made from)
    assert make.bp.set_json(make.generate()) == path.read_text()


# ---- the shipped judge classifiers ----------------------------------------------------------------------
def test_the_shipped_judge_reads_a_real_digit_canvas(digits):
    judge = SceneJudge()
    p = parse("a 3 left of a 7 and a 2 below a 9")
    boxes = [
        (8.0, 8.0, 40.0, 40.0),
        (56.0, 8.0, 88.0, 40.0),
        (60.0, 88.0, 92.0, 120.0),
        (60.0, 48.0, 92.0, 80.0),
    ]
    imgs = [one(digits, c, 3) for c in (3, 7, 2, 9)]
    v = judge.judge(p, canvas(*zip(imgs, boxes, strict=True)), 32)
    assert v.passed, v
    swapped = canvas(*zip([one(digits, 8, 3), *imgs[1:]], boxes, strict=True))
    assert not judge.judge(p, swapped, 32).passed
