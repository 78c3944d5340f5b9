"""The memory across runs: a trace in and out of SQLite, two writers at once, the schema version, the prior
changing a policy's decision, and the ``scripts/memory.py`` command line."""

from __future__ import annotations

import copy
import csv
import io
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from artdirector.agents import BanditPolicy, Memory, State, Step, Stop, ThresholdPolicy
from artdirector.agents.store import MemoryPrior, RunStore, StoreError, remember, trace_rows
from artdirector.runtime import ZOO_DIR
from helpers import load_script

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "src" / "artdirector" / "agents" / "trace_schema.json").read_text())
DCGAN = str(ZOO_DIR / "dcgan.ckpt")
CDCGAN = str(ZOO_DIR / "cdcgan.ckpt")


def _metrics(fid: float) -> dict:
    return {
        "fid": fid,
        "fid_se": 1.0,
        "kid": 0.1,
        "kid_std": 0.01,
        "precision": 0.5,
        "recall": 0.5,
        "n_fake": 64,
        "n_real": 300,
    }


def director_trace(
    steps: list[tuple[str, float, float]],
    checkpoint: str = DCGAN,
    classes: list[int] | None = None,
    created: str = "2025-01-01T00:00:00+00:00",
    text: str = "new",
    seconds: float = 2.0,
) -> dict:
    """A Director trace (valid against trace_schema.json) whose refinement steps are (action, gain, SE);
    a step is kept as the Director keeps one: gain > 2 SE and gain > 0."""
    fid = 100.0
    out_steps = [
        {
            "index": 0,
            "action": "generate",
            "params": {"task": "create", "n": 64},
            "metrics_before": None,
            "metrics_after": _metrics(fid),
            "accepted": True,
            "seconds": 1.0,
            "note": "",
            "gain": 0.0,
            "gain_se": 0.0,
            "decision": "",
            "elapsed": 1.0,
        }
    ]
    for i, (action, gain, se) in enumerate(steps, 1):
        kept = gain > 2 * se and gain > 0
        out_steps.append(
            {
                "index": i,
                "action": action,
                "params": {"threshold": 0.5} if action == "truncation" else {},
                "metrics_before": _metrics(fid),
                "metrics_after": _metrics(fid - gain),
                "accepted": kept,
                "seconds": seconds,
                "note": "",
                "gain": gain,
                "gain_se": se,
                "decision": f"gain {gain:+.3f}",
                "elapsed": 1.0 + i * seconds,
            }
        )
        fid -= gain if kept else 0.0
    name = Path(checkpoint).stem
    return {
        "version": 3,
        "created": created,
        "request": {"text": text, "task": "create", "understood": "create", "classes": classes},
        "model": {
            "checkpoint": checkpoint,
            "why": "routed",
            "creator": {
                "name": name,
                "kind": "gan",
                "accepts": [],
                "capabilities": [],
                "checkpoint": checkpoint,
            },
            "candidates": [{"name": name, "checkpoint": checkpoint, "eligible": True}],
        },
        "policy": "ThresholdPolicy",
        "target": {"fid": 0.0},
        "budget": {"steps": 6, "seconds": 600},
        "decision_rule": "keep a step when its FID gain exceeds 2 x SE",
        "evaluator": {
            "name": "lenet",
            "feature_network": "lenet-mnist:x",
            "reference": {},
            "report_reference": {},
        },
        "n": 64,
        "floor": {},
        "steps": out_steps,
        "chain": [],
        "stop": {"reason": "budget spent", "target_met": False},
        "final": {"metrics": _metrics(fid), "split": "selection", "history": [], "model": checkpoint},
        "verdict": {},
        "seconds": 10.0,
        "config": {"decision": {"z": 2.0}, "paths": {"output_dir": f"/runs/{text}"}},
    }


def test_the_test_traces_have_the_directors_shape() -> None:
    jsonschema.validate(director_trace([("truncation", 3.0, 1.0), ("drs", 0.5, 1.0)], classes=[7]), SCHEMA)


