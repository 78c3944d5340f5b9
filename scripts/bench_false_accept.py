"""How often do the scene judges pass a canvas that is wrong on purpose? The verifier (the CenterNet detector
and ``scenes.verify``'s blind check) and the second judge (``evaluation.scene_judge``), side by side.

For every prompt of the set, a **correct** canvas is drawn from real images of the split (the plan of the
prompt at seed ``--seed`` + its index, each object a real image of its class), and from it four **corrupted**
ones, each wrong in one way a grader must notice:

- ``swap``: one object replaced by a real image of another class of its dataset;
- ``remove``: one object left out;
- ``add``: one more real image of a class the prompt asks for, in a free spot (a base-size cell at least
  4 px from every other; n/a when the canvas has none);
- ``flip``: a left/right (above/below) relation reversed: every box mirrored across the canvas's vertical
  (horizontal) centre line, each image unchanged (prompts without such a relation: n/a).

A pass on a corrupted canvas is a **false accept**; a fail on the correct one a false reject (the judge's own
error rate on real scenes). Wilson 95 % intervals. Images from the ``report`` (test) split by default, which
neither the detector nor the judge classifiers trained or were chosen on.

``--choose`` picks the second judge's settings (``evaluation.scene_judge``: ink threshold, dilation, speck
size) on **selection-split** images with the **v1** prompts: the highest pass rate on correct canvases, ties
broken by the lowest false-accept rate; it prints the grid and the pick.

    python scripts/bench_false_accept.py --threads 1                       # v2 prompts, test images
    python scripts/bench_false_accept.py --threads 1 --write-docs
    python scripts/bench_false_accept.py --threads 1 --choose               # v1 prompts, selection images
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import random
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from artdirector.evaluation.copying import wilson_interval as wilson
from artdirector.io import file_sha256, write_json, write_text
from artdirector.prompts import parse
from artdirector.scenes.canvas import Box, global_id, local
from artdirector.scenes.compose import item_seed, render
from artdirector.scenes.layout import Item, Plan, plan

log = logging.getLogger("bench_false_accept")

REPO = Path(__file__).resolve().parents[1]
PROMPTS = REPO / "src" / "artdirector" / "prompts"
DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- bench_false_accept:start -->", "<!-- bench_false_accept:end -->"
CHOOSE_START, CHOOSE_END = "<!-- scene_judge_choice:start -->", "<!-- scene_judge_choice:end -->"
KINDS = ("swap", "remove", "add", "flip")
GAP = 4  # px between an added object's cell and every other (the planner's gap)
# the --choose grid per kind of prompt: ink threshold, dilation (px), speck size (ink px)
GRID = {
    "mnist": {"ink": (-0.8, -0.5, 0.0), "dilate": (0, 1, 2), "min_area": (5, 10, 20, 30, 40)},
    "fashion_mnist": {"ink": (-0.95, -0.9, -0.8, -0.5), "dilate": (0, 1, 2), "min_area": (5, 10, 20, 40)},
}


def real_creators(split: str, data_root: str) -> dict[str, Any]:
    """A :class:`~artdirector.scenes.real.RealCreator` per dataset on ``split`` of MNIST / FashionMNIST."""
    from artdirector.data.datamodules import TorchvisionDataModule
    from artdirector.scenes.real import RealCreator

    out = {}
    for dataset in ("mnist", "fashion_mnist"):
        dm = TorchvisionDataModule(dataset, root=data_root, download=False, fallback_to_bundled=False)
        dm.prepare_data()
        dm.setup("fit")
        out[dataset] = RealCreator.from_datamodule(dm, split, name=f"real_{dataset}_{split}")
    return out


def draw(creators: dict[str, Any], gid: int, seed: int) -> torch.Tensor:
    dataset, label = local(gid)
    return creators[dataset].sample(1, torch.tensor([label]), seed=seed).images[0]


def correct_scene(prompt, creators: dict[str, Any], seed: int) -> tuple[Plan, list[torch.Tensor]]:
    """The prompt's plan at ``seed`` and a real image of each item's class (the director's first draws)."""
    plan_ = plan(prompt, seed=seed)
    return plan_, [draw(creators, it.gid, item_seed(seed, k, 0)) for k, it in enumerate(plan_.items)]


def _mirror(box: Box, size: int, horizontal: bool) -> Box:
    x0, y0, x1, y1 = box
    return (size - x1, y0, size - x0, y1) if horizontal else (x0, size - y1, x1, size - y0)


def _free_cell(boxes: list[Box], side: int, size: int, rng: random.Random) -> Box | None:
    spots = [
        (float(x), float(y), float(x + side), float(y + side))
        for x in range(GAP, size - side - GAP + 1, 2)
        for y in range(GAP, size - side - GAP + 1, 2)
    ]
    free = [
        s
        for s in spots
        if all(
            s[2] + GAP <= b[0] or b[2] + GAP <= s[0] or s[3] + GAP <= b[1] or b[3] + GAP <= s[1]
            for b in boxes
        )
    ]
    return rng.choice(free) if free else None


def corrupt(
    kind: str, prompt, plan_: Plan, images: list[torch.Tensor], creators: dict[str, Any], seed: int
) -> torch.Tensor | None:
    """The canvas made wrong in one way (``KINDS``), or None when the prompt offers no such corruption."""
    rng = random.Random(f"{kind}/{seed}")
    items, imgs = list(plan_.items), list(images)
    k = rng.randrange(len(items))
    if kind == "swap":
        dataset, label = local(items[k].gid)
        other = rng.choice([c for c in range(10) if c != label])
        imgs[k] = draw(creators, global_id(dataset, other), item_seed(seed, k, 1000))
    elif kind == "remove":
        del items[k], imgs[k]
    elif kind == "add":
        side = round(plan_.base * plan_.scale)
        cell = _free_cell([it.box for it in items], side, plan_.width, rng)
        if cell is None:
            return None
        gid = items[k].gid  # one more of an asked class: only counting tells the canvas is wrong
        items.append(Item(-1, gid, None, cell))
        imgs.append(draw(creators, gid, item_seed(seed, len(items), 1000)))
    elif kind == "flip":
        rel = next((r.relation for r in prompt.relations if r.relation != "next to"), None)
        if rel is None:
            return None
        horizontal = rel in ("left of", "right of")
        items = [Item(it.obj, it.gid, it.size, _mirror(it.box, plan_.width, horizontal)) for it in items]
    else:
        raise ValueError(f"unknown corruption {kind!r}: one of {KINDS}")
    bad = Plan(plan_.height, plan_.width, plan_.base, items, plan_.seed, plan_.layout, plan_.scale)
    return render(bad, imgs)


class Verifier:
    """The scene director's grader: the detector's detections through ``scenes.verify.check``."""

    def __init__(self, detector: Any, threshold: float) -> None:
        self.detector, self.threshold = detector, threshold

    def passes(self, prompt, canvas: torch.Tensor, base: float) -> bool:
        from artdirector.scenes.verify import check

        return check(prompt, self.detector.detect(canvas[None], threshold=self.threshold)[0], base)[0]


def canvases(data: dict[str, Any], creators: dict[str, Any], seed: int, limit: int | None):
    """(prompt entry, index, parsed prompt, base, {"correct" | kind: canvas or None}) for each prompt."""
    per_cat: dict[str, int] = {}
    for j, e in enumerate(data["prompts"]):
        i = e.get("index", j)
        per_cat[e["category"]] = per_cat.get(e["category"], 0) + 1
        if limit and per_cat[e["category"]] > limit:
            continue
        p = parse(e["prompt"])
        plan_, images = correct_scene(p, creators, seed + i)
        out = {"correct": render(plan_, images)}
        for kind in KINDS:
            out[kind] = corrupt(kind, p, plan_, images, creators, seed + i)
        yield e, i, p, plan_.base * plan_.scale, out


def measure(data, creators, graders: dict[str, Any], seed: int, limit: int | None) -> list[dict[str, Any]]:
    """One record per prompt: for each canvas kind, whether each grader passed it (None: n/a)."""
    records = []
    for e, i, p, base, cs in canvases(data, creators, seed, limit):
        rec = {"id": e["id"], "category": e["category"], "prompt": e["prompt"], "seed": seed + i}
        for kind, canvas in cs.items():
            rec[kind] = (
                None
                if canvas is None
                else {g: bool(grader(p, canvas, base)) for g, grader in graders.items()}
            )
        records.append(rec)
    return records


def summarize(records: list[dict[str, Any]], graders: list[str]) -> list[dict[str, Any]]:
    rows = []
    for kind in ("correct", *KINDS):
        ran = [r[kind] for r in records if r[kind] is not None]
        row: dict[str, Any] = {"kind": kind, "n": len(ran), "na": len(records) - len(ran)}
        for g in graders:
            k = sum(r[g] for r in ran)
            row[g] = {"passed": k, "rate": k / len(ran) if ran else math.nan, "ci": wilson(k, len(ran))}
        if len(graders) == 2:
            row["both"] = sum(all(r.values()) for r in ran)
        rows.append(row)
    wrong = [r[kind] for r in records for kind in KINDS if r[kind] is not None]
    row = {"kind": "all corruptions", "n": len(wrong), "na": 0}
    for g in graders:
        k = sum(r[g] for r in wrong)
        row[g] = {"passed": k, "rate": k / len(wrong) if wrong else math.nan, "ci": wilson(k, len(wrong))}
    if len(graders) == 2:
        row["both"] = sum(all(r.values()) for r in wrong)
    rows.append(row)
    return rows


def _pct(v: dict[str, Any]) -> str:
    lo, hi = v["ci"]
    if math.isnan(v["rate"]):
        return "-"
    return f"{100 * v['rate']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] ({v['passed']})"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| canvas | n | verifier passes [95 % CI] (count) | second judge passes [95 % CI] (count) | both pass |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = {"correct": "correct (a pass is right)"}.get(r["kind"], r["kind"])
        if r["kind"] == "all corruptions":
            name = "**all corruptions**"
        na = f" (n/a {r['na']})" if r["na"] else ""
        lines.append(
            f"| {name} | {r['n']}{na} | {_pct(r['verifier'])} | {_pct(r['judge'])} | {r.get('both', '-')} |"
        )
    return "\n".join(lines)


def write_docs(path: Path, block: str, start: str, end: str) -> None:
    """Replace the block between the markers (which must be there: this script owns no section heading)."""
    text = path.read_text()
    if not (start in text and end in text and text.index(start) < text.index(end)):
        raise SystemExit(f"{path} has no {start} ... {end} block to replace: add the markers first")
    text = (
        text[: text.index(start)] + f"{start}\n{block.rstrip()}\n{end}" + text[text.index(end) + len(end) :]
    )
    write_text(path, text)


class _Remembered:
    """A classifier that names each distinct crop once (the grid reads the same canvases many times)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seen = inner, {}

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        keys = [im.numpy().tobytes() for im in images]
        new = [j for j, k in enumerate(keys) if k not in self.seen]
        if new:
            pred = torch.as_tensor(self.inner.predict(images[new])).reshape(-1).tolist()
            self.seen.update({keys[j]: p for j, p in zip(new, pred, strict=True)})
        return torch.tensor([self.seen[k] for k in keys])


def choose(
    data, creators, seed: int, limit: int | None, classifiers=None, kinds=("mnist", "fashion_mnist")
) -> tuple[dict[str, Any], str]:
    """The grid of judge settings (:data:`GRID`) on these canvases, for the digit prompts and the prompts
    naming a garment apart (``scene_judge.kind``); the pick per kind and a markdown table. Each canvas is
    read once per (ink, dilate); the speck sizes only filter what was read."""
    from artdirector.evaluation.scene_judge import SceneJudge, Settings, decide, kind

    scenes = list(canvases(data, creators, seed, limit))
    judge = SceneJudge(classifiers)
    for dataset in kinds:  # most crops repeat from setting to setting: name each once
        judge.classifiers[dataset] = _Remembered(judge.classifier(dataset))
    best = {}
    lines = [
        "| prompts | ink above | dilate (px) | specks under (px) | correct canvases passed | corrupted canvases "
        "passed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for group in kinds:
        mine = [s for s in scenes if kind(s[2]) == group]
        grid = GRID[group]
        results = []
        for ink, dilate in itertools.product(grid["ink"], grid["dilate"]):
            reads = []  # (prompt, base, canvas kind, components, reads) with every component of >= 1 px
            for _, _, p, base, cs in mine:
                datasets = list(dict.fromkeys(o.dataset for o in p.objects))
                for k, c in cs.items():
                    if c is not None:
                        reads.append((p, base, k, *judge.read(c, datasets, Settings(ink, dilate, 1))))
            for min_area in grid["min_area"]:
                ok = wrong = n_wrong = 0
                for p, base, k, comps, rs in reads:
                    keep = [j for j, c in enumerate(comps) if c.area >= min_area]
                    passed = decide(p, [comps[j] for j in keep], [rs[j] for j in keep], base).passed
                    if k == "correct":
                        ok += passed
                    else:
                        n_wrong += 1
                        wrong += passed
                results.append({"ink": ink, "dilate": dilate, "min_area": min_area, "correct_pass": ok,
                                "false_accept": wrong, "n": len(mine), "n_wrong": n_wrong})  # fmt: skip
                log.info("%s %s", group, results[-1])
        pick = max(results, key=lambda r: (r["correct_pass"], -r["false_accept"]))
        best[group] = pick
        name = {"mnist": "digits only", "fashion_mnist": "naming a garment"}[group]
        for r in results:
            b = "**" if r is pick else ""
            lines.append(
                f"| {name} | {b}{r['ink']:g}{b} | {b}{r['dilate']}{b} | {b}{r['min_area']}{b} | "
                f"{r['correct_pass']}/{r['n']} ({100 * r['correct_pass'] / max(1, r['n']):.1f} %) | "
                f"{r['false_accept']}/{r['n_wrong']} ({100 * r['false_accept'] / max(1, r['n_wrong']):.1f} %) |"
            )
    return best, "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--set", default=None, help="prompt set JSON (default: bench_v2.json; --choose: bench_v1.json)"
    )
    ap.add_argument("--split", default=None, choices=["report", "selection"],
                    help="the images' split (default: report; --choose: selection)")  # fmt: skip
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--detector", default=None, help="detector weights (default: the shipped ones)")
    ap.add_argument("--threshold", type=float, default=0.3, help="the detector's score threshold")
    ap.add_argument("--seed", type=int, default=0, help="prompt i is drawn with seed + i")
    ap.add_argument("--limit", type=int, default=None, help="the first N prompts of each category")
    ap.add_argument("--categories", nargs="+", default=None, help="only these categories (default: all)")
    ap.add_argument(
        "--kinds",
        nargs="+",
        default=["mnist", "fashion_mnist"],
        choices=["mnist", "fashion_mnist"],
        help="--choose: the kinds of prompt to choose settings for (digits only; naming a garment)",
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--choose", action="store_true", help="choose the second judge's settings (see above)")
    ap.add_argument("--out", default="outputs/bench_false_accept.json")
    ap.add_argument(
        "--write-docs", action="store_true", help=f"write the table into {DOCS.relative_to(REPO)}"
    )
    ap.add_argument("--docs", default=str(DOCS), help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(
    argv: list[str] | None = None, detector: Any = None, judge: Any = None, creators=None
) -> dict[str, Any]:
    """Run it; ``detector``, ``judge`` (a SceneJudge) and ``creators`` ({dataset: creator}) replace the
    shipped ones (tests)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    default_set = "bench_v1.json" if args.choose else "bench_v2.json"
    set_path = Path(args.set) if args.set else PROMPTS / default_set
    split = args.split or ("selection" if args.choose else "report")
    data = json.loads(set_path.read_text())
    total = len(data["prompts"])
    if args.categories:
        kept = [{**e, "index": i} for i, e in enumerate(data["prompts"]) if e["category"] in args.categories]
        data = {**data, "prompts": kept}  # each prompt keeps its index in the set, and so its seed
    creators = creators or real_creators(split, args.data_root)
    command = "python scripts/bench_false_accept.py " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    head = (
        f"`{command}`\n\nPrompt set **{data['version']}** (`{set_path.name}`, {total} prompts, "
        f"sha256 {file_sha256(set_path)[:12]}"
        + (f"; the {len(data['prompts'])} of {', '.join(args.categories)}" if args.categories else "")
        + (f"; first {args.limit} per category" if args.limit else "")
        + f"); real images of the **{split}** split; prompt i drawn with seed {args.seed} + i; "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU; "
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}."
    )
    t0 = time.perf_counter()
    if args.choose:
        classifiers = getattr(judge, "classifiers", None)
        best, md = choose(data, creators, args.seed, args.limit, classifiers, tuple(args.kinds))
        picked = "; ".join(
            f"{g}: ink above {b['ink']:g}, dilate {b['dilate']} px, specks under {b['min_area']} px"
            for g, b in best.items()
        )
        md = f"{head}\n\n{md}\n\nPicked (bold): {picked}."
        print(md)
        if args.write_docs:
            write_docs(Path(args.docs), md, CHOOSE_START, CHOOSE_END)
        return {"best": best, "markdown": md}
    from artdirector.evaluation.scene_judge import SceneJudge

    if detector is None:
        from artdirector.models.detection.inference import SHIPPED, load_detector

        det_path = Path(args.detector) if args.detector else SHIPPED
        detector = load_detector(det_path)
        shown = det_path.relative_to(REPO) if det_path.is_relative_to(REPO) else det_path
        det_name = f"`{shown}` (sha256 {file_sha256(det_path)[:12]})"
    else:
        det_name = f"(given: {type(detector).__name__})"
    judge = judge or SceneJudge()
    verifier = Verifier(detector, args.threshold)
    graders = {
        "verifier": verifier.passes,
        "judge": lambda p, canvas, base: judge.judge(p, canvas, base).passed,
    }
    records = measure(data, creators, graders, args.seed, args.limit)
    rows = summarize(records, list(graders))
    seconds = time.perf_counter() - t0
    desc = judge.describe()
    md = (
        f"{head} Verifier: detector {det_name}, threshold {args.threshold}, `scenes.verify.check`. "
        f"Second judge: {desc['name']} (settings {desc['settings']}; classifiers "
        f"{', '.join(f'{d} `{c}`' for d, c in desc['classifiers'].items())}). "
        f"{seconds:.0f} s.\n\n" + table(rows)
    )
    print(md)
    result = {"command": command, "set": data["version"], "split": split, "seed": args.seed, "judge": desc,
              "summary": rows, "results": records, "seconds": round(seconds, 1)}  # fmt: skip
    write_json(args.out, result)
    print(f"wrote {args.out}")
    if args.write_docs:
        write_docs(Path(args.docs), md, START, END)
        print(f"wrote the table into {args.docs}")
    return result


if __name__ == "__main__":
    main()
