"""The text-to-scene benchmark: a fixed, versioned prompt set through the scene director, one-shot and
directed.

The prompt set (``src/artdirector/prompts/bench_v1.json``) is generated once by :func:`generate_set` (seeded,
deterministic) and committed; ``--write-set`` regenerates it. Six categories in the spirit of GenEval (Ghosh,
Hajishirzi and Schmidt 2023), 60 prompts each, balanced over classes:

- ``single``: one digit, as a numeral or a word ("a 7", "draw a seven");
- ``two_objects``: two different digits ("a 3 and a 7");
- ``counting``: 2 to 5 of one digit ("three sevens", "a pair of 4s", "5 twos");
- ``position``: relations (left of, right of, above, below, next to and their synonyms), rows, columns,
  2x2 grids and mixed lists ("a 1, a 2 and a 3 in a column");
- ``size``: small and large digits, alone and in contrast ("a small 2 above a large 6");
- ``fashion``: FashionMNIST items and their synonyms, alone, in pairs, counted, placed, sized, and a few
  next to digits ("a bag next to a dress", "a 2x2 grid of sneakers").

A second set, ``bench_attr_v1.json`` (version ``attr-v1``, ``--write-attr-set``), has one category:

- ``attribute``: 60 prompts with style words (thick, bold, thin, slanted, italic, upright; each a
  Morpho-MNIST edit of its object's drawing): one styled digit ("a thick 7"), two digits in a relation with
  one or both styled ("a thin 1 above a bold 8"), counted styled digits ("two italic 4s in a row"). Its
  prompts pass when the detector passes AND every edit reached its goal, ``|after - goal| <= 0.25 |goal -
  before|`` (:func:`score_style`); the table adds the detector's own rates, the share where the detector
  passed but style failed, and a row per style word.

The held-out set, ``bench_v2.json`` (version ``v2``, 420 prompts: v1's categories with a new seed and new
wordings, plus ``composite``), is written by ``scripts/make_prompt_set.py`` and frozen: its SHA-256 is in
``docs/benchmarks.md``. v1 is the development set; ``--set src/artdirector/prompts/bench_v2.json`` runs v2 and
``--write-docs`` writes its table between ``<!-- bench_prompts_v2:start -->`` and ``<!-- bench_prompts_v2:end
-->``.

For each creator set, every prompt it can draw runs through :class:`~artdirector.agents.scene.SceneDirector`
twice with the same seed (``--seed`` plus the prompt's index in the set): **one-shot** (``max_rounds=0``) and
**directed** (``--max-rounds``, the director's default 10). A prompt whose data set has no creator in the set
is "n/a", not a fail. Each run's final canvas is graded twice: by the **verifier** the director redraws
against (the detector and ``scenes.verify``), and by the **second judge**
(:class:`~artdirector.evaluation.scene_judge.SceneJudge`: connected components named by the independent judge
classifiers), which took no part in directing. The table's headline is one-shot and the directed rate as the
second judge grades it; the verifier's rates and the gap between the two are columns beside it. Creator
sets:

- ``zoo``: the shipped class-conditional creators (``scene_creators(zoo_checkpoints())``), or ``--ckpt``;
- ``real``: :class:`~artdirector.scenes.real.RealCreator` on the **test** split of MNIST / FashionMNIST
  (images the detector never trained on). It has no critic, so a repair is a new real image; its one-shot
  pass rate is the verifier's own error rate on real-object scenes.

    python scripts/bench_prompts.py --write-set                       # regenerate the committed prompt set
    python scripts/bench_prompts.py --limit 5                          # a quick look: 5 prompts per category
    python scripts/bench_prompts.py --write-docs --gallery docs/images/prompts
    python scripts/bench_prompts.py --write-attr-set                  # regenerate the attribute set
    python scripts/bench_prompts.py --set src/artdirector/prompts/bench_attr_v1.json
    python scripts/bench_prompts.py --set src/artdirector/prompts/bench_v2.json --threads 1 --write-docs

Prints a markdown table (per creator set x category: prompts, one-shot and directed pass rates by the second
judge and by the verifier with 95 % Wilson intervals, the gap, mean repair rounds, seconds per prompt), writes the per-prompt results to ``--out`` and,
with ``--write-docs``, the table into ``docs/benchmarks.md`` between ``<!-- bench_prompts:start -->`` and
``<!-- bench_prompts:end -->`` (the attribute set: between ``<!-- bench_prompts_attr:start -->`` and
``<!-- bench_prompts_attr:end -->``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import shlex
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

import artdirector.prompts as prompts_pkg
from artdirector.evaluation.copying import wilson_interval as wilson  # the 95 % Wilson score interval
from artdirector.io import atomic_write, file_sha256, write_json, write_text
from artdirector.prompts import PromptError, parse
from artdirector.prompts.words import DIGIT_WORDS
from artdirector.scenes.layout import plan

log = logging.getLogger("bench_prompts")

REPO = Path(__file__).resolve().parents[1]
VERSION = "v1"
SET_SEED = 10  # issue 10
PER_CATEGORY = 60
SET_PATH = Path(prompts_pkg.__file__).with_name(f"bench_{VERSION}.json")
CATEGORIES = ("single", "two_objects", "counting", "position", "size", "fashion")
# the attribute set (issue: style words in scenes): a second, separately versioned file, so v1 stays as it is
ATTR_VERSION = "attr-v1"
ATTR_SEED = 11
ATTR_PATH = Path(prompts_pkg.__file__).with_name("bench_attr_v1.json")
ATTR_CATEGORY = "attribute"
# the style words the set uses: thickness and slant (bright/dim left out: the digits' ink is near-saturated)
ATTR_WORDS = ("thick", "bold", "thin", "slanted", "italic", "upright")
STYLE_TOLERANCE = 0.25  # an edit reaches its goal when |after - goal| <= 0.25 |goal - before|
# the held-out set (scripts/make_prompt_set.py): v1 is the development set, v2 the test set
V2_VERSION = "v2"
V2_PATH = Path(prompts_pkg.__file__).with_name("bench_v2.json")
V2_CATEGORY = "composite"  # v2's seventh category
ALL_CATEGORIES = (*CATEGORIES, V2_CATEGORY, ATTR_CATEGORY)
DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- bench_prompts:start -->", "<!-- bench_prompts:end -->"
V2_START, V2_END = "<!-- bench_prompts_v2:start -->", "<!-- bench_prompts_v2:end -->"
ATTR_START, ATTR_END = "<!-- bench_prompts_attr:start -->", "<!-- bench_prompts_attr:end -->"
PLAN_SEEDS = 3  # the set is checked to plan at these many layout seeds (0, 1, 2) besides the bench's own

# ---- the prompt set ---------------------------------------------------------------------------------------
TASKS = ("draw", "make", "generate", "paint", "sketch", "show me", "create", "give me", "please draw")
RELATIONS = {
    "left of": ("left of", "to the left of"),
    "right of": ("right of", "to the right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
    "next to": ("next to", "beside"),
}
SMALL, LARGE = ("small", "tiny", "little"), ("large", "big", "huge")
COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
# FashionMNIST classes: (singular noun phrases, plural nouns). Trousers are a "pair" noun: one item is
# "trousers" or "jeans" (no article); "a pair of trousers" would be parsed as two objects.
FASHION_WORDS: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    0: (("a t-shirt", "a tshirt", "a tee", "a top"), ("t-shirts", "tees", "tops")),
    1: (("trousers", "jeans", "pants"), ("trousers", "jeans", "pants")),
    2: (("a pullover", "a sweater", "a jumper"), ("pullovers", "sweaters", "jumpers")),
    3: (("a dress",), ("dresses",)),
    4: (("a coat", "a jacket"), ("coats", "jackets")),
    5: (("a sandal",), ("sandals",)),
    6: (("a shirt",), ("shirts",)),
    7: (("a sneaker", "a trainer"), ("sneakers", "trainers")),
    8: (("a bag", "a handbag", "a purse"), ("bags", "handbags", "purses")),
    9: (("an ankle boot", "a boot"), ("ankle boots", "boots")),
}
PAIRED_ITEMS = (5, 7, 9)  # "a pair of sandals / sneakers / boots" reads as two objects


def _article(word: str) -> str:
    """'a 7', 'an 8', 'an eight', 'a one'."""
    return ("an " if word[0] in "aeiu8" or word.startswith("eight") else "a ") + word


def _digit(c: int, rng: random.Random, form: str | None = None) -> str:
    form = form or rng.choice(("num", "word"))
    return str(c) if form == "num" else DIGIT_WORDS[c]


def _digit_np(c: int, rng: random.Random, size: str | None = None) -> str:
    word = _digit(c, rng)
    return _article(f"{size} {word}" if size else word)


def _digit_plural(c: int, rng: random.Random, form: str | None = None) -> str:
    form = form or rng.choice(("num", "num'", "word"))
    if form == "num":
        return f"{c}s"
    if form == "num'":
        return f"{c}'s"
    w = DIGIT_WORDS[c]
    return w + ("es" if w.endswith(("s", "x")) else "s")


def _count(n: int, rng: random.Random, numeral_ok: bool = True) -> str:
    options = [COUNT_WORDS[n]] + ([str(n)] if numeral_ok else [])
    if n == 2:
        options += ["a pair of", "a couple of"]
    return rng.choice(options)


def _fashion_np(c: int, rng: random.Random, size: str | None = None) -> str:
    phrase = rng.choice(FASHION_WORDS[c][0])
    if size:
        det, _, noun = phrase.partition(" ")
        phrase = _article(f"{size} {noun}") if det in ("a", "an") else f"{size} {phrase}"
    return phrase


def _blocks(rng: random.Random, n: int, k: int = 10) -> list[int]:
    """``n`` class ids in shuffled blocks of all ``k``: every class equally often (+-1)."""
    out: list[int] = []
    while len(out) < n:
        block = list(range(k))
        rng.shuffle(block)
        out += block
    return out[:n]


def _pairs(rng: random.Random, n: int, k: int = 10) -> list[tuple[int, int]]:
    """``n`` ordered pairs of different classes, every class in the same number of pairs (+-1), a pair
    repeated only when there are more than ``k (k - 1) / 2`` (and then in the other order first)."""
    out: list[tuple[int, int]] = []
    while len(out) < n:
        best, best_cost = None, None
        for _ in range(200):  # a block: every class once, five pairs; the one repeating least
            block = list(range(k))
            rng.shuffle(block)
            pairs = [(block[2 * i], block[2 * i + 1]) for i in range(k // 2)]
            cost = sum(100 * (p in out) + (p in out or p[::-1] in out) for p in pairs)
            if best_cost is None or cost < best_cost:
                best, best_cost = pairs, cost
            if cost == 0:
                break
        out += best
    return out[:n]


def _task(rng: random.Random, text: str, p: float = 0.35) -> str:
    return f"{rng.choice(TASKS)} {text}" if rng.random() < p else text


def _size_word(size: str, rng: random.Random) -> str:
    return rng.choice(SMALL if size == "small" else LARGE)


def _rel(family: str, rng: random.Random) -> str:
    return rng.choice(RELATIONS[family])


def _unique(seen: set[str], make, tries: int = 500) -> str:
    """``make()`` until it says something not said before in the set (the same request in other words)."""
    for _ in range(tries):
        text = make()
        if text not in seen:
            seen.add(text)
            return text
    raise AssertionError(f"no new wording of {text!r} in {tries} tries: change the generator or the seed")


def _gen_single(rng: random.Random, n: int, seen: set[str]) -> list[dict]:
    out = []
    tasks = {c: rng.sample(TASKS, len(TASKS)) for c in range(10)}  # a different verb each time per class
    for i, c in enumerate(_blocks(rng, n)):
        block = i // 10  # the class's block-th prompt: bare, then with a verb; numeral and word in turn
        obj = _article(_digit(c, rng, ("num", "word")[block % 2]))
        text = _unique(seen, lambda obj=obj, c=c, block=block: f"{tasks[c][block % len(TASKS)]} {obj}"
                       if block >= 2 else obj)  # fmt: skip
        out.append({"text": text, "objects": [("mnist", c, 1, None)]})
    return out


def _gen_two(rng: random.Random, n: int, seen: set[str]) -> list[dict]:
    out = []
    for a, b in _pairs(rng, n):

        def make(a=a, b=b) -> str:
            conj = rng.choice(("and", "and", "&"))
            return _task(rng, f"{_digit_np(a, rng)} {conj} {_digit_np(b, rng)}")

        out.append({"text": _unique(seen, make), "objects": [("mnist", a, 1, None), ("mnist", b, 1, None)]})
    return out


def _gen_counting(rng: random.Random, n: int, seen: set[str]) -> list[dict]:
    combos = [(c, k) for c in range(10) for k in (2, 3, 4, 5)]
    combos += [(c, (2 * c + j) % 4 + 2) for c in range(10) for j in (0, 1)]
    rng.shuffle(combos)
    out = []
    for c, k in combos[:n]:

        def make(c=c, k=k) -> str:
            plural_form = rng.choice(("num", "num'", "word"))
            count = _count(k, rng, numeral_ok=plural_form == "word")  # no "3 7s": a numeral counts a word
            return _task(rng, f"{count} {_digit_plural(c, rng, plural_form)}")

        out.append({"text": _unique(seen, make), "objects": [("mnist", c, k, None)]})
    return out


def _gen_position(rng: random.Random, n: int, seen: set[str]) -> list[dict]:
    n_lines, n_grids, n_lists = n // 6, n // 12, n // 12
    n_rel = n - n_lines - n_grids - n_lists
    out: list[dict] = []
    families = list(RELATIONS)
    for i, (a, b) in enumerate(_pairs(rng, n_rel)):
        fam = families[i % len(families)]
        text = _unique(
            seen,
            lambda a=a, b=b, fam=fam: _task(
                rng, f"{_digit_np(a, rng)} {_rel(fam, rng)} {_digit_np(b, rng)}", 0.2
            ),
        )
        out.append(
            {
                "text": text,
                "objects": [("mnist", a, 1, None), ("mnist", b, 1, None)],
                "relations": [(0, fam, 1)],
            }
        )
    for i, c in enumerate(_blocks(rng, n_lines)):
        k = (3, 4)[i % 2]
        line = ("row", "line", "column")[i % 3]

        def make(c=c, k=k, line=line) -> str:
            plural_form = rng.choice(("num", "word"))
            count = _count(k, rng, numeral_ok=plural_form == "word")
            return _task(rng, f"{count} {_digit_plural(c, rng, plural_form)} in a {line}", 0.2)

        kind = "column" if line == "column" else "row"
        out.append(
            {"text": _unique(seen, make), "objects": [("mnist", c, k, None)], "layout": {"kind": kind}}
        )
    for c in _blocks(rng, n_grids):
        text = _unique(seen, lambda c=c: f"a 2x2 grid of {_digit_plural(c, rng)}")
        grid = {"kind": "grid", "rows": 2, "cols": 2}
        out.append({"text": text, "objects": [("mnist", c, 4, None)], "layout": grid})
    ids = _blocks(rng, 3 * n_lists)
    for i in range(n_lists):
        trio = ids[3 * i : 3 * i + 3]
        if len(set(trio)) < 3:  # a list of different digits
            trio = [trio[0], (trio[0] + 3) % 10, (trio[0] + 6) % 10]
        kind = ("row", "column")[i % 2]

        def make(trio=trio, kind=kind) -> str:
            nps = [_digit_np(c, rng) for c in trio]
            return f"{nps[0]}, {nps[1]} and {nps[2]} in a {kind}"

        out.append(
            {
                "text": _unique(seen, make),
                "objects": [("mnist", c, 1, None) for c in trio],
                "layout": {"kind": kind},
            }
        )
    return out


def _gen_size(rng: random.Random, n: int, seen: set[str]) -> list[dict]:
    n_single = n // 2
    n_rel = n // 3
    n_and = n - n_single - n_rel
    out = []
    for i, c in enumerate(_blocks(rng, n_single)):
        size = ("small", "large")[(i + i // 10) % 2]
        text = _unique(seen, lambda c=c, size=size: _task(rng, _digit_np(c, rng, _size_word(size, rng))))
        out.append({"text": text, "objects": [("mnist", c, 1, size)]})
    families = list(RELATIONS)
    for i, (a, b) in enumerate(_pairs(rng, n_rel)):
        sa, sb = (("small", "large"), ("large", "small"))[i % 2]
        fam = families[i % len(families)]

        def make(a=a, b=b, sa=sa, sb=sb, fam=fam) -> str:
            first, second = _digit_np(a, rng, _size_word(sa, rng)), _digit_np(b, rng, _size_word(sb, rng))
            return f"{first} {_rel(fam, rng)} {second}"

        out.append(
            {
                "text": _unique(seen, make),
                "objects": [("mnist", a, 1, sa), ("mnist", b, 1, sb)],
                "relations": [(0, fam, 1)],
            }
        )
    for i, (a, b) in enumerate(_pairs(rng, n_and)):
        sa, sb = (("large", "small"), ("small", "large"))[i % 2]

        def make(a=a, b=b, sa=sa, sb=sb) -> str:
            first, second = _digit_np(a, rng, _size_word(sa, rng)), _digit_np(b, rng, _size_word(sb, rng))
            return _task(rng, f"{first} and {second}", 0.2)

        out.append({"text": _unique(seen, make), "objects": [("mnist", a, 1, sa), ("mnist", b, 1, sb)]})
    return out


def _gen_fashion(rng: random.Random, n: int, seen: set[str]) -> list[dict]:
    f = "fashion_mnist"
    parts = {
        "single": n // 3,
        "two": n // 6,
        "count": n // 6,
        "rel": n // 6,
        "layout": n // 15,
        "size": n // 20,
    }
    parts["mixed"] = n - sum(parts.values())
    out: list[dict] = []
    for c in _blocks(rng, parts["single"]):
        text = _unique(seen, lambda c=c: _task(rng, _fashion_np(c, rng), 0.4))
        out.append({"text": text, "objects": [(f, c, 1, None)]})
    for a, b in _pairs(rng, parts["two"]):
        text = _unique(
            seen, lambda a=a, b=b: _task(rng, f"{_fashion_np(a, rng)} and {_fashion_np(b, rng)}", 0.25)
        )
        out.append({"text": text, "objects": [(f, a, 1, None), (f, b, 1, None)]})
    for i, c in enumerate(_blocks(rng, parts["count"])):
        k = (2, 3, 4, 5)[i % 4]

        def make(c=c, k=k) -> str:
            options = [COUNT_WORDS[k], str(k)] + (["a pair of"] if k == 2 and c in PAIRED_ITEMS else [])
            return _task(rng, f"{rng.choice(options)} {rng.choice(FASHION_WORDS[c][1])}")

        out.append({"text": _unique(seen, make), "objects": [(f, c, k, None)]})
    families = list(RELATIONS)
    for i, (a, b) in enumerate(_pairs(rng, parts["rel"])):
        fam = families[i % len(families)]
        text = _unique(
            seen, lambda a=a, b=b, fam=fam: f"{_fashion_np(a, rng)} {_rel(fam, rng)} {_fashion_np(b, rng)}"
        )
        out.append({"text": text, "objects": [(f, a, 1, None), (f, b, 1, None)], "relations": [(0, fam, 1)]})
    for i, c in enumerate(_blocks(rng, parts["layout"])):
        if i % 2:
            k, layout = 4, {"kind": "grid", "rows": 2, "cols": 2}
            text = _unique(seen, lambda c=c: f"a 2x2 grid of {rng.choice(FASHION_WORDS[c][1])}")
        else:
            k, kind = rng.choice((3, 4)), rng.choice(("row", "column"))
            layout = {"kind": kind}
            text = _unique(
                seen,
                lambda c=c, k=k, kind=kind: f"{COUNT_WORDS[k]} {rng.choice(FASHION_WORDS[c][1])} in a {kind}",
            )
        out.append({"text": text, "objects": [(f, c, k, None)], "layout": layout})
    sized = [c for c in _blocks(rng, 20) if c != 1]  # no "a small trousers"
    for i in range(parts["size"]):
        a, b = sized[2 * i], sized[2 * i + 1]
        if a == b or i % 2 == 0:
            size = ("small", "large")[i // 2 % 2]
            text = _unique(
                seen, lambda a=a, size=size: _task(rng, _fashion_np(a, rng, _size_word(size, rng)))
            )
            out.append({"text": text, "objects": [(f, a, 1, size)]})
        else:

            def make(a=a, b=b) -> str:
                big, small = (
                    _fashion_np(a, rng, _size_word("large", rng)),
                    _fashion_np(b, rng, _size_word("small", rng)),
                )
                return f"{big} next to {small}"

            out.append(
                {
                    "text": _unique(seen, make),
                    "objects": [(f, a, 1, "large"), (f, b, 1, "small")],
                    "relations": [(0, "next to", 1)],
                }
            )
    digits, items = _blocks(rng, parts["mixed"]), _blocks(rng, parts["mixed"])
    for i, (d, c) in enumerate(zip(digits, items, strict=True)):
        fam = families[i % len(families)]
        objs = [("mnist", d, 1, None), (f, c, 1, None)]
        nps = [lambda d=d: _digit_np(d, rng), lambda c=c: _fashion_np(c, rng)]
        if i % 2:
            objs, nps = objs[::-1], nps[::-1]
        text = _unique(seen, lambda nps=nps, fam=fam: f"{nps[0]()} {_rel(fam, rng)} {nps[1]()}")
        out.append({"text": text, "objects": objs, "relations": [(0, fam, 1)]})
    return out


def _gen_attribute(rng: random.Random, n: int, seen: set[str]) -> list[dict]:
    """Styled digits: a third one styled digit ("a thick 7", "draw a slanted three"), a third two digits in a
    relation with one or both styled ("a thin 1 above a bold 8", "a 3 left of an italic 5"), a third counted
    styled digits, bare or in a row, a column or a 2x2 grid ("two italic 4s in a row"). Classes are balanced
    per part, and so are the words (:data:`ATTR_WORDS`, in shuffled blocks of six)."""
    n_single, n_pair = n // 3, n // 3
    n_count = n - n_single - n_pair
    out: list[dict] = []

    def words(k: int) -> list[str]:
        return [ATTR_WORDS[i] for i in _blocks(rng, k, len(ATTR_WORDS))]

    def distinct(seq: list, keys) -> list:
        """``seq`` reshuffled until no two prompts of a part ask for the same thing (``keys()``)."""
        for _ in range(1000):
            ks = keys()
            if len(set(ks)) == len(ks):
                return seq
            rng.shuffle(seq)
        raise AssertionError("no arrangement without repeats: change the generator or the seed")

    classes, ws = _blocks(rng, n_single), words(n_single)
    distinct(ws, lambda: list(zip(classes, ws, strict=True)))
    for i, (c, w) in enumerate(zip(classes, ws, strict=True)):
        form = ("num", "word")[(i + i // 10) % 2]
        text = _unique(
            seen, lambda c=c, w=w, form=form: _task(rng, _article(f"{w} {_digit(c, rng, form)}"), 0.4)
        )
        out.append({"text": text, "objects": [("mnist", c, 1, None)], "style": [[w]]})
    families = list(RELATIONS)
    pairs = _pairs(rng, n_pair)
    both = [i % 2 == 0 for i in range(n_pair)]  # half the pairs style both digits, half one of them
    stream = iter(words(sum(2 if b else 1 for b in both)))
    for i, (a, b) in enumerate(pairs):
        fam = families[i % len(families)]
        if both[i]:
            wa, wb = next(stream), next(stream)
        else:
            w = next(stream)
            wa, wb = (w, None) if i // 2 % 2 == 0 else (None, w)

        def make(a=a, b=b, wa=wa, wb=wb, fam=fam) -> str:
            return _task(rng, f"{_digit_np(a, rng, wa)} {_rel(fam, rng)} {_digit_np(b, rng, wb)}", 0.2)

        out.append(
            {
                "text": _unique(seen, make),
                "objects": [("mnist", a, 1, None), ("mnist", b, 1, None)],
                "relations": [(0, fam, 1)],
                "style": [[wa] if wa else [], [wb] if wb else []],
            }
        )
    shapes = [("bare", "row", "column", "grid")[i % 4] for i in range(n_count)]
    classes, ws = _blocks(rng, n_count), words(n_count)
    distinct(classes, lambda: list(zip(classes, shapes, strict=True)))
    distinct(ws, lambda: list(zip(classes, ws, strict=True)))
    for i, (c, w, shape) in enumerate(zip(classes, ws, shapes, strict=True)):
        if shape == "grid":
            text = _unique(seen, lambda c=c, w=w: f"a 2x2 grid of {w} {_digit_plural(c, rng)}")
            item = {"objects": [("mnist", c, 4, None)], "layout": {"kind": "grid", "rows": 2, "cols": 2}}
        else:
            k = (2, 3, 4)[i // 4 % 3]
            tail = "" if shape == "bare" else f" in a {shape}"

            def make(c=c, w=w, k=k, tail=tail) -> str:
                plural_form = rng.choice(("num", "num'", "word"))
                count = _count(k, rng, numeral_ok=plural_form == "word")  # no "3 7s"
                return _task(rng, f"{count} {w} {_digit_plural(c, rng, plural_form)}{tail}", 0.3)

            text = _unique(seen, make)
            item = {"objects": [("mnist", c, k, None)]}
            if tail:
                item["layout"] = {"kind": shape}
        out.append({"text": text, **item, "style": [[w]]})
    return out


GENERATORS = {
    "single": _gen_single,
    "two_objects": _gen_two,
    "counting": _gen_counting,
    "position": _gen_position,
    "size": _gen_size,
    "fashion": _gen_fashion,
    ATTR_CATEGORY: _gen_attribute,
}


def _structure(p) -> dict[str, Any]:
    """What a parsed prompt asks for, in the generator's terms."""
    out: dict[str, Any] = {"objects": [(o.dataset, o.label, o.count, o.size) for o in p.objects]}
    if p.relations:
        out["relations"] = [(r.subject, r.relation, r.object) for r in p.relations]
    if p.layout:
        out["layout"] = p.layout
    if any(o.style for o in p.objects):  # each object's style words, in order
        out["style"] = [list(o.style) for o in p.objects]
    return out


