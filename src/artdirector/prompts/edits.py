"""Edits of a finished scene, said in words: a sentence -> a structured :class:`Edit`.

    make the 7 bigger            remove the 3                 add a 5 below the 7
    replace the 4 with a 9       move the 3 to the right of the 7
    make the 3 thicker           swap the 3 and the 7         make the left 7 smaller and thinner

A sibling of the request grammar (:mod:`artdirector.prompts.grammar`): the same terminals for objects, counts, sizes,
style words, relations, positions, conjunctions and filler words (one place for those words), plus the edit
verbs, the comparatives and the words that pick one of several objects ("the left 7", "the 7 on the left"),
listed below. As there, a word no terminal matches is refused naming it and the closest known words.

    >>> parse_edit("add a 5 below the 7").describe()
    'add a 5 below the 7'
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lark import Token

from artdirector.prompts import ObjectSpec, PromptError
from artdirector.prompts.grammar import (
    TERMINALS,
    VOCAB,
    Builder,
    Reader,
    alternation,
    lark_grammar,
    word_key,
)
from artdirector.prompts.words import OBJECTS, POSITIONS, RELATIONS, SIZES, STYLES

# the edit verbs, by what they do
VERBS = {
    "remove": "remove",
    "delete": "remove",
    "erase": "remove",
    "drop": "remove",
    "take out": "remove",
    "take away": "remove",
    "get rid of": "remove",
    "add": "add",
    "insert": "add",
    "include": "add",
    "replace": "replace",
    "change": "replace",
    "turn": "replace",
    "move": "move",
    "shift": "move",
    "swap": "swap",
    "switch": "swap",
    "exchange": "swap",
    "make": "change",
}
# verbs that carry their change ("enlarge the 7" is "make the 7 bigger")
CHANGE_VERBS = {"enlarge": "bigger", "grow": "bigger", "shrink": "smaller", "thicken": "thicker"}
# what "make the X ..." may change besides the size and style words of the request grammar: a size one step
# (small -> normal -> large) or a style word
COMPARATIVES: dict[str, tuple[str, Any]] = {
    "bigger": ("grow", 1),
    "larger": ("grow", 1),
    "smaller": ("grow", -1),
    "tinier": ("grow", -1),
    "thicker": ("style", "thick"),
    "bolder": ("style", "bold"),
    "heavier": ("style", "heavy"),
    "thinner": ("style", "thin"),
    "more slanted": ("style", "slanted"),
    "more italic": ("style", "italic"),
    "straighter": ("style", "upright"),
    "more upright": ("style", "upright"),
    "brighter": ("style", "bright"),
    "dimmer": ("style", "dim"),
    "darker": ("style", "dim"),
}
# which of several objects of a kind ("the left 7", "the upper 3"); "the 7 on the left" says the same with
# the request grammar's positions
PLACES = {
    "left": "left",
    "leftmost": "left",
    "right": "right",
    "rightmost": "right",
    "top": "top",
    "topmost": "top",
    "upper": "top",
    "bottom": "bottom",
    "bottommost": "bottom",
    "lower": "bottom",
    "middle": "middle",
    "centre": "middle",
    "center": "middle",
}
_POSITION_PLACE = {
    ("x", 0): "left",
    ("x", 2): "right",
    ("y", 0): "top",
    ("y", 2): "bottom",
    (None, 1): "middle",
}
# "replace the 4 with a 9" ("with" is a filler word), "change the 4 to a 9", "turn the 4 into a 9"
TO = ("to", "into", "by")
# words an edit may carry that say nothing more ("swap the positions of the 3 and the 7 around")
EDIT_FILLER = ("positions", "places", "around", "round")

EDIT_TERMINALS = {
    **{
        k: TERMINALS[k] for k in ("OBJECT", "ONE", "COUNT", "NUMBER", "RELATION", "POSITION", "SIZE", "STYLE")
    },
    "CONJ": TERMINALS["CONJ"],
    "REMOVE": alternation(w for w, v in VERBS.items() if v == "remove"),
    "ADD": alternation(w for w, v in VERBS.items() if v == "add"),
    "REPLACE": alternation(w for w, v in VERBS.items() if v == "replace"),
    "MOVE": alternation(w for w, v in VERBS.items() if v == "move"),
    "SWAP": alternation(w for w, v in VERBS.items() if v == "swap"),
    "MAKE": alternation(w for w, v in VERBS.items() if v == "change"),
    "CHANGEVERB": alternation(CHANGE_VERBS),
    "MORE": alternation(COMPARATIVES),
    "PLACE": alternation(PLACES),
    "TO": alternation(TO),
    "FILLER": TERMINALS["FILLER"],
    "EDITFILLER": alternation(EDIT_FILLER),
}

EDIT_GRAMMAR = lark_grammar(
    r"""
