"""The seed networks: shapes, ranges, layer sizes, and loud errors on wrong input."""

from __future__ import annotations

import pytest
import torch

from artdirector.models.nets import Discriminator, Generator, LeNet
from artdirector.models.nets.dcgan import SubPixelConvTranspose2d, UniformMaskDropout


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


# ---- the faster routes compute the seed's layers ------------------------------------------------------
def _as_reference(layer: torch.nn.Module) -> torch.nn.Module:
    """The plain PyTorch layer that ``layer`` stands in for, with the same parameters."""
    if isinstance(layer, SubPixelConvTranspose2d):
        ref = torch.nn.ConvTranspose2d(
            layer.in_channels, layer.out_channels, 5, 2, 2, 1, bias=layer.bias is not None
        )
        ref.load_state_dict(layer.state_dict())
        return ref
    return layer


@pytest.mark.parametrize(("cin", "cout", "bias"), [(64, 1, False), (8, 3, True), (128, 64, False)])
def test_subpixel_transposed_conv_equals_conv_transpose2d(cin, cout, bias) -> None:
    torch.manual_seed(0)
    fast = SubPixelConvTranspose2d(cin, cout, bias=bias)
    ref = _as_reference(fast)
    x = torch.randn(4, cin, 7, 7, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y, y_ref = fast(x), ref(x_ref)
    assert y.shape == y_ref.shape == (4, cout, 14, 14) and y.is_contiguous()
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
    upstream = torch.randn_like(y)
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    if bias:
        torch.testing.assert_close(fast.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)


def test_uniform_mask_dropout_is_inverted_dropout() -> None:
    drop = UniformMaskDropout(0.3)
    x = torch.ones(200_000, requires_grad=True)
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005  # keep probability 1 - p
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.7))  # inverted scaling
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.7)  # gradient through the same mask
    assert torch.equal(drop.eval()(x), x)  # identity in eval mode
    assert torch.equal(UniformMaskDropout(1.0).train()(x), torch.zeros_like(x))


def test_fast_networks_keep_the_seed_parameters_and_outputs() -> None:
    """Parameter counts are the seed's (Keras summary: G 2,330,944 incl. BN, D 212,865), the state dict
    loads into plain layers, and in eval mode the outputs match the plain-layer networks."""
    torch.manual_seed(0)
    g, d = Generator().eval(), Discriminator().eval()
    assert sum(p.numel() for p in g.parameters()) == 2_330_944 - 2 * (12544 + 128 + 64)  # BN means/vars
    assert sum(p.numel() for p in d.parameters()) == 212_865
    g_ref = Generator().eval()
    g_ref.upsample[-2] = _as_reference(g.upsample[-2])
    g_ref.load_state_dict(g.state_dict())
    z = torch.randn(8, 100)
    torch.testing.assert_close(g(z), g_ref(z), rtol=1e-4, atol=1e-5)
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    d_ref = Discriminator().eval()
    d_ref.load_state_dict(d.state_dict())
    d_ref.features.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(d(x), d_ref.head(d_ref.features(x)).squeeze(1), rtol=1e-4, atol=1e-5)
