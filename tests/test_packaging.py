"""A plain (non-editable) install works from any directory: configs, weights and the bundled digits ship
inside the package, the console scripts run, and outputs land under ./outputs of where the user is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_install_runs_train_evaluate_agent_from_elsewhere(tmp_path) -> None:
    dist, site, work, src = (tmp_path / d for d in ("dist", "site", "elsewhere", "src"))
    # build from a copy: setuptools writes build/ beside the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", dist, src], check=True)
    (wheel,) = dist.glob("artdirector-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True)
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import artdirector.runtime as r; print(r.__file__, r.CONFIG_DIR)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(p.startswith(str(site)) for p in where), where  # not the checkout

    def run(script: str, *args: str) -> subprocess.CompletedProcess:
        res = subprocess.run(
            [site / "bin" / script, *args], cwd=work, env=env, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr[-3000:]
        return res

    tiny = [
        "data=fake",
        "trainer=cpu",
        "model.generator.base_channels=16",
        "model.discriminator.base_channels=8",
    ]
    # one real (tiny) epoch: a fast_dev_run writes no checkpoint (Lightning skips them there)
    run("artdirector-train", *tiny, "trainer.max_epochs=1", "data.n_train=64", "hydra.run.dir=outputs/train")
    run("artdirector-train", "data=mnist5k", "debug=fdr", "trainer=cpu", "hydra.run.dir=outputs/bundled")
    ckpt = work / "outputs" / "train" / "checkpoints" / "last.ckpt"
    run_json = json.loads((work / "outputs" / "train" / "run.json").read_text())
    assert run_json["checkpoints"]["last"] and ckpt.is_file()
    run(
        "artdirector-evaluate",
        f"ckpt={ckpt}",
        "data=fake",
        "n_samples=16",
        "device=cpu",
        "hydra.run.dir=outputs/eval",
    )
    run(
        "artdirector-agent",
        f"ckpt={ckpt}",
        "data=fake",
        "n=8",
        "n_real=16",
        "budget.steps=0",
        "device=cpu",
        "hydra.run.dir=outputs/agent",
    )
    assert (work / "outputs" / "agent" / "trace.json").is_file()
    # no ckpt=: the zoo shipped inside the wheel
    run(
        "artdirector-agent",
        "data=fake",
        "n=8",
        "n_real=16",
        "budget.steps=0",
        "device=cpu",
        "hydra.run.dir=outputs/zoo",
    )
    trace = json.loads((work / "outputs" / "zoo" / "trace.json").read_text())
    assert str(site) in json.dumps(trace) and "dcgan.ckpt" in json.dumps(trace)
    # a scene: the zoo's conditional creators and the detector shipped inside the wheel
    run("artdirector-agent", "request=a 3 left of a 7", "device=cpu", "hydra.run.dir=outputs/scene")
    scene = json.loads((work / "outputs" / "scene" / "trace.json").read_text())
    assert scene["version"] == "scene/1" and str(site) in scene["detector"]["path"]
    assert scene["request"]["prompt"]["relations"][0]["relation"] == "left of"
    assert sorted(p.name for p in work.iterdir()) == ["outputs"]  # nothing scattered elsewhere
