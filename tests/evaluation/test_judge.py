"""The shipped judges read real images correctly, and the conformance and variety they feed mean what they say."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from artdirector.data import TorchvisionDataModule
from artdirector.data.datamodules import _to_unit_range, load_mnist5k
from artdirector.errors import InputError
from artdirector.evaluation.judge import Judge, load_judge, within_class_variety

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 bundled MNIST digits (500 per class) in [-1, 1], in a seeded random order."""
    images, labels = load_mnist5k()
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    return _to_unit_range(images)[perm], labels[perm]


def _report(dataset: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    # the repository ships the idx archives in data/: torchvision unpacks them there, offline
    dm = TorchvisionDataModule(dataset, root=str(REPO / "data"), fallback_to_bundled=False)
    return dm.real_images("report", n), dm.real_labels("report", n)


def test_the_judge_ships_in_the_package_and_is_not_the_lenet() -> None:
    judge = load_judge("mnist")
    assert load_judge("mnist") is judge  # loaded once per process
    assert judge.path.parent.name == "weights" and judge.path.name == "judge_mnist.pt"
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in judge.modules())  # the LeNet's pooling
    assert any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in judge.modules())
    # it states what it gets right on real report images of each class, for the cards to compare against
    assert len(judge.report_acc_per_class) == 10 and min(judge.report_acc_per_class) > 0.9
    assert judge.identity.startswith("judge-mnist:")


def test_the_judge_reads_bundled_digits(digits) -> None:
    # the bundled digits are MNIST training images, so this checks loading and preprocessing, not
    # generalisation (the next test does that on the report split)
    x, y = digits
    assert (load_judge("mnist").predict(x[:500]) == y[:500]).float().mean() >= 0.97


@pytest.mark.parametrize(("dataset", "least"), [("mnist", 0.97), ("fashion_mnist", 0.85)])
def test_the_judge_reads_real_report_images(dataset: str, least: float) -> None:
    x, y = _report(dataset, 500)
    assert (load_judge(dataset).predict(x) == y).float().mean() >= least


def test_super_resolved_images_are_read_as_their_28px_copy(digits) -> None:
    x = digits[0][:64]
    judge = load_judge("mnist")
    big = F.interpolate(x, scale_factor=2, mode="nearest")  # its 2x2 area mean is x again
    assert torch.equal(judge.predict(big), judge.predict(x))
    with pytest.raises(InputError):
        judge.predict(x * 3)  # not in [-1, 1]


def test_conformance_is_high_for_true_labels_and_low_for_wrong_ones(digits) -> None:
    x, y = digits[0][:1000], digits[1][:1000]
    judge = load_judge("mnist")
    right = judge.conformance_per_class(x, y)
    wrong = judge.conformance_per_class(x, (y + 1) % 10)
    assert right["min"] >= 0.9 and right["relative_min"] >= 0.9
    assert wrong["mean"] <= 0.05 and wrong["relative_mean"] <= 0.05
    assert set(wrong["per_class"]) == {str(c) for c in range(10)}
    assert sum(right["n_per_class"].values()) == 1000
    # a batch that asks for one class only is judged on that class only
    only_sevens = judge.conformance_per_class(x[y == 7], y[y == 7])
    assert list(only_sevens["per_class"]) == ["7"]


def test_variety_of_copies_is_zero_and_of_real_images_about_one(digits) -> None:
    x, y = digits
    # two disjoint draws of real digits: 250 per class each
    first = torch.cat([torch.nonzero(y == c).flatten()[:250] for c in range(10)])
    second = torch.cat([torch.nonzero(y == c).flatten()[250:] for c in range(10)])
    real = within_class_variety(x[first], y[first], x[second], y[second], n_per_class=200)
    for c, v in real["per_class"].items():
        assert 0.9 <= v["ratio"] <= 1.1, (c, v)
        assert 0 < v["se"] < 0.1 and v["n"] == 200
    # every sample of a class the same image
    copies = x[first].clone()
    for c in range(10):
        at = torch.nonzero(y[first] == c).flatten()
        copies[at] = copies[at[0]].clone()
    same = within_class_variety(copies, y[first], x[second], y[second], n_per_class=200)
    assert same["mean"] < 1e-6 and len(same["per_class"]) == 10
    # halfway to each class's mean image: every distance halves
    half = x[first].clone()
    for c in range(10):
        at = torch.nonzero(y[first] == c).flatten()
        half[at] = 0.5 * (half[at] + half[at].mean(0))
    shrunk = within_class_variety(half, y[first], x[second], y[second], n_per_class=200)
    assert 0.45 <= shrunk["min"] <= shrunk["mean"] <= 0.55
    # seeded: the same draw gives the same numbers
    assert within_class_variety(x[first], y[first], x[second], y[second])["per_class"] == real["per_class"]


def test_variety_reads_a_few_samples_and_refuses_mismatched_shapes(digits) -> None:
    x, y = digits
    few = within_class_variety(x[y == 3][:10], y[y == 3][:10], x, y, n_per_class=200)
    assert list(few["per_class"]) == ["3"] and few["per_class"]["3"]["n"] == 10
    with pytest.raises(ValueError, match="shape"):
        within_class_variety(x[:100, :, :20, :20], y[:100], x, y)


def test_an_unknown_judge_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="judge weights not found"):
        Judge(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="no judge ships"):
        load_judge("cifar10")
