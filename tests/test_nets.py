"""The seed networks: shapes, ranges, layer sizes, and loud errors on wrong input."""

from __future__ import annotations

import pytest
import torch

from artdirector.models.nets import Discriminator, Generator, LeNet


def test_generator_shape_and_range() -> None:
    g = Generator().eval()
    x = g(torch.randn(5, 100) * 10)  # large z: tanh must still bound the output
    assert x.shape == (5, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1


def test_generator_matches_the_seed_layers() -> None:
    g = Generator()
    linear = g.project[0]
    assert (linear.in_features, linear.out_features, linear.bias) == (100, 7 * 7 * 256, None)
    convs = [m for m in g.upsample if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (128, (5, 5), (1, 1)),
        (64, (5, 5), (2, 2)),
        (1, (5, 5), (2, 2)),
    ]
    assert convs[-1].bias is None
    # intermediate sizes: 7x7 -> 7x7 -> 14x14 -> 28x28
    h = g.project(torch.randn(2, 100)).view(2, 256, 7, 7)
    sizes = []
    for m in g.upsample:
        h = m(h)
        if isinstance(m, torch.nn.ConvTranspose2d):
            sizes.append(tuple(h.shape[1:]))
    assert sizes == [(128, 7, 7), (64, 14, 14), (1, 28, 28)]


def test_discriminator_gives_one_logit_per_image() -> None:
    d = Discriminator()
    assert d(torch.rand(3, 1, 28, 28) * 2 - 1).shape == (3,)
    assert d.head.in_features == 128 * 7 * 7
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.3 for m in d.features) == 2


def test_lenet_features_and_logits() -> None:
    net = LeNet()
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert net.features(x).shape == (4, 128)
    assert net(x).shape == (4, 10)


@pytest.mark.parametrize("bad", [torch.randn(2, 99), torch.randn(2, 100, 1)])
def test_generator_rejects_wrong_latent(bad) -> None:
    with pytest.raises(ValueError, match=r"latent|shape"):
        Generator()(bad)


@pytest.mark.parametrize("bad", [torch.randn(2, 1, 32, 32), torch.randn(2, 3, 28, 28), torch.randn(28, 28)])
def test_discriminator_and_lenet_reject_wrong_images(bad) -> None:
    with pytest.raises(ValueError, match="28, 28"):
        Discriminator()(bad)
    with pytest.raises(ValueError, match="28, 28"):
        LeNet().features(bad)


def test_dcgan_init_scheme() -> None:
    g = Generator(weight_init="dcgan")
    w = g.upsample[0].weight
    assert abs(w.std().item() - 0.02) < 0.002
    with pytest.raises(ValueError, match="weight_init"):
        Generator(weight_init="he")
