"""The request language: a sentence -> a structured request (task, objects with counts, sizes and style words,
relations, a layout), read by a grammar rather than keyword matching, so nothing in a request is silently
dropped: every word is placed, or it is an error that names it.

Three parts: the word lists (:mod:`artdirector.prompts.words`, each once: digit and garment words, counts,
relations, positions, layouts, style words, task words and filler words), the grammar over them and how a
sentence is read (:mod:`artdirector.prompts.grammar`), and here, what a parse means: the objects, their
relations and layout (:func:`parse`; ``artdirector.agents.types.interpret`` reads every request through it).
The edits of a finished scene ("make the 7 bigger") are a sibling grammar, :mod:`artdirector.prompts.edits`,
on these terminals plus its own verbs and comparatives.

    >>> parse("a 3 left of a 7").relations
    [Relation(subject=0, relation='left of', object=1)]
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lark import Token, v_args

from artdirector.prompts.grammar import (
    GRAMMAR,
    KNOWN,
    TERMINALS,
    VOCAB,
    Builder,
    PromptError,
    Reader,
    task_of,
    task_words,
    word_key,
)
from artdirector.prompts.words import (
    ARTICLES,
    DATASETS,
    DIGIT_WORDS,
    KIND_WORDS,
    LINES,
    OBJECTS,
    ORDERS,
    POSITIONS,
    RELATIONS,
    SIZES,
    STYLES,
)

# a position's axis -> the relation from low to high rank, and the words for its two ends
_AXIS = {"x": ("left of", "left", "right"), "y": ("above", "top", "bottom")}


@dataclass
class ObjectSpec:
    name: str  # canonical: "7", "sneaker"
    dataset: str  # "mnist" or "fashion_mnist"
    label: int
    count: int = 1
    size: str | None = None  # "small", "large" or None
    counted: bool = False  # said with an article or a count ("a 7", "three sevens"), not a bare plural
    style: list[str] = field(default_factory=list)  # style words ("thick", "slanted"), in order
    sharp: bool = False  # "sharp", "high-resolution": upscaled (the ``upscale`` action)


@dataclass
class Relation:
    subject: int  # index into Prompt.objects
    relation: str  # "left of", "right of", "above", "below", "next to"
    object: int


@dataclass
class Prompt:
    text: str
    task: str | None  # "create", "refine", "variations" or None (not said)
    objects: list[ObjectSpec] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    layout: dict[str, Any] | None = None  # {"kind": "row"|"column"} or {"kind": "grid", "rows": r, "cols": c}
    # image-to-image: what the input should become ("make this 3 look like an 8": objects [3], target 8)
    target: ObjectSpec | None = None

    @property
    def is_scene(self) -> bool:
        """A canvas with exactly these objects ("a 7", "a 3 left of a 7", "three sevens in a row", "a small
        dress"), rather than a batch of images of the named classes ("sevens", "threes and fives")."""
        return self.target is None and bool(
            self.relations
            or self.layout
            or any(o.counted or o.size or o.dataset != "mnist" for o in self.objects)
        )

    @property
    def style(self) -> list[str]:
        """The style words said, in order, once each ("thick", "slanted")."""
        return list(dict.fromkeys(w for o in self.objects for w in o.style))

    @property
    def sharp(self) -> bool:
        return any(o.sharp for o in self.objects)

    @property
    def classes(self) -> tuple[int, ...] | None:
        """The classes to make: the named objects', or an image-to-image target's."""
        if self.target is not None:
            return (self.target.label,)
        seen: list[int] = []
        for o in self.objects:
            if o.label not in seen:
                seen.append(o.label)
        return tuple(seen) or None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Build(Builder):
    """The parse tree of a request -> what it says."""

    @v_args(meta=True)
    def np(self, meta, items):
        count, size, obj, counted, style, sharp = 1, None, None, False, [], False
        for it in items:
            if isinstance(it, int):
                count, counted = it, True
            elif it.type == "SIZE":
                size = SIZES[word_key(it)]
            elif it.type == "STYLE":
                style.append(STYLES[word_key(it)])
            elif it.type == "SHARP":
                sharp = True
            elif it.type in ("OBJECT", "ONE"):
                obj = OBJECTS[word_key(it)]
        # an article before the object (past "digit"/"number") counts it: "a 7", "the digit 7" is one 7
        before = [
            w for w in re.findall(r"[\w'-]+", self.text[: meta.start_pos].lower()) if w not in KIND_WORDS
        ]
        counted = counted or bool(before and before[-1] in ARTICLES)
        dataset, label, name = obj
        return ObjectSpec(name, dataset, label, count, size, counted, style, sharp)

    def phrase(self, items):
        nps = [i for i in items if isinstance(i, ObjectSpec)]
        toks = {i.type: word_key(i) for i in items if isinstance(i, Token)}
        rel = RELATIONS[toks["RELATION"]] if "RELATION" in toks else None
        return {"nps": nps, "relation": rel, "position": toks.get("POSITION")}

    def group(self, items):
        return [i for i in items if isinstance(i, dict)]

    def layout(self, items):
        toks = {i.type: word_key(i) for i in items}
        if "GRID" in toks:
            return _grid_layout(toks.get("GRIDSIZE"))
        return {"kind": LINES[toks["LINE"]] if "LINE" in toks else "row"}

    def arrangement(self, items):
        layout = next((i for i in items if isinstance(i, dict)), None)
        order = next((word_key(i) for i in items if isinstance(i, Token) and i.type == "ORDER"), None)
        return ("arrangement", layout, order)

    def grid(self, items):
        size = next((word_key(i) for i in items if isinstance(i, Token) and i.type == "GRIDSIZE"), None)
        group = next(i for i in items if isinstance(i, list))
        return ("body", group, _grid_layout(size), None)

    def line_of(self, items):
        line = next(word_key(i) for i in items if isinstance(i, Token) and i.type == "LINE")
        order = next((word_key(i) for i in items if isinstance(i, Token) and i.type == "ORDER"), None)
        group = next(i for i in items if isinstance(i, list))
        return ("body", group, {"kind": LINES[line]}, order)

    def translation(self, items):
        src, dst = (i for i in items if isinstance(i, ObjectSpec))
        return ("translation", src, dst)

    def body(self, items):
        (first, *_) = items
        if isinstance(first, tuple) and first[0] in ("body", "translation"):
            return first
        group = next(i for i in items if isinstance(i, list))
        arr = next((i for i in items if isinstance(i, tuple)), ("arrangement", None, None))
        return ("body", group, arr[1], arr[2])

    def start(self, items):
        p = Prompt(self.text, task_of(self.text))
        if not items:
            return p
        (body,) = items
        if body[0] == "translation":
            p.objects, p.target = [body[1]], body[2]
            if p.task is None or p.task == "create":
                p.task = "variations"  # "make this 3 look like an 8": a variation of the input
            return p
        _, group, layout, order = body
        for ph in group:
            first = len(p.objects)
            p.objects.extend(ph["nps"])
            if ph["relation"] is not None:
                p.relations.append(Relation(first, ph["relation"], first + 1))
        _place(p, group)
        p.layout = _ordered(p, group, layout, order)
        if p.layout and p.layout["kind"] == "grid":
            _fill_grid(p)
        return p


def _grid_layout(size: str | None) -> dict[str, Any]:
    if size is None:  # "a grid of four nines": the shape follows from the count (_fill_grid)
        return {"kind": "grid", "rows": None, "cols": None}
    r, c = (int(v) for v in re.split(r"\s*(?:x|×|by)\s*", size))
    return {"kind": "grid", "rows": r, "cols": c}


def _fill_grid(p: Prompt) -> None:
    """A sized grid of one uncounted kind fills its cells ("a 2x2 grid of sneakers": four); a grid said
    without a size takes the squarest shape of its count ("a grid of six 3s": 2x3)."""
    lay = p.layout
    n = sum(o.count for o in p.objects)
    if lay["rows"] is not None:
        if len(p.objects) == 1 and p.objects[0].count == 1:
            p.objects[0].count = lay["rows"] * lay["cols"]
        return
    if len(p.objects) == 1 and not p.objects[0].counted:
        raise PromptError(
            f"{p.text!r} does not say how many: say a count or a size, e.g. 'a grid of four "
            f"{p.objects[0].name}s' or 'a 2x2 grid of {p.objects[0].name}s'"
        )
    rows = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    if rows == 1:
        raise PromptError(
            f"{p.text!r} asks for a grid of {n} objects, which make no grid of two rows or more: say a row "
            f"('a row of ...') or a grid's size ('a 2x3 grid of ...')"
        )
    lay["rows"], lay["cols"] = rows, n // rows


def _place(p: Prompt, group: list[dict]) -> None:
    """Positions said per object ("a 5 on the left and a 0 on the right") -> relations between every pair
    ranked apart on an axis; objects said without a position rank in the middle."""
    said = [(ph, POSITIONS[ph["position"]]) for ph in group if ph["position"]]
    if not said:
        return
    axes = {axis for _, (axis, _) in said if axis is not None}
    if not axes:
        raise PromptError(
            f"{p.text!r} puts objects in the middle but nothing on a side: say where the others go, e.g. "
            "'a 1 on the left, a 2 in the middle and a 3 on the right'"
        )
    if len(axes) > 1:
        raise PromptError(
            f"{p.text!r} places objects both left/right and top/bottom: say relations instead, e.g. "
            "'a 3 left of a 7 and a 5 above the 7'"
        )
    (axis,) = axes
    relation, low, high = _AXIS[axis]
    ranks, k = [], 0
    for ph in group:
        rank = POSITIONS[ph["position"]][1] if ph["position"] else 1
        ranks += [(k + j, rank) for j in range(len(ph["nps"]))]
        k += len(ph["nps"])
    for a, ra in ranks:
        for b, rb in ranks:
            if ra < rb:
                p.relations.append(Relation(a, relation, b))
    if not any(ra < rb for _, ra in ranks for _, rb in ranks):
        raise PromptError(
            f"{p.text!r} says where an object goes but not relative to another: place two, e.g. "
            f"'a 5 on the {low} and a 0 on the {high}'"
        )


def _ordered(p: Prompt, group: list[dict], layout: dict | None, order: str | None) -> dict | None:
    """A list read in an order ("from left to right"): its line, and each object related to the next."""
    if order is None:
        return layout
    line, relation = ORDERS[word_key(re.sub(r"^from\s+", "", order, flags=re.I))]
    if layout is not None and layout["kind"] != line:
        raise PromptError(
            f"{p.text!r} reads {order!r}, which is a {line}, but asks for a {layout['kind']}: say one of them"
        )
    if len(p.objects) < 2:
        if p.objects and p.objects[0].count > 1:
            return layout or {"kind": line}  # "three sevens from left to right": a row of copies
        raise PromptError(f"{p.text!r} reads {order!r} but names one object: list two or more")
    for a in range(len(p.objects) - 1):
        rel = Relation(a, relation, a + 1)
        if rel not in p.relations:
            p.relations.append(rel)
    return layout or {"kind": line}


_REQUESTS = Reader(
    GRAMMAR,
    TERMINALS,
    VOCAB,
    KNOWN,
    empty='empty prompt: say what to make, e.g. "a 3 left of a 7" or "three sevens in a row"',
    unknown_why=": not a word requests use, and no creator in the zoo draws it",
)


def parse(text: str) -> Prompt:
    """The structured request a sentence says; :class:`PromptError` naming the word when it cannot."""
    return _REQUESTS.read(text, _Build)


__all__ = [
    "DATASETS",
    "DIGIT_WORDS",
    "ObjectSpec",
    "Prompt",
    "PromptError",
    "Relation",
    "parse",
    "task_of",
    "task_words",
]
