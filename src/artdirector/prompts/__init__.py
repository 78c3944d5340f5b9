"""The request language: a sentence -> a structured request (task, objects with counts, sizes and style words,
relations, a layout), read by a grammar rather than keyword matching, so nothing in a request is silently
dropped: every word is placed, or it is an error that names it.

Why a grammar (lark, Earley): a request is a small compositional language ("a 3 left of a 7", "three sevens
in a row", "a 2x2 grid of sneakers", "the digits 4, 5 and 6 from left to right"). One declared grammar says
which sentences exist; a word it does not know is refused with the closest known words and what the zoo can
draw, instead of a regular expression that ignores it. Earley with the dynamic lexer resolves the language's
overlaps (a numeral is a count in "3 sevens" and a digit in "a 3") without hand-written lookahead.

Every word list lives here, once: the digit and garment words, the counts, relations, positions, layouts,
style words, the task words and the filler words a request may carry without meaning anything
(``artdirector.agents.types.interpret`` reads every request through :func:`parse`). The edits of a finished
scene ("make the 7 bigger") are a sibling grammar, :mod:`artdirector.prompts.edits`, on these terminals plus
its own verbs and comparatives.

    >>> parse("a 3 left of a 7").relations
    [Relation(subject=0, relation='left of', object=1)]
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedEOF, UnexpectedInput, v_args
from lark.exceptions import VisitError

from artdirector.errors import UserError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# FashionMNIST's ten classes (label order of torchvision's FashionMNIST) and their common synonyms
FASHION = {
    0: ("t-shirt", "tshirt", "tee", "top"),
    1: ("trousers", "trouser", "pants", "jeans"),
    2: ("pullover", "sweater", "jumper"),
    3: ("dress",),
    4: ("coat", "jacket"),
    5: ("sandal",),
    6: ("shirt",),
    7: ("sneaker", "trainer"),
    8: ("bag", "handbag", "purse"),
    9: ("ankle boot", "boot"),
}
# what the zoo's class-conditional creators draw, by the dataset each was trained on (a refusal lists these)
DATASETS = {
    "mnist": "MNIST digits 0-9 ('7', 'seven', 'sevens')",
    "fashion_mnist": f"FashionMNIST items ({', '.join(names[0] for names in FASHION.values())})",
}
COUNT_WORDS = {"a pair of": 2, "a couple of": 2} | {w: i for i, w in enumerate(DIGIT_WORDS) if i}
RELATIONS = {
    "left of": "left of",
    "to the left of": "left of",
    "on the left of": "left of",
    "right of": "right of",
    "to the right of": "right of",
    "on the right of": "right of",
    "above": "above",
    "over": "above",
    "on top of": "above",
    "atop": "above",
    "below": "below",
    "under": "below",
    "underneath": "below",
    "beneath": "below",
    "next to": "next to",
    "beside": "next to",
    "alongside": "next to",
}
# where one of several objects sits ("a 5 on the left and a 0 on the right"): the axis and the rank along it;
# objects said without a position rank in the middle
POSITIONS = {
    "on the left": ("x", 0),
    "at the left": ("x", 0),
    "to the left": ("x", 0),
    "on the right": ("x", 2),
    "at the right": ("x", 2),
    "to the right": ("x", 2),
    "on top": ("y", 0),
    "at the top": ("y", 0),
    "on the top": ("y", 0),
    "at the bottom": ("y", 2),
    "on the bottom": ("y", 2),
    "in the middle": (None, 1),
    "in the centre": (None, 1),
    "in the center": (None, 1),
}
_AXIS = {"x": ("left of", "left", "right"), "y": ("above", "top", "bottom")}
# a list read in an order ("the digits 4, 5 and 6 from left to right"): its line and the relation between
# neighbours
ORDERS = {
    "left to right": ("row", "left of"),
    "right to left": ("row", "right of"),
    "top to bottom": ("column", "above"),
    "bottom to top": ("column", "below"),
}
LINES = {"row": "row", "line": "row", "column": "column"}
SIZES = {
    "small": "small",
    "tiny": "small",
    "little": "small",
    "large": "large",
    "big": "large",
    "huge": "large",
}
# style words (artdirector.editing.style.WORDS for the attribute each moves), each attached to the object it
# precedes ("a thick 4 left of a thin 6"), and resolution words (the ``upscale`` action, x4)
STYLES = {
    "thick": "thick",
    "bold": "bold",
    "heavy": "heavy",
    "thin": "thin",
    "slanted": "slanted",
    "slanting": "slanting",
    "italic": "italic",
    "upright": "upright",
    "straight": "straight",
    "bright": "bright",
    "dim": "dim",
}
# image-to-image: "make this 3 look like an 8", "turn this 3 into an 8"
TRANSLATE = ("look like", "looks like", "into")
SHARP = ("sharp", "crisp", "detailed", "high-resolution", "high resolution", "hi-res", "hires")
# task words, anywhere in a request; when several are said, refine wins over create over variations (the
# seed's rules: "refine" -> refine, "new" -> create, otherwise variations)
TASKS = {
    "refine": "refine",
    "refined": "refine",
    "improve": "refine",
    "improved": "refine",
    "enhance": "refine",
    "enhanced": "refine",
    "fix": "refine",
    "polish": "refine",
    "better": "refine",
    "generate": "create",
    "create": "create",
    "make": "create",
    "draw": "create",
    "paint": "create",
    "show": "create",
    "give": "create",
    "sketch": "create",
    "put": "create",
    "place": "create",
    "new": "create",
    "fresh": "create",
    "variation": "variations",
    "variations": "variations",
    "vary": "variations",
    "varied": "variations",
    "similar": "variations",
    "alike": "variations",
    "like this": "variations",
    "like these": "variations",
    "like that": "variations",
    "like those": "variations",
    "like it": "variations",
    "like them": "variations",
    "more of": "variations",
    "riff on": "variations",
    "turn": "variations",
}
TASK_ORDER = ("refine", "create", "variations")
# words a request may carry that say nothing the agents act on; a word in none of these lists is an error
FILLER = (
    "please", "me", "us", "some", "art", "image", "images", "picture", "pictures", "sample", "samples",
    "of", "with", "for", "on", "this", "these", "that", "those", "it", "them", "digit", "digits", "number",
    "numbers", "item", "items", "more", "again", "another", "last", "previous", "same", "batch", "theme",
    "something", "i", "i'd", "i'd like", "i would like", "i want", "can you", "could you", "now", "just",
    "also", "here", "my", "our", "a", "an", "the",
)  # fmt: skip
# words between an article and its object that keep the object counted ("the digit 7" is one 7)
_KIND = {"digit", "digits", "number", "numbers", "item", "items"}
_ARTICLES = {"a", "an", "the"}


def _plural(word: str) -> list[str]:
    if word.endswith(("s", "x")):
        return [word, word + "es"]
    return [word, word + "s"]


def _object_words() -> dict[str, tuple[str, int, str]]:
    """Every object word -> (dataset, label, canonical name)."""
    out: dict[str, tuple[str, int, str]] = {}
    for i, w in enumerate(DIGIT_WORDS):
        for form in _plural(w):
            out[form] = ("mnist", i, str(i))
    for i in range(10):
        for form in (str(i), f"{i}s", f"{i}'s"):
            out[form] = ("mnist", i, str(i))
    for label, names in FASHION.items():
        for name in names:
            for form in _plural(name):
                out[form] = ("fashion_mnist", label, names[0])
    return out


OBJECTS = _object_words()


def _body(words) -> str:
    """A regex alternation of whole words, longest first (spaces match any whitespace)."""
    alts = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(set(words), key=len, reverse=True))
    return rf"(?<![\w'-])(?:{alts})(?![\w'-])"


# "one" is the digit only after an article, "digit"/"number" or a size or style word ("a one", "the digit one",
# "a huge one") or as a plural ("ones"); otherwise it is a count before an object ("one 7") or the pronoun
# ("one more", "a new one")
_ONE_AFTER = [
    f"{re.escape(w)}{sep} "
    for w in ("a", "an", "the", "digit", "number", *SIZES, *STYLES, *SHARP)
    for sep in ("", ",")
]
_DIGIT_ONE = "|".join(rf"(?<=\b{w})" for w in _ONE_AFTER)  # Python's lookbehinds are fixed-width: one each
_NOT_DIGIT_ONE = "".join(rf"(?<!\b{w})" for w in _ONE_AFTER)
_BEFORE_OBJECT = rf"[\s,]+(?:{_body([*SIZES, *STYLES, *SHARP, *_KIND])}[\s,]+)*{_body(OBJECTS)}"

# the terminals: one regex each (case-insensitive); the grammar and the unknown-word check both read these
TERMINALS = {
    "OBJECT": _body(w for w in OBJECTS if w != "one"),
    "ONE": rf"(?:{_DIGIT_ONE})one(?![\w'-])",
    "COUNT": _body(COUNT_WORDS),
    "NUMBER": r"(?<![\w'-])[1-9](?![\w'-])",
    "RELATION": _body(RELATIONS),
    "POSITION": _body(POSITIONS),
    "ORDER": rf"(?<![\w'-])(?:from\s+)?{_body(ORDERS)}",
    "LINE": _body(LINES),
    "SIDE": _body(["side by side"]),
    "GRIDSIZE": r"(?<![\w'-])[1-9]\s*(?:[x×]|\s+by\s+)\s*[1-9](?![\w'-])",
    "GRID": _body(["grid"]),
    "OF": _body(["of"]),
    "IN": _body(["in"]),
    "SIZE": _body(SIZES),
    "STYLE": _body(STYLES),
    "SHARP": _body(SHARP),
    "TRANSLATE": _body(TRANSLATE),
    "CONJ": r"(?:,\s*)?(?<![\w'-])(?:and|&)(?![\w'-])|,",
    # said anywhere and ignored by the grammar: task words (read by task_words) and filler words
    "TASK": _body(TASKS),
    "FILLER": _body(FILLER),
    "PRONOUN": rf"{_NOT_DIGIT_ONE}(?<![\w'-])one(?![\w'-])(?!{_BEFORE_OBJECT})",
}

GRAMMAR = r"""
start: ","? body? ","?
body: group (","? arrangement)?
    | arrangement ","? group
    | grid
    | line_of
    | translation
