"""The Director's memory across runs: one SQLite file (``${paths.outputs_root}/memory.sqlite``) with a row
per run and a row per action it tried, read back as a prior for the policies.

The rows of a run come from its ``trace.json`` (:mod:`artdirector.agents.store_rows`); the file, its schema
and queries are :class:`RunStore` (:mod:`artdirector.agents.store_db`).

:class:`MemoryPrior` is what a policy reads: for the creator and request kind of this run, each action's
record over the last ``last_k`` runs; the threshold policy drops an action that never beat ``z`` SEs there
(:meth:`MemoryPrior.skip`) and, under a step budget, leaves the steps that frees unspent unless an action
past them won here (:meth:`MemoryPrior.window`), the bandit starts from the past mean rewards (:meth:`MemoryPrior.combined`), and
:meth:`MemoryPrior.to_trace` states what the memory suggested and whether the run followed it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artdirector.agents.memory import Memory, Step
from artdirector.agents.store_db import SCHEMA_VERSION, ActionPrior, RunStore
from artdirector.agents.store_rows import StoreError, creator_key, request_kind, trace_rows

log = logging.getLogger(__name__)

FILENAME = "memory.sqlite"


@dataclass
class MemoryPrior:
    """The memory as one run's policy sees it: the record of ``creator`` on ``request_kind`` requests over
    the last ``last_k`` runs, read once, when first asked.

    - :meth:`skip` (the threshold policy): drop the actions tried at least ``min_tries`` times there that
      never beat ``z`` SEs of their gain.
    - :meth:`combined` (the bandit): the run's memory with up to ``prior_pulls`` pseudo-pulls per action
      remembered ``min_tries`` times or more, at its past mean reward, so UCB1 starts from what worked
      instead of pulling every arm once; under a step budget its arms are those :meth:`reach` gives.
    - :meth:`to_trace`: what it suggested, and whether the run followed it.
    """

    store: RunStore
    creator: str
    request_kind: str
    last_k: int = 10
    z: float = 2.0
    min_tries: int = 2
    prior_pulls: int = 2
    evaluator: str | None = None
    _stats: dict[str, ActionPrior] | None = field(default=None, repr=False)
    _suggested: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_config(
        cls,
        cfg: Any,
        checkpoint: str | Path | None,
        classes: Iterable[int] | None = None,
        evaluator: str | None = None,
        z: float = 2.0,
    ) -> MemoryPrior | None:
        """From the ``memory:`` settings (configs/agent.yaml): None when ``memory=false`` or
        ``memory.enabled=false``."""
        settings = _settings(cfg)
        if settings is None:
            return None
        return cls(
            RunStore(settings["path"]),
            creator_key(checkpoint),
            request_kind(classes),
            last_k=settings["last_k"],
            z=z,
            min_tries=settings["min_tries"],
            prior_pulls=settings["prior_pulls"],
            evaluator=evaluator,
        )

    @property
    def stats(self) -> dict[str, ActionPrior]:
        if self._stats is None:
            self._stats = self.store.prior(
                self.creator, self.request_kind, self.last_k, self.z, evaluator=self.evaluator
            )
        return self._stats

    def _where(self) -> str:
        return f"{self.creator} on {self.request_kind} requests, last {self.last_k} runs"

    def suggest(self, actions: Iterable[str]) -> tuple[list[str], set[str], str]:
        """(the actions ordered by past mean reward, best first, then the untried ones in their order; the
        actions to skip; a sentence saying why)."""
        actions = list(actions)
        stats = self.stats
        if not any(a in stats for a in actions):
            return actions, set(), f"memory: no earlier tries of these actions ({self._where()})"
        tried = sorted((a for a in actions if a in stats), key=lambda a: -stats[a].mean_reward)
        order = tried + [a for a in actions if a not in stats]
        skip = {a for a in tried if stats[a].tries >= self.min_tries and stats[a].wins == 0}
        said = ", ".join(
            f"{a} {stats[a].wins}/{stats[a].tries} wins, mean gain {stats[a].mean_gain:+.3f}" for a in tried
        )
        why = f"memory ({self._where()}): {said}"
        if skip:
            why += (
                f"; skip {', '.join(a for a in order if a in skip)}: never beat {self.z:g} SE in "
                f">= {self.min_tries} tries"
            )
        return order, skip, why

    def skip(self, actions: Iterable[str]) -> tuple[list[str], str]:
        """The threshold policy's prior: ``actions`` without those that never beat ``z`` SEs for this
        creator in ``min_tries`` or more tries over the last ``last_k`` runs (order kept); and why."""
        actions = list(actions)
        order, skip, why = self.suggest(actions)
        kept = [a for a in actions if a not in skip]
        self._suggested = {"use": "skip", "skip": [a for a in order if a in skip], "order": kept, "why": why}
        return kept, why

    def reach(self, actions: Iterable[str], steps: int) -> tuple[list[str], list[str]]:
        """(the first ``steps`` of ``actions``: what a run without memory reaches in a budget of ``steps``
        steps; the actions past them that won here before, best past reward first)."""
        actions = list(actions)
        stats = self.stats
        winners = [a for a in actions[steps:] if a in stats and stats[a].wins > 0]
        return actions[:steps], sorted(winners, key=lambda a: -stats[a].mean_reward)

    def window(self, actions: Iterable[str], steps: int) -> tuple[list[str], int, str]:
        """The threshold policy's prior under a budget of ``steps`` refinement steps: (the actions to try, the
        steps the run may take, why).

        A run without memory explores the first ``steps`` of ``actions``; the memory drops from that window
        what :meth:`skip` drops. The steps so freed go to actions past the window only where the memory saw
        them win here (best past reward first); otherwise they are left unspent, so the memory saves their
        time instead of buying a search that the run without it would not make."""
        inside, past_winners = self.reach(actions, steps)
        kept, why = self.skip(inside)
        freed = len(inside) - len(kept)
        winners = past_winners[:freed]
        allowance = steps - freed + len(winners)
        if winners:
            why += f"; the freed step(s) go to {', '.join(winners)}, which won here before"
        elif freed:
            why += f"; {freed} freed step(s) left unspent: no action past them won here before"
        self._suggested.update(order=kept + winners, steps=allowance, why=why)
        return kept + winners, allowance, why

    def combined(self, memory: Memory, actions: Iterable[str] | None = None) -> Memory:
        """The bandit's prior: a :class:`Memory` with, before the run's own steps, up to ``prior_pulls``
        pseudo-steps (index -1) per action of ``actions`` (default all) remembered at least ``min_tries``
        times, whose reward (gain per second) is its past mean. UCB1 then pulls first the arms the memory
        does not know, then the best remembered one; the run's own pulls soon outweigh the memory's."""
        actions = list(self.stats if actions is None else actions)
        known = {
            a: self.stats[a] for a in actions if a in self.stats and self.stats[a].tries >= self.min_tries
        }
        if self._suggested is None:
            _, _, why = self.suggest(actions)
            best = max(known, key=lambda a: known[a].mean_reward, default=None)
            start, stop = None, False
            if best is not None and known[best].mean_reward > 0:
                start, why = best, f"{why}; start with {best}"
            elif known and len(known) == len(actions):
                stop, why = True, f"{why}; no action had a positive reward (gain per second): stop"
            self._suggested = {"use": "bandit", "start": start, "stop": stop, "why": why}
        pseudo = []
        for a, p in known.items():
            for _ in range(min(p.tries, self.prior_pulls)):
                pseudo.append(
                    Step(
                        -1,
                        a,
                        {},
                        None,
                        {},
                        False,
                        p.mean_seconds,
                        f"memory: mean of {p.tries} tries in the last {self.last_k} runs",
                        gain=p.mean_reward * p.mean_seconds,
                    )
                )
        return Memory(steps=pseudo + list(memory.steps))

    def to_trace(self, memory: Memory | None = None) -> dict[str, Any]:
        """For ``trace.json``: where the memory is, what it held for this creator, what it suggested, and
        whether the run's steps (``memory``) followed it (None: nothing was suggested)."""
        out: dict[str, Any] = {
            "path": str(self.store.path),
            "creator": self.creator,
            "request_kind": self.request_kind,
            "last_k": self.last_k,
            "z": self.z,
            "prior": {a: asdict(p) for a, p in self.stats.items()},
            "suggested": self._suggested,
            "followed": None,
        }
        if self._suggested is None or memory is None:
            return out
        done = [s.action for s in memory.steps if s.index > 0 and not getattr(s, "finishing", False)]
        if self._suggested["use"] == "skip" and self._suggested["skip"]:
            tried = [a for a in self._suggested["skip"] if a in done]
            out["followed"] = not tried
            out["how"] = (
                f"tried {', '.join(tried)} although the memory suggested skipping it"
                if tried
                else f"skipped {', '.join(self._suggested['skip'])}"
            )
        elif self._suggested.get("stop"):
            out["followed"] = not done
            out["how"] = "stopped before any action" if not done else f"tried {', '.join(done)}"
        elif self._suggested.get("start") is not None:
            first = done[0] if done else None
            out["followed"] = first == self._suggested["start"]
            out["how"] = f"suggested starting with {self._suggested['start']}; the first action was {first}"
        return out