# ---- a real run's trace, in and out -----------------------------------------------------------------------
@pytest.fixture
def one_thread():
    """One torch thread: on a busy machine a second one makes this run ten times slower, not faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_real_runs_trace_round_trips(data, tmp_path, one_thread) -> None:
    from artdirector.agents import (
        Director,
        EvaluationAgent,
        GenerationAgent,
        RefinementAgent,
        RulePolicy,
        interpret,
    )
    from artdirector.evaluation import Evaluator, LeNetFeatures

    gen = GenerationAgent(DCGAN, seed=0)
    ev = Evaluator(LeNetFeatures("mnist"), name="lenet", kid_subsets=5, kid_subset_size=50, n_bootstrap=20)
    report = ev.copy_for(data, "report", 300)
    ev.set_reference_from(data, "selection", 300)
    ref = RefinementAgent(
        gen,
        real_images=data.real_images("selection", 300),
        datamodule=data,
        output_dir=tmp_path,
        defaults={"drs": {"burn_in": 100, "max_candidates": 500}},  # small: seconds on a CPU
    )
    policy = RulePolicy(plans={"create": ["truncation", "drs"]})
    run_dir = tmp_path / "run"
    Director(
        gen, EvaluationAgent(ev, report), ref, policy, run_dir, n=32, max_steps=2, tensorboard=False
    ).run(interpret("new", False))
    trace = json.loads((run_dir / "trace.json").read_text())

    store = RunStore(tmp_path / "m" / "memory.sqlite")
    run_id = store.record_run(run_dir)
    assert store.record_run(run_dir) == run_id and store.count() == 1  # the same trace twice: stored once
    (run,) = store.runs()
    assert run["creator"] == "dcgan" and run["request_kind"] == "unconditional" and run["task"] == "create"
    assert run["run_dir"] == str(run_dir) and run["created"] == trace["created"]
    assert run["policy"] == "RulePolicy" and run["evaluator"] == trace["evaluator"]["feature_network"]
    assert run["verdict_gain"] == pytest.approx(trace["verdict"]["gain"])
    assert run["verdict_raw_fid"] == pytest.approx(trace["verdict"]["raw"]["fid"])
    assert run["verdict_held_out"] == 1
    steps = trace["steps"][1:]
    assert [a["action"] for a in run["actions"]] == [s["action"] for s in steps] == ["truncation", "drs"]
    for a, s in zip(run["actions"], steps, strict=True):
        assert a["params"] == json.loads(json.dumps(s["params"]))
        assert a["gain"] == pytest.approx(s["gain"]) and a["gain_se"] == pytest.approx(s["gain_se"])
        assert a["accepted"] == int(s["accepted"])
        assert a["fid_after"] == pytest.approx(s["metrics_after"]["fid"])
    prior = store.prior("dcgan", "unconditional", last_k=5)
    assert {a: p.tries for a, p in prior.items()} == {"truncation": 1, "drs": 1}
    assert prior["truncation"].wins == int(steps[0]["gain"] > 2 * steps[0]["gain_se"])


def test_rows_of_a_class_request_a_finishing_step_and_a_scene(tmp_path) -> None:
    trace = director_trace([("truncation", 3.0, 1.0)], checkpoint=CDCGAN, classes=[3, 5])
    trace["steps"].append({**trace["steps"][1], "index": 2, "action": "upscale", "finishing": True})
    run, actions = trace_rows(trace)
    assert (
        run["request_kind"] == "class" and run["creator"] == "cdcgan" and json.loads(run["classes"]) == [3, 5]
    )
    assert run["run_dir"] == "/runs/new" and run["z"] == 2.0
    assert [(a["action"], a["finishing"]) for a in actions] == [("truncation", 0), ("upscale", 1)]
    store = RunStore(tmp_path / "m.sqlite")
    store.record(trace)
    assert set(store.prior("cdcgan", "class")) == {"truncation"}  # a finishing action is not a choice

    # a user's checkpoint outside the zoo is named by its content, wherever it lies
    mine = tmp_path / "a" / "last.ckpt"
    mine.parent.mkdir()
    mine.write_bytes(b"weights")
    moved = tmp_path / "b.ckpt"
    moved.write_bytes(b"weights")
    key = trace_rows(director_trace([], checkpoint=str(mine)))[0]["creator"]
    assert (
        key.startswith("sha256:")
        and key == trace_rows(director_trace([], checkpoint=str(moved)))[0]["creator"]
    )

    scene = {
        "version": "scene/1",
        "created": "2025-01-02T00:00:00+00:00",
        "request": {"text": "a 3 left of a 7", "task": "create", "prompt": {}},
        "creators": {"mnist": [{"name": "cdcgan", "checkpoint": CDCGAN, "kind": "gan"}]},
        "detector": {"name": "detector"},
        "drawings": [{"creator": "cdcgan", "seed": 1, "how": "", "options": {}}],
        "rounds": [
            {"round": 0, "actions": [{"action": "compose", "why": "one-shot"}], "verdict": {"passed": False}},
            {
                "round": 1,
                "actions": [
                    {"action": "redraw", "item": 1, "why": "missing", "seed": 3},
                    {"action": "replan", "why": "relation", "seed": 1},
                ],
                "verdict": {"passed": True},
            },
        ],
        "final": {"passed": True, "reasons": [], "rounds": 1, "stop": "every check passes", "seconds": 2.5},
    }
    run, actions = trace_rows(scene, run_dir="/runs/scene")
    assert run["request_kind"] == "scene" and run["creator"] == "cdcgan" and run["passed"] == 1
    assert [(a["action"], json.loads(a["params"])) for a in actions] == [
        ("redraw", {"item": 1, "seed": 3}),
        ("replan", {"seed": 1}),
    ]
    with pytest.raises(StoreError, match="not a run trace"):
        trace_rows({"steps": []})


# ---- two agents at once -----------------------------------------------------------------------------------
def _writer(db: str, traces: list[dict], barrier, errors) -> None:
    """One agent: wait for the other, then record its runs, each through its own RunStore as a run does."""
    try:
        barrier.wait(timeout=120)  # both start together (and both race to create the file)
        for trace in traces:
            RunStore(db).record(trace)
    except BaseException as err:
        errors.put(f"{type(err).__name__}: {err}")
        raise


def test_two_writers_at_once_lose_nothing(tmp_path) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")  # separate processes, separate connections, no re-import
    db = tmp_path / "shared" / "memory.sqlite"
    db.parent.mkdir()
    barrier, errors = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(
            target=_writer,
            args=(
                str(db),
                [
                    director_trace(
                        [("truncation", 3.0, 1.0), ("drs", 0.1, 1.0)],
                        created=f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
                        text=f"writer {me} run {i}",
                    )
                    for i in range(50)
                ],
                barrier,
                errors,
            ),
        )
        for me in ("a", "b")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert not failures and all(p.exitcode == 0 for p in procs), failures
    store = RunStore(db)
    assert store.count() == 100
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM actions").fetchone()[0] == 200  # every run's two steps
        per_run = conn.execute("SELECT COUNT(*) FROM actions GROUP BY run_id").fetchall()
        assert {n for (n,) in per_run} == {2}
        texts = {t for (t,) in conn.execute("SELECT request FROM runs")}
    assert texts == {f"writer {me} run {i}" for me in ("a", "b") for i in range(50)}


# ---- the schema version and files that are not a memory ---------------------------------------------------
def test_a_newer_schema_a_foreign_database_and_a_corrupt_file_are_refused(tmp_path) -> None:
    path = tmp_path / "memory.sqlite"
    assert RunStore(path).schema_version == 1
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=r"schema version 7, newer than this artdirector reads \(1\)"):
        RunStore(path)

    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not an artdirector memory"):
        RunStore(foreign)

    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable memory database"):
        RunStore(corrupt)
    with pytest.raises(StoreError, match="no memory at"):
        RunStore(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


# ---- the prior changes a decision -------------------------------------------------------------------------
def _history(store: RunStore) -> None:
    """dcgan, unconditional: truncation won in old runs only; drs won once in the last three; langevin was
    tried once (too few tries to judge). Another creator's and a class request's runs say the opposite."""
    old = [("truncation", 5.0, 1.0), ("drs", 0.1, 1.0)]
    for i in range(3):  # older than the last K = 3
        store.record(director_trace(old, created=f"2025-01-0{i + 1}T00:00:00+00:00", text=f"old {i}"))
    recent = [
        [("truncation", 0.5, 1.0), ("drs", 0.2, 1.0)],
        [("truncation", 1.5, 1.0), ("drs", 4.0, 1.0), ("langevin", -1.0, 1.0)],
        [("truncation", -0.3, 1.0), ("drs", 0.1, 1.0)],
    ]
    for i, steps in enumerate(recent):
        store.record(director_trace(steps, created=f"2025-02-0{i + 1}T00:00:00+00:00", text=f"new {i}"))
    store.record(director_trace([("truncation", 9.0, 1.0)], checkpoint=CDCGAN, text="other creator"))
    store.record(director_trace([("truncation", 9.0, 1.0)], classes=[7], text="class request"))


STATE = State("create", fid=100.0, target_fid=0.0, step=0, has_latents=True)


def test_the_threshold_policy_skips_what_never_beat_its_se_here(tmp_path) -> None:
    store = RunStore(tmp_path / "memory.sqlite")
    _history(store)
    prior = store.prior("dcgan", "unconditional", last_k=3)
    assert {a: (p.tries, p.wins) for a, p in prior.items()} == {
        "truncation": (3, 0),
        "drs": (3, 1),
        "langevin": (1, 0),
    }
    assert prior["truncation"].mean_gain == pytest.approx((0.5 + 1.5 - 0.3) / 3)
    assert prior["drs"].last_used == "2025-02-03T00:00:00+00:00"
    # over the last 6 runs truncation has won: it is kept
    assert store.prior("dcgan", "unconditional", last_k=6)["truncation"].wins == 3

    actions = ["truncation", "drs", "langevin"]
    memory = MemoryPrior(store, "dcgan", "unconditional", last_k=3, min_tries=2)
    kept, why = memory.skip(actions)
    assert kept == ["drs", "langevin"]  # drs won once; langevin has one try, below min_tries
    assert "skip truncation" in why and "never beat 2 SE" in why
    assert ThresholdPolicy(actions=actions).decide(STATE, Memory()).name == "truncation"  # without memory
    assert (
        ThresholdPolicy(actions=kept).decide(STATE, Memory()).name == "drs"
    )  # with it: the decision changes
    # the same history seen over more runs, or for another creator or request kind, skips nothing
    assert MemoryPrior(store, "dcgan", "unconditional", last_k=6).skip(actions)[0] == actions
    assert MemoryPrior(store, "cdcgan", "unconditional", last_k=3).skip(actions)[0] == actions
    assert MemoryPrior(store, "dcgan", "class", last_k=3).skip(actions)[0] == actions
    unknown = MemoryPrior(store, "cdcgan", "unconditional", last_k=3)
    unknown.skip(actions)
    assert unknown.to_trace(Memory())["followed"] is None  # nothing suggested: nothing to follow

    run = Memory()
    run.record(Step(0, "generate", {}, None, {}, True, 1.0))
    run.record(Step(1, "drs", {}, None, {}, False, 1.0))
    t = memory.to_trace(run)
    assert t["followed"] is True and t["suggested"]["skip"] == ["truncation"]
    assert t["prior"]["drs"]["wins"] == 1 and t["creator"] == "dcgan"
    run.record(Step(2, "truncation", {}, None, {}, False, 1.0))
    assert memory.to_trace(run)["followed"] is False


def _decisions(policy: ThresholdPolicy, budget: int, gains: dict[str, float]) -> tuple[list[str], str]:
    """The actions a threshold run takes under a budget of ``budget`` steps, each gaining ``gains[action]``
    (SE 1), as the Director's loop asks the policy; and why it stopped."""
    run = Memory()
    while (step := len(run.refinements)) < budget:
        state = State("create", fid=100.0, target_fid=0.0, step=step, has_latents=True, budget_steps=budget)
        decision = policy.decide(state, run)
        if isinstance(decision, Stop):
            return [s.action for s in run.refinements], decision.reason
        run.record(Step(step + 1, decision.name, {}, None, {}, False, 1.0, gain=gains[decision.name]))
    return [s.action for s in run.refinements], "budget spent"