translation: np TRANSLATE np
grid: GRIDSIZE? GRID OF group
line_of: LINE OF group ORDER?
group: phrase (CONJ phrase)*
phrase: np (RELATION np)?
      | np ","? POSITION
      | POSITION ","? np
np: count? (_mod ","?)* (OBJECT | ONE)
_mod: SIZE | STYLE | SHARP
count: COUNT | NUMBER
arrangement: layout | ORDER | layout ","? ORDER | ORDER ","? layout
layout: IN LINE | IN GRIDSIZE? GRID | SIDE
%ignore TASK
%ignore FILLER
%ignore PRONOUN
%ignore /[\s.!?;:]+/
""" + "\n".join(
    f"{name}{'.2' if name == 'OBJECT' else ''}: /{pattern}/i"  # an object word wins an overlap
    for name, pattern in TERMINALS.items()
)


class PromptError(UserError, ValueError):
    """A request the grammar cannot read: the message names the word and says what would work."""


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


def _key(tok: Token | str) -> str:
    return " ".join(str(tok).lower().split())


class _Build(Transformer):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def count(self, items):
        (tok,) = items
        return int(tok) if tok.type == "NUMBER" else COUNT_WORDS[_key(tok)]

    @v_args(meta=True)
    def np(self, meta, items):
        count, size, obj, counted, style, sharp = 1, None, None, False, [], False
        for it in items:
            if isinstance(it, int):
                count, counted = it, True
            elif it.type == "SIZE":
                size = SIZES[_key(it)]
            elif it.type == "STYLE":
                style.append(STYLES[_key(it)])
            elif it.type == "SHARP":
                sharp = True
            elif it.type in ("OBJECT", "ONE"):
                obj = OBJECTS[_key(it)]
        # an article before the object (past "digit"/"number") counts it: "a 7", "the digit 7" is one 7
        before = [w for w in re.findall(r"[\w'-]+", self.text[: meta.start_pos].lower()) if w not in _KIND]
        counted = counted or bool(before and before[-1] in _ARTICLES)
        dataset, label, name = obj
        return ObjectSpec(name, dataset, label, count, size, counted, style, sharp)

    def phrase(self, items):
        nps = [i for i in items if isinstance(i, ObjectSpec)]
        toks = {i.type: _key(i) for i in items if isinstance(i, Token)}
        rel = RELATIONS[toks["RELATION"]] if "RELATION" in toks else None
        return {"nps": nps, "relation": rel, "position": toks.get("POSITION")}

    def group(self, items):
        return [i for i in items if isinstance(i, dict)]

    def layout(self, items):
        toks = {i.type: _key(i) for i in items}
        if "GRID" in toks:
            return _grid_layout(toks.get("GRIDSIZE"))
        return {"kind": LINES[toks["LINE"]] if "LINE" in toks else "row"}

    def arrangement(self, items):
        layout = next((i for i in items if isinstance(i, dict)), None)
        order = next((_key(i) for i in items if isinstance(i, Token) and i.type == "ORDER"), None)
        return ("arrangement", layout, order)

    def grid(self, items):
        size = next((_key(i) for i in items if isinstance(i, Token) and i.type == "GRIDSIZE"), None)
        group = next(i for i in items if isinstance(i, list))
        return ("body", group, _grid_layout(size), None)

    def line_of(self, items):
        line = next(_key(i) for i in items if isinstance(i, Token) and i.type == "LINE")
        order = next((_key(i) for i in items if isinstance(i, Token) and i.type == "ORDER"), None)
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
    line, relation = ORDERS[_key(re.sub(r"^from\s+", "", order, flags=re.I))]
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


_PARSER = Lark(GRAMMAR, parser="earley", lexer="dynamic", ambiguity="resolve", propagate_positions=True)
_TERMINAL_RES = [re.compile(p, re.I) for p in (*TERMINALS.values(), r"[.!?;:]")]
_TASK_RE = re.compile(TERMINALS["TASK"], re.I)
_VOCAB = sorted(
    {
        *OBJECTS,
        *COUNT_WORDS,
        *RELATIONS,
        *POSITIONS,
        *ORDERS,
        *LINES,
        *SIZES,
        *STYLES,
        *SHARP,
        *TRANSLATE,
        *TASKS,
        *FILLER,
        "side by side",
        "grid",
        "in",
    }
)
_ZOO = f"the zoo draws {' and '.join(DATASETS.values())}"
_KNOWN = (
    f"{_ZOO}; relations: left of, right of, above/on top of, below/under, next to/beside, or 'a 5 on the "
    "left and a 0 on the right'; layouts: in a row, in a column, a row of, a grid of four, a 2x2 grid of, "
    "from left to right, top to bottom"
)


def task_of(text: str) -> str | None:
    """The task a request's task words ask for (refine over create over variations), or None."""
    return next(iter(task_words(text)), (None, None))[1]


