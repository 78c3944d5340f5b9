"""Write the held-out prompt set v2 (``src/artdirector/prompts/bench_v2.json``): seeded, deterministic, frozen.

v1 (``bench_v1.json``, ``scripts/bench_prompts.py --write-set``) is the development set: rules of the scene
director and of the judges were chosen after seeing it. v2 is the test set. It has v1's six categories, 60
prompts each, drawn by v1's generators with a new seed, plus a seventh category of requests v1 never makes;
no prompt text of v1 or of the attribute set appears in it, and a share of its prompts are worded in ways v1
never uses:

- ``single``: one digit, always with a verb or a wrapper ("draw me a 7", "a picture of a seven", "the digit
  7"), since v1 already holds every bare "a 7" / "a seven";
- ``two_objects``, ``counting``, ``position``, ``size``, ``fashion``: v1's generators (seed
  :data:`SEED`), a fifth of each category then put in a wrapper ("an image of ...", "draw me ...");
- ``composite``: three objects, or two relations, or a count beside another object, or a non-square grid
  ("two 3s and a 5", "a 3 beside a 7 and a 2 below a 9", "a 1x3 grid of 4s", "two 6s left of an 8").

Every prompt is checked to parse into exactly the structure it was generated from and to plan (128 px canvas,
32 px cells) at three layout seeds, as v1's are. The file is written once; its SHA-256 is recorded in
``docs/benchmarks.md`` ("Prompt set v2") before anything is measured on it, and
``tests/evaluation/test_scene_judge.py`` checks both.

    python scripts/make_prompt_set.py            # (re)write bench_v2.json and print its sha256
    python scripts/make_prompt_set.py --check    # regenerate in memory, compare with the committed file
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _bench_prompts():
    """scripts/bench_prompts.py as a module: v1's generators and the set helpers live there."""
    spec = importlib.util.spec_from_file_location("bench_prompts", REPO / "scripts" / "bench_prompts.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_prompts", mod)
    spec.loader.exec_module(mod)
    return mod


bp = _bench_prompts()

VERSION = bp.V2_VERSION
SEED = 2024  # v1 used 10, the attribute set 11
PER_CATEGORY = 60
CATEGORIES = (*bp.CATEGORIES, bp.V2_CATEGORY)
PATH = bp.V2_PATH
WRAP_SHARE = 0.2  # of the prompts drawn by v1's generators, put in a v2-only wrapper
# wrappers the grammar reads as filler around the request (checked: the structure must not change)
WRAPPERS = ("a picture of {}", "an image of {}", "draw me {}", "show me {}", "a new picture of {}")
# v2-only ways of saying one digit
SINGLE_FORMS = ("{task} {np}", "a picture of {np}", "an image of {np}", "the digit {d}", "the number {d}",
                "draw me {np}", "{task} the digit {d}")  # fmt: skip


def _v1_texts() -> set[str]:
    texts = set()
    for path in (bp.SET_PATH, bp.ATTR_PATH):
        texts |= {e["prompt"] for e in json.loads(path.read_text())["prompts"]}
    return texts


def _gen_single(rng: random.Random, n: int, seen: set[str]) -> list[dict]:
    out = []
    for c in bp._blocks(rng, n):

        def make(c=c) -> str:
            form = rng.choice(SINGLE_FORMS)
            d = bp._digit(c, rng)
            return form.format(task=rng.choice(bp.TASKS), np=bp._article(d), d=d)

        out.append({"text": bp._unique(seen, make), "objects": [("mnist", c, 1, None)]})
    return out


