"""The Director's memory across runs: one SQLite file (``${paths.outputs_root}/memory.sqlite``) with a row
per run and a row per action it tried, read back as a prior for the policies.

What a run leaves is its ``trace.json`` (:mod:`artdirector.agents.report`, ``agents/scene.py``);
:func:`trace_rows` turns one into rows, so the store needs nothing from the Director but the trace it already
writes. Per run: the request kind (``class``: a batch of asked-for classes, ``unconditional``, ``scene``),
the creator (its zoo name, or the SHA-256 of its checkpoint), the policy, and the held-out verdict; per
refinement step: the action, its parameters, its FID gain and the bootstrap SE of that gain on the selection
split, and whether the run kept it.

Two agents may run at once: the file is in WAL mode (readers never wait for the writer), each connection
waits up to ``timeout`` seconds for another's write lock, and each run's rows go in in one ``BEGIN
IMMEDIATE`` transaction (the write lock is taken first, so a transaction never has to upgrade a read lock
and fail). WAL needs a local filesystem (not NFS).

:class:`MemoryPrior` is what a policy reads: for the creator and request kind of this run, each action's
record over the last ``last_k`` runs; the threshold policy drops an action that never beat ``z`` SEs there
(:meth:`MemoryPrior.skip`), the bandit starts from the past mean rewards (:meth:`MemoryPrior.combined`), and
:meth:`MemoryPrior.to_trace` states what the memory suggested and whether the run followed it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artdirector.errors import UserError

if TYPE_CHECKING:
    from artdirector.agents.memory import Memory

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FILENAME = "memory.sqlite"
REQUEST_KINDS = ("class", "unconditional", "scene")
# "generate" (the first batch) and "compose" (a scene's one-shot canvas) are where a run starts, not actions
# a policy chooses
STARTS = frozenset({"generate", "compose"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,      -- SHA-256 of the trace: recording one trace twice adds nothing
    created TEXT NOT NULL,            -- when the run wrote its trace (UTC, ISO 8601)
    recorded TEXT NOT NULL,           -- when it was stored here
    run_dir TEXT,
    request TEXT NOT NULL,
    request_kind TEXT NOT NULL CHECK (request_kind IN ('class', 'unconditional', 'scene')),
    task TEXT,
    classes TEXT,                     -- JSON list, or NULL: any class
    creator TEXT NOT NULL,            -- zoo name, or sha256:<16 hex> of the checkpoint; scenes: names joined by +
    checkpoint TEXT,
    policy TEXT,
    evaluator TEXT,                   -- the feature network's identity: gains under different ones differ
    n INTEGER,
    z REAL,                           -- the decision rule's z, when the trace's config states it
    stop TEXT,
    target_met INTEGER,
    final_fid REAL,                   -- selection split
    verdict_held_out INTEGER,         -- the held-out replay (report split); NULL without one
    verdict_raw_fid REAL,
    verdict_directed_fid REAL,
    verdict_gain REAL,
    verdict_gain_se REAL,
    passed INTEGER,                   -- scenes: the final canvas passed its verification
    seconds REAL,
    trace_version TEXT
);
CREATE TABLE IF NOT EXISTS actions (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    action TEXT NOT NULL,
    params TEXT NOT NULL,             -- JSON
    gain REAL,                        -- FID before - after on the selection split; NULL for scene actions
    gain_se REAL,
    accepted INTEGER,
    finishing INTEGER NOT NULL DEFAULT 0,  -- asked for by the request, judged by its own check, not by gain
    fid_before REAL,
    fid_after REAL,
    seconds REAL,
    decision TEXT,
    PRIMARY KEY (run_id, step)
);
CREATE INDEX IF NOT EXISTS runs_by_creator ON runs (creator, request_kind, created);
"""


class StoreError(UserError):
    """The memory file cannot be used (missing, not a database, from a newer artdirector, a bad trace)."""


# ---- a trace as rows ------------------------------------------------------------------------------------
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
        "created": str(trace.get("created") or _now()),
        "recorded": _now(),
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---- the store ------------------------------------------------------------------------------------------
@dataclass
class ActionPrior:
    """One action's record for a creator and request kind over the last K runs (selection-split gains)."""

    action: str
    tries: int  # steps that tried it
    wins: int  # steps whose FID gain beat z SEs of that gain
    mean_gain: float  # FID
    mean_reward: float  # FID gain per second of compute: the bandit's reward
    mean_seconds: float
    runs: int  # runs that tried it
    last_used: str  # the latest such run's ``created``