start: ","? edit ","?
?edit: remove | add | replace | move | swap | change
remove: REMOVE ref
add: ADD new (RELATION ref)?
replace: REPLACE ref TO? new
move: MOVE ref RELATION ref
swap: SWAP ref CONJ? ref
change: MAKE ref _changes | CHANGEVERB ref (","? _changes)?
_changes: how (CONJ? how)*
how: SIZE | STYLE | MORE
ref: (PLACE | _mod)* (OBJECT | ONE) (","? POSITION)?
new: count? (_mod ","?)* (OBJECT | ONE)
_mod: SIZE | STYLE
count: COUNT | NUMBER
%ignore FILLER
%ignore EDITFILLER
%ignore /[\s.!?;:]+/
""",
    EDIT_TERMINALS,
)

KINDS = ("remove", "add", "replace", "move", "swap", "change")
_EXAMPLES = (
    "edits say one change: 'make the 7 bigger', 'make the 3 thicker', 'remove the 3', 'add a 5 below the 7', "
    "'replace the 4 with a 9', 'move the 3 to the right of the 7', 'swap the 3 and the 7'; one of several "
    "of a kind is 'the left 7', 'the 7 on the left', 'the top 3', 'the middle 5'"
)


@dataclass
class ObjectRef:
    """An object of the scene, as an edit names it: its kind, and what picks it among several of that kind."""

    name: str
    dataset: str
    label: int
    size: str | None = None  # "the small 7": only small 7s
    style: list[str] = field(default_factory=list)  # "the thick 3": only 3s drawn thick
    # "left", "right", "top", "bottom", "middle": which of several of the kind ("the top left sneaker")
    places: list[str] = field(default_factory=list)

    def describe(self) -> str:
        words = [*self.places, self.size, *self.style, self.name]
        return "the " + " ".join(w for w in words if w)


@dataclass
class Edit:
    text: str
    kind: str  # one of KINDS
    target: ObjectRef | None = None  # the object the edit changes (the first of a swap); None for add
    other: ObjectRef | None = None  # the second of a swap; the object a relation is to (add, move)
    new: ObjectSpec | None = None  # the object to draw (add, replace)
    relation: str | None = None  # add, move: where it goes, relative to ``other``
    size: str | None = None  # change: an absolute size word ("small", "large")
    grow: int = 0  # change: size steps (bigger +1, smaller -1)
    style: list[str] = field(default_factory=list)  # change: style words, in order

    def describe(self) -> str:
        n = self.new
        new = n and " ".join(
            [
                str(n.count) if n.count > 1 else "a",
                *filter(None, [n.size]),
                *n.style,
                n.name + "s" * (n.count > 1),
            ]
        )
        if self.kind == "remove":
            return f"remove {self.target.describe()}"
        if self.kind == "add":
            return f"add {new}" + (f" {self.relation} {self.other.describe()}" if self.relation else "")
        if self.kind == "replace":
            return f"replace {self.target.describe()} with {new}"
        if self.kind == "move":
            return f"move {self.target.describe()} {self.relation} {self.other.describe()}"
        if self.kind == "swap":
            return f"swap {self.target.describe()} and {self.other.describe()}"
        said = [self.size] if self.size else []
        if self.grow:
            said.append(
                ("bigger" if self.grow > 0 else "smaller")
                + (f" x{abs(self.grow)}" if abs(self.grow) > 1 else "")
            )
        return f"make {self.target.describe()} " + " and ".join([*said, *self.style])

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "understood": self.describe()}


class _Build(Builder):
    """The parse tree of an edit -> what it says."""

    def ref(self, items):
        ref = None
        size, style, places = None, [], []
        for it in items:
            key = word_key(it)
            if it.type in ("OBJECT", "ONE"):
                dataset, label, name = OBJECTS[key]
                ref = ObjectRef(name, dataset, label)
            elif it.type == "SIZE":
                size = SIZES[key]
            elif it.type == "STYLE":
                style.append(STYLES[key])
            elif it.type == "PLACE":
                places.append(PLACES[key])
            elif it.type == "POSITION":
                places.append(_POSITION_PLACE[POSITIONS[key]])
        ref.size, ref.style, ref.places = size, style, list(dict.fromkeys(places))
        return ref

    def new(self, items):
        count, size, style, obj = 1, None, [], None
        for it in items:
            if isinstance(it, int):
                count = it
            elif it.type == "SIZE":
                size = SIZES[word_key(it)]
            elif it.type == "STYLE":
                style.append(STYLES[word_key(it)])
            else:
                obj = OBJECTS[word_key(it)]
        dataset, label, name = obj
        return ObjectSpec(name, dataset, label, count, size, True, style)

    def how(self, items):
        (tok,) = items
        key = word_key(tok)
        if tok.type == "SIZE":
            return ("size", SIZES[key])
        if tok.type == "STYLE":
            return ("style", STYLES[key])
        return COMPARATIVES[key]

    def _parts(self, items):
        refs = [i for i in items if isinstance(i, ObjectRef)]
        new = next((i for i in items if isinstance(i, ObjectSpec)), None)
        rel = next(
            (RELATIONS[word_key(i)] for i in items if isinstance(i, Token) and i.type == "RELATION"), None
        )
        return refs, new, rel

    def remove(self, items):
        (target,), _, _ = self._parts(items)
        return Edit(self.text, "remove", target=target)

    def add(self, items):
        refs, new, rel = self._parts(items)
        return Edit(self.text, "add", other=refs[0] if refs else None, new=new, relation=rel)

    def replace(self, items):
        (target,), new, _ = self._parts(items)
        if new.count != 1:
            raise PromptError(
                f"{self.text!r} replaces one object with {new.count}: replace it with one, then add the others "
                f"(e.g. 'replace {target.describe()} with a {new.name}', then 'add a {new.name} next to the "
                f"{new.name}')"
            )
        return Edit(self.text, "replace", target=target, new=new)

    def move(self, items):
        (target, other), _, rel = self._parts(items)
        return Edit(self.text, "move", target=target, other=other, relation=rel)

    def swap(self, items):
        (target, other), _, _ = self._parts(items)
        return Edit(self.text, "swap", target=target, other=other)

    def change(self, items):
        (target,), _, _ = self._parts(items)
        edit = Edit(self.text, "change", target=target)
        hows = [i for i in items if isinstance(i, tuple)]
        verb = next((word_key(i) for i in items if isinstance(i, Token) and i.type == "CHANGEVERB"), None)
        if verb is not None:
            hows.insert(0, COMPARATIVES[CHANGE_VERBS[verb]])
        for what, value in hows:
            if what == "grow":
                edit.grow += value
            elif what == "size":
                edit.size = value
            elif value not in edit.style:
                edit.style.append(value)
        if edit.size and edit.grow:
            raise PromptError(f"{self.text!r} says the size twice ({edit.size!r} and a comparative): say one")
        return edit

    def start(self, items):
        (edit,) = items
        return edit


_EDITS = Reader(
    EDIT_GRAMMAR,
    EDIT_TERMINALS,
    {*VOCAB, *VERBS, *CHANGE_VERBS, *COMPARATIVES, *PLACES, *TO, *EDIT_FILLER},
    _EXAMPLES,
    empty=f"empty edit: {_EXAMPLES}",
    label="the edit ",
)
_VERB_RE = re.compile(alternation([*(w for w, v in VERBS.items() if v != "change"), *CHANGE_VERBS]), re.I)


def looks_like_edit(text: str) -> bool:
    """Does the sentence begin with a verb only edits use ("remove", "swap", "enlarge"), or with "make the"
    ("make a 3 left of a 7" is a request), past filler words ("now remove the 3")?"""
    words = re.findall(r"[\w'-]+", (text or "").lower())
    while words and words[0] in ("please", "now", "then", "and", "also", "just", "can", "you", "could"):
        words.pop(0)
    return words[:2] == ["make", "the"] or (bool(words) and bool(_VERB_RE.match(" ".join(words))))


def parse_edit(text: str) -> Edit:
    """The edit a sentence says; :class:`PromptError` (one line) naming what cannot be placed."""
    return _EDITS.read(text, _Build)
