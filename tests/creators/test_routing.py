"""Requests with classes, routing among creators by their evidence, and the agents on any creator.

The agents speak to a conditional GAN and a diffusion model through the Creator protocol: class labels are
carried through every refinement, diffusion gets its own actions (guidance, steps), a class request never
reaches an unconditional creator, and the trace names the creator and every candidate considered."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from artdirector.agents import Action, Director, EvaluationAgent, GenerationAgent, RefinementAgent, interpret
from artdirector.agents.policies import ThresholdPolicy
from artdirector.agents.types import RequestError, requested_classes
from artdirector.creators.routing import Evidence, route
from artdirector.errors import ConfigError
from helpers import TINY_UNET, save_checkpoint

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "src" / "artdirector" / "agents" / "trace_schema.json").read_text())


# ---- requests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, classes",
    [
        ("generate new art", None),
        ("draw a 7", (7,)),
        ("make three sevens", (7,)),  # "three" counts; "sevens" is the class
        ("sevens please", (7,)),
        ("some 5s and 8s", (5, 8)),
        ("a 3 next to a 7", (3, 7)),
        ("one more please", None),  # "one" as a pronoun
        ("draw the digit one", (1,)),
        ("refine these 4s", (4,)),
        ("generate new threes", (3,)),
    ],
)
def test_requests_name_their_classes(text, classes) -> None:
    assert requested_classes(text) == classes


def test_a_class_request_says_what_it_needs() -> None:
    r = interpret("draw sevens", has_input=False)  # a batch of a class ("draw a 7" is a one-object scene)
    assert (
        r.task == "create"
        and r.classes == (7,)
        and r.needs == {"class"}
        and "class-conditional" in r.understood
    )
    assert interpret("generate new art", False).needs == frozenset()


# ---- routing ----------------------------------------------------------------------------------------
def _ev(name, accepts=("nothing",), fid=None, spi=None, conf=None, n=1000, split="selection", per_class=None):
    m = []
    if fid is not None:
        c = None if conf is None else {"overall": conf, **(per_class or {})}
        m.append({"n": n, "features": "lenet:1", "split": split, "fid": fid, "fid_se": 1.0, "conformance": c})
    return Evidence(name, f"{name}.ckpt", sorted(accepts), spi, "cpu", m)


def test_route_filters_by_need_then_ranks_by_quality() -> None:
    gan = _ev("gan", fid=10.0, spi=1e-4)
    cgan = _ev("cgan", ("nothing", "class"), fid=30.0, spi=1e-4, conf=0.99)
    diff = _ev("ddpm", ("nothing", "class"), fid=20.0, spi=1e-1, conf=0.999)
    r = route([gan, cgan, diff])
    assert r.chosen == 0 and "lowest FID" in r.why and "selection split" in r.why
    r = route([gan, cgan, diff], needs=frozenset({"class"}), classes=(7,))
    assert r.chosen == 2 and r.table[0]["excluded_by"] == "does not accept class"
    # a time budget per image rules the slow one out
    r = route([gan, cgan, diff], needs=frozenset({"class"}), classes=(7,), max_seconds_per_image=1e-2)
    assert r.chosen == 1 and "s/image" in r.table[2]["excluded_by"]
    # fastest above a quality bar
    r = route([gan, cgan, diff], objective="fastest", quality_bar=25.0)
    assert r.chosen == 0 and "FID 30.00 > bar 25" in r.table[1]["excluded_by"]
    with pytest.raises(ConfigError, match="quality bar"):
        route([gan], objective="fastest")
    with pytest.raises(ConfigError, match="selection must be"):
        route([gan], objective="prettiest")


def test_route_uses_conformance_on_the_requested_classes() -> None:
    a = _ev("a", ("nothing", "class"), fid=10.0, conf=0.95, per_class={"7": 0.5, "3": 0.99})
    b = _ev("b", ("nothing", "class"), fid=20.0, conf=0.95, per_class={"7": 0.99, "3": 0.99})
    r = route([a, b], frozenset({"class"}), (7,), min_conformance=0.9)
    assert r.chosen == 1 and "conformance 0.500 < 0.9" in r.table[0]["excluded_by"] and "0.990" in r.why
    assert route([a, b], frozenset({"class"}), (3,), min_conformance=0.9).chosen == 0
    # nobody meets the bar: the best able one, and the reason says so
    r = route([a], frozenset({"class"}), (7,), min_conformance=0.9)
    assert r.chosen == 0 and "no candidate met every constraint" in r.why


def test_route_compares_fids_only_at_one_n_features_and_split() -> None:
    a = _ev("a", fid=5.0, n=64)  # a small-n FID is not comparable with the others' n=1000
    b = _ev("b", fid=40.0)
    c = _ev("c", fid=30.0)
    r = route([a, b, c])
    assert r.key == (1000, "lenet:1", "selection") and r.chosen == 2 and r.table[0]["fid"] is None
    # uncatalogued candidates come last; with no evidence at all, the first able one
    assert route([_ev("x"), _ev("y", fid=3.0)]).chosen == 1
    r = route([_ev("x"), _ev("y")])
    assert r.chosen == 0 and "no candidate has measured evidence" in r.why


def _collapsed_and_varied():
    """Two class-conditional creators: one collapsed (recall 0, every class 0.1 as varied as real) with the
    better FID, one varied."""
    collapsed = _ev("collapsed", ("nothing", "class"), fid=5.0, conf=0.99, per_class={"7": 0.99})
    collapsed.recall, collapsed.variety = 0.0, {str(c): 0.1 for c in range(10)}
    varied = _ev("varied", ("nothing", "class"), fid=20.0, conf=0.99, per_class={"7": 0.99})
    varied.recall, varied.variety = 0.75, {str(c): 0.9 for c in range(10)}
    return collapsed, varied


@pytest.mark.parametrize("needs, classes", [(frozenset(), None), (frozenset({"class"}), (7,))])
def test_a_collapsed_creator_loses_to_a_varied_one_despite_its_better_fid(needs, classes) -> None:
    collapsed, varied = _collapsed_and_varied()
    assert route([collapsed, varied], needs, classes).chosen == 0  # FID alone picks the collapsed one
    r = route([collapsed, varied], needs, classes, min_recall=0.5, min_variety=0.5)
    assert r.chosen == 1 and "variety met" in r.why
    row, other = r.table
    assert row["eligible"] is False and row["excluded_by"].startswith(
        "collapsed: recall at equal n 0.000 < 0.5"
    )
    assert row["variety_check"].startswith("excluded") and "0.100 < 0.5" in row["variety_check"]
    assert (row["recall"], row["variety"]) == (0.0, 0.1)
    assert other["rank"] == 1 and other["variety_check"].startswith("met") and other["variety"] == 0.9
    # either constraint alone excludes it
    assert route([collapsed, varied], needs, classes, min_recall=0.5).chosen == 1
    assert route([collapsed, varied], needs, classes, min_variety=0.5).chosen == 1
    # a collapsed creator alone still serves, and the reason says no candidate met the constraint
    r = route([collapsed], needs, classes, min_recall=0.5, min_variety=0.5)
    assert r.chosen == 0 and "no candidate met every constraint" in r.why


def test_variety_is_read_on_the_requested_classes() -> None:
    _, varied = _collapsed_and_varied()
    varied.variety = {**varied.variety, "7": 0.2}  # collapsed on its 7s only
    other = _ev("other", ("nothing", "class"), fid=30.0, conf=0.99, per_class={"7": 0.99, "3": 0.99})
    other.variety = {str(c): 0.8 for c in range(10)}
    assert route([varied, other], frozenset({"class"}), (7,), min_variety=0.5).chosen == 1
    assert route([varied, other], frozenset({"class"}), (3,), min_variety=0.5).chosen == 0
    assert route([varied, other], min_variety=0.5).chosen == 1  # no class asked: the worst class counts


def test_a_card_without_variety_evidence_is_kept_and_said_unchecked() -> None:
    collapsed, varied = _collapsed_and_varied()
    unknown = _ev("unknown", ("nothing", "class"), fid=10.0, conf=0.99)
    r = route([collapsed, varied, unknown], min_recall=0.5, min_variety=0.5)
    assert r.chosen == 2 and r.table[2]["eligible"]
    assert r.table[2]["variety_check"].startswith("unchecked, kept eligible")
    assert "recall at equal n: not on its card" in r.table[2]["variety_check"]
    assert r.table[1]["rank"] == 2 and not r.table[0]["eligible"]
    assert route([varied], min_recall=0.0).table[0]["variety_check"] == "not asked"


def test_read_evidence_takes_recall_at_equal_n_and_variety_from_the_card(tmp_path) -> None:
    from artdirector.creators.routing import read_evidence

    def creator(card):
        return SimpleNamespace(name="c", path=tmp_path / "c.ckpt", accepts=frozenset({"class"}), card=card)

    card = {
        "n": 1000,
        "reference": {"dataset": "mnist", "n": 10000},
        "metrics": {"fid": 9.0, "recall": 0.9},  # at unequal n: not the recall the constraint reads
        "recall_equal_n": {"recall": 0.4, "n": 10000},
        "variety": {"min": 0.3, "per_class": {"0": {"ratio": 0.3}, "1": {"ratio": 0.95}}},
    }
    ev = read_evidence(creator(card))
    assert ev.recall == 0.4 and ev.variety == {"0": 0.3, "1": 0.95} and ev.variety_on((1,)) == 0.95
    del card["recall_equal_n"]
    assert read_evidence(creator(card)).recall is None  # the report recall was at n=1,000 vs 10,000 real
    card["n"] = 10000
    assert read_evidence(creator(card)).recall == 0.9
    assert read_evidence(creator({})).recall is None and read_evidence(creator({})).variety is None


def test_the_scene_path_orders_creators_by_the_same_rule(creators, tmp_path) -> None:
    """Two class-conditional MNIST creators: the scene director's first is the one routing would choose."""
    import shutil

    from artdirector.creators.routing import scene_creators

    def card(name, fid, recall, ratio):
        shutil.copy(creators.cgan, tmp_path / f"{name}.ckpt")
        block = {"n": 1000, "features": "lenet:1", "split": "selection", "metrics": {"fid": fid}}
        (tmp_path / f"{name}.card.json").write_text(
            json.dumps(
                {
                    "reference": {"dataset": "mnist"},
                    "selection": block,
                    "recall_equal_n": {"recall": recall},
                    "variety": {"per_class": {str(c): {"ratio": ratio} for c in range(10)}},
                }
            )
        )
        return str(tmp_path / f"{name}.ckpt")

    ckpts = [card("varied", 20.0, 0.75, 0.9), card("collapsed", 5.0, 0.0, 0.1)]
    names = lambda out: [c.name for c in out["mnist"]]  # noqa: E731
    assert names(scene_creators(ckpts, "cpu")) == ["collapsed", "varied"]  # the lower FID first
    assert names(scene_creators(ckpts, "cpu", min_recall=0.5, min_variety=0.5)) == ["varied"]
    # the unconditional GAN cannot draw a class: no scene creator
    assert scene_creators([str(creators.gan)], "cpu") == {}


