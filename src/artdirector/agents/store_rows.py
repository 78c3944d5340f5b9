"""A run's ``trace.json`` as rows of the run memory (:mod:`artdirector.agents.store`).

What a run leaves is its ``trace.json`` (:mod:`artdirector.agents.report`, ``agents/scene.py``);
:func:`trace_rows` turns one into rows, so the store needs nothing from the Director but the trace it already
writes. Per run: the request kind (``class``: a batch of asked-for classes, ``unconditional``, ``scene``),
the creator (its zoo name, or the SHA-256 of its checkpoint), the policy, and the held-out verdict; per
refinement step: the action, its parameters, its FID gain and the bootstrap SE of that gain on the selection
split, and whether the run kept it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from artdirector.errors import UserError

REQUEST_KINDS = ("class", "unconditional", "scene")
# "generate" (the first batch) and "compose" (a scene's one-shot canvas) are where a run starts, not actions
# a policy chooses
STARTS = frozenset({"generate", "compose"})


class StoreError(UserError):
    """The memory file cannot be used (missing, not a database, from a newer artdirector, a bad trace)."""


def creator_key(checkpoint: str | Path | None, name: str | None = None) -> str:
    """How the memory names a creator: its zoo name when the checkpoint is a shipped one (the same on every
    checkout), else ``sha256:<16 hex>`` of the file (a user's checkpoint, whatever its path), else, when the
    file is gone, its name or path as written."""
    from artdirector.io import file_sha256
    from artdirector.runtime import ZOO_DIR

    if checkpoint is None or str(checkpoint) == "":
        return name or "unknown"
    path = Path(str(checkpoint))
    try:
        in_zoo = path.resolve().parent == ZOO_DIR.resolve()
    except OSError:
        in_zoo = False
    if in_zoo:
        return path.stem
    if path.is_file():
        return "sha256:" + file_sha256(path)[:16]
    return name or str(checkpoint)


def request_kind(classes: Iterable[int] | None = None, scene: bool = False) -> str:
    """``scene`` (named objects on a canvas), ``class`` (a batch of asked-for classes) or ``unconditional``."""
    return "scene" if scene else ("class" if classes else "unconditional")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _flag(value: Any) -> int | None:
    return None if value is None else int(bool(value))


def trace_rows(
    trace: Mapping[str, Any], run_dir: str | Path | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A Director's or a scene director's ``trace.json`` as ``(run row, action rows)``. ``run_dir``: where
    the run wrote it (default: the trace's ``config.paths.output_dir`` when it states one)."""
    if not isinstance(trace, Mapping) or "request" not in trace or "version" not in trace:
        raise StoreError("not a run trace (no 'version'/'request'): pass the trace.json a run wrote")
    if run_dir is None:
        run_dir = ((trace.get("config") or {}).get("paths") or {}).get("output_dir")
    scene = str(trace["version"]).startswith("scene/")
    req = trace["request"]
    run: dict[str, Any] = {
        "digest": hashlib.sha256(_json(trace).encode()).hexdigest(),
        "created": str(trace.get("created") or now()),
        "recorded": now(),
        "run_dir": str(run_dir) if run_dir is not None else None,
        "request": str(req.get("text", "")),
        "task": req.get("task"),
        "trace_version": str(trace["version"]),
    }
    if scene:
        return _scene_rows(trace, run), _scene_actions(trace)
    classes = req.get("classes") or None
    creator = (trace.get("model") or {}).get("creator") or {}
    verdict = trace.get("verdict") or {}
    final = (trace.get("final") or {}).get("metrics") or {}
    run.update(
        request_kind=request_kind(classes),
        classes=_json(list(classes)) if classes else None,
        creator=creator_key(creator.get("checkpoint"), creator.get("name")),
        checkpoint=creator.get("checkpoint"),
        policy=trace.get("policy"),
        evaluator=(trace.get("evaluator") or {}).get("feature_network"),
        n=trace.get("n"),
        z=_num(((trace.get("config") or {}).get("decision") or {}).get("z")),
        stop=(trace.get("stop") or {}).get("reason"),
        target_met=_flag((trace.get("stop") or {}).get("target_met")),
        final_fid=_num(final.get("fid")),
        verdict_held_out=_flag(verdict.get("held_out")) if verdict else None,
        verdict_raw_fid=_num((verdict.get("raw") or {}).get("fid")),
        verdict_directed_fid=_num((verdict.get("directed") or {}).get("fid")),
        verdict_gain=_num(verdict.get("gain")),
        verdict_gain_se=_num(verdict.get("gain_se")),
        passed=None,
        seconds=_num(trace.get("seconds")),
    )
    actions = []
    for s in trace.get("steps") or []:
        if s.get("action") in STARTS:
            continue
        actions.append(
            {
                "step": int(s["index"]),
                "action": str(s["action"]),
                "params": _json(s.get("params") or {}),
                "gain": _num(s.get("gain")),
                "gain_se": _num(s.get("gain_se")),
                "accepted": _flag(s.get("accepted")),
                "finishing": int(bool(s.get("finishing", False))),
                "fid_before": _num((s.get("metrics_before") or {}).get("fid")),
                "fid_after": _num((s.get("metrics_after") or {}).get("fid")),
                "seconds": _num(s.get("seconds")),
                "decision": s.get("decision") or "",
            }
        )
    return run, actions


def _scene_rows(trace: Mapping[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    final = trace.get("final") or {}
    by_name = {c.get("name"): c for cs in (trace.get("creators") or {}).values() for c in cs}
    used = sorted({d.get("creator") for d in trace.get("drawings") or [] if d.get("creator")})
    names = used or sorted(n for n in by_name if n)
    keys = [creator_key((by_name.get(n) or {}).get("checkpoint"), n) for n in names]
    run.update(
        request_kind="scene",
        classes=None,
        creator="+".join(keys) or "unknown",
        checkpoint=_json([(by_name.get(n) or {}).get("checkpoint") for n in names]),
        policy="SceneDirector",
        evaluator=(trace.get("detector") or {}).get("name"),
        n=None,
        z=None,
        stop=final.get("stop"),
        target_met=_flag(final.get("passed")),
        final_fid=None,
        verdict_held_out=None,
        verdict_raw_fid=None,
        verdict_directed_fid=None,
        verdict_gain=None,
        verdict_gain_se=None,
        passed=_flag(final.get("passed")),
        seconds=_num(final.get("seconds")),
    )
    return run


def _scene_actions(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A scene's repair actions (redraw, replan) in order; a round's verdict decides the next round's, so
    ``accepted`` says whether the canvas passed after the round the action belongs to."""
    out, step = [], 0
    for rnd in trace.get("rounds") or []:
        passed = (rnd.get("verdict") or {}).get("passed")
        for a in rnd.get("actions") or []:
            if a.get("action") in STARTS:
                continue
            step += 1
            out.append(
                {
                    "step": step,
                    "action": str(a.get("action")),
                    "params": _json({k: v for k, v in a.items() if k not in ("action", "why")}),
                    "gain": None,
                    "gain_se": None,
                    "accepted": _flag(passed),
                    "finishing": 0,
                    "fid_before": None,
                    "fid_after": None,
                    "seconds": None,
                    "decision": str(a.get("why") or ""),
                }
            )
    return out


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
