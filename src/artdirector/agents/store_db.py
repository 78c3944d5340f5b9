"""The run memory's SQLite file: its schema and version, writing a run's rows, and the queries (runs, the
CSV export, each action's record: the prior a policy reads through :class:`artdirector.agents.store.MemoryPrior`).

Two agents may run at once: the file is in WAL mode (readers never wait for the writer), each connection
waits up to ``timeout`` seconds for another's write lock, and each run's rows go in in one ``BEGIN
IMMEDIATE`` transaction (the write lock is taken first, so a transaction never has to upgrade a read lock
and fail). WAL needs a local filesystem (not NFS).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from artdirector.agents.store_rows import StoreError, now, trace_rows

SCHEMA_VERSION = 1

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
                (str(SCHEMA_VERSION), now()),
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