def _gen_composite(rng: random.Random, n: int, seen: set[str]) -> list[dict]:
    """Four kinds in turn: three different digits; two relations between two pairs; a counted digit beside
    another object (with or without a relation); a 1x3, 3x1 or 2x3 grid."""
    out: list[dict] = []
    families = list(bp.RELATIONS)
    trios = bp._blocks(rng, 3 * n)
    pairs = bp._pairs(rng, 2 * n)
    for i in range(n):
        kind = i % 4
        if kind == 0:  # "a 3, a 5 and a 9"
            trio = trios[3 * i : 3 * i + 3]
            if len(set(trio)) < 3:
                trio = [trio[0], (trio[0] + 3) % 10, (trio[0] + 7) % 10]

            def make(trio=trio) -> str:
                nps = [bp._digit_np(c, rng) for c in trio]
                return bp._task(rng, f"{nps[0]}, {nps[1]} and {nps[2]}", 0.3)

            item = {"objects": [("mnist", c, 1, None) for c in trio]}
        elif kind == 1:  # "a 3 beside a 7 and a 2 below a 9"
            (a, b), (c, d) = pairs[2 * i], pairs[2 * i + 1]
            f1, f2 = families[i % 5], families[(i // 4 + 2) % 5]

            def make(a=a, b=b, c=c, d=d, f1=f1, f2=f2) -> str:
                one = f"{bp._digit_np(a, rng)} {bp._rel(f1, rng)} {bp._digit_np(b, rng)}"
                two = f"{bp._digit_np(c, rng)} {bp._rel(f2, rng)} {bp._digit_np(d, rng)}"
                return f"{one} and {two}"

            item = {
                "objects": [("mnist", x, 1, None) for x in (a, b, c, d)],
                "relations": [(0, f1, 1), (2, f2, 3)],
            }
        elif kind == 2:  # "two 6s and an 8", "two 6s left of an 8"
            a, b = pairs[2 * i]
            k = (2, 3)[i // 4 % 2]
            fam = families[i // 8 % 5] if i // 4 % 2 == 0 else None

            def make(a=a, b=b, k=k, fam=fam) -> str:
                form = rng.choice(("num", "num'", "word"))
                many = f"{bp._count(k, rng, numeral_ok=form == 'word')} {bp._digit_plural(a, rng, form)}"
                link = bp._rel(fam, rng) if fam else "and"
                return bp._task(rng, f"{many} {link} {bp._digit_np(b, rng)}", 0.3)

            item = {"objects": [("mnist", a, k, None), ("mnist", b, 1, None)]}
            if fam:
                item["relations"] = [(0, fam, 1)]
        else:  # "a 1x3 grid of 4s"
            c = trios[3 * i]
            rows, cols = ((1, 3), (3, 1), (2, 3))[i // 4 % 3]

            def make(c=c, rows=rows, cols=cols) -> str:
                return f"a {rows}x{cols} grid of {bp._digit_plural(c, rng)}"

            item = {
                "objects": [("mnist", c, rows * cols, None)],
                "layout": {"kind": "grid", "rows": rows, "cols": cols},
            }
        out.append({"text": bp._unique(seen, make), **item})
    return out


def _wrap(rng: random.Random, text: str, seen: set[str]) -> str:
    """``text`` in a v2-only wrapper, when one gives a text not seen before (else ``text``)."""
    if rng.random() >= WRAP_SHARE or text.startswith(bp.TASKS):  # no "draw me please draw a 7"
        return text
    for form in rng.sample(WRAPPERS, len(WRAPPERS)):
        new = form.format(text)
        if new not in seen:
            seen.discard(text)
            seen.add(new)
            return new
    return text


def generate(seed: int = SEED, per_category: int = PER_CATEGORY) -> dict[str, Any]:
    """The v2 set, deterministic for ``seed``; every prompt parses to the structure it was made from, plans,
    and is not a v1 prompt."""
    v1 = _v1_texts()
    seen = set(v1)
    own = {"single": _gen_single, bp.V2_CATEGORY: _gen_composite}
    entries = []
    for cat in CATEGORIES:
        rng = random.Random(f"{VERSION}/{seed}/{cat}")
        items = (own.get(cat) or bp.GENERATORS[cat])(rng, per_category, seen)
        rng.shuffle(items)
        for i, item in enumerate(items):
            text = item["text"] if cat in own else _wrap(rng, item["text"], seen)
            want = {k: item[k] for k in ("objects", "relations", "layout", "style") if k in item}
            got = bp._structure(bp.check_prompt(text))
            if json.loads(json.dumps(got)) != json.loads(json.dumps(want)):
                raise AssertionError(f"{text!r} parses to {got}, generated as {want}")
            if text in v1:
                raise AssertionError(f"{text!r} is a v1 prompt")
            entries.append({"id": f"{cat}-{i:03d}", "category": cat, "prompt": text})
    return {
        "version": VERSION,
        "seed": seed,
        "generator": "scripts/make_prompt_set.py",
        "categories": dict(Counter(e["category"] for e in entries)),
        "prompts": entries,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(PATH))
    ap.add_argument("--check", action="store_true", help="compare with the committed file; write nothing")
    args = ap.parse_args(argv)
    from artdirector.io import file_sha256, write_text

    text = bp.set_json(generate())
    if args.check:
        same = Path(args.out).read_text() == text
        print(f"{args.out}: {'identical to' if same else 'DIFFERS from'} what the generator makes")
        raise SystemExit(0 if same else 1)
    write_text(args.out, text)
    data = json.loads(text)
    print(f"wrote {args.out}: {data['categories']} ({len(data['prompts'])} prompts)")
    print(f"sha256 {file_sha256(args.out)}")


if __name__ == "__main__":
    main()
