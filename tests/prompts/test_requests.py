"""Requests as people write them: the phrasings a new user types and the structured request each gives,
the refusals (an unknown word is named with what the zoo draws and the closest known words, at once, before
any model or torch import), and the request on the command line (commas, quotes, the request first)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artdirector.agents.types import RequestError, interpret
from artdirector.prompts import PromptError, parse
from artdirector.prompts.argv import hydra_quote, request_argv
from artdirector.prompts.words import DATASETS
from helpers import run_script

REPO = Path(__file__).resolve().parents[2]


def _structure(text: str) -> dict:
    """What a request asks for, in short: objects (name, count, size, style words), relations, layout."""
    p = parse(text)
    return {
        "objects": [(o.name, o.count, o.size, o.style) for o in p.objects],
        "relations": [(r.subject, r.relation, r.object) for r in p.relations],
        "layout": p.layout,
        "scene": p.is_scene,
    }


def _lay(kind, rows=None, cols=None):
    return {"kind": kind} if rows is None else {"kind": kind, "rows": rows, "cols": cols}


THREE = [("3", 1, None, []), ("5", 1, None, []), ("9", 1, None, [])]
SEVEN_FOUR = [("7", 1, None, []), ("4", 1, None, [])]
FIVE_ZERO = [("5", 1, None, []), ("0", 1, None, [])]
FOUR_FIVE_SIX = [("4", 1, None, []), ("5", 1, None, []), ("6", 1, None, [])]


@pytest.mark.parametrize(
    "text, objects, relations, layout",
    [
        # lists with commas (the Oxford comma too)
        ("a 3, a 5 and a 9", THREE, [], None),
        ("a 3, a 5, and a 9", THREE, [], None),
        # the same meaning in other words
        ("a 7 on top of a 4", SEVEN_FOUR, [(0, "above", 1)], None),
        ("a 7 above a 4", SEVEN_FOUR, [(0, "above", 1)], None),
        ("a 7 over a 4", SEVEN_FOUR, [(0, "above", 1)], None),
        ("a 7 under a 4", SEVEN_FOUR, [(0, "below", 1)], None),
        ("a 7 beneath a 4", SEVEN_FOUR, [(0, "below", 1)], None),
        ("a 7 below a 4", SEVEN_FOUR, [(0, "below", 1)], None),
        ("a 7 beside a 4", SEVEN_FOUR, [(0, "next to", 1)], None),
        ("a 7 next to a 4", SEVEN_FOUR, [(0, "next to", 1)], None),
        ("a 7 to the left of a 4", SEVEN_FOUR, [(0, "left of", 1)], None),
        ("a 7 on the right of a 4", SEVEN_FOUR, [(0, "right of", 1)], None),
        # positions said per object
        ("put a 5 on the left and a 0 on the right", FIVE_ZERO, [(0, "left of", 1)], None),
        ("a 5 on the right, a 0 on the left", FIVE_ZERO, [(1, "left of", 0)], None),
        ("on the left, a 5 and on the right, a 0", FIVE_ZERO, [(0, "left of", 1)], None),
        ("a 5 at the top and a 0 at the bottom", FIVE_ZERO, [(0, "above", 1)], None),
        (
            "a 4 on the left, a 5 in the middle and a 6 on the right",
            FOUR_FIVE_SIX,
            [(0, "left of", 1), (0, "left of", 2), (1, "left of", 2)],
            None,
        ),
        # rows, columns and grids said either way
        ("a row of three twos", [("2", 3, None, [])], [], _lay("row")),
        ("three twos in a row", [("2", 3, None, [])], [], _lay("row")),
        ("a column of 4 fives", [("5", 4, None, [])], [], _lay("column")),
        ("a 3 and a 7 side by side", [("3", 1, None, []), ("7", 1, None, [])], [], _lay("row")),
        ("a grid of four nines", [("9", 4, None, [])], [], _lay("grid", 2, 2)),
        ("six 3s in a grid", [("3", 6, None, [])], [], _lay("grid", 2, 3)),
        ("a 3 by 3 grid of 7s", [("7", 9, None, [])], [], _lay("grid", 3, 3)),
        ("a 2x2 grid of sneakers", [("sneaker", 4, None, [])], [], _lay("grid", 2, 2)),
        # lists read in an order: the line, and each object related to the next
        (
            "the digits 4, 5 and 6 from left to right",
            FOUR_FIVE_SIX,
            [(0, "left of", 1), (1, "left of", 2)],
            _lay("row"),
        ),
        ("4, 5 and 6 right to left", FOUR_FIVE_SIX, [(0, "right of", 1), (1, "right of", 2)], _lay("row")),
        (
            "from top to bottom: a 4, a 5 and a 6",
            FOUR_FIVE_SIX,
            [(0, "above", 1), (1, "above", 2)],
            _lay("column"),
        ),
        (
            "a row of 4, 5 and 6 from left to right",
            FOUR_FIVE_SIX,
            [(0, "left of", 1), (1, "left of", 2)],
            _lay("row"),
        ),
        # counts per kind
        ("three 3s and two 7s", [("3", 3, None, []), ("7", 2, None, [])], [], None),
        ("two sevens and three fives", [("7", 2, None, []), ("5", 3, None, [])], [], None),
        ("draw one 7", [("7", 1, None, [])], [], None),
        # style words belong to the object they precede
        (
            "a thick 4 left of a thin 6",
            [("4", 1, None, ["thick"]), ("6", 1, None, ["thin"])],
            [(0, "left of", 1)],
            None,
        ),
        (
            "a slanted 2 above an upright 5",
            [("2", 1, None, ["slanted"]), ("5", 1, None, ["upright"])],
            [(0, "above", 1)],
            None,
        ),
        ("a huge one and a little seven", [("1", 1, "large", []), ("7", 1, "small", [])], [], None),
        (
            "I'd like a 3 left of a 7 please",
            [("3", 1, None, []), ("7", 1, None, [])],
            [(0, "left of", 1)],
            None,
        ),
    ],
)
def test_phrasings_give_their_structured_request(text, objects, relations, layout) -> None:
    s = _structure(text)
    assert s["objects"] == objects and s["relations"] == relations and s["layout"] == layout, s
    assert s["scene"]  # every one of these asks for a canvas with exactly these objects


def test_style_words_differ_between_objects_with_opposite_targets() -> None:
    from artdirector.editing.targets import target_for_word

    for text, attribute in (
        ("a thick 4 left of a thin 6", "thickness"),
        ("a bold 8 above a thin 1", "thickness"),
    ):
        req = interpret(text, has_input=False)
        assert req.scene and req.task == "create"
        (a,), (b,) = (o.style for o in req.prompt.objects)
        ta, tb = target_for_word(a), target_for_word(b)
        assert ta.attribute == tb.attribute == attribute
        assert ta.spec().startswith("+") and tb.spec().startswith("-")  # one thicker, the other thinner


@pytest.mark.parametrize(
    "text, has_input, task, classes, scene",
    [
        ("generate new art", False, "create", None, False),
        ("new", False, "create", None, False),
        ("please refine these", True, "refine", None, False),
        ("Improve the last batch", True, "refine", None, False),
        ("make it better", True, "refine", None, False),  # refine words win over create words
        ("more like this", True, "variations", None, False),
        ("variations on a theme", True, "variations", None, False),
        ("one more please", True, "variations", None, False),  # no task word, an input: variations of it
        ("a new one", True, "create", None, False),  # "one" the pronoun, not the digit
        ("draw the digit one", False, "create", (1,), True),
        ("sevens please", False, "create", (7,), False),  # a bare plural: a batch of the class
        ("some 5s and 8s", False, "create", (5, 8), False),
        ("variations of this 7", True, "variations", (7,), False),
        ("make this 3 look like an 8", True, "variations", (8,), False),
        ("a 3, a 5 and a 9", False, "create", (3, 5, 9), True),
    ],
)
def test_one_reader_for_every_request(text, has_input, task, classes, scene) -> None:
    req = interpret(text, has_input)
    assert (req.task, req.classes, req.scene) == (task, classes, scene)
    assert "->" in req.understood


def _refusal(text: str, has_input: bool = False) -> str:
    with pytest.raises(PromptError) as err:
        interpret(text, has_input)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(
    "text, has_input, bad, close",
    [
        ("draw a cat", False, "cat", "coat"),
        ("a dog left of a 3", False, "dog", None),
        ("a 3 left of a dog", False, "dog", None),
        ("sevens and cats", False, "cats", "coats"),  # a batch request drops nothing either
        ("variations of this cat", True, "cat", "coat"),
        ("zzz", True, "zzz", None),  # not read as the default task of an input
        ("draw a snaeker", False, "snaeker", "sneaker"),
        ("draw a 7 quickly", False, "quickly", None),
    ],
)
def test_an_unknown_word_is_refused_naming_it_the_zoo_and_the_closest_words(text, has_input, bad, close):
    msg = _refusal(text, has_input)
    assert f"could not place {bad!r}" in msg
    assert "MNIST digits 0-9" in msg and "FashionMNIST items" in msg and "sneaker" in msg
    if close is not None:
        assert f"did you mean {close!r}" in msg
    else:
        assert f"{bad!r}: no close word" in msg


def test_every_unknown_word_is_named_and_a_number_says_how_to_set_the_batch_size() -> None:
    msg = _refusal("a dog left of a cat")
    assert "'dog', 'cat'" in msg
    msg = _refusal("generate 64 images")
    assert "'64'" in msg and "n=64" in msg


@pytest.mark.parametrize(
    "text, says",
    [
        ("a 5 on the left", "not relative to another"),
        ("a 5 in the middle and a 0", "nothing on a side"),
        ("a 5 on the left and a 0 at the top", "both left/right and top/bottom"),
        ("a grid of sneakers", "does not say how many"),
        ("a grid of five 7s", "no grid of two rows"),
        ("a 3, a 4 and a 5 in a column from left to right", "is a row, but asks for a column"),
        ("a 3 from left to right", "names one object"),
        ("a 3 left of", "stops before it is complete"),
    ],
)
def test_requests_that_cannot_hold_say_why(text, says) -> None:
    msg = _refusal(text)
    assert says in msg, msg


def test_datasets_named_in_refusals_are_what_the_zoo_draws() -> None:
    """The refusal's list of what the zoo draws is the zoo's class-conditional creators, by dataset."""
    drawn = set()
    for card in (REPO / "src" / "artdirector" / "zoo").glob("*.card.json"):
        c = json.loads(card.read_text())
        if c.get("conditional"):
            drawn.add(c["reference"]["dataset"])
    assert drawn == set(DATASETS)
    assert {o.dataset for o in (parse(w).objects[0] for w in ("a 7", "a sneaker"))} == drawn


def test_a_refusal_is_immediate_and_imports_no_torch() -> None:
    start = time.perf_counter()
    with pytest.raises(PromptError):
        parse("draw a cat")
    assert time.perf_counter() - start < 0.5
    code = (
        "import sys\n"
        "from artdirector.prompts import PromptError\n"
        "from artdirector.prompts.argv import request_argv\n"
        "try:\n"
        "    request_argv(['agent.py', 'draw a cat'])\n"
        "except PromptError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('not refused')\n"
        "assert 'torch' not in sys.modules and 'hydra' not in sys.modules, 'imported on the refusal path'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_the_script_refuses_an_unknown_noun_before_loading_anything(tmp_path) -> None:
    res = run_script("agent.py", "draw a cat", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: could not place 'cat'"), res.stderr
    assert not (tmp_path / "run").exists()  # refused before Hydra made a run directory


# ---- the request on the command line --------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, want",
    [
        (["a.py", "a 3, a 5 and a 9"], ["a.py", "request='a 3, a 5 and a 9'"]),
        (["a.py", "a 3, a 5", "n=10", "seed=1"], ["a.py", "request='a 3, a 5'", "n=10", "seed=1"]),
        (["a.py", "draw", "a", "7", "n=10"], ["a.py", "request='draw a 7'", "n=10"]),  # unquoted words
        (["a.py", "n=10", "request=a 3, a 5"], ["a.py", "n=10", "request='a 3, a 5'"]),
        (["a.py", "+request=a 3, a 5"], ["a.py", "+request='a 3, a 5'"]),
        (["a.py", "request='a 3, a 5'"], ["a.py", "request='a 3, a 5'"]),  # already quoted for Hydra
        (["a.py", "--multirun", "request=a 3,a 7"], ["a.py", "--multirun", "request=a 3,a 7"]),  # a sweep
        (["a.py", "--cfg", "job"], ["a.py", "--cfg", "job"]),
        (["a.py", "~scene", "a 3"], ["a.py", "~scene", "request='a 3'"]),  # after an override too
        (
            ["a.py", "input=runs/x", "make the 7 bigger", "n=5"],
            ["a.py", "input=runs/x", "request='make the 7 bigger'", "n=5"],
        ),
        (["a.py", "-cn", "agent", "a 3"], ["a.py", "-cn", "agent", "request='a 3'"]),  # a flag's value
        (["a.py"], ["a.py"]),
    ],
)
def test_request_argv(argv, want) -> None:
    assert request_argv(argv) == want


def test_a_request_given_twice_or_unreadable_is_refused() -> None:
    with pytest.raises(PromptError, match="given 2 times"):
        request_argv(["a.py", "a 3", "request=a 7"])
    with pytest.raises(PromptError, match="'cat'"):
        request_argv(["a.py", "n=5", "request=a cat, a 3"])
    with pytest.raises(PromptError, match="given 2 times"):  # words split by an override: which is it?
        request_argv(["a.py", "draw", "n=5", "sevens"])


TRICKY = [
    "a 3, a 5 and a 9",
    "it's a 7",
    'a "7", please',
    "both ' and \"",
    "a\\b",
    "ends with \\",
    "q\\'x",
    'q\\"x',
    "${oops}",
    "\\${x}",
    "[a, b]",
    "k=v: {x}",
    "  spaced  ",
]


@pytest.mark.parametrize("text", TRICKY)
def test_hydra_reads_the_quoted_request_back_exactly(make_cfg, text) -> None:
    cfg = make_cfg("agent", [f"request={hydra_quote(text)}", "ckpt=x"])
    assert cfg.request == text


def test_a_comma_request_runs_a_scene_end_to_end(tmp_path) -> None:
    out = tmp_path / "run"
    res = run_script(
        "agent.py",
        "a 3, a 5 and a 9",
        "device=cpu",
        "scene.max_rounds=2",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    trace = json.loads((out / "trace.json").read_text())
    assert trace["request"]["text"] == "a 3, a 5 and a 9"
    assert [o["name"] for o in trace["request"]["prompt"]["objects"]] == ["3", "5", "9"]
    assert (out / "canvas.png").is_file()


def test_without_the_rewrite_hydra_refuses_the_comma(make_cfg) -> None:
    """Why request_argv exists: Hydra alone reads the comma as a sweep."""
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="--multirun"):
        make_cfg("agent", ["request=a 3, a 5 and a 9"])
    cfg = make_cfg("agent", request_argv(["a.py", "request=a 3, a 5 and a 9"])[1:])
    assert cfg.request == "a 3, a 5 and a 9"


def test_requests_outside_the_grammar_keep_their_errors() -> None:
    with pytest.raises(RequestError, match="scenes are created"):
        interpret("refine a 3 left of a 7", True)
    with pytest.raises(RequestError, match="could not tell"):
        interpret("please", False)