class RunStore:
    """The memory file. ``RunStore(path)`` creates it (and its folder) when missing; ``create=False`` (the
    CLI reading it) raises :class:`StoreError` instead."""

    def __init__(self, path: str | Path, create: bool = True, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        if not self.path.is_file():
            if not create:
                raise StoreError(
                    f"no memory at {self.path}: runs write it when memory is on (memory.path in "
                    "configs/agent.yaml); pass --path to read another"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init()

    def _connect(self) -> sqlite3.Connection:
        # autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT below
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        # with WAL, NORMAL never corrupts the file; a power cut may lose the last commits (runs, not outputs)
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _init(self) -> None:
        """WAL mode, the tables, the schema version; a newer version or a file that is not ours is refused.
        A file already at this version is only read (no write lock)."""
        try:
            with closing(self._connect()) as conn:
                if self._version(conn) == SCHEMA_VERSION:
                    return
                _retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone(), self.timeout)
            self._write(self._create)
        except sqlite3.DatabaseError as err:
            if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
                raise
            raise StoreError(
                f"{self.path} is not a readable memory database ({err}): move it aside or delete it (the "
                "next run starts a new one), or set memory=false"
            ) from err

    def _version(self, conn: sqlite3.Connection) -> int | None:
        """The file's schema version; None for an empty file."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return None
        row = None
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise StoreError(
                f"{self.path} is an SQLite file but not an artdirector memory (no schema version): pass "
                "another path"
            )
        if int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has memory schema version {row[0]}, newer than this artdirector reads "
                f"({SCHEMA_VERSION}): upgrade artdirector, or pass another path"
            )
        return int(row[0])

    def _create(self, conn: sqlite3.Connection) -> None:
        """The tables and the version (inside the write lock: another process may have made them since)."""
        version = self._version(conn)
        for statement in _SCHEMA.split(";\n"):  # not executescript: it would commit first
            if statement.strip():
                conn.execute(statement)
        if version is None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?), ('created', ?)",
                (str(SCHEMA_VERSION), _now()),
            )

    def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """``fn(conn)`` in one transaction that takes the write lock first (BEGIN IMMEDIATE: a transaction
        that starts reading and then writes can fail at once when another writer got in between)."""

        def attempt(conn: sqlite3.Connection) -> Any:
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return out

        with closing(self._connect()) as conn:
            return _retry(lambda: attempt(conn), self.timeout)

    @property
    def schema_version(self) -> int:
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    # -- writing
    def record(self, trace: Mapping[str, Any], run_dir: str | Path | None = None) -> int:
        """Store one run (its trace) and its actions in one transaction; returns the run's id (the existing
        one when this very trace is already stored)."""
        run, actions = trace_rows(trace, run_dir)

        def write(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT id FROM runs WHERE digest = ?", (run["digest"],)).fetchone()
            if row is not None:
                return int(row[0])
            # the column names are trace_rows' keys, never user text
            cur = conn.execute(
                f"INSERT INTO runs ({', '.join(run)}) VALUES ({', '.join('?' * len(run))})",
                list(run.values()),
            )
            for a in actions:
                conn.execute(
                    f"INSERT INTO actions (run_id, {', '.join(a)}) VALUES (?, {', '.join('?' * len(a))})",
                    [cur.lastrowid, *a.values()],
                )
            return int(cur.lastrowid)

        return self._write(write)

    def record_run(self, run_dir: str | Path) -> int:
        """Store the run whose ``trace.json`` is in ``run_dir``."""
        path = Path(run_dir) / "trace.json"
        try:
            trace = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise StoreError(f"no trace.json in {run_dir}: pass the folder of a finished run") from err
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise StoreError(f"{path} is not valid JSON ({err}): the run may not have finished") from err
        return self.record(trace, run_dir=Path(run_dir))

    def clear(self) -> int:
        """Delete every run and action (the schema stays); returns how many runs were deleted."""

        def wipe(conn: sqlite3.Connection) -> int:
            n = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            conn.execute("DELETE FROM actions")
            conn.execute("DELETE FROM runs")
            return int(n)

        return self._write(wipe)

    # -- reading
    def count(self) -> int:
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, each with its ``actions`` (in step order)."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN")  # one snapshot: every run with all of its actions, whoever writes meanwhile
            rows = conn.execute(
                "SELECT * FROM runs ORDER BY created DESC, id DESC" + (" LIMIT ?" if limit else ""),
                (limit,) if limit else (),
            ).fetchall()
            out = []
            for r in rows:
                run = dict(r)
                run["actions"] = [
                    {**dict(a), "params": json.loads(a["params"])}
                    for a in conn.execute(
                        "SELECT * FROM actions WHERE run_id = ? ORDER BY step",
                        (r["id"],),
                    )
                ]
                out.append(run)
            conn.execute("COMMIT")
        return out

    def action_rows(self) -> list[dict[str, Any]]:
        """One row per action with its run's columns (``run_*``): the CSV export."""
        with closing(self._connect()) as conn:
            names = [r["name"] for r in conn.execute("PRAGMA table_info(runs)") if r["name"] != "digest"]
            run_cols = ", ".join(f"r.{c} AS run_{c}" for c in names)
            return [
                dict(r)
                for r in conn.execute(
                    f"SELECT {run_cols}, a.* FROM actions a JOIN runs r ON r.id = a.run_id "
                    "ORDER BY r.created DESC, r.id DESC, a.step"
                )
            ]

    def prior(
        self,
        creator: str,
        request_kind: str,
        last_k: int = 10,
        z: float = 2.0,
        evaluator: str | None = None,
    ) -> dict[str, ActionPrior]:
        """Per action, over the last ``last_k`` runs of ``creator`` on ``request_kind`` requests (and with
        ``evaluator``'s features, when given): tries, wins (FID gain > ``z`` x its SE), mean gain, mean
        reward (gain per second), last used. Finishing actions and actions without a measured gain (scenes)
        are not counted: the request, not the gain, decides them."""
        where, args = "creator = ? AND request_kind = ?", [creator, request_kind]
        if evaluator is not None:
            where += " AND evaluator = ?"
            args.append(evaluator)
        with closing(self._connect()) as conn:
            rows = conn.execute(
                f"""SELECT r.id AS run, r.created, a.action, a.gain, a.gain_se, a.seconds
                    FROM actions a JOIN (SELECT id, created FROM runs WHERE {where}
                                         ORDER BY created DESC, id DESC LIMIT ?) r ON r.id = a.run_id
                    WHERE a.finishing = 0 AND a.gain IS NOT NULL""",
                [*args, int(last_k)],
            ).fetchall()
        by: dict[str, list[sqlite3.Row]] = {}
        for r in rows:
            by.setdefault(r["action"], []).append(r)
        out = {}
        for action, rs in sorted(by.items()):
            secs = [max(r["seconds"] or 0.0, 1e-3) for r in rs]
            out[action] = ActionPrior(
                action=action,
                tries=len(rs),
                wins=sum(r["gain"] > z * (r["gain_se"] or 0.0) and r["gain"] > 0 for r in rs),
                mean_gain=sum(r["gain"] for r in rs) / len(rs),
                mean_reward=sum(r["gain"] / s for r, s in zip(rs, secs, strict=True)) / len(rs),
                mean_seconds=sum(secs) / len(secs),
                runs=len({r["run"] for r in rs}),
                last_used=max(r["created"] for r in rs),
            )
        return out

    def stats(self, last_k: int = 10, z: float = 2.0) -> list[dict[str, Any]]:
        """:meth:`prior` for every creator and request kind in the file (``memory.py list``)."""
        with closing(self._connect()) as conn:
            pairs = conn.execute(
                "SELECT creator, request_kind, COUNT(*) AS runs FROM runs GROUP BY creator, request_kind "
                "ORDER BY creator, request_kind"
            ).fetchall()
        return [
            {"creator": c, "request_kind": k, "runs": n, **asdict(p)}
            for c, k, n in pairs
            for p in self.prior(c, k, last_k, z).values()
        ]


