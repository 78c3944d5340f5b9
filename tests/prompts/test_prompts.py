"""The prompt language: a table of prompts and their structured requests, and bad
prompts with the messages that say what would work."""

from __future__ import annotations

import pytest

from artdirector.prompts import PromptError, parse


def _objs(p):
    return [(o.name, o.dataset, o.count, o.size) for o in p.objects]


@pytest.mark.parametrize(
    "text, task, objects, relations, layout",
    [
        ("generate new art", "create", [], [], None),  # no object: today's behaviour
        ("refine", "refine", [], [], None),
        (
            "a 3 left of a 7",
            None,
            [("3", "mnist", 1, None), ("7", "mnist", 1, None)],
            [(0, "left of", 1)],
            None,
        ),
        ("three sevens in a row", None, [("7", "mnist", 3, None)], [], {"kind": "row"}),
        ("a pair of 4s", None, [("4", "mnist", 2, None)], [], None),
        ("5 twos", None, [("2", "mnist", 5, None)], [], None),  # a numeral before an object is a count
        ("make a 7", "create", [("7", "mnist", 1, None)], [], None),  # ... and after "a" it is the digit
        (
            "draw a small 5 above a large 2",
            "create",
            [("5", "mnist", 1, "small"), ("2", "mnist", 1, "large")],
            [(0, "above", 1)],
            None,
        ),
        (
            "a seven next to a jacket",
            None,
            [("7", "mnist", 1, None), ("coat", "fashion_mnist", 1, None)],
            [(0, "next to", 1)],
            None,
        ),
        (
            "two dresses and a handbag",
            None,
            [("dress", "fashion_mnist", 2, None), ("bag", "fashion_mnist", 1, None)],
            [],
            None,
        ),
        (
            "a 2x2 grid of sneakers",
            None,
            [("sneaker", "fashion_mnist", 4, None)],
            [],
            {"kind": "grid", "rows": 2, "cols": 2},
        ),
        ("3 nines in a column please", None, [("9", "mnist", 3, None)], [], {"kind": "column"}),
        (
            "a 1 to the right of an 8",
            None,
            [("1", "mnist", 1, None), ("8", "mnist", 1, None)],
            [(0, "right of", 1)],
            None,
        ),
    ],
)
def test_prompts_parse_to_structured_requests(text, task, objects, relations, layout) -> None:
    p = parse(text)
    assert p.task == task
    assert _objs(p) == objects
    assert [(r.subject, r.relation, r.object) for r in p.relations] == relations
    assert p.layout == layout
    assert p.to_dict()["text"] == text  # what the trace records


@pytest.mark.parametrize(
    "text, quoted, suggestion",
    [
        ("a 3 lft of a 7", "'lft'", "left of"),
        ("a zebra", "'zebra'", "FashionMNIST items"),
        ("draw a snaeker", "'snaeker'", "sneaker"),
        ("a 7 besides a 3", "'besides'", "beside"),
    ],
)
def test_what_the_grammar_cannot_place_is_quoted_with_what_would_work(text, quoted, suggestion) -> None:
    with pytest.raises(PromptError) as err:
        parse(text)
    msg = str(err.value)
    assert quoted in msg and suggestion in msg and "\n" not in msg


def test_an_empty_prompt_says_what_to_write() -> None:
    with pytest.raises(PromptError, match="empty prompt"):
        parse("   ")


@pytest.mark.parametrize(
    "text, scene, classes",
    [
        ("a 3 left of a 7", True, (3, 7)),
        ("draw a 7", True, (7,)),
        ("three sevens in a row", True, (7,)),
        ("a small dress", True, (3,)),
        ("sevens", False, (7,)),  # a bare plural: a batch of that class, as before scenes
        ("draw threes and sevens", False, (3, 7)),
        ("variations of this 7", False, (7,)),
    ],
)
def test_scene_or_batch(text, scene, classes):
    from artdirector.agents.types import interpret

    p = parse(text)
    assert p.is_scene is scene and p.classes == classes
    assert interpret(text, has_input=True).scene is scene


def test_lists():
    p = parse("a 3, a 4 and a 5 in a column")
    assert [o.name for o in p.objects] == ["3", "4", "5"] and p.layout == {"kind": "column"}


def test_interpret_reads_every_request_through_the_grammar():
    from artdirector.agents.types import RequestError, interpret

    assert interpret("generate new art", False).prompt is None  # no object named: no prompt to record
    assert interpret("more please", has_input=True).task == "variations"  # filler words only: the default
    with pytest.raises(PromptError, match="'zzz'"):
        interpret("zzz", has_input=True)  # an unknown word is named, not read as "variations of the input"
    with pytest.raises(PromptError, match="'quickly'"):
        interpret("draw a 7 quickly", False)
    with pytest.raises(RequestError, match="scenes are created"):
        interpret("refine a 3 left of a 7", True)


def test_style_and_resolution_words_attach_to_their_objects() -> None:
    p = parse("draw bold slanted threes")
    assert p.objects[0].style == ["bold", "slanted"] and not p.is_scene and p.style == ["bold", "slanted"]
    p = parse("a large, sharp 5")
    assert p.objects[0].size == "large" and p.objects[0].sharp and p.sharp and p.is_scene
    p = parse("a thick 3 left of a 7")
    assert p.objects[0].style == ["thick"] and p.objects[1].style == [] and p.relations
    assert parse("sevens").style == [] and not parse("sevens").sharp
    with pytest.raises(PromptError, match="thick"):
        parse("draw thik sevens")


def test_style_words_have_one_owner_and_small_and_large_keep_their_two_meanings() -> None:
    """Every style word of a request names an edit the style editor can parse, and no word is both a style
    and a scene size: "small"/"large" are scene sizes in a request and frame sizes only as an edit."""
    from artdirector.editing.targets import WORDS, target_for_word
    from artdirector.prompts.words import FRAME_SIZE_TARGETS, SIZES, STYLES

    assert set(STYLES) and not set(STYLES) & set(SIZES)
    for word in STYLES:
        assert target_for_word(word).attribute in {"thickness", "slant", "brightness"}
    assert {target_for_word(w).attribute for w in FRAME_SIZE_TARGETS} == {"size"}
    assert set(WORDS) == set(STYLES) | set(FRAME_SIZE_TARGETS)
    assert parse("a small thick 7").objects[0].size == "small"
