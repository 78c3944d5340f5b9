"""The style attributes' formulas on synthetic strokes of known thickness, slant and size (issue 11)."""

from __future__ import annotations

import math

import pytest
import torch

from artdirector.editing.attributes import measure, summary


def stroke(
    width: int, height: int = 20, shear: float = 0.0, frame: int = 28, value: float = 1.0
) -> torch.Tensor:
    """A bar ``width`` px wide and ``height`` tall, its rows shifted by ``shear`` px per row up (italic)."""
    x = torch.full((1, 1, frame, frame), -1.0)
    y0 = (frame - height) // 2
    for y in range(y0, y0 + height):
        c = frame / 2 + shear * ((y0 + height / 2) - y)
        x0 = round(c - width / 2)
        x[0, 0, y, x0 : x0 + width] = value
    return x


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8])
def test_thickness_of_an_upright_bar_is_its_width(width):
    m = measure(stroke(width))
    assert float(m["thickness"]) == pytest.approx(width, abs=1e-5)
    assert float(m["slant"]) == pytest.approx(0.0, abs=1e-4)
    assert float(m["height"]) == pytest.approx(20 / 28) and float(m["width"]) == pytest.approx(width / 28)


@pytest.mark.parametrize("shear", [-0.5, -0.25, 0.25, 0.5])
def test_slant_reads_the_shear_angle(shear):
    got = float(measure(stroke(3, shear=shear))["slant"])
    assert got == pytest.approx(math.degrees(math.atan(shear)), abs=1.0)  # within a degree of rasterisation
    assert (got > 0) == (shear > 0)  # leaning right (italic) is positive


def test_thicker_strokes_read_thicker_and_batches_are_per_image():
    x = torch.cat([stroke(2), stroke(4), stroke(6, height=10), stroke(3, value=0.2)])
    m = measure(x)
    assert m["thickness"][0] < m["thickness"][1] < m["thickness"][2]
    assert float(m["size"][2]) == pytest.approx(10 / 28)
    assert float(m["brightness"][0]) == pytest.approx(1.0) and float(m["brightness"][3]) == pytest.approx(0.6)
    assert m["contrast"][1] > m["contrast"][0]
    s = summary(m)
    assert set(s["thickness"]) == {"mean", "sd"}
    blank = measure(torch.full((1, 1, 28, 28), -1.0))
    assert float(blank["thickness"]) == 0 and float(blank["size"]) == 0
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        measure(torch.zeros(28, 28))
