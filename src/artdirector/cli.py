"""The command-line entry points: ``artdirector-train`` (``python scripts/train.py``), ``artdirector-evaluate``,
``artdirector-prepare`` and ``artdirector-agent``.

Each runs its module's ``@hydra.main`` function. Hydra finds a mistake in the command line itself (an unknown
config group value or key, an override it cannot parse) while it composes the config, before any task function
runs, and would print several lines and exit with status 1; here it is one line saying what to write instead
(the valid choices of a group and the closest one, the closest key), and exit status 2, like every other user
error (:mod:`artdirector.errors`). ``HYDRA_FULL_ERROR=1`` shows Hydra's own report.

Each task module is imported only when its command runs.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable
from typing import Any

from artdirector.errors import (
    exit_user_error,
    find_user_error,
    full_error,
    raise_hydra_errors,
    restore_full_error,
)

MAX_LISTED = 12  # keys or choices named in one line


def _closest(word: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def _listed(choices: list[str]) -> str:
    shown = ", ".join(choices[:MAX_LISTED])
    return shown + (f", ... ({len(choices)} in all)" if len(choices) > MAX_LISTED else "")


def hydra_error_line(err: BaseException) -> str | None:
    """One line for an error Hydra raises while reading the command line and composing the config, saying what
    to write instead; None for anything else."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    if isinstance(err, MissingConfigException) and err.options is not None and "/" in err.missing_cfg_file:
        group, name = err.missing_cfg_file.rsplit("/", 1)
        options = sorted(err.options)
        close = _closest(name, options)
        fix = (
            f"{group}={close} (the choices: {_listed(options)})"
            if close
            else f"{group}=<one of {_listed(options)}>"
        )
        return f"{group}={name}: there is no {group} config named {name!r}; write {fix}"
    if isinstance(err, OverrideParseException):
        reason = str(err).splitlines()[1:2] or ["cannot be parsed"]
        return (
            f"cannot read the override {err.override!r} ({reason[0].strip()}); write key=value, "
            "group=option, +new_key=value or ~key"
        )
    if not isinstance(err, ConfigCompositionException):
        return None
    cause = err.__cause__
    if isinstance(cause, ConfigAttributeError | ConfigKeyError) and cause.parent_node is not None:
        key, full_key = str(cause.key), str(cause.full_key)
        # Hydra's message ends "To append to your config use +<the override as typed>"
        typed = re.search(r"use \+(\S+)", str(err))
        typed_key, _, value = (typed.group(1) if typed else full_key).partition("=")
        keys = sorted(str(k) for k in cause.parent_node if not str(k).startswith("_"))
        parent = full_key[: -len(key) - 1] if full_key.endswith(f".{key}") else ""
        where = f"{parent} has no key {key!r}" if parent else f"there is no config key or group {key!r}"
        said = f"{typed_key}={value}" if value else typed_key
        close = _closest(key, keys)
        if close and typed_key.startswith(full_key):
            fixed = (f"{parent}.{close}" if parent else close) + typed_key[len(full_key) :]
            return f"{said}: {where}; write {fixed}" + (f"={value}" if value else "")
        add = f"; +{typed_key}={value} adds it" if value else ""
        return f"{said}: {where} (its keys: {_listed(keys)}){add}"
    taken = re.search(r"An item is already at '([^']+)'.*remove \+ prefix: '([^']+)'", str(err), re.DOTALL)
    if taken:
        key, plain = taken.groups()
        return f"+{plain}: {key} is already in the config; write {plain} (or ++{plain} to add or override)"
    return " ".join(str(err).split()) + (f" ({' '.join(str(cause).split())})" if cause is not None else "")


def run(main: Callable[[], Any]) -> Any:
    """Call a ``@hydra.main`` function (it reads ``sys.argv``) with Hydra's command-line errors, and user errors
    raised before its task starts, as one line and exit status 2."""
    raise_hydra_errors()
    try:
        return main()
    except Exception as err:
        if full_error():
            raise
        line = hydra_error_line(err)
        if line is None:
            user = find_user_error(err)
            if user is None:
                raise
            line = str(user)
        exit_user_error(line)
    finally:
        restore_full_error()


def train() -> Any:
    from artdirector.train import main

    return run(main)


def evaluate() -> Any:
    from artdirector.evaluate import main

    return run(main)


def prepare() -> Any:
    from artdirector.prepare import main

    return run(main)


def agent() -> Any:
    """The agent, with the request made one Hydra-safe override first (a free-text request given first, commas,
    quotes: :func:`artdirector.prompts.argv.request_argv`), which also refuses one the grammar cannot read
    before anything heavy is imported."""

    def main() -> Any:
        from artdirector.prompts.argv import request_argv

        sys.argv = request_argv(sys.argv)
        from artdirector.agent import main as agent_main

        return agent_main()

    return run(main)
