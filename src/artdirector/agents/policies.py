"""Policies: given the run's state and memory, choose the next refinement action or stop."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from artdirector.agents.memory import Memory
from artdirector.agents.refiners import REFINERS
from artdirector.agents.types import Action, Stop, Task


@dataclass
class State:
    task: Task
    fid: float
    target_fid: float
    step: int  # refinement steps taken so far
    has_latents: bool
    # what the creator in use can do (artdirector.creators): actions it cannot do are never offered
    capabilities: frozenset[str] = frozenset({"latent", "critic", "trainable"})
    budget_steps: int | None = None  # the run's refinement-step budget (None: not bounded by steps)


class Policy(Protocol):
    def decide(self, state: State, memory: Memory) -> Action | Stop: ...


def _usable(actions: list[str], state: State) -> list[str]:
    """The actions this creator can do on these samples (latent actions need the samples' latents)."""
    have = set(state.capabilities) - (set() if state.has_latents else {"latent"})
    return [a for a in actions if a not in REFINERS or REFINERS[a].requires <= have]


def _explore_first(
    actions: list[str], params: dict[str, dict[str, Any]], state: State, memory: Memory, why: str
) -> tuple[list[str], Action | Stop | None]:
    """The actions that apply, and the decision while some are untried: each action once, in order."""
    usable = _usable(actions, state)
    if not usable:
        return usable, Stop("no action applies to these samples")
    for name in usable:
        if memory.tries(name) == 0:
            return usable, Action(name, dict(params.get(name, {})), why)
    return usable, None


@dataclass
class RulePolicy:
    """The seed's keyword policy: each task has a fixed plan, applied once, in order.
    ``create`` and ``variations`` deliver what was generated; ``refine`` applies its plan."""

    plans: dict[str, list[str]] = field(
        default_factory=lambda: {"create": [], "variations": [], "refine": ["drs", "langevin"]}
    )
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def decide(self, state: State, memory: Memory) -> Action | Stop:
        done = [s.action for s in memory.refinements]
        for name in _usable(self.plans.get(state.task, []), state):
            if name not in done:
                return Action(
                    name, dict(self.params.get(name, {})), f"step {len(done) + 1} of the '{state.task}' plan"
                )
        return Stop(f"the '{state.task}' plan is complete")


@dataclass
class ThresholdPolicy:
    """Greedy: while FID is above the target, try every action once, then repeat the one with the best
    measured mean FID gain; stop when no action has gained anything (``min_gain``)."""

    actions: list[str] = field(
        default_factory=lambda: ["drs", "langevin", "truncation", "finetune", "guidance", "steps"]
    )
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    min_gain: float = 0.0
    # the memory across runs (agents/store.py MemoryPrior): skip the actions that never beat their SE for
    # this creator in its last K runs, and leave the steps that frees unspent unless an action past them
    # won there before; None: no memory
    prior: Any = None

    def decide(self, state: State, memory: Memory) -> Action | Stop:
        candidates = self.actions
        if self.prior is not None and state.budget_steps is not None:
            candidates, steps, why = self.prior.window(_usable(self.actions, state), state.budget_steps)
            if not candidates or state.step >= steps:
                return Stop(why)
        elif self.prior is not None:
            candidates, why = self.prior.skip(candidates)
            if not candidates:
                return Stop(why)
        actions, first = _explore_first(
            candidates, self.params, state, memory, "trying each action once first"
        )
        if first is not None:
            return first
        gains = {a: memory.mean_gain(a) for a in actions}
        best = max(gains, key=gains.get)
        if gains[best] <= self.min_gain:
            return Stop(f"no action helps: best mean FID gain is {gains[best]:+.3f} ({best})")
        return Action(
            best, dict(self.params.get(best, {})), f"best mean FID gain so far ({gains[best]:+.3f})"
        )


@dataclass
class BanditPolicy:
    """UCB1 (Auer et al. 2002, "Finite-time Analysis of the Multiarmed Bandit Problem") over actions,
    reward = FID improvement per second of compute. Stops when every arm has been pulled ``patience``
    times and none has a positive mean reward."""

    actions: list[str] = field(
        default_factory=lambda: ["drs", "langevin", "truncation", "finetune", "guidance", "steps"]
    )
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    exploration: float = 1.0
    patience: int = 1
    # the memory across runs (agents/store.py MemoryPrior): UCB1 starts from this creator's past mean
    # rewards instead of pulling every arm once, over the arms a run without memory would reach and the
    # remembered winners past them; None: no memory
    prior: Any = None

    def decide(self, state: State, memory: Memory) -> Action | Stop:
        arms = self.actions
        if self.prior is not None:
            if state.budget_steps is not None:
                # the arms a run without memory reaches in its budget, and past them only remembered winners:
                # the memory is to save time, not to buy a wider search
                inside, winners = self.prior.reach(_usable(self.actions, state), state.budget_steps)
                arms = inside + winners
            memory = self.prior.combined(memory, arms)
        actions, first = _explore_first(
            arms, self.params, state, memory, "UCB1: every arm is pulled once first"
        )
        if first is not None:
            return first
        means = {a: memory.mean_gain_per_second(a) for a in actions}
        if all(memory.tries(a) >= self.patience for a in actions) and max(means.values()) <= 0:
            return Stop("no action helps: no arm has a positive mean reward (FID gain per second)")
        t = sum(memory.tries(a) for a in actions)
        # rewards are scaled by the largest seen so the exploration bonus is on a comparable scale
        scale = max((abs(v) for v in means.values()), default=1.0) or 1.0
        ucb = {
            a: means[a] / scale + self.exploration * math.sqrt(2 * math.log(t) / memory.tries(a))
            for a in actions
        }
        best = max(ucb, key=ucb.get)
        return Action(
            best,
            dict(self.params.get(best, {})),
            f"UCB1 {ucb[best]:.3f} (mean reward {means[best]:+.4f} FID/s over {memory.tries(best)} pulls)",
        )
