"""What a Director run remembers: every step, its action, parameters, metrics before and after, the decision
with its uncertainty, and time."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

TRACE_VERSION = 3  # 3: the creator, routing candidates, requested classes; critic logits optional


@dataclass
class Step:
    index: int
    action: str  # "generate" for step 0, then a refinement action
    params: dict[str, Any]
    metrics_before: dict[str, float] | None  # on the selection split
    metrics_after: dict[str, float]  # on the selection split
    accepted: bool  # did the run keep this step's candidate (samples and model)?
    seconds: float
    note: str = ""
    gain: float = 0.0  # FID before - after on the selection split (positive = better); 0 for step 0
    gain_se: float = 0.0  # bootstrap standard error of ``gain``
    decision: str = ""  # the rule applied, with its numbers
    elapsed: float = 0.0  # seconds since the run started, at the end of this step


@dataclass
class Memory:
    """The run's trace; policies read it to decide, the Director writes it out as ``trace.json``."""

    steps: list[Step] = field(default_factory=list)

    def record(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def of(self, action: str) -> list[Step]:
        return [s for s in self.steps if s.action == action]

    def tries(self, action: str) -> int:
        return len(self.of(action))

    def mean_gain(self, action: str) -> float:
        steps = self.of(action)
        return sum(s.gain for s in steps) / len(steps) if steps else math.nan

    def mean_gain_per_second(self, action: str) -> float:
        steps = self.of(action)
        return sum(s.gain / max(s.seconds, 1e-3) for s in steps) / len(steps) if steps else math.nan

    @property
    def refinements(self) -> list[Step]:
        return [s for s in self.steps if s.index > 0]

    def to_list(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.steps]
