"""The shipped zoo: every model loads offline from the package, and its card matches its file."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from artdirector.creators import load_creator
from artdirector.models.checkpoint import read_checkpoint
from artdirector.runtime import ZOO_DIR

CARDS = sorted(ZOO_DIR.glob("*.card.json"))


def test_the_zoo_ships_the_seed_dcgan_and_stays_small() -> None:
    assert (ZOO_DIR / "dcgan.ckpt").is_file()
    total = sum(p.stat().st_size for p in ZOO_DIR.glob("*.ckpt"))
    assert total <= 30e6, f"the zoo is {total / 1e6:.1f} MB; the budget is 30 MB"


@pytest.mark.parametrize("card_path", CARDS, ids=[p.name.split(".")[0] for p in CARDS])
def test_card_matches_its_file_and_the_model_loads(card_path) -> None:
    card = json.loads(card_path.read_text())
    ckpt = ZOO_DIR / card["checkpoint"]
    assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == card["sha256"]
    raw = read_checkpoint(ckpt)  # weights_only, allow-listed targets
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    creator = load_creator(ckpt)  # through the protocol, whatever the kind
    assert creator.kind == card["kind"] and ("class" in creator.accepts) == card["conditional"]
    images = creator.sample(4, seed=0).images
    assert images.shape == (4, 1, 28, 28) and torch.isfinite(images).all()
    # the card states its evidence: n, features, split, the floor, and for a conditional creator conformance
    assert card["split"] == "report" and card["n"] >= 1000 and "fid" in card["floor"]
    assert ("conformance" in card) == card["conditional"]
