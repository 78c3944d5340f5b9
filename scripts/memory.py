"""The Director's memory across runs (``outputs/memory.sqlite``; artdirector.agents.store).

    python scripts/memory.py list [--limit 20] [--last-k 10]    # recent runs, then each creator's action stats
    python scripts/memory.py export --format json|csv [--out FILE]  # every run (json) or action (csv)
    python scripts/memory.py add RUN_DIR [RUN_DIR ...]          # store finished runs (their trace.json)
    python scripts/memory.py clear --yes                        # delete every run (the file and schema stay)

``--path`` (before or after the command) reads another file; the default is where a run started in this
folder writes it (``${paths.outputs_root}/memory.sqlite``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from pathlib import Path

from artdirector.agents.store import FILENAME, RunStore, StoreError
from artdirector.errors import report_user_errors
from artdirector.io import write_text

DEFAULT_PATH = Path("outputs") / FILENAME


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:+.{digits}f}" if isinstance(x, float) else str(x)


def _verdict(run: dict) -> str:
    if run["request_kind"] == "scene":
        return {1: "canvas passed", 0: "canvas failed"}.get(run["passed"], "-")
    if run["verdict_gain"] is None:
        return "no held-out verdict"
    return (
        f"held-out FID {run['verdict_raw_fid']:.2f} -> {run['verdict_directed_fid']:.2f} "
        f"(gain {run['verdict_gain']:+.2f} ± {run['verdict_gain_se']:.2f})"
    )


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def cmd_list(store: RunStore, args: argparse.Namespace) -> str:
    runs = store.runs(args.limit)
    if not runs:
        return f"{store.path}: no runs recorded"
    rows = []
    for r in runs:
        acts = " ".join(
            f"{a['action']}{'+' if a['accepted'] else '-' if a['accepted'] is not None else ''}"
            for a in r["actions"]
        )
        rows.append(
            [
                r["id"],
                r["created"],
                r["request_kind"],
                r["creator"],
                r["policy"] or "-",
                acts or "-",
                _verdict(r),
            ]
        )
    out = [
        f"{store.path}: {store.count()} runs; the {len(runs)} most recent (action+ kept, action- rejected):",
        _table(rows, ["id", "created", "kind", "creator", "policy", "actions", "verdict"]),
        "",
        f"per creator and request kind, over each one's last {args.last_k} runs (wins: gain > {args.z:g} SE):",
    ]
    stats = store.stats(args.last_k, args.z)
    out.append(
        _table(
            [
                [
                    s["creator"],
                    s["request_kind"],
                    s["action"],
                    s["tries"],
                    s["wins"],
                    _fmt(s["mean_gain"]),
                    _fmt(s["mean_reward"], 4),
                    s["last_used"],
                ]
                for s in stats
            ],
            ["creator", "kind", "action", "tries", "wins", "mean gain", "gain/s", "last used"],
        )
        if stats
        else "(no action with a measured gain yet)"
    )
    return "\n".join(out)


def cmd_export(store: RunStore, args: argparse.Namespace) -> str | None:
    if args.format == "json":
        text = json.dumps(store.runs(), indent=2) + "\n"
    else:
        rows = store.action_rows()
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        text = buf.getvalue()
    if args.out is None:
        return text.rstrip("\n")
    write_text(args.out, text)
    return f"wrote {args.out} ({store.count()} runs, {args.format})"


def cmd_add(store: RunStore, args: argparse.Namespace) -> str:
    ids = [store.record_run(d) for d in args.run_dirs]
    return f"{store.path}: stored {len(ids)} run(s) (ids {', '.join(map(str, ids))}); {store.count()} in all"


def cmd_clear(store: RunStore, args: argparse.Namespace) -> str:
    if not args.yes:
        raise StoreError(
            f"clear deletes all {store.count()} runs in {store.path}: add --yes to confirm "
            "(or export them first: memory.py export --out FILE)"
        )
    return f"{store.path}: deleted {store.clear()} runs"


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--path",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"the memory file (default: {DEFAULT_PATH})",
    )
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common]
    )
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", parents=[common], help="recent runs and each creator's action stats")
    ls.add_argument("--limit", type=int, default=20, help="runs to show (newest first)")
    ls.add_argument("--last-k", type=int, default=10, help="runs per creator the stats cover")
    ls.add_argument("--z", type=float, default=2.0, help="a win: gain > z x its SE")
    ex = sub.add_parser("export", parents=[common], help="every run (json) or every action (csv)")
    ex.add_argument("--format", choices=("json", "csv"), default="json")
    ex.add_argument("--out", type=Path, default=None, help="a file (default: standard output)")
    add = sub.add_parser("add", parents=[common], help="store finished runs from their trace.json")
    add.add_argument("run_dirs", nargs="+", type=Path)
    cl = sub.add_parser("clear", parents=[common], help="delete every run")
    cl.add_argument("--yes", action="store_true", help="confirm")
    return p


@report_user_errors
def main(argv: list[str] | None = None) -> None:
    # the output is the answer: no log records on the console (a user error is still one "error:" line)
    logging.getLogger("artdirector").addHandler(logging.NullHandler())
    args = parser().parse_args(argv)
    path = getattr(args, "path", DEFAULT_PATH)
    store = RunStore(path, create=args.command == "add")
    out = {"list": cmd_list, "export": cmd_export, "add": cmd_add, "clear": cmd_clear}[args.command](
        store, args
    )
    if out:
        print(out, file=sys.stdout)


if __name__ == "__main__":
    main()