# ---- the agents on a class-conditional GAN and on a diffusion model ------------------------------------
@pytest.fixture(scope="module")
def creators(tmp_path_factory):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    from artdirector.runtime import CONFIG_DIR

    out = tmp_path_factory.mktemp("creators")

    def make(overrides, name):
        GlobalHydra.instance().clear()
        with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
            cfg = compose("train", overrides=[*overrides, "trainer=cpu"])
        torch.manual_seed(0)
        return save_checkpoint(instantiate(cfg.model, _recursive_=False), out / f"{name}.ckpt")

    cgan = make(
        ["model=cdcgan", "model.generator.base_channels=16", "model.discriminator.base_channels=16"], "cgan"
    )
    ddpm = make([*TINY_UNET, "model.steps=2", "model.guidance=1.0"], "ddpm")
    gan = make(
        ["model=dcgan", "model.generator.base_channels=16", "model.discriminator.base_channels=16"], "gan"
    )
    return SimpleNamespace(cgan=cgan, ddpm=ddpm, gan=gan, dir=out)


def _agents(gen, data, out):
    from artdirector.evaluation import Evaluator, LeNetFeatures

    ev = Evaluator(LeNetFeatures("mnist"), name="lenet", kid_subsets=5, kid_subset_size=20, n_bootstrap=10)
    report = ev.copy_for(data, "report", 100)
    ev.set_reference_from(data, "selection", 100)
    x, y = [], []
    for xb, yb in data.val_dataloader():
        x.append(xb)
        y.append(yb)
    ref = RefinementAgent(
        gen,
        real_images=torch.cat(x)[:100],
        real_labels=torch.cat(y)[:100],
        datamodule=data,
        output_dir=out,
        defaults={
            "drs": {"burn_in": 64, "max_candidates": 400},
            "langevin": {"steps": 2},
            "dot": {"steps": 2},
            "finetune": {"steps": 2},
        },
    )
    return EvaluationAgent(ev, report), ref