def test_steps_the_memory_frees_are_left_unspent_unless_an_action_past_them_won_here(tmp_path) -> None:
    """With memory, a threshold run tries what the run without it would, less what never won here: the step
    that skipping frees is not spent on an action the run without memory would never have reached."""
    store = RunStore(tmp_path / "memory.sqlite")
    _history(store)  # last 3 dcgan runs: truncation 0 wins in 3 tries, drs 1 win, langevin 1 try
    actions = ["truncation", "drs", "langevin", "finetune"]
    gains = {"truncation": -0.3, "drs": 0.5, "langevin": -1.0, "finetune": 3.0}
    without, _ = _decisions(ThresholdPolicy(actions=actions), 2, gains)
    assert without == ["truncation", "drs"]
    prior = MemoryPrior(store, "dcgan", "unconditional", last_k=3, min_tries=2)
    with_memory, why = _decisions(ThresholdPolicy(actions=actions, prior=prior), 2, gains)
    assert with_memory == ["drs"]  # one step fewer, and not langevin or finetune in its place
    assert "1 freed step(s) left unspent" in why
    assert prior.to_trace()["suggested"]["steps"] == 1

    # finetune won here before: the freed step goes to it
    store.record(director_trace([("finetune", 6.0, 1.0)], created="2025-02-09T00:00:00+00:00", text="ft"))
    prior = MemoryPrior(store, "dcgan", "unconditional", last_k=3, min_tries=2)
    with_memory, _ = _decisions(ThresholdPolicy(actions=actions, prior=prior), 2, gains)
    assert with_memory == ["drs", "finetune"]
    assert "go to finetune, which won here before" in prior.to_trace()["suggested"]["why"]


