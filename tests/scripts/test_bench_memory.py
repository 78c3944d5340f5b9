"""scripts/bench_memory.py: both arms of a two-request sequence on the zoo's dcgan, tiny and on CPU; the table
comes from the runs, the memory arm's second run reads the first run's record, the off arm writes no memory."""

from __future__ import annotations

import pytest

from artdirector.agents.store import RunStore
from artdirector.runtime import ZOO_DIR
from helpers import load_script

# No action can win at z = 1000, and one try is enough for the memory to act on: the memory arm's second run
# must skip both actions its first run tried, so stop at once, where the off arm tries both again.
TINY = [
    f"ckpt={ZOO_DIR / 'dcgan.ckpt'}",
    "data=mnist5k",
    "n=32",
    "n_real=200",
    "budget.steps=2",
    "budget.seconds=600",
    "device=cpu",
    "prepare=false",
    "copying.enabled=false",
    "evaluator.kid_subsets=5",
    "evaluator.kid_subset_size=20",
    "evaluator.n_bootstrap=10",
    "policy.actions=[truncation,langevin]",
    "refinement.langevin.steps=2",
    "decision.z=1000",
    "memory.min_tries=1",
]


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_memory")


@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_two_requests_both_arms(bench, tmp_path, monkeypatch, one_thread) -> None:
    monkeypatch.chdir(tmp_path)  # the runs' caches and default outputs land in tmp_path
    out = tmp_path / "bench"
    rows = bench.run_sequence(out, ["generate new art", "generate new art"], [0, 1], "threshold", TINY)
    first, second = rows

    # the off arm: no memory block, nothing stored, and no memory file anywhere
    for r in rows:
        assert r["off"]["stored_run_id"] is None and r["off"]["prior_tries"] == {}
        assert r["off"]["suggested"] == "-" and not r["off"]["memory_changed_decision"]
        assert r["off"]["actions"] == ["truncation", "langevin"]
    memory = out / "threshold" / "memory" / "memory.sqlite"
    assert sorted(tmp_path.rglob("*.sqlite")) == [memory]

    # the memory arm: an empty file at first, then the second run reads the first run's record
    assert first["on"]["prior_tries"] == {} and first["on"]["actions"] == ["truncation", "langevin"]
    assert first["on"]["stored_run_id"] is not None
    assert second["on"]["prior_tries"] == {a: 1 for a in first["on"]["actions"]}
    (stored,) = [r for r in RunStore(memory).runs() if r["id"] == first["on"]["stored_run_id"]]
    assert [a["action"] for a in stored["actions"]] == first["on"]["actions"]
    assert RunStore(memory).count() == 2
    assert second["on"]["actions"] == [] and second["on"]["suggested"].startswith("skip ")
    assert sorted(second["on"]["suggestion"]["skip"]) == sorted(first["on"]["actions"])
    assert second["on"]["memory_changed_decision"] and second["on"]["followed"] is True
    assert not first["on"]["memory_changed_decision"]
    assert [r["same_actions"] for r in rows] == [True, False]

    # same seeds, nothing kept in either arm: the same held-out verdict on the report split
    for r in rows:
        assert r["same_verdict"]
        assert r["off"]["verdict"]["split"] == "report" and r["on"]["verdict"]["chain"] == []
        assert r["off"]["verdict"]["directed_fid"] == pytest.approx(r["on"]["verdict"]["directed_fid"])

    # the totals and the table are the runs' own numbers
    t = bench.totals(rows)
    assert t["actions_off"] == 4 and t["actions_on"] == 2 and t["changed"] == 1 and t["same_verdict"] == 2
    assert t["seconds_on"] == pytest.approx(first["on"]["seconds"] + second["on"]["seconds"])
    assert t["cpu_seconds_off"] == pytest.approx(sum(r["off"]["cpu_seconds"] for r in rows))
    lines = bench.table(rows).splitlines()
    assert len(lines) == 2 + len(rows) + 1
    cells = [c.strip() for c in lines[3].split("|")[1:-1]]
    assert cells[0] == "2" and cells[7] == "truncation, langevin" and cells[8] == "-"
    assert float(cells[3]) == pytest.approx(second["off"]["seconds"], abs=0.05)
    assert cells[10] == "yes" and cells[13] == "yes"
    assert lines[-1].split("|")[9].strip() == "2 actions"
