"""The new creators: the class-conditional GAN and the diffusion models (UNet and DiT backbones).

Tiny configs on fake data: shapes and ranges, conditioning reaches the network, replay gives identical
images, guidance changes samples, step counts are honoured, training runs and resumes exactly, checkpoints
rebuild from the file alone, and a zoo export loads back to the same sampler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from artdirector.models.checkpoint import load_module, read_checkpoint
from artdirector.models.diffusion import DiffusionModule
from artdirector.models.gan import GANModule
from artdirector.train import train
from helpers import TINY, TINY_DIT, TINY_MODEL, TINY_UNET, build_model, save_checkpoint, straight_and_resumed

REPO = Path(__file__).resolve().parents[2]

TINY_DIFFUSION_RUN = [
    "data=fake",
    "data.n_train=64",
    "data.n_report=64",
    "data.batch_size=16",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.log_every_n_steps=1",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "callbacks.fid.every_n_epochs=1",
    "callbacks.fid.n_samples=32",
    "callbacks.fixed_noise_grid.every_n_epochs=1",
    "evaluator.kid_subsets=10",
    "model.steps=2",
    "model.warmup_steps=2",
]


# ---- the conditional GAN ----------------------------------------------------------------------------
def test_cdcgan_labels_reach_both_networks(make_cfg) -> None:
    torch.manual_seed(0)
    model = build_model(make_cfg, ["model=cdcgan", *TINY_MODEL[-2:]])
    assert isinstance(model, GANModule) and model.num_classes == 10
    z = torch.randn(4, model.latent_dim)
    a = model.sample(z=z, labels=torch.tensor([0, 1, 2, 3]))
    b = model.sample(z=z, labels=torch.tensor([4, 5, 6, 7]))
    assert a.shape == (4, 1, 28, 28) and a.abs().max() <= 1
    assert not torch.allclose(a, b)  # same z, other classes: other images
    assert torch.equal(a, model.sample(z=z, labels=torch.tensor([0, 1, 2, 3])))  # replay
    d_a = model.discriminate(a, torch.tensor([0, 1, 2, 3]))
    d_b = model.discriminate(a, torch.tensor([9, 9, 9, 9]))
    assert d_a.shape == (4,) and not torch.allclose(d_a, d_b)  # the projection sees the label
    # no labels: the classes in turn
    assert torch.equal(model.default_labels(12), torch.arange(12) % 10)


def test_cdcgan_trains_and_rebuilds_from_its_checkpoint(make_cfg, tmp_path) -> None:
    train(make_cfg("train", ["model=cdcgan", *TINY]))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    model = load_module(ckpt)
    assert isinstance(model, GANModule) and model.num_classes == 10
    assert model.sample(3, labels=torch.tensor([1, 2, 3])).shape == (3, 1, 28, 28)


def test_labels_must_match_the_gan(make_cfg) -> None:
    plain = build_model(make_cfg, ["model=dcgan", *TINY_MODEL[-2:]])
    assert plain.num_classes == 0 and plain.default_labels(3) is None
    z = torch.randn(2, plain.latent_dim)
    with pytest.raises(ValueError, match="unconditional"):
        plain.generate(z, torch.tensor([1, 2]))
    cond = build_model(make_cfg, ["model=cdcgan", *TINY_MODEL[-2:]])
    with pytest.raises(ValueError, match="needs the labels"):  # below sample(), labels are never invented
        cond.discriminate(torch.zeros(2, 1, 28, 28))


# ---- diffusion --------------------------------------------------------------------------------------
@pytest.fixture(params=["unet", "dit"])
def diffusion(request, make_cfg) -> DiffusionModule:
    torch.manual_seed(0)
    model = build_model(make_cfg, TINY_UNET if request.param == "unet" else TINY_DIT)
    # an untrained network predicts ~0 noise everywhere; perturb its weights so that labels matter
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.ema.module.load_state_dict(model.backbone.state_dict())
    return model


def _count_calls(model: DiffusionModule) -> list[int]:
    calls = [0]
    net = model.sampling_net()
    hook = net.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls, hook


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm++"])
def test_diffusion_samples_replay_and_honour_steps(diffusion, sampler) -> None:
    labels = torch.tensor([0, 3, 7])
    calls, hook = _count_calls(diffusion)
    a = diffusion.sample(labels=labels, seed=5, sampler=sampler, steps=3, guidance=1.0)
    hook.remove()
    assert a.shape == (3, 1, 28, 28) and a.min() >= -1 and a.max() <= 1 and torch.isfinite(a).all()
    assert calls[0] == 3  # one network call per step without guidance
    assert torch.equal(a, diffusion.sample(labels=labels, seed=5, sampler=sampler, steps=3, guidance=1.0))
    assert not torch.equal(a, diffusion.sample(labels=labels, seed=6, sampler=sampler, steps=3, guidance=1.0))


def test_guidance_is_the_cfg_formula_in_one_doubled_batch(diffusion) -> None:
    seen = []

    def stub(x, t, y, net=None):  # eps that depends on the label: 0.1 * label
        seen.append((x.shape[0], y.clone()))
        return (0.1 * y.float()).view(-1, 1, 1, 1).expand_as(x).clone()

    diffusion.eps = stub
    x, t = torch.randn(3, 1, 28, 28), torch.full((3,), 500)
    y = torch.tensor([2, 7, diffusion.null_label])
    e = diffusion.guided_eps(x, t, y, guidance=3.0)
    assert seen[-1][0] == 6 and torch.equal(seen[-1][1], torch.tensor([2, 7, 10, 10, 10, 10]))
    e_u = 0.1 * diffusion.null_label
    expected = torch.tensor([e_u + 3.0 * (0.2 - e_u), e_u + 3.0 * (0.7 - e_u), e_u])  # null rows: e_u
    assert torch.allclose(e[:, 0, 0, 0], expected)
    assert diffusion.guided_eps(x, t, y, guidance=1.0).shape == x.shape and seen[-1][0] == 3  # one plain pass


def test_guidance_changes_samples_and_labels_reach_the_network(diffusion) -> None:
    labels = torch.tensor([1, 2])
    calls, hook = _count_calls(diffusion)
    guided = diffusion.sample(labels=labels, seed=0, steps=4, guidance=3.0)
    hook.remove()
    assert calls[0] == 4  # conditional and unconditional in one batched call per step
    plain = diffusion.sample(labels=labels, seed=0, steps=4, guidance=1.0)
    assert not torch.allclose(guided, plain)
    other = diffusion.sample(labels=torch.tensor([8, 9]), seed=0, steps=4, guidance=1.0)
    assert not torch.allclose(plain, other)


def test_every_sampler_starts_from_pure_noise(diffusion) -> None:
    from artdirector.models.diffusion import make_scheduler

    for sampler in ("ddpm", "ddim", "dpm++"):
        for steps in (10, 25):
            sched = make_scheduler(sampler, diffusion.train_scheduler.config)
            sched.set_timesteps(steps)
            # where the signal left is negligible: t = T - 1, or (DPM-Solver++, lambda clipped at -5.1 for
            # the cosine schedule) where sqrt(alpha_bar) < 0.01 of the image remains
            t0 = int(sched.timesteps[0])
            alpha_bar = float(diffusion.train_scheduler.alphas_cumprod[t0])
            assert (t0 == 999 or alpha_bar**0.5 < 0.01) and len(sched.timesteps) == steps, (
                sampler,
                steps,
                t0,
            )


def test_training_step_drops_labels_to_the_null_class(make_cfg, monkeypatch) -> None:
    model = build_model(make_cfg, [*TINY_UNET, "model.p_uncond=0.5"])
    seen = []
    real_eps = model.eps
    monkeypatch.setattr(
        model, "eps", lambda x, t, y, net=None: (seen.append(y.clone()), real_eps(x, t, y, net))[1]
    )
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    torch.manual_seed(0)
    x, y = torch.rand(200, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (200,))
    loss = model.training_step((x, y), 0)
    loss.backward()
    dropped = (seen[0] == model.null_label).float().mean()
    assert 0.35 < dropped < 0.65 and torch.isfinite(loss)
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)


@pytest.mark.parametrize("tiny", [TINY_UNET, TINY_DIT], ids=["ddpm", "dit"])
def test_diffusion_trains_resumes_exactly_and_rebuilds(make_cfg, tmp_path, tiny) -> None:
    base = [*tiny, *TINY_DIFFUSION_RUN, "seed=3"]
    straight_ckpt, _, resumed_ckpt = straight_and_resumed(make_cfg, base, tmp_path)
    straight = read_checkpoint(straight_ckpt)["state_dict"]
    resumed = read_checkpoint(resumed_ckpt)["state_dict"]
    assert any(k.startswith("ema.") for k in straight)
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k
    assert (tmp_path / "straight" / "grids" / "last.png").is_file()
    model = load_module(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    assert isinstance(model, DiffusionModule)
    assert model.sample(labels=torch.tensor([4]), steps=2).shape == (1, 1, 28, 28)


def test_zoo_export_is_fp16_ema_and_samples_like_the_ema(make_cfg, tmp_path) -> None:
    train(make_cfg("train", [*TINY_UNET, *TINY_DIFFUSION_RUN]))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    out = tmp_path / "zoo"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "export_zoo.py"),
            str(ckpt),
            "--name",
            "tiny",
            "--out",
            str(out),
        ],
        check=True,
    )
    shipped = read_checkpoint(out / "tiny.ckpt")
    assert all(v.dtype == torch.float16 for v in shipped["state_dict"].values() if v.is_floating_point())
    assert not any(k.startswith("ema.") for k in shipped["state_dict"])
    full, slim = load_module(ckpt), load_module(out / "tiny.ckpt")
    assert slim.ema is None  # shipped: the EMA weights are the backbone
    ema = full.ema.module.state_dict()
    for k, v in slim.backbone.state_dict().items():
        assert torch.equal(v, ema[k].half().float()), k  # exactly the EMA weights, rounded to fp16
    assert not all(torch.equal(v, full.backbone.state_dict()[k].half().float()) for k, v in ema.items())


@pytest.mark.parametrize("model", ["cdcgan", "ddpm", "dit"])
def test_debug_fdr_runs_for_every_creator(model, tmp_path) -> None:
    tiny = {"cdcgan": [f"model={model}", *TINY_MODEL[-2:]], "ddpm": TINY_UNET, "dit": TINY_DIT}[model]
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "train.py"),
            *tiny,
            "data=fake",
            "trainer=cpu",
            "debug=fdr",
            "callbacks.fid.n_samples=32",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]


# ---- the Creator protocol ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dcgan", "cdcgan", "ddpm", "dit"])
def test_every_creator_speaks_the_protocol(make_cfg, tmp_path, name) -> None:
    from artdirector.creators import CAPABILITIES, load_creator

    tiny = {"dcgan": ["model=dcgan"], "cdcgan": ["model=cdcgan"], "ddpm": TINY_UNET, "dit": TINY_DIT}[name]
    extra = [*TINY_MODEL[-2:]] if "gan" in name else ["model.steps=2"]
    torch.manual_seed(0)
    creator = load_creator(save_checkpoint(build_model(make_cfg, [*tiny, *extra]), tmp_path / f"{name}.ckpt"))
    assert creator.capabilities <= CAPABILITIES and creator.kind in {"gan", "diffusion"}
    conditional = name != "dcgan"
    assert creator.accepts == ({"nothing", "class"} if conditional else {"nothing"})
    drawn = creator.sample(4, seed=3)
    assert drawn.images.shape == (4, 1, 28, 28) and drawn.images.abs().max() <= 1
    if "latent" in creator.capabilities:  # replay from the state it returned
        again = creator.model.sample(z=drawn.latents, labels=drawn.labels).cpu()
    else:
        again = creator.sample(4, condition=drawn.labels, seed=drawn.seed, **drawn.options).images
    assert torch.equal(drawn.images, again)
    if conditional:
        assert torch.equal(drawn.labels, torch.arange(4) % 10)
        sevens = creator.sample(2, condition=torch.tensor(7), seed=3)
        assert torch.equal(sevens.labels, torch.tensor([7, 7]))
        with pytest.raises(ValueError, match="class labels"):
            creator.sample(2, condition=torch.tensor([3, 12]))
    else:
        with pytest.raises(ValueError, match="unconditional"):
            creator.sample(2, condition=torch.tensor(3))


def test_policies_never_offer_an_action_the_creator_cannot_do() -> None:
    from artdirector.agents.memory import Memory
    from artdirector.agents.policies import BanditPolicy, State, ThresholdPolicy, _usable
    from artdirector.agents.refiners import REFINERS
    from artdirector.agents.types import Stop
    from artdirector.creators import DiffusionCreator, GANCreator

    everything = ["drs", "langevin", "dot", "truncation", "finetune", "guidance", "steps"]
    gan = ["drs", "langevin", "dot", "truncation", "finetune"]
    cases = {
        (GANCreator.capabilities, True): gan,
        (GANCreator.capabilities, False): ["finetune"],  # latent actions need the samples' latents
        # DRS & co need a critic and latents; guidance and steps are diffusion's; both kinds train further
        (DiffusionCreator.capabilities, False): ["finetune", "guidance", "steps"],
        (frozenset(), False): [],
    }
    for (caps, latents), expected in cases.items():
        state = State("refine", 100.0, 0.0, 0, latents, caps)
        assert _usable(everything, state) == expected
        for policy in (ThresholdPolicy(actions=everything), BanditPolicy(actions=everything)):
            decision = policy.decide(state, Memory())
            if expected:
                assert not isinstance(decision, Stop) and decision.name == expected[0]
                assert REFINERS[decision.name].requires <= set(caps)
            else:
                assert isinstance(decision, Stop)


def test_the_regret_table_refuses_cards_measured_at_different_n(tmp_path) -> None:
    """FID is biased upward at small n: a 2,000-sample card against a 10,000-sample one is not a comparison."""
    import json

    for name, n in (("a", 10_000), ("b", 2_000)):
        card = {"n": n, "selection": {"n": 1000}, "conditional": True, "metrics": {"fid": 1.0}}
        (tmp_path / f"{name}.card.json").write_text(json.dumps(card))
    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_creators.py"
    res = subprocess.run(
        [sys.executable, str(script), "a.ckpt", "b.ckpt", "--regret-only", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 2 and "report n differ (a 10000, b 2000)" in res.stderr
