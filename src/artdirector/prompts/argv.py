"""The request on the command line, made safe for Hydra.

``python scripts/agent.py "a 3, a 5 and a 9" n=100`` (the request first, before any override) and
``python scripts/agent.py request="a 3, a 5 and a 9"`` both reach the agent as that sentence: Hydra's override
parser would read a comma as a sweep, and quotes, brackets, ``=`` and ``${`` as its own syntax, so the request
is rewritten into one quoted override value that reads back as exactly what was typed.
"""

from __future__ import annotations

import re

from artdirector.prompts import PromptError, parse

# a Hydra override: key=value, +key=value, ++key=value, key@package=value, ~key[=value]
_OVERRIDE = re.compile(r"^(?:~|\+\+?)?[A-Za-z_][\w\-/]*(?:\.[A-Za-z_][\w\-]*)*(?:@[\w.:/\-]*)?(?:=|$)")
_REQUEST = re.compile(r"^(\+{0,2})request=(.*)$", re.S)
_MULTIRUN = ("-m", "--multirun")
# Hydra's flags that take the next argument as their value (``--cfg job``): that value is not a request word
_VALUE_FLAGS = frozenset(
    {"-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir"}
    | {"--experimental-rerun", "-i", "--info"}
)


def hydra_quote(text: str) -> str:
    """``text`` as one quoted Hydra override value that Hydra and OmegaConf read back as exactly ``text``.

    OmegaConf reads ``${...}`` as an interpolation: ``\\${`` keeps it literal, with the backslashes right
    before it doubled. Hydra un-escapes only backslashes that precede a quote (inside, or the closing one):
    those are doubled and the quote itself escaped; every other backslash stays as typed."""
    text = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", text)
    q = '"' if "'" in text and '"' not in text else "'"
    body = re.sub(rf"(\\*){q}", lambda m: m.group(1) * 2 + "\\" + q, text)
    body = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, body)
    return q + body + q


def _is_override(arg: str) -> bool:
    return bool(_OVERRIDE.match(arg)) and (arg.startswith("~") or "=" in arg)


def _hydra_string(value: str) -> str | None:
    """What a value the user quoted for Hydra themselves reads as (``request='"a 3, a 5"'``: ``a 3, a 5``);
    None when it is not one quoted string."""
    if len(value) < 2 or value[0] not in "'\"" or value[-1] != value[0]:
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType
    from hydra.errors import HydraException

    try:
        override = OverridesParser.create().parse_override("request=" + value)
    except HydraException:
        return None
    text = override.value()
    return text if override.value_type == ValueType.ELEMENT and isinstance(text, str) else None


def request_argv(argv: list[str]) -> list[str]:
    """``argv`` (``sys.argv``: the program, then its arguments) with the request made a Hydra-safe override.

    Words that are neither an override nor a flag (nor a flag's value, ``--cfg job``) are the request, first or
    after the overrides (``agent.py "a 3, a 5 and a 9" n=100``, ``agent.py input=<run> "make the 7 bigger"``;
    unquoted words in a row are joined: ``agent.py draw a 7``); they become ``request='...'`` in their place. A
    ``request=`` value is quoted the same way, unless it is already one quoted Hydra string, or the run is a
    ``--multirun``, where a comma in ``request=a,b`` is Hydra's sweep. The request is read by the grammar
    here, so one it cannot read is refused before anything heavy is imported.

    Raises :class:`~artdirector.prompts.PromptError` (a user error: one line, exit 2 through
    ``artdirector.errors.report_user_errors``) for an unreadable request, or one given twice."""
    if not argv:
        return []
    program, rest = argv[0], list(argv[1:])
    multirun = any(a in _MULTIRUN for a in rest)
    parts: list[str | list[str]] = []  # the arguments, each run of consecutive request words as one list
    after_flag = False
    for arg in rest:
        if after_flag or arg.startswith("-") or _is_override(arg):
            parts.append(arg)
        elif parts and isinstance(parts[-1], list):
            parts[-1].append(arg)
        else:
            parts.append([arg])
        after_flag = arg in _VALUE_FLAGS
    out, texts = [program], []
    for arg in parts:
        if isinstance(arg, list):
            texts.append(" ".join(arg))
            out.append("request=" + hydra_quote(texts[-1]))
            continue
        m = _REQUEST.match(arg)
        if m is None or multirun:
            out.append(arg)
            continue
        plus, value = m.groups()
        quoted = _hydra_string(value)
        texts.append(value if quoted is None else quoted)
        out.append(arg if quoted is not None else f"{plus}request={hydra_quote(value)}")
    if len(texts) > 1:
        raise PromptError(
            f"the request is given {len(texts)} times ({', '.join(map(repr, texts))}): give it once, either "
            'first (agent.py "a 3, a 5 and a 9" n=100) or as request="..."'
        )
    if texts and texts[0].strip():
        check(texts[0], has_input=any(re.match(r"^\+{0,2}input=.", a) for a in rest))
    return out


def check(text: str, has_input: bool) -> None:
    """Refuse a request neither grammar reads: with an ``input=``, an edit of a scene run ("make the 7
    bigger", :mod:`artdirector.prompts.edits`) or a request; without one, a request, and an edit is refused
    saying it needs the scene run it edits."""
    from artdirector.prompts.edits import looks_like_edit, parse_edit

    try:
        parse(text)
        return
    except PromptError as err:
        refused = err
    try:
        parse_edit(text)
    except PromptError as edit_err:
        if has_input and looks_like_edit(text):
            raise edit_err from None
        raise refused from None
    if not has_input:
        raise PromptError(
            f"{text!r} edits a scene: give the folder of the scene run it edits, e.g. "
            f'agent.py input=outputs/<date>/<time> request="{text}"'
        )
