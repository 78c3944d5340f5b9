"""Errors a user can fix, and how the command-line entry points report them.

A :class:`UserError` (a missing or unsafe checkpoint, a bad request, an unreadable input, a bad setting,
data that is not there) is printed as one line saying what is wrong and what to do, and the command exits
with status 2. ``HYDRA_FULL_ERROR=1`` shows the traceback too. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

EXIT_USER_ERROR = 2

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """Something the user can fix; its message says what is wrong and what to do."""


class ConfigError(UserError, ValueError):
    """A setting that cannot work (names the key)."""


class InputError(UserError, ValueError):
    """An input file that cannot be used (missing, undecodable, wrong shape, non-finite, out of range)."""


def find_user_error(err: BaseException | None) -> UserError | None:
    """``err`` itself or the first :class:`UserError` it was raised from (Hydra's instantiate wraps them)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def report_user_errors(fn: F) -> F:
    """Decorate an entry function: user errors become one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            user = find_user_error(err)
            if user is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            message = " ".join(str(user).split())  # one line, whatever the message's own layout
            log.error("%s: %s", type(user).__name__, message)
            print(f"error: {message}", file=sys.stderr, flush=True)
            print("(set HYDRA_FULL_ERROR=1 for the traceback)", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)

    return wrapper  # type: ignore[return-value]


def check_settings(cfg: Any, rules: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    """Raise :class:`ConfigError` naming the first key whose value breaks its rule.

    ``rules`` maps a dotted key to ``(predicate, what it must be)``, e.g.
    ``{"n": (lambda v: v >= 2, "at least 2")}``."""
    from omegaconf import OmegaConf

    for key, (ok, need) in rules.items():
        value = OmegaConf.select(cfg, key)
        try:
            fine = value is not None and bool(ok(value))
        except TypeError:
            fine = False
        if not fine:
            raise ConfigError(f"{key}={value} is not allowed: it must be {need}")


def at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= low
