"""A :class:`~artdirector.agents.report_model.Report` as Markdown (``report.md``: images linked by their path
in the run's folder) and as one HTML page (``report.html``: images inline as base64 PNG, charts as SVG, so that
it opens from disk with nothing beside it). Both show the same blocks in the same order."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from artdirector.agents.report_model import (
    Block,
    Fields,
    Figure,
    Image,
    Images,
    Inline,
    Line,
    Paragraph,
    Report,
    Span,
    Table,
)


def _missing(root: Path | None, image: Image) -> bool:
    return root is not None and not (root / image.path).is_file()


# ---- Markdown ----------------------------------------------------------------------------------------
def _md_inline(piece: Inline) -> str:
    if not isinstance(piece, Span):
        return piece
    if piece.style == "strong":
        return f"**{piece.text}**"
    if piece.style == "code":
        fence = "``" if "`" in piece.text else "`"
        return f"{fence}{piece.text}{fence}"
    return piece.text  # good / bad: the words say it


def _md_line(line: Line) -> str:
    return "".join(_md_inline(p) for p in line)


def _md_cell(piece: Inline) -> str:
    return _md_inline(piece).replace("\n", " ").replace("|", "\\|")


def _md_table(t: Table) -> list[str]:
    align = ["---:" if j in t.right else "---" for j in range(len(t.head))]
    return [
        "| " + " | ".join(_md_cell(h) for h in t.head) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows),
    ]


def _md_block(block: Block, root: Path | None) -> list[str]:
    if isinstance(block, Paragraph):
        return ["  \n".join(_md_line(line) for line in block.lines)]
    if isinstance(block, Fields):
        return ["  \n".join(f"**{label}:** {_md_line(value)}" for label, value in block.items)]
    if isinstance(block, Table):
        return _md_table(block)
    if isinstance(block, Images):
        shown = " ".join(
            f"*({i.label}: not written)*" if _missing(root, i) else f"![{i.alt}]({i.path})"
            for i in block.images
        )
        captions = "; ".join(i.label for i in block.images if i.caption and not _missing(root, i))
        return [shown + (f"  \n*{captions}*" if captions else "")]
    if isinstance(block, Figure):
        out = [f"*{block.alt} (a chart in report.html)*"]
        return out + (["", *_md_table(block.data)] if block.data is not None else [])
    raise TypeError(f"not a report block: {type(block).__name__}")


def to_markdown(report: Report, root: Path | None = None) -> str:
    """``report`` as Markdown; ``root``: the run's folder, where an image not written is said to be missing."""
    lines = [f"# {report.title}", ""]
    for section in report.sections:
        if section.heading:
            lines += ["#" * section.level + " " + section.heading, ""]
        for block in section.blocks:
            lines += [*_md_block(block, root), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# ---- HTML --------------------------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top}.r{text-align:right}figure{display:inline-block;margin:.5em;vertical-align:top}
img{image-rendering:pixelated;width:320px}dt{font-weight:600;margin-top:.4em}.no{color:#a33}.yes{color:#282}"""

_TAGS = {"strong": ("<strong>", "</strong>"), "code": ("<code>", "</code>")}
_TAGS |= {"good": ('<span class="yes">', "</span>"), "bad": ('<span class="no">', "</span>")}


def _html_inline(piece: Inline) -> str:
    if not isinstance(piece, Span):
        return html.escape(piece)
    start, end = _TAGS[piece.style]
    return start + html.escape(piece.text) + end


def _html_line(line: Line) -> str:
    return "".join(_html_inline(p) for p in line)


def _html_image(image: Image, root: Path) -> str:
    label = html.escape(image.label)
    if _missing(root, image):
        return f"<p><em>({label}: not written)</em></p>"
    data = base64.b64encode((root / image.path).read_bytes()).decode()
    width = f' style="width:{image.width}px"' if image.width else ""
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(image.alt)}"{width}>'
        f"<figcaption>{label}</figcaption></figure>"
    )


def _html_table(t: Table) -> str:
    def cls(j: int) -> str:
        return ' class="r"' if j in t.right else ""

    head = "".join(f"<th{cls(j)}>{html.escape(h)}</th>" for j, h in enumerate(t.head))
    rows = "".join(
        "<tr>" + "".join(f"<td{cls(j)}>{_html_inline(c)}</td>" for j, c in enumerate(row)) + "</tr>"
        for row in t.rows
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _html_block(block: Block, root: Path) -> str:
    if isinstance(block, Paragraph):
        return "<p>" + "<br>".join(_html_line(line) for line in block.lines) + "</p>"
    if isinstance(block, Fields):
        items = "".join(
            f"<dt>{html.escape(label)}</dt><dd>{_html_line(value)}</dd>" for label, value in block.items
        )
        return f"<dl>{items}</dl>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Images):
        return "<div>" + "".join(_html_image(i, root) for i in block.images) + "</div>"
    if isinstance(block, Figure):
        return block.svg  # built by the report's own code, its text already escaped
    raise TypeError(f"not a report block: {type(block).__name__}")


def to_html(report: Report, root: Path) -> str:
    """``report`` as one HTML page, every image of ``root`` (the run's folder) inline."""
    title = html.escape(report.title)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{_CSS}</style></head><body><h1>{title}</h1>"
    ]
    for section in report.sections:
        if section.heading:
            parts.append(f"<h{section.level}>{html.escape(section.heading)}</h{section.level}>")
        parts += [_html_block(block, root) for block in section.blocks]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