def check_prompt(text: str, seeds=range(PLAN_SEEDS)) -> Any:
    """The parsed prompt; raises unless it is a scene and plans (128 px canvas, 32 px cells) at ``seeds``."""
    p = parse(text)
    if not p.is_scene:
        raise ValueError(f"{text!r} is not a scene request")
    for s in seeds:
        plan(p, seed=s)
    return p


def generate_set(
    seed: int | None = None, per_category: int = PER_CATEGORY, kind: str = "v1"
) -> dict[str, Any]:
    """The prompt set: deterministic for a seed. ``kind`` "v1" is the six-category set (seed
    :data:`SET_SEED`), "attr" the attribute set (:data:`ATTR_VERSION`, seed :data:`ATTR_SEED`). Every prompt
    is checked to parse into exactly the structure it was generated from (objects, relations, layout and
    each object's style words) and to plan."""
    if kind not in ("v1", "attr"):
        raise ValueError(f"kind is 'v1' or 'attr', not {kind!r}")
    attr = kind == "attr"
    seed = (ATTR_SEED if attr else SET_SEED) if seed is None else seed
    entries = []
    seen: set[str] = set()
    for cat in (ATTR_CATEGORY,) if attr else CATEGORIES:
        rng = random.Random(f"{seed}/{cat}")
        items = GENERATORS[cat](rng, per_category, seen)
        rng.shuffle(items)  # "the first N of a category" mixes its kinds
        for i, item in enumerate(items):
            text = item["text"]
            want = {k: item[k] for k in ("objects", "relations", "layout", "style") if k in item}
            got = _structure(check_prompt(text))
            if json.loads(json.dumps(got)) != json.loads(json.dumps(want)):
                raise AssertionError(f"{text!r} parses to {got}, generated as {want}")
            entries.append({"id": f"{cat}-{i:03d}", "category": cat, "prompt": text})
    return {
        "version": ATTR_VERSION if attr else VERSION,
        "seed": seed,
        "generator": "scripts/bench_prompts.py " + ("--write-attr-set" if attr else "--write-set"),
        "categories": dict(Counter(e["category"] for e in entries)),
        "prompts": entries,
    }


