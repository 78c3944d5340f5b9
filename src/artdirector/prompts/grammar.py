"""The request grammar, and how a grammar of the request language is read.

Why a grammar (lark, Earley): a request is a small compositional language ("a 3 left of a 7", "three sevens
in a row", "a 2x2 grid of sneakers", "the digits 4, 5 and 6 from left to right"). One declared grammar says
which sentences exist; a word it does not know is refused with the closest known words and what the zoo can
draw, instead of a regular expression that ignores it. Earley with the dynamic lexer resolves the language's
overlaps (a numeral is a count in "3 sevens" and a digit in "a 3") without hand-written lookahead.

:data:`TERMINALS` are one regex each over the word lists of :mod:`artdirector.prompts.words`; :data:`GRAMMAR`
is the request's rules over them. A :class:`Reader` reads a sentence with a grammar: every word must match a
terminal (else it is refused by name, with the closest known words), then the parse, then the tree is built.
The edit grammar (:mod:`artdirector.prompts.edits`) is read the same way, on these terminals plus its own.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedEOF, UnexpectedInput
from lark.exceptions import VisitError

from artdirector.errors import UserError
from artdirector.prompts.words import (
    COUNT_WORDS,
    DATASETS,
    FILLER,
    KIND_WORDS,
    LINES,
    OBJECTS,
    ORDERS,
    POSITIONS,
    RELATIONS,
    SHARP,
    SIZES,
    STYLES,
    TASK_ORDER,
    TASKS,
    TRANSLATE,
    plural,
)


class PromptError(UserError, ValueError):
    """A request the grammar cannot read: the message names the word and says what would work."""


def word_key(tok: Token | str) -> str:
    """A matched word as its word lists spell it: lower case, single spaces."""
    return " ".join(str(tok).lower().split())


def alternation(words: Iterable[str]) -> str:
    """A regex alternation of whole words, longest first (spaces match any whitespace)."""
    alts = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(set(words), key=len, reverse=True))
    return rf"(?<![\w'-])(?:{alts})(?![\w'-])"


def lark_grammar(rules: str, terminals: Mapping[str, str]) -> str:
    """``rules`` followed by one case-insensitive regex terminal per entry; an object word wins an overlap."""
    return rules + "\n".join(
        f"{name}{'.2' if name == 'OBJECT' else ''}: /{pattern}/i" for name, pattern in terminals.items()
    )


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
_BEFORE_OBJECT = (
    rf"[\s,]+(?:{alternation([*SIZES, *STYLES, *SHARP, *KIND_WORDS])}[\s,]+)*{alternation(OBJECTS)}"
)

# the terminals: one regex each (case-insensitive); the grammar and the unknown-word check both read these
TERMINALS = {
    "OBJECT": alternation(w for w in OBJECTS if w != "one"),
    "ONE": rf"(?:{_DIGIT_ONE})one(?![\w'-])",
    "COUNT": alternation(COUNT_WORDS),
    "NUMBER": r"(?<![\w'-])[1-9](?![\w'-])",
    "RELATION": alternation(RELATIONS),
    "POSITION": alternation(POSITIONS),
    "ORDER": rf"(?<![\w'-])(?:from\s+)?{alternation(ORDERS)}",
    "LINE": alternation(LINES),
    "SIDE": alternation(["side by side"]),
    "GRIDSIZE": r"(?<![\w'-])[1-9]\s*(?:[x×]|\s+by\s+)\s*[1-9](?![\w'-])",
    "GRID": alternation(["grid"]),
    "OF": alternation(["of"]),
    "IN": alternation(["in"]),
    "SIZE": alternation(SIZES),
    "STYLE": alternation(STYLES),
    "SHARP": alternation(SHARP),
    "TRANSLATE": alternation(TRANSLATE),
    "CONJ": r"(?:,\s*)?(?<![\w'-])(?:and|&)(?![\w'-])|,",
    # said anywhere and ignored by the grammar: task words (read by task_words) and filler words
    "TASK": alternation(TASKS),
    "FILLER": alternation(FILLER),
    "PRONOUN": rf"{_NOT_DIGIT_ONE}(?<![\w'-])one(?![\w'-])(?!{_BEFORE_OBJECT})",
}

GRAMMAR = lark_grammar(
    r"""
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
""",
    TERMINALS,
)

# every word a request may use: what a refusal suggests from
VOCAB = sorted(
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
KNOWN = (
    f"{_ZOO}; relations: left of, right of, above/on top of, below/under, next to/beside, or 'a 5 on the "
    "left and a 0 on the right'; layouts: in a row, in a column, a row of, a grid of four, a 2x2 grid of, "
    "from left to right, top to bottom"
)

_TASK_RE = re.compile(TERMINALS["TASK"], re.I)


def task_of(text: str) -> str | None:
    """The task a request's task words ask for (refine over create over variations), or None."""
    return next(iter(task_words(text)), (None, None))[1]


