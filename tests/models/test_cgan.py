"""The zoo's conditional GAN recipe (model=cgan): the hinge loss pushes the right way, samples come from the
EMA of G, the class enters G at every resolution, the recipe trains and resumes exactly."""

from __future__ import annotations

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from artdirector.models.gan import GANModule
from artdirector.models.nets import CBNGenerator, SNProjectionDiscriminator
from artdirector.models.nets.sngan import ConditionalBatchNorm2d
from helpers import TINY_CGAN, straight_and_resumed

CGAN = TINY_CGAN


def _model(make_cfg, *overrides: str) -> GANModule:
    return instantiate(make_cfg("train", [*CGAN, *overrides])["model"], _recursive_=False)


def test_hinge_loss_ignores_confident_d_and_penalises_the_margin(make_cfg) -> None:
    m = _model(make_cfg)
    # D already right beyond the margin on both sides: no loss and so no gradient for D
    assert m._d_loss(torch.tensor([1.5, 2.0]), torch.tensor([-1.0, -3.0])) == 0
    # inside the margin: each side pays its distance to it
    assert torch.isclose(m._d_loss(torch.tensor([0.5]), torch.tensor([0.0])), torch.tensor(0.5 + 1.0))
    # G gains exactly by raising D's score on its samples, without saturating
    assert m._g_loss(torch.tensor([3.0])) < m._g_loss(torch.tensor([2.0])) < m._g_loss(torch.tensor([-5.0]))


def test_samples_come_from_the_weight_average_not_the_trained_g(make_cfg) -> None:
    m = _model(make_cfg)
    z, y = torch.randn(4, m.latent_dim), torch.arange(4)
    with torch.no_grad():  # the trained G moves away from its average
        for p in m.generator.parameters():
            p.add_(0.5)
    g_out = m.generator.eval()(z, y)
    m.generator.train()
    avg_out = m.ema.module.eval()(z, y)
    assert not torch.allclose(g_out, avg_out)
    assert torch.allclose(m.sample(z=z, labels=y), avg_out)
    assert torch.allclose(m.generate(z, y), avg_out)
    # the first update copies G; the next uses the warm-up decay min(0.999, (1 + 1) / (10 + 1))
    m.ema.update_parameters(m.generator)
    before = [p.detach().clone() for p in m.ema.module.parameters()]
    with torch.no_grad():
        for p in m.generator.parameters():
            p.add_(1.0)
    m.ema.update_parameters(m.generator)
    d = 2 / 11
    for b, a, g in zip(before, m.ema.module.parameters(), m.generator.parameters(), strict=True):
        assert torch.allclose(a, d * b + (1 - d) * g, atol=1e-5)


def test_the_class_enters_every_resolution_of_g() -> None:
    g = CBNGenerator(base_channels=8).eval()
    norms = [m for m in g.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(norms) == 3  # 7x7, 14x14 and 28x28
    with torch.no_grad():
        for n in norms:
            n.gamma.weight.normal_()
    z = torch.randn(1, g.latent_dim).expand(10, -1)
    x = g(z, torch.arange(10))
    assert x.shape == (10, 1, 28, 28) and x.abs().max() <= 1
    assert (x[0] - x[1:]).abs().flatten(1).amax(1).min() > 0  # one latent, ten different images


def test_projection_discriminator_is_spectrally_normalised_and_class_aware() -> None:
    d = SNProjectionDiscriminator(base_channels=8)
    x = torch.randn(3, 1, 28, 28)
    for _ in range(20):  # the power iteration converges in train mode
        d(x, torch.zeros(3, dtype=torch.long))
    d.eval()
    with torch.no_grad():
        for conv in d.convs:  # the normalised weight as a matrix (the SNGAN reading of a conv's norm)
            assert float(torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)) == pytest.approx(
                1.0, rel=0.1
            )
    assert not torch.allclose(d(x, torch.zeros(3, dtype=torch.long)), d(x, torch.ones(3, dtype=torch.long)))


def test_bad_loss_and_decay_are_clear_errors(make_cfg) -> None:
    with pytest.raises(InstantiationException, match=r"model\.loss must be one of bce, hinge"):
        _model(make_cfg, "model.loss=wasserstein")
    with pytest.raises(InstantiationException, match=r"model.ema_decay must be in \[0, 1\)"):
        _model(make_cfg, "model.ema_decay=1.5")


def test_cgan_trains_and_resumes_exactly_with_its_average(make_cfg, tmp_path) -> None:
    base = [*CGAN, "seed=5", "callbacks.fid.every_n_epochs=5"]
    straight_ckpt, _, resumed_ckpt = straight_and_resumed(make_cfg, base, tmp_path)
    straight, resumed = (
        torch.load(c, map_location="cpu", weights_only=True)["state_dict"]
        for c in (straight_ckpt, resumed_ckpt)
    )
    assert any(k.startswith("ema.") for k in straight)  # the average is in the checkpoint
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    rebuilt = GANModule.from_checkpoint(straight_ckpt)
    assert rebuilt.ema is not None and rebuilt.num_classes == 10


def test_a_per_class_latent_scale_tempers_each_class_in_every_sampling_path(make_cfg, tmp_path) -> None:
    from artdirector.creators import sampling_creator
    from helpers import save_checkpoint

    scales = [1.0, 1.5] + [1.0] * 8
    m = _model(make_cfg, f"model.latent_scale=[{','.join(map(str, scales))}]")
    z, y = torch.randn(6, m.latent_dim), torch.tensor([0, 1, 1, 0, 2, 1])
    direct = m.ema.module.eval()(z * torch.tensor(scales)[y].unsqueeze(1), y)
    assert torch.allclose(m.sample(z=z, labels=y), direct)
    assert torch.allclose(m.generate(z, y), direct)
    # the class with scale 1 draws what an untempered model draws from the same latents
    plain = _model(make_cfg)
    plain.load_state_dict(m.state_dict())
    assert torch.allclose(plain.sample(z=z, labels=y)[y == 0], direct[y == 0])
    assert not torch.allclose(plain.sample(z=z, labels=y)[y == 1], direct[y == 1])
    # the scale travels with the checkpoint, to the Lightning-free sampler too
    nets = sampling_creator(save_checkpoint(m, tmp_path / "t.ckpt"))
    assert torch.allclose(nets.from_latents(z, y), direct, atol=1e-6)
    # and the trace says so; a model at the prior's temperature says nothing of it
    assert nets.describe()["latent_scale"] == scales
    assert "latent_scale" not in sampling_creator(save_checkpoint(plain, tmp_path / "p.ckpt")).describe()
    # hydra wraps the module's ConfigError; the CLI prints its one line
    with pytest.raises(InstantiationException, match="one per class"):
        _model(make_cfg, "model.latent_scale=[1.0,2.0]")
    with pytest.raises(InstantiationException, match="> 0"):
        _model(make_cfg, "model.latent_scale=0")