def set_json(data: dict[str, Any]) -> str:
    """The set as committed: the header fields, then one prompt a line (diffs read prompt by prompt)."""
    head = {k: v for k, v in data.items() if k != "prompts"}
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    rows = ",\n".join(f"    {json.dumps(e)}" for e in data["prompts"])
    return "{\n" + "\n".join(lines) + '\n  "prompts": [\n' + rows + "\n  ]\n}\n"


def load_set(path: str | Path = SET_PATH) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if data.get("version") not in (VERSION, ATTR_VERSION, V2_VERSION):
        log.warning(
            "%s is prompt set %s, not one of the committed sets %s",
            path,
            data.get("version"),
            (VERSION, ATTR_VERSION, V2_VERSION),
        )
    return data


def class_balance(data: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per category, how many object instances of each class its prompts ask for (class names)."""
    from artdirector.scenes.canvas import class_name, global_id

    out: dict[str, Counter] = {}
    for e in data["prompts"]:
        c = out.setdefault(e["category"], Counter())
        for o in parse(e["prompt"]).objects:
            c[class_name(global_id(o.dataset, o.label))] += 1
    return {k: dict(sorted(v.items())) for k, v in out.items()}


# ---- the benchmark ----------------------------------------------------------------------------------------
def creator_sets(
    args: argparse.Namespace, device: torch.device
) -> tuple[dict[str, dict[str, list]], list[str]]:
    """The creator sets asked for by ``--sets``, and notes on what is missing."""
    sets: dict[str, dict[str, list]] = {}
    notes: list[str] = []
    if "zoo" in args.sets:
        from artdirector.creators import zoo_checkpoints
        from artdirector.creators.routing import scene_creators

        ckpts = args.ckpt or zoo_checkpoints()
        sets["zoo"] = scene_creators(ckpts, device)
    if "real" in args.sets:
        from artdirector.data.datamodules import DatasetUnavailableError, TorchvisionDataModule
        from artdirector.scenes.real import RealCreator

        real: dict[str, list] = {}
        for dataset in ("mnist", "fashion_mnist"):
            dm = TorchvisionDataModule(
                dataset, root=args.data_root, download=False, fallback_to_bundled=False
            )
            try:
                dm.prepare_data()
                dm.setup("fit")
            except DatasetUnavailableError as err:
                notes.append(f"real: no {dataset} test split ({err}); its prompts are n/a")
                continue
            real[dataset] = [RealCreator.from_datamodule(dm, "report", name=f"real_{dataset}_test")]
        sets["real"] = real
    return sets, notes


def _reasons(verdict) -> list[str]:
    return list(verdict.reasons)


def edit_ok(edit: dict[str, Any], tolerance: float = STYLE_TOLERANCE) -> bool:
    """Did one style edit reach its goal: ``|after - goal| <= tolerance * |goal - before|`` (an edit asked
    to move nothing, goal == before, is met)."""
    need = abs(edit["goal"] - edit["before"])
    if need <= 1e-9:
        return True
    return abs(edit["after"] - edit["goal"]) <= tolerance * need


def score_style(passed: bool, edits: list[dict[str, Any]]) -> dict[str, Any]:
    """An attribute prompt's score for one run: ``passed`` (the detector's blind check) and the edits of its
    styled objects (``{word, target, before, after, goal}`` each, as ``Drawing.style``). It passes when the
    detector passes AND every edit reached its goal (:func:`edit_ok`); ``style_failed_only``: the detector
    passed but an edit missed."""
    style_ok = all(edit_ok(e) for e in edits)
    return {
        "style_ok": style_ok,
        "passed_with_style": bool(passed and style_ok),
        "style_failed_only": bool(passed and not style_ok),
    }


def _edits(result) -> list[dict[str, Any]]:
    """Every style edit of a scene's drawings, with its plan item and object, and whether it met its goal."""
    out = []
    for k, d in enumerate(result.drawings):
        for e in d.style or []:
            rec = {"item": k, "object": result.plan.items[k].obj, "word": e["word"], "target": e["target"]}
            rec |= {key: round(float(e[key]), 4) for key in ("before", "after", "goal")}
            out.append(rec | {"ok": edit_ok(e)})
    return out