def test_a_class_request_never_reaches_an_unconditional_creator(creators) -> None:
    with pytest.raises(RequestError, match="class-conditional"):
        GenerationAgent([str(creators.gan)], request=interpret("draw a 7", False))
    gen = GenerationAgent([str(creators.gan), str(creators.cgan)], request=interpret("draw a 7", False))
    assert gen.creator.name == "cgan"
    assert [c["eligible"] for c in gen.candidates] == [False, True]


def test_conditional_gan_labels_survive_every_refinement(creators, data, tmp_path) -> None:
    gen = GenerationAgent(str(creators.cgan), request=interpret("draw threes and sevens", False), seed=1)
    samples = gen.generate(interpret("draw threes and sevens", False), 40)
    assert samples.labels.tolist() == [3, 7] * 20
    ev, ref = _agents(gen, data, tmp_path)
    for action in ("drs", "langevin", "dot", "truncation"):
        out = ref.refine(samples, Action(action)).samples
        assert torch.equal(out.labels, samples.labels), action
        # the refined images are G(z, y) of the refined latents with the same labels
        assert torch.allclose(
            gen.creator.model.sample(z=out.latents, labels=out.labels), out.images, atol=1e-5
        )
    report = ev.evaluate(samples, gen.creator)
    assert 0 <= report.metrics()["conformance"] <= 1 and report.d_logits.shape == (40,)