def task_words(text: str) -> list[tuple[str, str]]:
    """(word, task) for each task word of the request, refine first, then create, then variations."""
    found = [(_key(m.group(0)), TASKS[_key(m.group(0))]) for m in _TASK_RE.finditer(text or "")]
    return sorted(found, key=lambda wt: TASK_ORDER.index(wt[1]))


def unknown_words(text: str, terminals: list[re.Pattern] | None = None) -> list[str]:
    """The words of ``text`` that no terminal of the language (or of ``terminals``, another grammar's) matches,
    in order."""
    covered = [False] * len(text)
    for rx in _TERMINAL_RES if terminals is None else terminals:
        for m in rx.finditer(text):
            covered[m.start() : m.end()] = [True] * (m.end() - m.start())
    return [m.group(0) for m in re.finditer(r"[^\s,.!?;:]+", text) if not all(covered[m.start() : m.end()])]


def _suggest(word: str, vocab: list[str] | None = None) -> str:
    if word.isdigit():
        return (
            f"{word!r}: counts are 1 to 9 or 'one' to 'nine' ('three sevens'); the size of a batch is set "
            f"with n={word}"
        )
    close: list[str] = []
    for c in difflib.get_close_matches(word.lower(), _VOCAB if vocab is None else vocab, n=4, cutoff=0.6):
        if not any(c in _plural(k) or k in _plural(c) for k in close):  # 'coat', not also 'coats'
            close.append(c)
    return f"{word!r}: did you mean {' or '.join(map(repr, close))}?" if close else f"{word!r}: no close word"