def _passed(run: dict[str, Any]) -> bool:
    """A run's pass: the detector's verdict, and for a styled prompt its edits too."""
    return bool(run["passed"] and run.get("style_ok", True))


def run_prompt(
    creators: dict[str, list], detector, text: str, seed: int, args, judge: Any = None
) -> tuple[dict[str, Any], Any, Any]:
    """One prompt through the director, one-shot and directed (same seed: the same plan and first draws). A
    prompt with style words also gets each run's edits and :func:`score_style`. With a ``judge``
    (:class:`~artdirector.evaluation.scene_judge.SceneJudge`), each run's final canvas is also graded by it:
    ``judge_passed`` and ``judge_reasons`` (for a styled prompt, ``judge_passed`` needs the edits at goal
    too, as the verifier's pass does)."""
    from artdirector.agents.scene import SceneDirector

    p = parse(text)
    kw = {"canvas": args.canvas, "base": args.base, "threshold": args.threshold, "seed": seed}
    kw["max_seconds"] = args.max_seconds
    t0 = time.perf_counter()
    one = SceneDirector(creators, detector, max_rounds=0, **kw).run(p)
    t1 = time.perf_counter()
    directed = SceneDirector(creators, detector, max_rounds=args.max_rounds, **kw).run(p)
    t2 = time.perf_counter()
    rec = {
        # "passed" is the detector's blind check; with style words, score_style below adds the edits' goals
        "one_shot": {
            "passed": one.verdict.passed,
            "seconds": round(t1 - t0, 4),
            "reasons": _reasons(one.verdict),
        },
        "directed": {
            "passed": directed.verdict.passed,
            "rounds": len(directed.rounds) - 1,
            "seconds": round(t2 - t1, 4),
            "stop": directed.stop,
            "reasons": _reasons(directed.verdict),
            "round0_passed": directed.one_shot.passed,
        },
    }
    if p.style:
        for key, res in (("one_shot", one), ("directed", directed)):
            edits = _edits(res)
            rec[key] |= {**score_style(res.verdict.passed, edits), "edits": edits}
    if judge is not None:
        for key, res in (("one_shot", one), ("directed", directed)):
            v = judge.judge(p, res.canvas, res.plan.base * res.plan.scale)
            rec[key] |= {"judge_passed": bool(v.passed and rec[key].get("style_ok", True))}
            rec[key] |= {"judge_reasons": v.reasons}
    return rec, one, directed


