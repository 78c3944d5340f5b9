"""The prompt language: a sentence -> a structured request (task, objects with counts and sizes, relations,
a layout), parsed by a grammar rather than keyword matching, so nothing in a prompt is silently dropped.

Why a grammar (lark, Earley): a prompt is a small compositional language ("a 3 left of a 7", "three sevens
in a row", "a 2x2 grid of sneakers"). One declared grammar says which sentences exist; a word it cannot place
is an error that quotes the word and lists what would work, instead of a regular expression that ignores it.
Earley with the dynamic lexer resolves the language's overlaps (a numeral is a count in "3 sevens" and a
digit in "a 3") without hand-written lookahead.

    >>> parse("a 3 left of a 7").relations
    [Relation(subject=0, relation='left of', object=1)]
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedInput

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
COUNT_WORDS = {"a pair of": 2, "a couple of": 2, "two": 2, "three": 3, "four": 4, "five": 5}
RELATIONS = {
    "left of": "left of",
    "to the left of": "left of",
    "right of": "right of",
    "to the right of": "right of",
    "above": "above",
    "over": "above",
    "below": "below",
    "under": "below",
    "beneath": "below",
    "next to": "next to",
    "beside": "next to",
}
SIZES = {
    "small": "small",
    "tiny": "small",
    "little": "small",
    "large": "large",
    "big": "large",
    "huge": "large",
}
# style words (artdirector.editing.style.WORDS for the attribute each moves) and resolution words (the
# ``upscale`` action, x4)
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
TASKS = {
    "generate": "create",
    "create": "create",
    "make": "create",
    "draw": "create",
    "paint": "create",
    "show": "create",
    "give": "create",
    "sketch": "create",
    "refine": "refine",
    "improve": "refine",
    "enhance": "refine",
    "fix": "refine",
    "variations of": "variations",
    "variations on": "variations",
    "vary": "variations",
    "turn": "variations",
}
FILLER = (
    "please", "me", "some", "new", "art", "image", "images", "picture", "pictures", "of", "with",
    "this", "these", "that", "those", "it", "them", "digit", "digits", "number", "numbers", "item", "items",
)  # fmt: skip


def _plural(word: str) -> list[str]:
    if word.endswith("s"):
        return [word, word + "es"]
    if word.endswith("x"):
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


def _alt(words) -> str:
    """A lark regex alternation of whole words, longest first, case-insensitive."""
    body = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(set(words), key=len, reverse=True))
    return f"/(?<![\\w'-])(?:{body})(?![\\w'-])/i"


GRAMMAR = rf"""
start: task? body?
task: TASK
?body: grid | group layout? | translation
translation: np TRANSLATE np
grid: DET? GRIDSIZE "grid"i "of"i group
group: phrase (CONJ phrase)*
phrase: np (RELATION np)?
np: DET? count? (_mod ","?)* OBJECT
_mod: SIZE | STYLE | SHARP
count: COUNT | NUMBER
layout: "in"i DET? LINE
TASK: {_alt(TASKS)}
OBJECT.2: {_alt(OBJECTS)}
COUNT.1: {_alt(COUNT_WORDS)}
NUMBER: /[2-9](?![\w'])/
RELATION: {_alt(RELATIONS)}
SIZE: {_alt(SIZES)}
STYLE: {_alt(STYLES)}
SHARP: {_alt(SHARP)}
TRANSLATE: {_alt(TRANSLATE)}
DET: /(?<![\w'-])(?:an|a|the)(?![\w'-])/i
CONJ: /(?<![\w'-])(?:and|&)(?![\w'-])|,/i
LINE: /(?<![\w'-])(?:row|line|column)(?![\w'-])/i
GRIDSIZE: /[1-9]\s*[x×]\s*[1-9]/i
FILLER: {_alt(FILLER)}
%ignore FILLER
%ignore /[\s.!?;:]+/
"""


class PromptError(UserError, ValueError):
    """A prompt the grammar cannot place: the message quotes the word and says what would work."""


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


class _Build(Transformer):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def count(self, items):
        (tok,) = items
        return int(tok) if tok.type == "NUMBER" else COUNT_WORDS[" ".join(str(tok).lower().split())]

    def np(self, items):
        count, size, obj, counted, style, sharp = 1, None, None, False, [], False
        for it in items:
            if isinstance(it, int):
                count, counted = it, True
            elif isinstance(it, Token) and it.type == "DET":
                counted = True
            elif isinstance(it, Token) and it.type == "SIZE":
                size = SIZES[str(it).lower()]
            elif isinstance(it, Token) and it.type == "STYLE":
                style.append(STYLES[str(it).lower()])
            elif isinstance(it, Token) and it.type == "SHARP":
                sharp = True
            elif isinstance(it, Token) and it.type == "OBJECT":
                obj = OBJECTS[" ".join(str(it).lower().split())]
        dataset, label, name = obj
        return ObjectSpec(name, dataset, label, count, size, counted, style, sharp)

    def phrase(self, items):
        nps = [i for i in items if isinstance(i, ObjectSpec)]
        rel = next((RELATIONS[" ".join(str(i).lower().split())] for i in items if isinstance(i, Token)), None)
        return (nps, rel)

    def group(self, items):
        return [i for i in items if isinstance(i, tuple)]

    def layout(self, items):
        line = str(items[-1]).lower()
        return {"kind": "column" if line == "column" else "row"}

    def grid(self, items):
        size = next(str(i) for i in items if isinstance(i, Token) and i.type == "GRIDSIZE")
        r, c = (int(v) for v in size.lower().replace("×", "x").replace(" ", "").split("x"))
        group = next(i for i in items if isinstance(i, list))
        return ("grid", group, {"kind": "grid", "rows": r, "cols": c})

    def body(self, items):  # a group with a layout ("three sevens in a row")
        group = next(i for i in items if isinstance(i, list))
        layout = next((i for i in items if isinstance(i, dict)), None)
        return ("body", group, layout)

    def translation(self, items):
        src, dst = (i for i in items if isinstance(i, ObjectSpec))
        return ("translation", src, dst)

    def task(self, items):
        return ("task", TASKS[" ".join(str(items[0]).lower().split())])

    def start(self, items):
        p = Prompt(self.text, None)
        layout, group = None, []
        for it in items:
            if isinstance(it, tuple) and it[0] == "task":
                p.task = it[1]
            elif isinstance(it, tuple) and it[0] == "translation":
                p.objects, p.target = [it[1]], it[2]
                if p.task is None or p.task == "create":
                    p.task = "variations"  # "make this 3 look like an 8": a variation of the input
                continue
            elif isinstance(it, tuple) and it[0] in ("grid", "body"):
                group, layout = it[1], it[2]
            elif isinstance(it, list):
                group = it
            elif isinstance(it, dict):
                layout = it
        for nps, rel in group:
            first = len(p.objects)
            p.objects.extend(nps)
            if rel is not None:
                p.relations.append(Relation(first, rel, first + 1))
        p.layout = layout
        if layout and layout["kind"] == "grid":
            cells = layout["rows"] * layout["cols"]
            if len(p.objects) == 1 and p.objects[0].count == 1:
                p.objects[0].count = cells
        return p


_PARSER = Lark(GRAMMAR, parser="earley", lexer="dynamic", ambiguity="resolve")
_VOCAB = sorted(
    {
        *OBJECTS,
        *COUNT_WORDS,
        *RELATIONS,
        *SIZES,
        *STYLES,
        *SHARP,
        *TRANSLATE,
        *TASKS,
        *FILLER,
        "in a row",
        "grid of",
    }
)


def _word_at(text: str, pos: int) -> str:
    start = pos
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    end = pos
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end] or text[pos : pos + 1]


_MENTION = re.compile(_alt(OBJECTS)[1:-2], re.I)  # the OBJECT terminal, as a Python regex
_ONE_AS_DIGIT = re.compile(r"\b(?:digit|number|a|an|the)\s+one\b|\bones\b", re.I)


def names_object(text: str) -> bool:
    """Does the text name a digit or a FashionMNIST item? ("one" only as a digit: "a one", "ones")."""
    for m in _MENTION.finditer(text or ""):
        if m.group(0).lower() != "one" or _ONE_AS_DIGIT.search(text):
            return True
    return False


def parse(text: str) -> Prompt:
    """The structured request a prompt says; :class:`PromptError` (quoting the word) when it cannot."""
    text = " ".join((text or "").split())
    if not text:
        raise PromptError('empty prompt: say what to make, e.g. "a 3 left of a 7" or "three sevens in a row"')
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as err:
        word = _word_at(text, err.pos_in_stream or 0).strip(",.!?")
        close = difflib.get_close_matches(word.lower(), _VOCAB, n=3, cutoff=0.6)
        known = (
            "objects are digits (7, 'seven', 'sevens') or FashionMNIST items ('sneaker', 'dress', 'bag', ...); "
            "relations: left of, right of, above, below, next to; layouts: in a row, in a column, a 2x2 grid of"
        )
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? ({known})" if close else known
        raise PromptError(f"could not place {word!r} in {text!r}: {hint}") from None
    return _Build(text).transform(tree)
