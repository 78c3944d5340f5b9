"""The training callbacks ask a creator's module for its samples through ``TrainingSamples``: a GAN's are the
same for the same seed and leave the training RNG where it was; a module that draws none is refused in one
line that says which callback to drop."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from artdirector.callbacks import FIDCallback, FixedNoiseGrid
from artdirector.errors import InputError
from artdirector.models.base import TrainingSamples
from helpers import TINY, build_model


def test_a_gans_training_samples_repeat_and_leave_the_rng_alone(make_cfg) -> None:
    gan = build_model(make_cfg, TINY)
    assert isinstance(gan, TrainingSamples)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = gan.eval_samples(8, seed=5)
    assert torch.equal(torch.rand(3), expected_next)  # the process's stream did not move
    b, c = gan.eval_samples(8, seed=5), gan.eval_samples(8, seed=6)
    assert a.shape == (8, 1, 28, 28) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(gan.fixed_samples(), gan.sample(z=gan.fixed_noise))


@pytest.mark.parametrize(
    ("callback", "drop"),
    [(FixedNoiseGrid(), "~callbacks.fixed_noise_grid"), (FIDCallback.__new__(FIDCallback), "~callbacks.fid")],
)
def test_a_module_that_draws_nothing_is_refused_in_one_line(callback, drop) -> None:
    class Judge(L.LightningModule):  # a classifier: trains, draws nothing
        pass

    judge = Judge()
    assert not isinstance(judge, TrainingSamples)
    with pytest.raises(InputError, match=f"Judge draws none: drop it with {drop}") as e:
        callback.on_fit_start(None, judge)
    assert "\n" not in str(e.value)
