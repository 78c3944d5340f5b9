"""The verifier's second stage: crops framed as their dataset frames them, named by the shipped LeNets."""

from __future__ import annotations

import torch

from artdirector.data.datamodules import load_mnist5k
from artdirector.evaluation.scene_verifier import TwoStageDetector, normalise
from artdirector.scenes.canvas import blank, ink_box, paste


def _digits(n: int = 40, seed: int = 0):
    images, labels = load_mnist5k()
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    return images[idx].float().div(127.5).sub(1)[:, None], labels[idx]


def test_normalise_frames_a_digit_like_mnist():
    digits, _ = _digits(1)
    canvas = blank(128, 128)
    cell = (40.0, 30.0, 88.0, 78.0)  # a 48 px cell: the digit drawn large
    paste(canvas, digits[0], cell)
    crop = normalise(canvas, ink_box(digits[0], cell), "mnist")
    assert crop.shape == (1, 28, 28)
    ink = (crop[0] > 0).nonzero()
    extent = max(int(ink[:, 0].max() - ink[:, 0].min()), int(ink[:, 1].max() - ink[:, 1].min())) + 1
    assert 18 <= extent <= 21  # the longer side scaled to 20 px, as MNIST's were
    assert (
        normalise(blank(64, 64), (5.0, 5.0, 20.0, 20.0), "mnist").max() == -1
    )  # nothing there: a blank frame


def test_the_second_stage_names_digits_in_a_scene_at_any_size():
    digits, labels = _digits(40)
    stage2 = TwoStageDetector(detector=None)
    right = 0
    for k in range(0, 40, 4):  # ten scenes of four digits in a row, cells of 18 to 36 px
        canvas, boxes, x = blank(128, 128), [], 4.0
        for j, size in enumerate((18, 24, 30, 36)):
            cell = (x, 40.0, x + size, 40.0 + size)
            x += size + 4
            paste(canvas, digits[k + j], cell)
            boxes.append(ink_box(digits[k + j], cell))
        wrong = torch.full((4,), 0)  # stage 1 said "a digit" (class 0): stage 2 names it
        named = stage2.relabel(canvas, torch.tensor(boxes), wrong)
        right += int((named == labels[k : k + 4]).sum())
    assert right >= 36  # >= 90 % of 40 digits named right from their crops
