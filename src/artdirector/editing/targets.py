"""What a style request is: an attribute of :mod:`artdirector.editing.attributes` and an amount
(:class:`StyleTarget`): ``"+50%"`` (each image's value times 1.5), ``"+15"`` (plus 15 of the attribute's unit:
pixels, degrees, a fraction of the frame) or ``"=0"`` (every image to that value), and the prompt words that
name one (:data:`WORDS`, from :mod:`artdirector.prompts.words`): "thick"/"bold" thickness +50 %, "thin"
thickness -33 %, "slanted"/"italic" slant +15 degrees, "upright" slant = 0, and the frame-size words "small"
size -25 %, "large" size +25 % (in a request those two are scene sizes, not style words)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from artdirector.editing import attributes as formulas
from artdirector.errors import UserError
from artdirector.prompts.words import FRAME_SIZE_TARGETS, STYLE_TARGETS

EDITABLE = ("thickness", "slant", "size", "brightness")
UNITS = {"thickness": "px", "slant": "deg", "size": "of the frame", "brightness": ""}


class StyleError(UserError, ValueError):
    """A style request the editor cannot act on (unknown attribute, malformed amount, unsupported method)."""


_AMOUNT = re.compile(r"^\s*([+-]\s*\d+(?:\.\d+)?)\s*(%?)\s*$|^\s*=\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class StyleTarget:
    attribute: str
    kind: str  # "relative" (x (1 + amount)), "delta" (+ amount) or "value" (= amount)
    amount: float

    @classmethod
    def parse(cls, attribute: str, amount: Any) -> StyleTarget:
        """``("thickness", "+50%")``, ``("slant", "+15")``, ``("slant", "=0")``; a bare number is a delta."""
        if attribute not in EDITABLE:
            raise StyleError(
                f"cannot edit style attribute {attribute!r}: editable are {', '.join(EDITABLE)} "
                "(e.g. style={thickness: '+50%'})"
            )
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            return cls(attribute, "delta", float(amount))
        m = _AMOUNT.match(str(amount))
        if m is None:
            raise StyleError(
                f"cannot read the amount {amount!r} for {attribute}: write '+50%' or '-30%' (relative), "
                "'+15' (in the attribute's unit) or '=0' (a value)"
            )
        if m.group(3) is not None:
            return cls(attribute, "value", float(m.group(3)))
        value = float(m.group(1).replace(" ", ""))
        if m.group(2):
            if value <= -100:
                raise StyleError(
                    f"{attribute} cannot shrink by {-value:g} %: the amount must be above -100 %"
                )
            return cls(attribute, "relative", value / 100)
        return cls(attribute, "delta", value)

    def goal(self, current: torch.Tensor) -> torch.Tensor:
        """Each image's target value, from its current value."""
        if self.kind == "relative":
            return current * (1 + self.amount)
        if self.kind == "delta":
            return current + self.amount
        return torch.full_like(current, self.amount)

    def spec(self) -> str:
        """The amount as :meth:`parse` reads it: ``"+50%"``, ``"+15"``, ``"=0"``."""
        if self.kind == "relative":
            return f"{self.amount * 100:+g}%"
        return f"={self.amount:g}" if self.kind == "value" else f"{self.amount:+g}"

    def describe(self) -> str:
        unit = UNITS[self.attribute]
        if self.kind == "relative":
            return f"{self.attribute} {self.amount * 100:+.0f}%"
        if self.kind == "delta":
            return f"{self.attribute} {self.amount:+g}{(' ' + unit) if unit else ''}"
        return f"{self.attribute} = {self.amount:g}{(' ' + unit) if unit else ''}"


# the words an edit reads -> (attribute, amount): a prompt's style words and the frame-size words, both owned
# by artdirector.prompts.words, which keeps "small"/"large" (frame sizes here, scene sizes in a request) apart
WORDS: dict[str, tuple[str, str]] = STYLE_TARGETS | FRAME_SIZE_TARGETS


def target_for_word(word: str) -> StyleTarget:
    """A style word ("thick") or a frame-size word ("small": the digit smaller in its frame) -> its target."""
    attribute, amount = WORDS[word.lower()]
    return StyleTarget.parse(attribute, amount)


def targets_from_config(spec: Any) -> list[StyleTarget]:
    """``{thickness: '+50%', slant: '+10'}`` (a mapping) -> targets, in order."""
    if spec is None:
        return []
    if not hasattr(spec, "items"):
        raise StyleError(
            f"style must be a mapping of attribute to amount, e.g. {{thickness: '+50%'}}, got {spec!r}"
        )
    return [StyleTarget.parse(str(k), v) for k, v in spec.items()]


def measure_attribute(images: torch.Tensor, attribute: str) -> torch.Tensor:
    return formulas.measure(images)[attribute]
