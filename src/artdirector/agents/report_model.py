"""A run's report as data, whatever made the run: a title and ordered sections, each a list of blocks
(paragraphs, labelled fields, tables, rows of images, figures). The batch Director's and the scene director's
traces are turned into one (:mod:`artdirector.agents.report_batch`, :mod:`artdirector.agents.report_scene`),
and :mod:`artdirector.agents.report_render` draws any of them as Markdown and as a self-contained HTML page.

Text is plain: the renderers escape it. Emphasis is a :class:`Span`, never markup inside a string, so a
request's own ``*`` or ``<`` is shown as typed."""

from __future__ import annotations

from dataclasses import dataclass, field

STYLES = ("strong", "code", "good", "bad")


@dataclass(frozen=True)
class Span:
    """Text with one emphasis: ``strong``, ``code``, or a verdict, ``good`` / ``bad`` (coloured in HTML)."""

    text: str
    style: str = "strong"

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"span style {self.style!r} is not one of {STYLES}")


Inline = str | Span
Line = list[Inline]  # pieces shown one after the other


def strong(text: str) -> Span:
    return Span(str(text), "strong")


def code(text: str) -> Span:
    return Span(str(text), "code")


def verdict(text: str, ok: bool) -> Span:
    """``text`` marked as a good or a bad outcome."""
    return Span(str(text), "good" if ok else "bad")


@dataclass
class Paragraph:
    """Lines shown with a hard break between them."""

    lines: list[Line]


def para(*pieces: Inline) -> Paragraph:
    """A one-line paragraph."""
    return Paragraph([list(pieces)])


@dataclass
class Fields:
    """Labelled facts, one per line ("Request: ...", "Floor: ...")."""

    items: list[tuple[str, Line]]


@dataclass
class Table:
    """A header and rows of one cell per column; ``right``: the columns of numbers, aligned right."""

    head: list[str]
    rows: list[list[Inline]]
    right: frozenset[int] = frozenset()


@dataclass
class Image:
    """A PNG of the run, by its path relative to the run's folder; ``caption`` says what it shows."""

    path: str
    alt: str
    caption: str = ""
    width: int | None = None  # pixels on the HTML page; None: the page's default

    @property
    def label(self) -> str:
        return f"{self.alt}: {self.caption}" if self.caption else self.alt


@dataclass
class Images:
    """Images side by side."""

    images: list[Image]


@dataclass
class Figure:
    """A chart drawn as an ``<svg>`` element (HTML only); Markdown shows ``alt`` and the numbers in ``data``."""

    svg: str
    alt: str
    data: Table | None = None


Block = Paragraph | Fields | Table | Images | Figure


@dataclass
class Section:
    """A heading (level 2; 3 for a sub-section; "" for none) and its blocks, in order."""

    heading: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2


@dataclass
class Report:
    title: str
    sections: list[Section] = field(default_factory=list)