def test_the_bandit_starts_from_what_worked_for_this_creator(tmp_path) -> None:
    store = RunStore(tmp_path / "memory.sqlite")
    _history(store)
    actions = ["truncation", "drs"]
    bandit = BanditPolicy(actions=actions)
    assert bandit.decide(STATE, Memory()).name == "truncation"  # without memory: each arm once, in order
    memory = MemoryPrior(store, "dcgan", "unconditional", last_k=3, min_tries=2, prior_pulls=2)
    seeded = memory.combined(Memory(), actions)
    assert seeded.tries("drs") == seeded.tries("truncation") == 2  # at most prior_pulls per arm
    assert seeded.mean_gain_per_second("drs") == pytest.approx(memory.stats["drs"].mean_reward)
    first = bandit.decide(STATE, seeded)
    assert first.name == "drs"  # with it: the arm with the best past reward first
    run = Memory()
    run.record(Step(1, first.name, {}, None, {}, False, 1.0))
    t = memory.to_trace(run)
    assert t["suggested"]["start"] == "drs" and t["followed"] is True

    # langevin was tried once in the last 3 runs (< min_tries): the memory leaves it to be explored first
    more = [*actions, "langevin"]
    seeded = MemoryPrior(store, "dcgan", "unconditional", last_k=3).combined(Memory(), more)
    assert seeded.tries("langevin") == 0
    assert BanditPolicy(actions=more).decide(STATE, seeded).name == "langevin"


