"""A data card's files: its Markdown rendering (:func:`card_markdown`), ``data_card.json`` and
``data_card.md`` (:func:`write_card`, atomically) and the grid of its closest near-duplicate pairs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from artdirector.evaluation.copying import save_pairs_grid
from artdirector.io import write_json, write_text

CARD_JSON, CARD_MD, NEAR_GRID = "data_card.json", "data_card.md", "near_duplicates.png"


def write_near_grid(images: torch.Tensor, pairs: list[tuple[int, int, float]], out_dir: str | Path) -> str:
    """The pairs (indices into ``images``) as a grid, each row above its partners, into
    ``out_dir/near_duplicates.png``; returns the file's name as the card records it."""
    save_pairs_grid(
        images[[a for a, _, _ in pairs]], images[[b for _, b, _ in pairs]], Path(out_dir) / NEAR_GRID
    )
    return NEAR_GRID


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def card_markdown(card: dict[str, Any], title: str | None = None) -> str:
    """A data card as a Markdown section (a level-2 heading, a table, the warnings)."""
    ex, near, floor = card["exact_duplicates"], card["near_duplicates"], card["fid_floor"]
    splits = ", ".join(f"{s} {_fmt(v['n'])} (`{v['sha256']}`)" for s, v in card["splits"].items())
    if "skipped" in floor:
        floor_txt = f"skipped: {floor['skipped']}"
    else:
        floor_txt = (
            f"{_fmt(floor['mean'])} ± {_fmt(floor['sd'])} (sd over {floor['draws']} "
            f"{'disjoint' if floor['disjoint'] else 'overlapping'} draws of {_fmt(floor['n'])} "
            f"{floor['drawn_from']} images against the {floor['reference']['n']} "
            f"{floor['reference']['split']} images; {floor['feature_network']})"
        )
    classes = (
        ", ".join(f"{k}: {_fmt(v)}" for k, v in card["n_per_class"].items())
        if card["n_per_class"]
        else "no labels"
    )
    res = ", ".join(f"{k}: {_fmt(v)}" for k, v in list(card["source_resolutions"].items())[:5])
    mean = ", ".join(f"{v:.4f}" for v in card["pixel"]["mean"])
    std = ", ".join(f"{v:.4f}" for v in card["pixel"]["std"])
    rows = [
        ("Data set", f"`{card['dataset']}`, images {'x'.join(map(str, card['image_shape']))} (C x H x W)"),
        ("Readable images", _fmt(card["n_images"])),
        (
            "Unreadable files",
            f"{card['n_corrupt']}"
            + (
                ": " + ", ".join(card["corrupt_files"][:5]) + (" ..." if card["n_corrupt"] > 5 else "")
                if card["n_corrupt"]
                else ""
            ),
        ),
        ("Splits (n, content hash)", splits),
        ("Images per class", classes),
        ("Class imbalance (max/min)", _fmt(card["class_imbalance"])),
        (
            "Exact duplicates",
            f"{ex['n_groups']} groups, {ex['n_redundant']} redundant images, "
            f"{ex['n_cross_split']} groups across splits",
        ),
        (
            "Near duplicates",
            f"{_fmt(near['n_pairs'])}{'+' if near['n_pairs_is_lower_bound'] else ''} pairs "
            f"({near['n_cross_split']} across splits) at distance <= {_fmt(near['threshold'])} "
            f"({near['ratio']} x the median nearest-neighbour distance) in {near['feature_space']}",
        ),
        ("Pixel mean / std (train, [0, 1])", f"{mean} / {std}"),
        (f"Source resolutions ({card['source_resolutions_note']})", res),
        ("Real-vs-real FID floor", floor_txt),
    ]
    lines = [f"## {title or 'Data card: ' + card['dataset']}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    if near.get("grid"):
        lines += ["", f"Closest near-duplicate pairs (each row above its partners): `{near['grid']}`"]
    if card["warnings"]:
        lines += ["", *[f"- **Warning:** {w}" for w in card["warnings"]]]
    return "\n".join(lines) + "\n"


def write_card(card: dict[str, Any], out_dir: str | Path) -> Path:
    """``data_card.json`` and ``data_card.md`` into ``out_dir`` (atomically); returns the JSON's path."""
    out_dir = Path(out_dir)
    write_text(out_dir / CARD_MD, card_markdown(card))
    return write_json(out_dir / CARD_JSON, card)