def task_words(text: str) -> list[tuple[str, str]]:
    """(word, task) for each task word of the request, refine first, then create, then variations."""
    found = [(word_key(m.group(0)), TASKS[word_key(m.group(0))]) for m in _TASK_RE.finditer(text or "")]
    return sorted(found, key=lambda wt: TASK_ORDER.index(wt[1]))


def suggest(word: str, vocab: Iterable[str]) -> str:
    """What a refusal says about one unknown word: the closest known words, or how counts are said."""
    if word.isdigit():
        return (
            f"{word!r}: counts are 1 to 9 or 'one' to 'nine' ('three sevens'); the size of a batch is set "
            f"with n={word}"
        )
    close: list[str] = []
    for c in difflib.get_close_matches(word.lower(), list(vocab), n=4, cutoff=0.6):
        if not any(c in plural(k) or k in plural(c) for k in close):  # 'coat', not also 'coats'
            close.append(c)
    return f"{word!r}: did you mean {' or '.join(map(repr, close))}?" if close else f"{word!r}: no close word"


class Builder(Transformer):
    """A parse tree -> what it says, knowing the sentence (``text``); counts read alike in every grammar."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def count(self, items):
        (tok,) = items
        return int(tok) if tok.type == "NUMBER" else COUNT_WORDS[word_key(tok)]


class Reader:
    """Reads sentences with one grammar of the request language (lark, Earley, dynamic lexer; the parser is
    built on first use). Every refusal is one :class:`PromptError` line that names what cannot be placed and
    ends with ``known`` (what works); ``label`` precedes the quoted sentence in it ("the edit "), and
    ``unknown_why`` follows it when a word is unknown."""

    def __init__(
        self,
        grammar: str,
        terminals: Mapping[str, str],
        vocab: Iterable[str],
        known: str,
        empty: str,
        label: str = "",
        unknown_why: str = "",
    ) -> None:
        self.grammar, self.known, self.empty = grammar, known, empty
        self.label, self.unknown_why = label, unknown_why
        self.vocab = sorted(vocab)
        self.terminals = [re.compile(p, re.I) for p in (*terminals.values(), r"[.!?;:]")]

    @cached_property
    def parser(self) -> Lark:
        return Lark(
            self.grammar, parser="earley", lexer="dynamic", ambiguity="resolve", propagate_positions=True
        )

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` that no terminal matches, in order."""
        covered = [False] * len(text)
        for rx in self.terminals:
            for m in rx.finditer(text):
                covered[m.start() : m.end()] = [True] * (m.end() - m.start())
        return [
            m.group(0) for m in re.finditer(r"[^\s,.!?;:]+", text) if not all(covered[m.start() : m.end()])
        ]

    def read(self, text: str, build: Callable[[str], Builder]) -> Any:
        """``build(text)``'s transform of the parse of ``text`` (whitespace normalised)."""
        text = " ".join((text or "").split())
        said = f"{self.label}{text!r}"
        if not text:
            raise PromptError(self.empty)
        unknown = list(dict.fromkeys(self.unknown_words(text)))
        if unknown:
            words = ", ".join(map(repr, unknown))
            hints = "; ".join(suggest(w, self.vocab) for w in unknown)
            raise PromptError(f"could not place {words} in {said}{self.unknown_why} ({hints}); {self.known}")
        try:
            tree = self.parser.parse(text)
        except UnexpectedEOF:
            raise PromptError(f"{said} stops before it is complete: {self.known}") from None
        except UnexpectedInput as err:
            pos = err.pos_in_stream if err.pos_in_stream is not None else len(text)
            rest = text[pos:].strip()
            if not rest:
                raise PromptError(f"{said} stops before it is complete: {self.known}") from None
            raise PromptError(
                f"could not place {rest.split()[0]!r} in {said} ({rest!r} does not fit): {self.known}"
            ) from None
        try:
            return build(text).transform(tree)
        except VisitError as err:
            if isinstance(err.orig_exc, PromptError):
                raise err.orig_exc from None
            raise
