"""The command-line entry points (artdirector.cli): a mistyped command line is one line saying what to write
instead, with exit status 2, through the scripts a user runs; HYDRA_FULL_ERROR=1 still shows everything."""

from __future__ import annotations

import os
import re
import sys
import types

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException

from artdirector import cli
from artdirector.errors import ConfigError, report_user_errors
from helpers import run_script


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip() and "HYDRA_FULL_ERROR" not in ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-2000:]
    return lines[0]


def _in_process(entry, args: list[str], capfd) -> tuple[int, str]:
    """An entry point as its console script runs it (sys.argv), in this process: (exit status, stderr)."""
    GlobalHydra.instance().clear()
    argv, sys.argv = sys.argv, ["prog", *args]
    try:
        entry()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = argv
    return code, capfd.readouterr().err


def test_a_mistyped_group_value_through_the_script(tmp_path) -> None:
    res = run_script("train.py", "model=dcgn", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "write model=dcgan (the choices: cdcgan, cgan, classifier, dcgan, ddpm" in _one_line(res.stderr)
    assert not (tmp_path / "run").exists()  # refused before anything ran


@pytest.mark.parametrize(
    ("override", "says"),
    [
        # a group value: the closest choice and all of them; or all of them when none is close
        ("evaluator=lenet", ["write evaluator=fid_lenet (the choices: auto, fid_inception, fid_lenet)"]),
        ("logger=wandb", ["write logger=<one of csv, tensorboard>"]),
        ("hydra/launcher=slurmm", ["write hydra/launcher=slurm"]),
        # a key inside a group, a misspelt group, a misspelt group in a dotted key
        ("trainer.max_epoch=3", ["trainer has no key 'max_epoch'", "write trainer.max_epochs=3"]),
        ("modle=dcgan", ["write model=dcgan"]),
        ("traner.max_epochs=3", ["write trainer.max_epochs=3"]),
        # nothing close: the keys there are, and how to add one
        (
            "callbacks.fid.zzz=3",
            ["its keys: evaluator, every_n_epochs, n_samples, split", "+callbacks.fid.zzz=3"],
        ),
        ("+seed=3", ["write seed=3"]),
        ("seed==", ["cannot read the override 'seed=='"]),
    ],
)
def test_a_mistyped_command_line_is_one_line_saying_what_to_write(tmp_path, capfd, override, says) -> None:
    code, err = _in_process(cli.train, [override, f"hydra.run.dir={tmp_path / 'run'}"], capfd)
    assert code == 2 and "Traceback" not in err, err[-2000:]
    line = _one_line(err)
    for words in says:
        assert words in line, line
    assert not (tmp_path / "run").exists()


def test_evaluate_and_prepare_answer_the_same_way(tmp_path, capfd) -> None:
    for entry in (cli.evaluate, cli.prepare):
        code, err = _in_process(entry, ["data=mnist5kk", f"hydra.run.dir={tmp_path / 'run'}"], capfd)
        assert code == 2, err[-2000:]
        assert "write data=mnist5k" in _one_line(err)


def test_a_value_torch_refuses_is_one_line_before_anything_loads(make_cfg) -> None:
    from artdirector.train import check_optimizers

    for override, says in [
        ("model.optimizer_g.lr=-1", "model.optimizer_g.lr=-1 is not allowed"),
        ("model.optimizer_d.betas=[0.5,1.0]", "set model.optimizer_d.betas to two numbers in [0, 1)"),
        ("model.optimizer_d.eps=-1e-8", "set model.optimizer_d.eps to a number >= 0"),
    ]:
        with pytest.raises(ConfigError, match="^" + re.escape(override.split("=")[0])) as err:
            check_optimizers(make_cfg("train", [override]).model)
        assert says in str(err.value) and "\n" not in str(err.value)
    cfg = make_cfg("train", ["model=ddpm", "model.optimizer.weight_decay=-0.1"])
    with pytest.raises(ConfigError, match=re.escape("model.optimizer.weight_decay=-0.1")):
        check_optimizers(cfg.model)
    for model in ("dcgan", "ddpm", "classifier", "sr"):  # every shipped recipe passes
        check_optimizers(make_cfg("train", [f"model={model}"]).model)


def test_full_error_shows_hydras_own_exception(monkeypatch) -> None:
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    monkeypatch.setattr(sys, "argv", ["train.py", "model=dcgn"])
    GlobalHydra.instance().clear()
    with pytest.raises(MissingConfigException):
        cli.train()
    assert os.environ["HYDRA_FULL_ERROR"] == "1" and not any(k.startswith("ARTDIRECTOR_") for k in os.environ)


def test_the_task_and_what_it_starts_see_the_users_setting(monkeypatch) -> None:
    """Hydra's errors are raised to the entry point only until the task starts: a job (and its DDP ranks or
    SLURM jobs, which inherit the environment) sees HYDRA_FULL_ERROR as the user set it."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    seen: dict[str, str | None] = {}

    @report_user_errors
    def task() -> None:
        seen["task"] = os.environ.get("HYDRA_FULL_ERROR")

    def main() -> None:  # what @hydra.main does: compose, then call the task
        seen["composing"] = os.environ.get("HYDRA_FULL_ERROR")
        task()

    cli.run(main)
    assert seen == {"composing": "1", "task": None} and "HYDRA_FULL_ERROR" not in os.environ


def test_the_agent_makes_the_request_one_override_before_hydra_reads_it(monkeypatch) -> None:
    import artdirector.agent

    calls: list[list[str]] = []
    fake = types.ModuleType("artdirector.prompts.argv")
    fake.request_argv = lambda argv: [argv[0], "request='draw a cat, small'", *argv[2:]]
    monkeypatch.setitem(sys.modules, "artdirector.prompts.argv", fake)
    monkeypatch.setattr(artdirector.agent, "main", lambda: calls.append(list(sys.argv)))
    monkeypatch.setattr(sys, "argv", ["agent.py", "draw a cat, small", "n=4"])
    cli.agent()
    assert calls == [["agent.py", "request='draw a cat, small'", "n=4"]]


def test_help_and_a_mistyped_command_line_answer_without_importing_torch(tmp_path) -> None:
    """`--help` and a config error need Hydra alone: torch (about 1.2 s on a quiet 2-core CPU, several under
    load) is not imported before a run starts."""
    for args in (["--help"], ["model=dcgam"]):
        r = run_script("train.py", *args, cwd=tmp_path, python_args=["-X", "importtime"])
        imported = {
            ln.split("|")[-1].strip() for ln in r.stderr.splitlines() if ln.startswith("import time:")
        }
        assert "hydra" in imported, r.stderr[-2000:]
        assert "torch" not in imported, f"{args}: torch imported"