DEFAULTS = {"enabled": True, "path": FILENAME, "last_k": 10, "min_tries": 2, "prior_pulls": 2}


def _settings(cfg: Any) -> dict[str, Any] | None:
    """The ``memory:`` settings as a dict with defaults filled in; None when memory is off
    (``memory=false``, ``memory.enabled=false``, or no ``memory:`` key)."""
    if cfg is None or cfg is False:
        return None
    if cfg is True:
        cfg = {}
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(cfg):
            cfg = OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # omegaconf is a dependency; plain dicts need nothing from it
        pass
    if not isinstance(cfg, Mapping):
        raise StoreError(
            f"memory={cfg!r} is not allowed: it must be false or a mapping like configs/agent.yaml"
        )
    settings = {**DEFAULTS, **cfg}
    if not settings["enabled"]:
        return None
    for key in ("last_k", "min_tries", "prior_pulls"):
        v = settings[key]
        low = 0 if key == "prior_pulls" else 1
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise StoreError(f"memory.{key}={v!r} is not allowed: it must be an integer >= {low}")
    return settings


def remember(cfg: Any, run_dir: str | Path) -> int | None:
    """Store the finished run in ``run_dir`` when memory is on (``memory:`` settings); its id, else None.
    The run's own outputs are already written: a memory that cannot take it is a warning, not a failure."""
    settings = _settings(cfg)
    if settings is None:
        return None
    try:
        return RunStore(settings["path"]).record_run(run_dir)
    except (StoreError, sqlite3.Error) as err:
        log.warning("memory: this run was not recorded in %s (%s)", settings["path"], err)
        return None


__all__ = [
    "SCHEMA_VERSION",
    "ActionPrior",
    "MemoryPrior",
    "RunStore",
    "StoreError",
    "creator_key",
    "remember",
    "request_kind",
    "trace_rows",
]