def _retry(fn, timeout: float):
    """``fn()``, again after a short sleep while another connection holds a lock SQLite's busy handler does
    not wait for (switching to WAL, creating the schema), for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as err:
            lock = "locked" in str(err) or "busy" in str(err)
            if not lock or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


# ---- what a policy reads --------------------------------------------------------------------------------
@dataclass
class MemoryPrior:
    """The memory as one run's policy sees it: the record of ``creator`` on ``request_kind`` requests over
    the last ``last_k`` runs, read once, when first asked.

    - :meth:`skip` (the threshold policy): drop the actions tried at least ``min_tries`` times there that
      never beat ``z`` SEs of their gain.
    - :meth:`combined` (the bandit): the run's memory with up to ``prior_pulls`` pseudo-pulls per action
      remembered ``min_tries`` times or more, at its past mean reward, so UCB1 starts from what worked
      instead of pulling every arm once.
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

    def combined(self, memory: Memory, actions: Iterable[str] | None = None) -> Memory:
        """The bandit's prior: a :class:`Memory` with, before the run's own steps, up to ``prior_pulls``
        pseudo-steps (index -1) per action of ``actions`` (default all) remembered at least ``min_tries``
        times, whose reward (gain per second) is its past mean. UCB1 then pulls first the arms the memory
        does not know, then the best remembered one; the run's own pulls soon outweigh the memory's."""
        from artdirector.agents.memory import Memory, Step

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