def test_diffusion_actions_resample_the_same_seeds(creators, data, tmp_path) -> None:
    gen = GenerationAgent(str(creators.ddpm), request=interpret("draw a 2", False), seed=0)
    assert gen.capabilities == {"guidance", "steps", "trainable"}
    samples = gen.generate(interpret("draw a 2", False), 8)
    assert samples.latents is None and samples.seed is not None and samples.labels.tolist() == [2] * 8
    _, ref = _agents(gen, data, tmp_path)
    stronger = ref.refine(samples, Action("guidance", {"factor": 3.0}))
    assert stronger.paired and stronger.samples.options["guidance"] == 3.0
    assert not torch.equal(stronger.samples.images, samples.images)
    # the same seed at the old scale gives back the old images exactly: only guidance changed
    same = ref.refine(samples, Action("guidance", {"scale": 1.0}))
    assert torch.equal(same.samples.images, samples.images)
    more = ref.refine(samples, Action("steps", {"factor": 2.0})).samples
    assert more.options["steps"] == 4 and more.history[-1] == "steps(2 -> 4)"
    with pytest.raises(ValueError, match="does not have"):
        ref.refine(samples, Action("drs"))
    # variations of a diffusion creator's images are SDEdits of them (issue 11), never latent moves
    varied = gen.generate(interpret("variations", True), 4, base=samples)
    assert varied.latents is None and varied.source.shape == (4, *samples.images.shape[1:])
    assert varied.options["strength"] == gen.strength and varied.history[-1].startswith("sdedit(")


def test_the_director_on_a_diffusion_creator_offers_only_its_actions(creators, data, tmp_path) -> None:
    from jsonschema import validate

    request = interpret("generate new art", False)
    gen = GenerationAgent(str(creators.ddpm), request=request, seed=0)
    ev, ref = _agents(gen, data, tmp_path)
    policy = ThresholdPolicy(actions=["drs", "langevin", "truncation", "finetune", "guidance", "steps"])
    from artdirector.evaluation.copying import copy_check

    def copies(images, feats, grid):
        return copy_check(ev.report, data, images, feats, grid, n_train=500)

    d = Director(
        gen, ev, ref, policy, tmp_path / "run", n=32, max_steps=3, tensorboard=False, copy_check=copies
    )
    ev.selection.fid_difference = lambda *a, **k: (1.0, 0.0)  # every step "helps": the replay takes all three
    res = d.run(request)
    assert [s.action for s in res.memory.refinements] == ["finetune", "guidance", "steps"]
    assert all(s.accepted for s in res.memory.refinements) and str(gen.ckpt).endswith("finetune_01.ckpt")
    assert res.verdict["chain"] == ["finetune", "guidance", "steps"]
    trace = json.loads((tmp_path / "run" / "trace.json").read_text())
    validate(trace, SCHEMA)
    assert trace["model"]["creator"]["name"] == "ddpm" and trace["model"]["creator"]["kind"] == "diffusion"
    assert "mean_d_logit" not in trace["final"]["metrics"]  # no critic, no made-up logit
    assert (tmp_path / "run" / "final" / "labels.pt").is_file()
    # the verdict says whether the directed samples are copies of training images, and the report shows it
    c = trace["verdict"]["copy_rate"]
    assert 0 <= c["copy_rate"] <= 1 and c["n_train"] == 500 and c["n_samples"] == 32
    assert (tmp_path / "run" / "verdict" / "copies.png").is_file()
    assert "Copy rate" in (tmp_path / "run" / "report.md").read_text()


