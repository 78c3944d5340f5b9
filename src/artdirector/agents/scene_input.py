"""An earlier scene run read back as the input of an edit ("make the 7 bigger"): its trace, its objects'
drawings (``objects.pt``) and its canvas, checked against each other."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from artdirector.agents.scene_report import OBJECTS_FILE
from artdirector.prompts import Prompt
from artdirector.scenes.compose import Drawing, render
from artdirector.scenes.layout import Plan


def is_scene_run(path: str | Path) -> bool:
    """Is ``path`` the folder of a scene run (its ``trace.json`` a scene trace)?"""
    trace = Path(path).expanduser() / "trace.json"
    if not trace.is_file():
        return False
    try:
        return str(json.loads(trace.read_text()).get("version", "")).startswith("scene/")
    except (OSError, ValueError, AttributeError):
        return False


@dataclass
class SceneRun:
    """An earlier scene run, read back: its trace, the flat scene (objects, plan, drawings), its canvas."""

    path: Path
    trace: dict[str, Any]
    scene: Any  # artdirector.scenes.edit.Scene
    canvas: torch.Tensor


def _prompt_from(d: dict[str, Any]) -> Prompt:
    from dataclasses import fields

    from artdirector.prompts import ObjectSpec, Relation

    spec = {f.name for f in fields(ObjectSpec)}
    objects = [ObjectSpec(**{k: v for k, v in o.items() if k in spec}) for o in d["objects"]]
    relations = [Relation(r["subject"], r["relation"], r["object"]) for r in d.get("relations", [])]
    return Prompt(d["text"], d.get("task"), objects, relations, d.get("layout"))


def load_scene(path: str | Path) -> SceneRun:
    """An earlier scene run's folder, read safely (tensors with ``weights_only=True``) and checked: its
    objects re-rendered give its canvas exactly. :class:`~artdirector.errors.InputError` (one line) when it
    is not a scene run or cannot be used."""
    from artdirector.errors import InputError
    from artdirector.io import load_user_tensor
    from artdirector.scenes.edit import Scene, flat_plan, flatten
    from artdirector.scenes.layout import Item

    path = Path(path).expanduser()
    if not is_scene_run(path):
        raise InputError(
            f"input {path} is not a scene run (a folder with a scene's trace.json): an edit such as 'make the 7 "
            "bigger' needs the output folder of an earlier scene request"
        )
    trace = json.loads((path / "trace.json").read_text())
    if not (path / OBJECTS_FILE).is_file():
        raise InputError(
            f"input {path} has no {OBJECTS_FILE} (scene runs store their objects' drawings there since edits "
            "came in): make the scene again, then edit that run"
        )
    stored = load_user_tensor(path / OBJECTS_FILE)
    try:
        objs = stored["objects"]
        pl = trace["plan"]
        prompt = _prompt_from(trace["request"]["prompt"])
        items = [
            Item(int(i["obj"]), int(i["gid"]), i["size"], tuple(map(float, i["box"]))) for i in pl["items"]
        ]
        plan_ = Plan(
            int(pl["height"]),
            int(pl["width"]),
            int(pl["base"]),
            items,
            int(pl["seed"]),
            pl["layout"],
            float(pl["scale"]),
            list(pl.get("notes", [])),
        )
        drawings = [
            Drawing(
                o["image"].float(),
                str(o["drawing"]["creator"]),
                int(o["drawing"]["seed"]),
                str(o["drawing"]["how"]),
                dict(o["drawing"]["options"]),
                list(o["drawing"].get("style", [])),
            )
            for o in objs
        ]
        same = len(objs) == len(items) and all(
            int(o["gid"]) == it.gid
            and tuple(map(float, o["box"])) == it.box
            and isinstance(o["image"], torch.Tensor)
            for o, it in zip(objs, items, strict=False)
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(
            f"input {path}: its trace.json or {OBJECTS_FILE} is not a scene run's ({err!r})"
        ) from None
    if not same:
        raise InputError(f"input {path}: {OBJECTS_FILE} does not hold the objects its trace.json plans")
    canvas = render(plan_, [d.image for d in drawings])
    if (path / "canvas.pt").is_file():
        saved = load_user_tensor(path / "canvas.pt")
        if (
            not isinstance(saved, torch.Tensor)
            or saved.shape != canvas.shape
            or not torch.equal(saved.float(), canvas)
        ):
            raise InputError(
                f"input {path}: its objects re-rendered do not give its canvas.pt (the run was changed)"
            )
    scene = Scene(flatten(prompt, plan_), flat_plan(plan_), drawings)
    return SceneRun(path, trace, scene, canvas)
