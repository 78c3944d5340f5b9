"""Errors a user can fix, and how the command-line entry points report them.

A :class:`UserError` (a missing or unsafe checkpoint, a bad request, an unreadable input, a bad setting,
data that is not there) is printed as one line saying what is wrong and what to do, and the command exits
with status 2. ``HYDRA_FULL_ERROR=1`` shows the traceback too. Anything else is a bug and keeps its
traceback.

Mistakes in the command line itself (an unknown config group value or key) are found by Hydra while it
composes the config, before any task function runs: :mod:`artdirector.cli` catches those around
``@hydra.main``, with :func:`raise_hydra_errors`.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

log = logging.getLogger(__name__)

EXIT_USER_ERROR = 2
FULL_ERROR = "HYDRA_FULL_ERROR"
# the user's own HYDRA_FULL_ERROR ("" when unset) while an entry point has set it to 1 (raise_hydra_errors)
_USERS_FULL_ERROR = "ARTDIRECTOR_USERS_HYDRA_FULL_ERROR"

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


def full_error() -> bool:
    """Whether the user asked for tracebacks (``HYDRA_FULL_ERROR=1``), also while :func:`raise_hydra_errors`
    has set the variable for its own use."""
    return os.environ.get(_USERS_FULL_ERROR, os.environ.get(FULL_ERROR, "")) == "1"


def raise_hydra_errors() -> None:
    """Make Hydra raise its errors to the caller of a ``@hydra.main`` function instead of printing them and
    exiting with status 1: it does when ``HYDRA_FULL_ERROR=1``. The user's own setting is kept aside, and
    :func:`restore_full_error` puts it back, which the task function does first (:func:`report_user_errors`):
    from then on Hydra, the job and whatever it starts (DDP ranks, SLURM jobs) see the user's setting."""
    if _USERS_FULL_ERROR not in os.environ:
        os.environ[_USERS_FULL_ERROR] = os.environ.get(FULL_ERROR, "")
    os.environ[FULL_ERROR] = "1"


def restore_full_error() -> None:
    """Undo :func:`raise_hydra_errors` (nothing when it was not called)."""
    if _USERS_FULL_ERROR in os.environ:
        value = os.environ.pop(_USERS_FULL_ERROR)
        if value:
            os.environ[FULL_ERROR] = value
        else:
            os.environ.pop(FULL_ERROR, None)


def exit_user_error(message: str, traceback_hint: bool = True) -> NoReturn:
    """``message`` as one line on stderr (``error: ...``, whatever its own layout), then exit status 2."""
    message = " ".join(str(message).split())
    print(f"error: {message}", file=sys.stderr, flush=True)
    if traceback_hint:
        print(f"(set {FULL_ERROR}=1 for the traceback)", file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)


def report_user_errors(fn: F) -> F:
    """Decorate an entry function: user errors become one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        restore_full_error()  # the task has started: Hydra's own errors are past
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            user = find_user_error(err)
            if user is None or full_error():
                raise
            log.error("%s: %s", type(user).__name__, " ".join(str(user).split()))
            exit_user_error(str(user))

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