def test_the_zoo_routes_a_class_request_to_the_conditional_gan(tmp_path) -> None:
    from artdirector.creators import zoo_checkpoints

    gen = GenerationAgent(zoo_checkpoints(), request=interpret("draw a 7", False))
    assert gen.creator.accepts >= {"class"}
    assert all(c["eligible"] == ("class" in c["accepts"]) for c in gen.candidates)
    assert gen.draw(4).labels.tolist() == [7] * 4


def test_the_agents_work_at_the_creators_shape(tmp_path) -> None:
    """A creator trained on 32x32 RGB images: the agent draws, and takes input images, at that shape."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from PIL import Image

    from artdirector.agents import load_input
    from artdirector.errors import InputError
    from artdirector.runtime import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "model=dcgan",
                "model.generator.base_channels=16",
                "model.discriminator.base_channels=16",
                "data=fake",
                "+data.image_size=32",
                "data.channels=3",
                "trainer=cpu",
            ],
        )
    torch.manual_seed(0)
    ckpt = save_checkpoint(instantiate(cfg.model, _recursive_=False), tmp_path / "rgb32.ckpt")
    gen = GenerationAgent(str(ckpt))
    assert gen.draw(2).images.shape == (2, 3, 32, 32)
    Image.new("RGB", (32, 32), (200, 10, 10)).save(tmp_path / "red.png")
    inverted = load_input(tmp_path / "red.png", gen, invert_steps=2)
    assert inverted.images.shape == (1, 3, 32, 32) and inverted.latents.shape == (1, gen.latent_dim)
    # other sizes and modes are converted to the creator's shape, each conversion noted (issue 11)
    Image.new("L", (28, 28)).save(tmp_path / "small.png")
    grey = load_input(tmp_path / "small.png", gen, invert_steps=2)
    assert grey.images.shape == (1, 3, 32, 32)
    assert any("grey -> RGB" in h for h in grey.history) and any("28x28 -> 32x32" in h for h in grey.history)
    torch.save(torch.zeros(2, 1, 28, 28), tmp_path / "grey.pt")
    assert load_input(tmp_path / "grey.pt", gen, invert_steps=2).images.shape == (2, 3, 32, 32)
    torch.save(torch.zeros(2, 2, 28, 28), tmp_path / "two.pt")
    with pytest.raises(InputError, match="C in 1, 3, 4"):
        load_input(tmp_path / "two.pt", gen, invert_steps=2)


def test_a_creator_of_another_dataset_never_serves_the_request():
    mnist = _ev("cgan", ("nothing", "class"), fid=300.0, conf=0.99)
    mnist.dataset = "mnist"
    fashion = _ev("cgan_fashion", ("nothing", "class"), fid=10.0, conf=0.99)  # a lower FID, in its own space
    fashion.dataset = "fashion_mnist"
    r = route([fashion, mnist], dataset="mnist")
    assert r.chosen == 1 and r.table[0]["excluded_by"] == "trained on fashion_mnist, not mnist"
    assert route([fashion], dataset="mnist").chosen == -1
    # no dataset given: no such filter, both serve, and the lower FID wins (the FashionMNIST one here)
    free = route([fashion, mnist])
    assert free.chosen == 0 and [row["excluded_by"] for row in free.table] == [None, None]
    assert [row["rank"] for row in free.table] == [1, 2]
    # a card that does not say its data set is not excluded by the filter
    unsaid = _ev("cgan_unsaid", ("nothing", "class"), fid=5.0, conf=0.99)
    assert route([mnist, unsaid], dataset="mnist").chosen == 1
