"""Bad inputs through the real entry points: each exits non-zero with a one-line reason, no traceback, no
crash, nothing run from a checkpoint, and nothing written over an input.

The cases run in process through the same entry functions the console scripts call (``artdirector.cli``; one
Python start instead of thirty); two of them also run as real subprocesses, where a segfault would show.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from torchvision.io import write_png

from artdirector import cli as entry
from artdirector.models.checkpoint import CheckpointError, read_checkpoint
from artdirector.train import train
from conftest import compose_cfg
from helpers import TINY, TINY_CLASSIFIER, TINY_MODEL, run_script

MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / "artdirector_payload_ran"


class _Payload:
    """Unpickling this runs code: it creates MARKER. A safe loader never unpickles it."""

    def __reduce__(self):
        return (Path.touch, (MARKER,))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("edges")
    train(compose_cfg("train", [*TINY, "trainer.max_epochs=1"], d / "gan"))
    train(compose_cfg("train", TINY_CLASSIFIER, d / "clf"))
    gan = d / "gan" / "checkpoints" / "last.ckpt"
    raw = gan.read_bytes()
    ckpt = torch.load(gan, weights_only=True)
    f = {"gan": gan, "classifier": d / "clf" / "checkpoints" / "last.ckpt"}
    f["empty"] = d / "empty.ckpt"
    f["empty"].write_bytes(b"")
    f["truncated"] = d / "truncated.ckpt"
    f["truncated"].write_bytes(raw[: len(raw) // 2])
    f["not_ckpt"] = d / "weights.ckpt"
    torch.save({"weights": torch.zeros(3)}, f["not_ckpt"])
    f["pickled"] = d / "pickled.ckpt"
    torch.save({**ckpt, "extra": _Payload()}, f["pickled"])
    f["foreign"] = d / "foreign.ckpt"
    hp = dict(ckpt["hyper_parameters"])
    hp["generator"] = {**hp["generator"], "_target_": "os.system"}
    torch.save({**ckpt, "hyper_parameters": hp}, f["foreign"])
    f["bad_png"] = d / "broken.png"
    f["bad_png"].write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    f["tiny_png"] = d / "tiny.png"
    write_png(torch.zeros(1, 3, 3, dtype=torch.uint8), str(f["tiny_png"]))
    for name, t in {
        "two_channels": torch.zeros(2, 2, 28, 28),
        "nan": torch.full((2, 1, 28, 28), float("nan")),
        "range": torch.full((2, 1, 28, 28), 3.0),
        "shape": torch.zeros(5, 7),
    }.items():
        f[name] = d / f"{name}.pt"
        torch.save(t, f[name])
    f["a_file"] = d / "a_file.txt"
    f["a_file"].write_text("a file where a directory is needed")
    f["empty_root"] = d / "no_data"
    f["empty_root"].mkdir()
    return f


def _digests(files: dict[str, Path]) -> dict[str, str]:
    return {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in files.items() if p.is_file()}


def cli(main: Callable[[], object], args: list[str], capfd) -> tuple[int, str]:
    """Run an entry point as its console script would (sys.argv), in this process; (exit code, stderr)."""
    GlobalHydra.instance().clear()
    argv, sys.argv = sys.argv, ["prog", *args]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = argv
    _, err = capfd.readouterr()
    return code, err


FAST_AGENT = ["data=fake", "n=8", "n_real=16", "evaluator.kid_subsets=2", "budget.steps=0", "device=cpu"]


def _cases(f: dict[str, Path], out: Path) -> list[tuple[str, Callable, list[str], int, str]]:
    """(name, entry point, arguments, exit code, what the message must say)."""
    here = [f"hydra.run.dir={out}", f"paths.root_dir={out}"]
    agent = [*here, *FAST_AGENT]
    evaluate = [*here, "data=fake", "n_samples=8", "n_real=8", "device=cpu"]
    gan = f"ckpt={f['gan']}"
    return [
        # checkpoints
        ("ckpt missing", entry.agent, [*agent, f"ckpt={out / 'nope.ckpt'}"], 2, "checkpoint not found"),
        ("ckpt empty", entry.agent, [*agent, f"ckpt={f['empty']}"], 2, "is empty"),
        ("ckpt truncated", entry.agent, [*agent, f"ckpt={f['truncated']}"], 2, "could not be read"),
        (
            "not a ckpt",
            entry.evaluate,
            [*evaluate, f"ckpt={f['not_ckpt']}"],
            2,
            "not a Lightning checkpoint",
        ),
        ("wrong kind", entry.agent, [*agent, f"ckpt={f['classifier']}"], 2, "'classifier' model"),
        (
            "pickled code, agent",
            entry.agent,
            [*agent, f"ckpt={f['pickled']}"],
            2,
            "pickled Python objects",
        ),
        (
            "pickled code, evaluate",
            entry.evaluate,
            [*evaluate, f"ckpt={f['pickled']}"],
            2,
            "refused to load",
        ),
        ("pickled code, resume", entry.train, [*here, *TINY, f"ckpt_path={f['pickled']}"], 2, "refused"),
        ("foreign target", entry.agent, [*agent, f"ckpt={f['foreign']}"], 2, "os.system"),
        ("foreign target, evaluate", entry.evaluate, [*evaluate, f"ckpt={f['foreign']}"], 2, "os.system"),
        # inputs
        (
            "input missing",
            entry.agent,
            [*agent, gan, "request=refine", f"input={out / 'x.png'}"],
            2,
            "not found",
        ),
        (
            "png undecodable",
            entry.agent,
            [*agent, gan, "request=vary", f"input={f['bad_png']}"],
            2,
            "decoded",
        ),
        (  # any size and mode is converted (issue 11), but not an image too small to hold a drawing
            "png too small",
            entry.agent,
            [*agent, gan, "request=vary", f"input={f['tiny_png']}"],
            2,
            "is 3x3",
        ),
        (
            "wrong channels",
            entry.agent,
            [*agent, gan, "request=vary", f"input={f['two_channels']}"],
            2,
            "C in 1, 3, 4",
        ),
        ("NaN images", entry.agent, [*agent, gan, "request=vary", f"input={f['nan']}"], 2, "NaN"),
        ("out of range", entry.agent, [*agent, gan, "request=vary", f"input={f['range']}"], 2, "[-1, 1]"),
        ("tensor shape", entry.agent, [*agent, gan, "request=vary", f"input={f['shape']}"], 2, "(5, 7)"),
        # settings
        # Hydra's own: one line with what to write instead
        (
            "unknown group value",
            entry.agent,
            [*agent, gan, "policy=greedy"],
            2,
            "policy=<one of bandit, rule, threshold>",
        ),
        ("unknown key", entry.agent, [*agent, gan, "budget.stepz=3"], 2, "write budget.steps=3"),
        ("unknown key, train", entry.train, [*here, *TINY, "trainer.max_epoch=3"], 2, "trainer.max_epochs=3"),
        (
            "negative learning rate",
            entry.train,
            [*here, *TINY, "model.optimizer_g.lr=-1"],
            2,
            "lr to a number",
        ),
        ("n < 2", entry.agent, [*agent, gan, "n=1"], 2, "n=1 is not allowed"),
        ("negative budget", entry.agent, [*agent, gan, "budget.steps=-3"], 2, "budget.steps=-3"),
        ("negative target", entry.agent, [*agent, gan, "target.fid=-1"], 2, "target.fid=-1"),
        ("evaluate n < 2", entry.evaluate, [*evaluate, gan, "n_samples=0"], 2, "n_samples=0"),
        ("bad precision", entry.train, [*here, *TINY, "trainer.precision=17"], 2, "trainer.precision=17"),
        ("bad accelerator", entry.train, [*here, *TINY, "trainer.accelerator=abacus"], 2, "abacus"),
        ("bad update rule", entry.train, [*here, *TINY, "model.update_rule=sideways"], 2, "update_rule"),
        # a SLURM request that cannot run: refused before anything is submitted
        (
            "slurm: idle GPUs",
            entry.train,
            [
                "-m",
                "hydra/launcher=slurm",
                f"hydra.sweep.dir={out}/sweep",
                *TINY,
                "hydra.launcher.gpus_per_node=2",
            ],
            2,
            "gpus_per_node=2 but the trainer uses 1 device",
        ),
        (
            "slurm: --ntasks",
            entry.train,
            [
                "-m",
                "hydra/launcher=slurm",
                f"hydra.sweep.dir={out}/sweep",
                *TINY,
                "+hydra.launcher.additional_parameters.ntasks=2",
            ],
            2,
            "Lightning needs tasks per node",
        ),
        (
            "slurm: tasks per node",
            entry.train,
            [
                "-m",
                "hydra/launcher=slurm",
                f"hydra.sweep.dir={out}/sweep",
                *TINY,
                "hydra.launcher.tasks_per_node=3",
            ],
            2,
            "tasks_per_node=3 but trainer.devices=1",
        ),
        # data
        (
            "data missing, no fallback",
            entry.train,
            [
                *here,
                *TINY_MODEL,
                "data=mnist",
                f"data.root={f['empty_root']}",
                "data.download=false",
                "data.fallback_to_bundled=false",
            ],
            2,
            "put the four idx",
        ),
        # output
        (
            "output dir not writable",
            entry.train,
            [*TINY, f"hydra.run.dir={f['a_file'] / 'run'}"],
            2,
            "a_file",
        ),
        # requests
        ("empty request", entry.agent, [*agent, gan, "request="], 2, "empty request"),
        ("unknown request", entry.agent, [*agent, gan, "request=qwerty"], 2, "'qwerty'"),
        ("refine without input", entry.agent, [*agent, gan, "request=refine it"], 2, "start from"),
    ]


def test_bad_inputs_exit_with_one_line_and_touch_nothing(files, tmp_path, capfd) -> None:
    before = _digests(files)
    MARKER.unlink(missing_ok=True)
    cases = _cases(files, tmp_path / "run")
    assert len({c[0] for c in cases}) >= 25
    failures = []
    for name, main, args, code, message in cases:
        got, err = cli(main, args, capfd)
        lines = [ln for ln in err.splitlines() if ln.strip() and "HYDRA_FULL_ERROR" not in ln]
        ok = got == code and "Traceback" not in err and message.lower() in err.lower()
        ok = ok and (code != 2 or (len(lines) == 1 and lines[0].startswith("error: ")))
        if not ok:
            failures.append(f"{name}: exit {got} (want {code}), stderr:\n{err[-1500:]}")
    assert not failures, "\n\n".join(failures)
    assert not MARKER.exists(), "a checkpoint's pickled payload ran"
    assert _digests(files) == before, "an input file was changed"


def test_nan_input_and_pickled_checkpoint_as_real_processes(files, tmp_path) -> None:
    """No segfault on NaN images (it used to end in a oneMKL error and SIGSEGV); the payload never runs."""
    MARKER.unlink(missing_ok=True)
    common = [f"hydra.run.dir={tmp_path / 'r'}", f"paths.root_dir={tmp_path}", *FAST_AGENT]
    nan = run_script(
        "agent.py", *common, f"ckpt={files['gan']}", "request=vary", f"input={files['nan']}", cwd=tmp_path
    )
    assert nan.returncode == 2, nan.stderr[-2000:]
    assert "NaN" in nan.stderr and "Traceback" not in nan.stderr
    evil = run_script(
        "evaluate.py",
        f"ckpt={files['pickled']}",
        "data=fake",
        f"hydra.run.dir={tmp_path / 'e'}",
        cwd=tmp_path,
    )
    assert evil.returncode == 2 and "refused to load" in evil.stderr and "Traceback" not in evil.stderr
    assert not MARKER.exists()


def test_full_error_shows_the_traceback(files, tmp_path, capfd, monkeypatch) -> None:
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    GlobalHydra.instance().clear()
    argv, sys.argv = (
        sys.argv,
        ["prog", f"hydra.run.dir={tmp_path}", *FAST_AGENT, f"ckpt={tmp_path / 'nope.ckpt'}"],
    )
    try:
        with pytest.raises(CheckpointError, match="not found"):
            entry.agent()
    finally:
        sys.argv = argv


def test_safe_loader_refuses_pickles_and_foreign_targets(files) -> None:
    MARKER.unlink(missing_ok=True)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        read_checkpoint(files["pickled"])
    with pytest.raises(CheckpointError, match=r"os\.system.*outside the allowed"):
        read_checkpoint(files["foreign"])
    assert not MARKER.exists()
    assert read_checkpoint(files["gan"])["artdirector_kind"] == "gan"  # our own checkpoints load