def _refuse_unknown(text: str, words: list[str]) -> PromptError:
    said = ", ".join(map(repr, dict.fromkeys(words)))
    hints = "; ".join(_suggest(w) for w in dict.fromkeys(words))
    return PromptError(
        f"could not place {said} in {text!r}: not a word requests use, and no creator in the zoo draws it "
        f"({hints}); {_KNOWN}"
    )


def parse(text: str) -> Prompt:
    """The structured request a sentence says; :class:`PromptError` naming the word when it cannot."""
    text = " ".join((text or "").split())
    if not text:
        raise PromptError('empty prompt: say what to make, e.g. "a 3 left of a 7" or "three sevens in a row"')
    unknown = unknown_words(text)
    if unknown:
        raise _refuse_unknown(text, unknown)
    try:
        tree = _PARSER.parse(text)
    except UnexpectedEOF:
        raise PromptError(f"{text!r} stops before it is complete: {_KNOWN}") from None
    except UnexpectedInput as err:
        pos = err.pos_in_stream if err.pos_in_stream is not None else len(text)
        rest = text[pos:].strip()
        if not rest:
            raise PromptError(f"{text!r} stops before it is complete: {_KNOWN}") from None
        raise PromptError(
            f"could not place {rest.split()[0]!r} in {text!r} ({rest!r} does not fit): {_KNOWN}"
        ) from None
    try:
        return _Build(text).transform(tree)
    except VisitError as err:
        if isinstance(err.orig_exc, PromptError):
            raise err.orig_exc from None
        raise