def test_under_a_step_budget_the_bandit_with_memory_pulls_no_arm_the_run_without_it_would_not_reach(
    tmp_path,
) -> None:
    store = RunStore(tmp_path / "memory.sqlite")
    _history(store)  # last 3 dcgan runs: truncation 3 tries 0 wins, drs 3 tries 1 win, langevin 1 try
    actions = ["truncation", "drs", "langevin", "finetune"]
    state = State("create", fid=100.0, target_fid=0.0, step=0, has_latents=True, budget_steps=2)
    prior = MemoryPrior(store, "dcgan", "unconditional", last_k=3, min_tries=2, prior_pulls=2)
    run = Memory()
    pulled = []
    for step in range(2):
        decision = BanditPolicy(actions=actions, prior=prior).decide(replace(state, step=step), run)
        pulled.append(decision.name)
        run.record(Step(step + 1, decision.name, {}, None, {}, False, 1.0, gain=1.0))
    # langevin and finetune are unknown to the memory; only the arms inside the budget's reach are pulled
    assert set(pulled) <= {"truncation", "drs"} and "finetune" not in pulled
    # without the budget the memory sends the bandit to the arms it does not know, finetune among them
    wide = BanditPolicy(actions=actions, prior=MemoryPrior(store, "dcgan", "unconditional", last_k=3))
    assert wide.decide(STATE, Memory()).name in {"langevin", "finetune"}


def test_the_bandit_stops_at_once_where_nothing_ever_paid(tmp_path) -> None:
    store = RunStore(tmp_path / "memory.sqlite")
    for i in range(2):
        trace = director_trace([("truncation", -1.0, 1.0), ("drs", -2.0, 1.0)], text=f"run {i}")
        store.record(trace)
    actions = ["truncation", "drs"]
    memory = MemoryPrior(store, "dcgan", "unconditional")
    decision = BanditPolicy(actions=actions).decide(STATE, memory.combined(Memory(), actions))
    assert isinstance(decision, Stop)
    t = memory.to_trace(Memory())
    assert t["suggested"]["stop"] is True and t["followed"] is True
    # one run of history is below min_tries: the bandit explores as it would without memory
    one = RunStore(tmp_path / "one.sqlite")
    one.record(director_trace([("truncation", -1.0, 1.0), ("drs", -2.0, 1.0)]))
    fresh = MemoryPrior(one, "dcgan", "unconditional").combined(Memory(), actions)
    assert BanditPolicy(actions=actions).decide(STATE, fresh).name == "truncation"