def summarize(records: list[dict[str, Any]], sets: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name in sets:
        mine = [r for r in records if r["set"] == name]
        for cat in [*ALL_CATEGORIES, "overall"]:
            rs = [r for r in mine if cat == "overall" or r["category"] == cat]
            if not rs:
                continue
            ran = [r for r in rs if r["status"] == "run"]
            n = len(ran)
            k1 = sum(_passed(r["one_shot"]) for r in ran)  # a styled prompt: detector and style
            k2 = sum(_passed(r["directed"]) for r in ran)
            row = {"set": name, "category": cat, "prompts": len(rs), "n": n, "na": len(rs) - n}
            if n:
                row |= {
                    "one_shot_pass": k1 / n,
                    "one_shot_ci": wilson(k1, n),
                    "directed_pass": k2 / n,
                    "directed_ci": wilson(k2, n),
                    "mean_rounds": sum(r["directed"]["rounds"] for r in ran) / n,
                    "seconds_one_shot": sum(r["one_shot"]["seconds"] for r in ran) / n,
                    "seconds_directed": sum(r["directed"]["seconds"] for r in ran) / n,
                    # why the fails failed: the wrong objects (missing, extra, wrong class) or the right
                    # objects in the wrong arrangement (relations, layout, sizes)
                    "one_shot_fails": _fail_kinds(r["one_shot"] for r in ran),
                    "directed_fails": _fail_kinds(r["directed"] for r in ran),
                }
                if all("judge_passed" in r["directed"] for r in ran):
                    row |= _judge_summary(ran)
                if any("style_ok" in r["one_shot"] for r in ran):
                    row |= _style_summary(ran)
            rows.append(row)
    return rows


def _judge_summary(ran: list[dict[str, Any]]) -> dict[str, Any]:
    """The second judge's columns of a row: its one-shot and directed pass rates, and the gap between the
    verifier's directed rate and its own, with the prompts on which they disagree each way."""
    n = len(ran)
    out: dict[str, Any] = {}
    for key in ("one_shot", "directed"):
        k = sum(r[key]["judge_passed"] for r in ran)
        out[f"{key}_judge_pass"], out[f"{key}_judge_ci"] = k / n, wilson(k, n)
        out[f"{key}_verifier_only"] = sum(_passed(r[key]) and not r[key]["judge_passed"] for r in ran)
        out[f"{key}_judge_only"] = sum(r[key]["judge_passed"] and not _passed(r[key]) for r in ran)
        out[f"{key}_gap"] = (out[f"{key}_verifier_only"] - out[f"{key}_judge_only"]) / n
    return out


def _style_summary(ran: list[dict[str, Any]]) -> dict[str, Any]:
    """The style columns of a row: the detector's own pass rates, the share the detector passed but an edit
    missed, and per style word how its edits and its prompts fared."""
    n = len(ran)
    out: dict[str, Any] = {}
    for key in ("one_shot", "directed"):
        out[f"{key}_detector_pass"] = sum(r[key]["passed"] for r in ran) / n
        out[f"{key}_style_fail"] = sum(r[key].get("style_failed_only", False) for r in ran) / n
    words: dict[str, dict[str, Any]] = {}
    for r in ran:
        for key in ("one_shot", "directed"):
            for e in r[key].get("edits", []):
                w = words.setdefault(e["word"], {"target": e["target"], "prompts": set()})
                w.setdefault(f"{key}_edits", []).append(e)
        for w in {e["word"] for e in r["directed"].get("edits", [])}:
            words[w]["prompts"].add(r["id"])
    by_id = {r["id"]: r for r in ran}
    summary = {}
    for word, w in sorted(words.items()):
        ids = sorted(w["prompts"])
        row: dict[str, Any] = {"target": w["target"], "prompts": len(ids)}
        for key in ("one_shot", "directed"):
            edits = w.get(f"{key}_edits", [])
            ratios = sorted((e["after"] - e["before"]) / (e["goal"] - e["before"]) for e in edits
                            if abs(e["goal"] - e["before"]) > 1e-9)  # fmt: skip
            row[f"{key}_edits"] = len(edits)
            row[f"{key}_edits_ok"] = sum(e["ok"] for e in edits)
            row[f"{key}_achieved_over_requested_median"] = ratios[len(ratios) // 2] if ratios else math.nan
            row[f"{key}_detector_pass"] = sum(by_id[i][key]["passed"] for i in ids)
            row[f"{key}_pass"] = sum(_passed(by_id[i][key]) for i in ids)
        summary[word] = row
    out["style_words"] = summary
    return out


def _fail_kinds(runs) -> dict[str, int]:
    kinds: Counter = Counter()
    for run in runs:
        if not run["passed"]:
            arrangement = any(r.startswith("the right objects") for r in run["reasons"])
            kinds["arrangement" if arrangement else "objects"] += 1
    return {"objects": kinds["objects"], "arrangement": kinds["arrangement"]}


def _pct(p: float, ci: tuple[float, float]) -> str:
    return f"{100 * p:.0f} % [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"


def table(rows: list[dict[str, Any]]) -> str:
    """The headline: one-shot, then directed as graded by the second judge; the verifier's own rates and the
    gap (verifier minus judge, directed; in brackets the prompts only the verifier / only the judge passed)
    beside them."""
    lines = [
        "| creator set | category | n | **one-shot**, second judge [95 % CI] | **directed**, second judge "
        "[95 % CI] | one-shot, verifier [95 % CI] | directed, verifier [95 % CI] | gap, directed: verifier - "
        "judge (verifier only / judge only) | mean rounds | s/prompt one-shot | s/prompt directed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cat = f"**{r['category']}**" if r["category"] == "overall" else r["category"]
        if not r["n"]:
            lines.append(f"| {r['set']} | {cat} | n/a ({r['na']}) | n/a | n/a | n/a | n/a | - | - | - | - |")
            continue
        n = f"{r['n']}" + (f" (+{r['na']} n/a)" if r["na"] else "")
        judged = "directed_judge_pass" in r
        j1 = _pct(r["one_shot_judge_pass"], r["one_shot_judge_ci"]) if judged else "-"
        j2 = _pct(r["directed_judge_pass"], r["directed_judge_ci"]) if judged else "-"
        gap = (
            f"{100 * r['directed_gap']:+.0f} pts ({r['directed_verifier_only']} / {r['directed_judge_only']})"
            if judged
            else "-"
        )
        lines.append(
            f"| {r['set']} | {cat} | {n} | {j1} | {j2} | {_pct(r['one_shot_pass'], r['one_shot_ci'])} | "
            f"{_pct(r['directed_pass'], r['directed_ci'])} | {gap} | {r['mean_rounds']:.2f} | "
            f"{r['seconds_one_shot']:.2f} | {r['seconds_directed']:.2f} |"
        )
    return "\n".join(lines)


def attr_table(rows: list[dict[str, Any]]) -> str:
    """The attribute set's table: pass rates that count style (detector AND every edit at its goal), the
    detector's alone, and the share the detector passed but style failed; then one row per style word."""
    lines = [
        "| creator set | category | n | one-shot pass, detector + style [95 % CI] | directed pass, detector + "
        "style [95 % CI] | detector alone: one-shot / directed | detector pass, style fail: one-shot / "
        "directed | mean rounds | s/prompt one-shot | s/prompt directed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cats: dict[str, set[str]] = {}
    for r in rows:
        cats.setdefault(r["set"], set()).add(r["category"])
    words = []
    for r in rows:
        if r["category"] == "overall" and cats[r["set"]] == {ATTR_CATEGORY, "overall"}:
            continue  # the overall row would repeat the attribute row
        cat = f"**{r['category']}**" if r["category"] == "overall" else r["category"]
        if not r["n"]:
            lines.append(f"| {r['set']} | {cat} | n/a ({r['na']}) | n/a | n/a | - | - | - | - | - |")
            continue
        n = f"{r['n']}" + (f" (+{r['na']} n/a)" if r["na"] else "")
        det = sf = "-"
        if "style_words" in r:
            det = f"{100 * r['one_shot_detector_pass']:.0f} % / {100 * r['directed_detector_pass']:.0f} %"
            sf = f"{100 * r['one_shot_style_fail']:.0f} % / {100 * r['directed_style_fail']:.0f} %"
            if r["category"] == ATTR_CATEGORY:
                words += [(r["set"], w, v) for w, v in r["style_words"].items()]
        lines.append(
            f"| {r['set']} | {cat} | {n} | {_pct(r['one_shot_pass'], r['one_shot_ci'])} | "
            f"{_pct(r['directed_pass'], r['directed_ci'])} | {det} | {sf} | {r['mean_rounds']:.2f} | "
            f"{r['seconds_one_shot']:.2f} | {r['seconds_directed']:.2f} |"
        )
    if words:
        lines += [
            "",
            "| creator set | word | edit | prompts | edits at goal: one-shot, directed | achieved / requested "
            "change (median, directed) | detector pass: one-shot, directed | pass with style: one-shot, "
            "directed |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for name, w, v in words:
            ratio = v["directed_achieved_over_requested_median"]
            lines.append(
                f"| {name} | {w} | {v['target']} | {v['prompts']} | {v['one_shot_edits_ok']}/"
                f"{v['one_shot_edits']}, {v['directed_edits_ok']}/{v['directed_edits']} | "
                + ("-" if math.isnan(ratio) else f"{ratio:.2f}")
                + f" | {v['one_shot_detector_pass']}/{v['prompts']}, {v['directed_detector_pass']}/"
                f"{v['prompts']} | {v['one_shot_pass']}/{v['prompts']}, {v['directed_pass']}/{v['prompts']} |"
            )
    return "\n".join(lines)


def attr_reading() -> str:
    return (
        "A pass counts style: the verifier's blind check passes (exactly the asked digits, their relations "
        "and layout) AND every styled object's Morpho-MNIST edit reached its goal, "
        f"|after - goal| <= {STYLE_TOLERANCE:g} |goal - before| (thickness in px, slant in degrees, measured "
        "on the object's 28 px drawing; an edit asked to move nothing is met). The detector does not judge "
        "style, and the director repairs only what the detector fails: a missed edit is never redrawn for "
        "its own sake. Edits at goal count every styled drawing (a counted prompt has one per copy). "
        "Per-prompt results, each edit's before / after / goal: `--out`."
    )


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def _judge_line(judge: dict[str, Any] | None) -> str:
    if not judge:
        return ""
    settings = "; ".join(
        f"{k}: ink > {v['ink']:g}, dilate {v['dilate']} px, specks < {v['min_area']} px"
        for k, v in judge["settings"].items()
    )
    used = ", ".join(f"`{c}`" for c in judge["classifiers"].values())
    return f"Second judge `evaluation.scene_judge` ({settings}; classifiers {used or 'none loaded'})."


def header(meta: dict[str, Any]) -> str:
    m = meta["machine"]
    creators = "; ".join(
        f"**{name}**: " + (", ".join(f"{ds} {'/'.join(cs)}" for ds, cs in sets.items()) or "none")
        for name, sets in meta["creators"].items()
    )
    lines = [
        f"`{meta['command']}`",
        "",
        f"Prompt set **{meta['prompt_set']['version']}** (`{meta['prompt_set']['path']}`, "
        f"{meta['prompt_set']['n']} prompts, sha256 {meta['prompt_set']['sha256'][:12]}"
        + (f"; first {meta['limit']} per category" if meta["limit"] else "")
        + f"). Detector `{meta['detector']['path']}` (sha256 {meta['detector']['sha256'][:12]}), "
        f"threshold {meta['settings']['threshold']} (the verifier). "
        + _judge_line(meta.get("judge"))
        + f" Creators: {creators}. "
        f"Director: {meta['settings']['canvas']} px canvas, {meta['settings']['base']} px cells, one-shot = "
        f"max_rounds 0, directed = max_rounds {meta['settings']['max_rounds']} (max_seconds "
        f"{meta['settings']['max_seconds']:g}); the seed of "
        f"prompt i (its index in the set) is {meta['settings']['seed']} + i, the same for both runs.",
        "",
        f"Machine: {m['platform']}, {m['processor']}, Python {m['python']}, torch {m['torch']} "
        f"({m['torch_threads']} thread(s)), device {meta['settings']['device']}; {meta['date']}.",
    ]
    for note in meta.get("notes", []):
        lines += ["", f"Note: {note}"]
    return "\n".join(lines)


def reading(rows: list[dict[str, Any]]) -> str:
    """How to read the table, with each set's fails split by kind."""
    kinds = []
    for r in rows:
        if r["category"] == "overall" and r["n"]:
            o, d = r["one_shot_fails"], r["directed_fails"]
            kinds.append(
                f"{r['set']}: one-shot {o['objects']} / {o['arrangement']}, directed {d['objects']} / "
                f"{d['arrangement']}"
            )
    return (
        "A pass is a blind check: exactly the asked objects (classes and counts) and an assignment of them "
        "that satisfies every relation, layout and size word. The **verifier** (the detector and "
        "`scenes.verify`) is the grader the director redraws against, so its directed rate says only that it "
        "was satisfied; the **second judge** (`evaluation.scene_judge`: connected components of the ink, each "
        "named by the independent judge classifier of its dataset) took no part in directing, and grades the "
        "same final canvases. The headline numbers are the one-shot rates and the directed rate as graded by "
        "the second judge; the gap column is the verifier's directed rate minus the judge's, in brackets the "
        "prompts only the verifier passed / only the judge passed. n/a: no creator of the prompt's data set in "
        "that creator set. The `real` set draws real test-split images, so its one-shot fail rates are each "
        "grader's own error rate on correct real-object scenes; its directed rate only says that redrawing "
        "finds images the verifier agrees with (no creator got better). Verifier fails by kind, wrong "
        "objects (missing, extra, wrong class) / right objects in the wrong arrangement: "
        + "; ".join(kinds)
        + ". Per-prompt results, with both graders' reasons: `--out` (default `outputs/bench_prompts.json`)."
    )


def write_docs(
    path: Path,
    block: str,
    start: str = START,
    end: str = END,
    section: str = "## Text to scene: the prompt benchmark (`scripts/bench_prompts.py`)",
) -> None:
    """Replace the block between the markers in ``path`` (append it, under ``section``, when absent)."""
    text = path.read_text() if path.is_file() else "# Benchmarks and measured results\n"
    body = f"{start}\n{block.rstrip()}\n{end}"
    if start in text and end in text and text.index(start) < text.index(end):
        text = text[: text.index(start)] + body + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + f"\n\n{section}\n\n{body}\n"
    write_text(path, text)


def pick_tiles(tiles: list[dict[str, Any]], per_category: int) -> list[dict[str, Any]]:
    """Per category, in set order: the first prompt the director repaired (one-shot fail, directed pass),
    the first it could not, then the first ones; ``per_category`` of them."""
    out = []
    for cat in ALL_CATEGORIES:
        mine = [t for t in tiles if t["category"] == cat]
        repaired = [t for t in mine if t["passed"] and not t["one_shot"]][:1]
        failed = [t for t in mine if not t["passed"]][:1]
        chosen = (repaired + failed)[:per_category]
        chosen += [t for t in mine if not any(t is c for c in chosen)][: per_category - len(chosen)]
        order = {id(t): i for i, t in enumerate(mine)}
        out += sorted(chosen, key=lambda t: order[id(t)])
    return out


def gallery(path: Path, title: str, tiles: list[dict[str, Any]], columns: int = 6, scale: int = 2) -> Path:
    """One PNG: each tile the directed canvas annotated (green: passed, red: failed objects), the prompt and
    the one-shot / directed verdicts under it."""
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    from artdirector.agents.scene_report import annotated

    imgs = [annotated(t["canvas"], t["verdict"], scale=scale) for t in tiles]
    side = imgs[0].shape[-1]
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    text_h, pad, head = 52, 6, 24
    columns = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new(
        "RGB", (columns * (side + pad) + pad, head + rows * (side + text_h + pad) + pad), "white"
    )
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 4), title, fill="black", font=font)
    for i, (img, t) in enumerate(zip(imgs, tiles, strict=True)):
        r, c = divmod(i, columns)
        x, y = pad + c * (side + pad), head + r * (side + text_h + pad)
        sheet.paste(Image.fromarray(img.permute(1, 2, 0).numpy()), (x, y))
        lines = textwrap.wrap(f"[{t['category']}] {t['prompt']}", width=side // 7)[:2]
        verdict = f"one-shot {'pass' if t['one_shot'] else 'fail'} -> directed " + (
            f"pass ({t['rounds']} rounds)" if t["passed"] else f"fail ({t['rounds']} rounds)"
        )
        colour = (0, 120, 0) if t["passed"] else (190, 0, 0)
        for j, line in enumerate(lines):
            draw.text((x, y + side + 2 + 15 * j), line, fill="black", font=font)
        draw.text((x, y + side + 2 + 15 * 2), verdict, fill=colour, font=font)
    return atomic_write(path, lambda p: sheet.save(p, format="PNG"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write-set", action="store_true", help=f"regenerate {SET_PATH.name} and exit")
    ap.add_argument(
        "--write-attr-set", action="store_true", help=f"regenerate {ATTR_PATH.name} (attribute set) and exit"
    )
    ap.add_argument(
        "--set",
        default=None,
        help=f"the prompt set JSON (default {SET_PATH.name}; the attribute set is {ATTR_PATH.name})",
    )
    ap.add_argument(
        "--sets", nargs="+", default=["zoo", "real"], choices=["zoo", "real"], help="creator sets"
    )
    ap.add_argument("--ckpt", nargs="+", default=None, help="checkpoints for the zoo set (default: the zoo)")
    ap.add_argument("--detector", default=None, help="detector weights (default: the shipped ones)")
    ap.add_argument("--data-root", default="data", help="torchvision MNIST/FashionMNIST root (real set)")
    ap.add_argument(
        "--categories",
        nargs="+",
        default=None,
        choices=ALL_CATEGORIES,
        help="categories to run (default: every category of the set)",
    )
    ap.add_argument("--limit", type=int, default=None, help="the first N prompts of each category")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0, help="prompt i runs with seed + i")
    ap.add_argument("--max-rounds", type=int, default=10, help="the directed run's repair rounds")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="the directed run's time budget")
    ap.add_argument("--threshold", type=float, default=0.3, help="the detector's score threshold")
    ap.add_argument("--canvas", type=int, default=128)
    ap.add_argument("--base", type=int, default=32)
    ap.add_argument("--out", default="outputs/bench_prompts.json", help="per-prompt results (JSON)")
    ap.add_argument(
        "--write-docs",
        action="store_true",
        help=f"write the table into {DOCS.relative_to(REPO)} (the attribute set: between its own markers)",
    )
    ap.add_argument("--docs", default=str(DOCS), help=argparse.SUPPRESS)
    ap.add_argument("--gallery", default=None, help="a folder for one annotated PNG grid per creator set")
    ap.add_argument(
        "--gallery-per-category",
        type=int,
        default=2,
        help="canvases per category in the gallery (a repaired one and a failed one first, when any)",
    )
    return ap.parse_args(argv)


def main(
    argv: list[str] | None = None,
    detector: Any = None,
    sets: dict[str, dict[str, list]] | None = None,
    judge: Any = None,
) -> dict[str, Any]:
    """Run the benchmark; ``detector``, ``sets`` ({set name: {dataset: [creators]}}) and ``judge`` (a
    :class:`~artdirector.evaluation.scene_judge.SceneJudge`) replace the shipped detector, the ``--sets``
    creators and the shipped second judge (tests). Returns the results JSON."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("artdirector.agents.scene").setLevel(logging.WARNING)  # not every round of every prompt
    if args.write_set or args.write_attr_set:
        attr = args.write_attr_set and not args.write_set
        data = generate_set(kind="attr" if attr else "v1")
        path = args.set or str(ATTR_PATH if attr else SET_PATH)
        write_text(path, set_json(data))
        print(f"wrote {path}: {data['categories']}")
        return data
    args.set = args.set or str(SET_PATH)
    if args.threads:
        torch.set_num_threads(args.threads)
    from artdirector.runtime import resolve_device

    device = resolve_device(args.device)
    data = load_set(args.set)
    if args.categories is None:
        args.categories = list(dict.fromkeys(e["category"] for e in data["prompts"]))
    attr_set = data.get("version") == ATTR_VERSION or set(args.categories) == {ATTR_CATEGORY}
    chosen = []
    for cat in args.categories:
        entries = [(i, e) for i, e in enumerate(data["prompts"]) if e["category"] == cat]
        chosen += entries[: args.limit] if args.limit else entries
    if detector is None:
        from artdirector.models.detection.inference import SHIPPED, load_detector

        det_path = Path(args.detector) if args.detector else SHIPPED
        detector = load_detector(det_path, map_location=device)
        det_info = {"path": _relpath(det_path), "sha256": file_sha256(det_path)}
    else:
        det_info = {"path": f"(given: {type(detector).__name__})", "sha256": "-" * 12}
        if args.detector:
            det_info = {"path": _relpath(Path(args.detector)), "sha256": file_sha256(args.detector)}
    notes: list[str] = []
    if sets is None:
        sets, notes = creator_sets(args, device)
    if judge is None:
        from artdirector.evaluation.scene_judge import SceneJudge

        judge = SceneJudge()
    drawn = {ds for s in sets.values() for ds, cs in s.items() if cs}
    for dataset in sorted(drawn & {o.dataset for _, e in chosen for o in parse(e["prompt"]).objects}):
        judge.classifier(dataset)  # a missing judge classifier fails here, before any prompt runs
    meta = {
        "command": "python scripts/bench_prompts.py "
        + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "prompt_set": {
            "version": data["version"],
            "path": _relpath(Path(args.set)),
            "n": len(data["prompts"]),
            "sha256": file_sha256(args.set),
        },
        "limit": args.limit,
        "categories": args.categories,
        "detector": det_info,
        "judge": judge.describe(),
        "creators": {name: {ds: [c.name for c in cs] for ds, cs in s.items()} for name, s in sets.items()},
        "settings": {
            "seed": args.seed,
            "max_rounds": args.max_rounds,
            "max_seconds": args.max_seconds,
            "threshold": args.threshold,
            "canvas": args.canvas,
            "base": args.base,
            "device": str(device),
        },
        "notes": notes,
    }
    records: list[dict[str, Any]] = []
    tiles: dict[str, list[dict[str, Any]]] = {name: [] for name in sets}
    start = time.perf_counter()
    for name, creators in sets.items():
        have = {ds for ds, cs in creators.items() if cs}
        for j, (i, e) in enumerate(chosen):
            p = parse(e["prompt"])
            need = sorted({o.dataset for o in p.objects})
            rec = {"set": name, **e, "index": i, "seed": args.seed + i, "datasets": need}
            if not set(need) <= have:
                rec["status"] = "n/a"
                rec["why"] = f"no creator of {', '.join(sorted(set(need) - have))} in this set"
                records.append(rec)
                continue
            try:
                res, _one, directed = run_prompt(creators, detector, e["prompt"], args.seed + i, args, judge)
            except PromptError as err:  # a layout the planner could not make: a fail, said why
                log.warning("%s %r: %s", e["id"], e["prompt"], err)
                failed = {"passed": False, "seconds": 0.0, "reasons": [str(err)]}
                failed |= {"judge_passed": False, "judge_reasons": [str(err)]}  # no canvas to judge
                if p.style:
                    failed |= {"style_ok": False, "passed_with_style": False, "style_failed_only": False}
                    failed["edits"] = []  # nothing drawn: no edit reached its goal
                rec |= {"status": "run", "error": str(err), "one_shot": failed}
                rec["directed"] = {**failed, "rounds": 0, "stop": "error", "round0_passed": False}
                records.append(rec)
                continue
            rec |= {"status": "run", **res}
            if res["directed"]["round0_passed"] != res["one_shot"]["passed"]:
                log.warning("%s: the one-shot run and the directed run's round 0 disagree", e["id"])
            records.append(rec)
            if args.gallery:
                tiles[name].append(
                    {
                        "category": e["category"],
                        "prompt": e["prompt"],
                        "canvas": directed.canvas,
                        "verdict": directed.verdict,
                        "one_shot": _passed(res["one_shot"]),
                        "passed": _passed(res["directed"]),
                        "rounds": len(directed.rounds) - 1,
                    }
                )
            log.info(
                "[%s %d/%d] %s %r: one-shot %s, directed %s (%d rounds, %.2f s); second judge: %s, %s",
                name,
                j + 1,
                len(chosen),
                e["id"],
                e["prompt"],
                _verdict_word(res["one_shot"]),
                _verdict_word(res["directed"]),
                res["directed"]["rounds"],
                res["directed"]["seconds"],
                "pass" if res["one_shot"]["judge_passed"] else "fail",
                "pass" if res["directed"]["judge_passed"] else "fail",
            )
    meta["seconds"] = round(time.perf_counter() - start, 1)
    rows = summarize(records, list(sets))
    if attr_set:
        md = header(meta) + "\n\n" + attr_table(rows) + "\n\n" + attr_reading() + "\n"
    else:
        md = header(meta) + "\n\n" + table(rows) + "\n\n" + reading(rows) + "\n"
    gallery_files = []
    if args.gallery:
        for name, every in tiles.items():
            ts = pick_tiles(every, args.gallery_per_category)
            if ts:
                out = Path(args.gallery) / f"prompts_{name}.png"
                what = "; ".join(f"{ds}: {', '.join(cs)}" for ds, cs in meta["creators"][name].items())
                title = f"creator set {name} ({what}): directed canvases, detections boxed (green: passed)"
                gallery(out, title, ts)
                gallery_files.append(_relpath(out))
        if gallery_files:
            docs_dir = Path(args.docs).resolve().parent
            md += "\n" + " ".join(f"![{Path(g).stem}]({_from(docs_dir, g)})" for g in gallery_files) + "\n"
    print(md)
    result = {**meta, "gallery": gallery_files, "summary": rows, "results": records}
    write_json(args.out, result)
    print(f"wrote {args.out} ({len(records)} prompt runs, {meta['seconds']:.0f} s)")
    if args.write_docs:
        if attr_set:
            section = "## Text to scene: style attributes (`scripts/bench_prompts.py`, attribute set)"
            write_docs(Path(args.docs), md, ATTR_START, ATTR_END, section)
        elif data.get("version") == V2_VERSION:
            section = "### The prompt benchmark on v2 (`scripts/bench_prompts.py --set ...bench_v2.json`)"
            write_docs(Path(args.docs), md, V2_START, V2_END, section)
        else:
            write_docs(Path(args.docs), md)
        print(f"wrote the table into {args.docs}")
    return result


def _verdict_word(run: dict[str, Any]) -> str:
    if "style_ok" not in run:
        return "pass" if run["passed"] else "fail"
    if _passed(run):
        return "pass (style ok)"
    return "detector pass, style missed" if run["passed"] else "fail"


def _relpath(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _from(folder: Path, path: str) -> str:
    """``path`` (repo-relative or absolute) as a link from a file in ``folder``."""
    p = Path(path) if Path(path).is_absolute() else REPO / path
    return os.path.relpath(p.resolve(), folder)


if __name__ == "__main__":
    main()