def test_memory_false_turns_it_off(tmp_path) -> None:
    path = tmp_path / "memory.sqlite"
    assert MemoryPrior.from_config(False, DCGAN) is None
    assert MemoryPrior.from_config({"enabled": False, "path": str(path)}, DCGAN) is None
    assert not path.exists()
    prior = MemoryPrior.from_config({"path": str(path), "last_k": 4}, DCGAN, classes=[7])
    assert (prior.creator, prior.request_kind, prior.last_k) == ("dcgan", "class", 4) and path.is_file()
    with pytest.raises(StoreError, match=r"memory\.last_k=0"):
        MemoryPrior.from_config({"path": str(path), "last_k": 0}, DCGAN)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "trace.json").write_text(json.dumps(director_trace([("drs", 1.0, 1.0)])))
    assert remember(False, run_dir) is None
    assert remember({"path": str(path)}, run_dir) == 1 and RunStore(path).count() == 1
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"garbage" * 200)
    assert remember({"path": str(corrupt)}, run_dir) is None  # a warning: the run's outputs stand
    assert corrupt.read_bytes() == b"garbage" * 200


# ---- scripts/memory.py --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli():
    return load_script("memory", "memory_cli").main


def _exit(cli, capsys, *argv: str) -> tuple[int, str, str]:
    try:
        cli(list(argv))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_lists_exports_and_clears(cli, capsys, tmp_path) -> None:
    path = tmp_path / "memory.sqlite"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "trace.json").write_text(
        json.dumps(director_trace([("truncation", 3.0, 1.0), ("drs", 0.1, 1.0)]))
    )
    code, out, _ = _exit(cli, capsys, "add", str(run_dir), "--path", str(path))
    assert code == 0 and "stored 1 run" in out
    store = RunStore(path)
    _history(store)
    n_runs = store.count()

    code, out, _ = _exit(cli, capsys, "list", "--path", str(path), "--last-k", "3")
    assert code == 0 and f"{n_runs} runs" in out
    assert "truncation+ drs-" in out  # the added run's actions with their decisions
    stats = [line.split() for line in out.splitlines() if line.startswith("dcgan ")]
    assert ["dcgan", "unconditional", "truncation", "3", "0"] in [s[:5] for s in stats]

    code, out, _ = _exit(cli, capsys, "export", "--path", str(path))
    runs = json.loads(out)
    assert code == 0 and len(runs) == n_runs and all("actions" in r for r in runs)
    exported = tmp_path / "out" / "memory.csv"
    code, out, _ = _exit(
        cli, capsys, "export", "--format", "csv", "--out", str(exported), "--path", str(path)
    )
    rows = list(csv.DictReader(io.StringIO(exported.read_text())))
    assert code == 0 and len(rows) == sum(len(r["actions"]) for r in runs)
    assert {"run_creator", "action", "gain", "gain_se", "accepted", "run_verdict_gain"} <= set(rows[0])

    code, _, err = _exit(cli, capsys, "clear", "--path", str(path))
    assert code == 2 and "--yes" in err and store.count() == n_runs  # nothing deleted without --yes
    code, out, _ = _exit(cli, capsys, "clear", "--yes", "--path", str(path))
    assert code == 0 and f"deleted {n_runs} runs" in out and store.count() == 0


def test_the_cli_says_in_one_line_what_is_wrong_with_the_file(cli, capsys, tmp_path) -> None:
    missing = tmp_path / "nowhere.sqlite"
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"garbage" * 200)
    newer = tmp_path / "newer.sqlite"
    RunStore(newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    for command, path, says in (
        ("list", missing, f"no memory at {missing}"),
        ("export", corrupt, "not a readable memory database"),
        ("list", newer, "newer than this artdirector reads"),
    ):
        code, out, err = _exit(cli, capsys, command, "--path", str(path))
        errors = [line for line in err.splitlines() if says in line]
        assert code == 2 and out == "" and len(errors) == 1 and errors[0].startswith("error: "), err
    assert not missing.exists()  # reading never creates the file


def test_a_copy_of_a_trace_is_not_a_new_run(tmp_path) -> None:
    store = RunStore(tmp_path / "memory.sqlite")
    trace = director_trace([("drs", 1.0, 1.0)])
    first = store.record(trace)
    assert store.record(copy.deepcopy(trace)) == first
    assert store.record({**trace, "created": "2025-03-01T00:00:00+00:00"}) != first
    assert store.count() == 2
