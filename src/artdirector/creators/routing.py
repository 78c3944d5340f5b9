"""Routing: which creator serves a request, decided from measured evidence, with the reason written down.

Each candidate's evidence is its card (``<stem>.card.json`` beside the checkpoint, written by
``scripts/bench_creators.py`` / ``scripts/export_zoo.py``) or, failing that, the metrics ``scripts/evaluate.py``
wrote beside it. Routing is a decision, so it reads **selection-split** evidence when a card has it (the
``selection`` block); report-split numbers are what a run *states*, and are used for routing only when
nothing else was measured, which the reason then says.

1. **Filter** by what the request needs (a class request goes only to creators that accept a class).
2. **Constrain**: class conformance on the requested classes >= ``min_conformance``; **variety**: recall at
   equal n >= ``min_recall`` and within-class variety (generated / real, the worst of the requested classes,
   or of all classes) >= ``min_variety``, so that a collapsed creator never serves while a varied one can;
   seconds per image <= ``max_seconds_per_image``. A constraint excludes on evidence, never on its absence:
   a card that states no recall or variety keeps its creator eligible, and the candidate table says the
   variety constraint could not be checked (a creator without a card would otherwise always lose to one with).
3. **Rank** by the objective: ``quality`` (default) = lowest FID; ``fastest`` = fewest seconds per image
   among those with FID <= ``quality_bar``. FIDs are compared only at one (n, feature network, split).

If the constraints leave nobody, the best by the objective among those that can serve the request is
chosen and the reason says which constraint could not be met.

The batch Generation Agent routes with :func:`route`; the scene director's creators are ordered by the same
rule, per dataset (:func:`scene_creators`).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artdirector.creators import sampling_creator
from artdirector.errors import ConfigError
from artdirector.io import file_sha256

log = logging.getLogger(__name__)

OBJECTIVES = ("quality", "fastest")


def catalogue(ckpt: Path, evaluator: str, split: str = "report") -> list[dict[str, Any]]:
    """The usable entries ``scripts/evaluate.py`` wrote for ``ckpt`` with ``evaluator``: measured on ``split``,
    for these very checkpoint bytes (an entry left from an earlier file of the same name is stale)."""
    entries, digest = [], None
    for path in sorted(Path(ckpt).parent.glob(f"{Path(ckpt).stem}.{evaluator}-*.metrics.json")):
        try:
            e = json.loads(path.read_text())
            entry = {
                "n": int(e["n_samples"]),
                "features": str(e["feature_network"]),
                "split": (e.get("reference") or {}).get("split"),
                "fid": float(e["metrics"]["fid"]),
                "fid_se": e["metrics"].get("fid_se"),
                "sha256": e.get("checkpoint_sha256"),
                "path": str(path),
            }
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable catalogue entry %s", path)
            continue
        digest = digest or file_sha256(ckpt)
        if entry["sha256"] != digest:
            log.info("ignoring %s: it was written for other bytes of %s", path, Path(ckpt).name)
        elif entry["split"] != split:
            log.info("ignoring %s: measured on the %s split, not %s", path, entry["split"], split)
        else:
            entries.append(entry)
    return entries


@dataclass
class Evidence:
    """One candidate's measured numbers, as read from its card and catalogue: one measurement per
    (n, feature network, split) it was evaluated at."""

    name: str
    checkpoint: str
    accepts: list[str]
    seconds_per_image: float | None = None
    device: str | None = None
    measurements: list[dict[str, Any]] = field(default_factory=list)
    dataset: str | None = None  # what it was trained on (its card's reference), None: not said
    recall: float | None = None  # recall at equal n (as many generated as real images), None: not stated
    variety: dict[str, float] | None = None  # per class: within-class variety / real's, None: not stated

    def variety_on(self, classes: tuple[int, ...] | None) -> float | None:
        """Within-class variety relative to real images on the requested classes (the worst of them; of all
        classes when none are requested), None where the card does not state it."""
        if not self.variety:
            return None
        vals = [self.variety.get(str(c)) for c in classes] if classes else list(self.variety.values())
        return None if any(v is None for v in vals) else min(vals)

    def at(self, key: tuple | None) -> dict[str, Any] | None:
        return next((m for m in self.measurements if (m["n"], m["features"], m["split"]) == key), None)

    def conformance_on(self, classes: tuple[int, ...] | None, key: tuple | None = None) -> float | None:
        """Conformance on the requested classes (the worst of them), at ``key`` if measured there."""
        ms = [m for m in ([self.at(key)] if self.at(key) else self.measurements) if m.get("conformance")]
        if not ms:
            return None
        conf = ms[0]["conformance"]
        if not classes:
            return conf.get("overall")
        vals = [conf.get(str(c)) for c in classes]
        return None if any(v is None for v in vals) else min(vals)


def _from_block(block: dict[str, Any], source: str) -> dict[str, Any]:
    m, conf = block.get("metrics", {}), block.get("conformance")
    return {
        "n": block.get("n"),
        "features": block.get("features"),
        "split": block.get("split"),
        "fid": m.get("fid"),
        "fid_se": m.get("fid_se"),
        "conformance": ({**conf.get("per_class", {}), "overall": conf.get("overall")} if conf else None),
        "source": source,
    }


def _recall_equal_n(card: dict[str, Any]) -> float | None:
    """The card's recall at equal n: its ``recall_equal_n`` block, else its report metrics' recall when those
    were measured with as many generated as real images (recall grows with the generated n)."""
    block = card.get("recall_equal_n")
    if isinstance(block, dict) and block.get("recall") is not None:
        return float(block["recall"])
    recall = (card.get("metrics") or {}).get("recall")
    n, n_real = card.get("n"), (card.get("reference") or {}).get("n")
    return float(recall) if recall is not None and n is not None and n == n_real else None


def _variety(card: dict[str, Any]) -> dict[str, float] | None:
    per_class = (card.get("variety") or {}).get("per_class") or {}
    out = {str(c): float(v["ratio"]) for c, v in per_class.items() if v.get("ratio") is not None}
    return out or None


def read_evidence(creator: Any, catalogue_dir: str = "lenet") -> Evidence:
    """A loaded creator's evidence: its card (the report numbers and the ``selection`` block) and the
    ``scripts/evaluate.py`` catalogue entries beside the checkpoint, of both splits."""
    card = creator.card or {}
    ev = Evidence(
        creator.name,
        str(creator.path),
        sorted(creator.accepts),
        card.get("seconds_per_image"),
        card.get("device"),
        dataset=(card.get("reference") or {}).get("dataset"),
        recall=_recall_equal_n(card),
        variety=_variety(card),
    )
    if card.get("metrics"):
        ev.measurements.append(_from_block(card, "card"))
    if isinstance(card.get("selection"), dict):
        ev.measurements.append(_from_block({"split": "selection", **card["selection"]}, "card"))
    for split in ("selection", "report"):
        for e in catalogue(creator.path, catalogue_dir, split):
            ev.measurements.append({**e, "conformance": None, "source": e["path"]})
    return ev


@dataclass
class Route:
    chosen: int  # index into the candidates
    why: str
    table: list[dict[str, Any]]  # every candidate: evidence, eligible, and why not
    key: tuple | None = None  # the (n, features, split) the FIDs were compared at


def route(
    evidence: list[Evidence],
    needs: frozenset[str] = frozenset(),
    classes: tuple[int, ...] | None = None,
    objective: str = "quality",
    max_seconds_per_image: float | None = None,
    quality_bar: float | None = None,
    min_conformance: float = 0.0,
    dataset: str | None = None,
    min_recall: float = 0.0,
    min_variety: float = 0.0,
) -> Route:
    """Choose among ``evidence`` (one per candidate creator); see the module docstring. With ``dataset``,
    only creators trained on it (or whose card does not say) can serve: a FashionMNIST creator never
    answers an MNIST request, whatever its FID (its FID is measured in another feature space). Each row of
    the table has the candidate's ``recall`` and ``variety`` and ``variety_check``: whether the variety
    constraint was met, excluded it, or could not be checked."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"selection must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if objective == "fastest" and quality_bar is None:
        raise ConfigError("selection=fastest needs a quality bar: set quality_bar=<largest FID accepted>")
    rows = [
        {
            **{k: v for k, v in asdict(e).items() if k not in ("measurements", "variety")},
            "variety": e.variety_on(classes),
            "variety_check": None,
            "eligible": True,
            "excluded_by": None,
        }
        for e in evidence
    ]
    other = {i for i, e in enumerate(evidence) if dataset and e.dataset and e.dataset != dataset}
    able = [i for i, e in enumerate(evidence) if needs <= set(e.accepts) and i not in other]
    for i, row in enumerate(rows):
        if i in other:
            row.update(eligible=False, excluded_by=f"trained on {evidence[i].dataset}, not {dataset}")
        elif i not in able:
            lacks = ", ".join(sorted(needs - set(row["accepts"])))
            row.update(eligible=False, excluded_by=f"does not accept {lacks}")
    if not able:
        return Route(-1, "no candidate accepts what the request needs", rows)
    # FIDs compare only at one (n, features, split): the combination most able candidates were measured
    # at; on a tie the selection split (routing is a decision), then the larger n
    keys = Counter(
        k
        for i in able
        for k in {
            (m["n"], m["features"], m["split"]) for m in evidence[i].measurements if m["fid"] is not None
        }
    )
    key = (
        max(keys.items(), key=lambda kv: (kv[1], kv[0][2] == "selection", kv[0][0] or 0))[0] if keys else None
    )
    fid = {i: (evidence[i].at(key) or {}).get("fid") for i in able}
    for i in able:
        m = evidence[i].at(key) or {}
        rows[i].update(
            fid=m.get("fid"), fid_se=m.get("fid_se"), conformance=evidence[i].conformance_on(classes, key)
        )
    ok = []
    for i in able:
        e, why_not = evidence[i], None
        conf = e.conformance_on(classes, key)
        collapsed, rows[i]["variety_check"] = variety_check(e, classes, min_recall, min_variety)
        if classes and min_conformance > 0 and conf is not None and conf < min_conformance:
            why_not = f"conformance {conf:.3f} < {min_conformance:g}"
        elif collapsed:
            why_not = collapsed
        elif (
            max_seconds_per_image is not None
            and e.seconds_per_image is not None
            and e.seconds_per_image > max_seconds_per_image
        ):
            why_not = f"{e.seconds_per_image:.3g} s/image > {max_seconds_per_image:g}"
        elif objective == "fastest" and (fid[i] is None or fid[i] > quality_bar):
            why_not = "no comparable FID" if fid[i] is None else f"FID {fid[i]:.2f} > bar {quality_bar:g}"
        if why_not:
            rows[i].update(eligible=False, excluded_by=why_not)
        else:
            ok.append(i)
    pool, relaxed = (ok, "") if ok else (able, " (no candidate met every constraint: chosen among all able)")

    def rank(i: int) -> tuple:
        if objective == "fastest":
            spi = evidence[i].seconds_per_image
            return (spi is None, spi if spi is not None else math.inf)
        return (fid[i] is None, fid[i] if fid[i] is not None else math.inf)

    order = sorted(pool, key=rank)
    best = order[0]
    for r, i in enumerate(order):
        rows[i]["rank"] = r + 1
    e = evidence[best]
    if key is None:
        why = f"{e.name}: no candidate has measured evidence; the first that accepts the request"
    elif objective == "fastest":
        why = (
            f"{e.name}: the fastest ({e.seconds_per_image:.3g} s/image on {e.device}) of {len(pool)} with "
            f"FID <= {quality_bar:g}"
        )
    elif fid[best] is None:
        why = f"{e.name}: none of the eligible candidates has a comparable FID; the first eligible"
    else:
        n, feats, split = key
        why = (
            f"{e.name}: the lowest FID ({fid[best]:.2f} ± {rows[best]['fid_se'] or float('nan'):.2f}) of "
            f"{sum(fid[i] is not None for i in pool)} comparable candidates (features {feats}, n={n}, "
            f"{split} split)"
        )
        if split != "selection":
            why += "; measured on the report split: no selection-split evidence was recorded for them all"
    if classes:
        conf = e.conformance_on(classes, key)
        why += f"; conformance on classes {list(classes)}: " + (
            "unmeasured" if conf is None else f"{conf:.3f}"
        )
    if min_recall > 0 or min_variety > 0:
        why += f"; variety {rows[best]['variety_check']}"
    return Route(best, why + relaxed, rows, key)


def variety_check(
    e: Evidence, classes: tuple[int, ...] | None, min_recall: float, min_variety: float
) -> tuple[str | None, str]:
    """The variety constraint on one candidate: (why it excludes the candidate, or None; what the candidate
    table says). Unstated evidence does not exclude: the table says it was not checked."""
    if min_recall <= 0 and min_variety <= 0:
        return None, "not asked"
    failed, met, unstated = [], [], []
    for what, value, bound in (
        ("recall at equal n", e.recall, min_recall),
        ("within-class variety / real", e.variety_on(classes), min_variety),
    ):
        if bound <= 0:
            continue
        if value is None:
            unstated.append(what)
        elif value < bound:
            failed.append(f"{what} {value:.3f} < {bound:g}")
        else:
            met.append(f"{what} {value:.3f} >= {bound:g}")
    if failed:
        return f"collapsed: {'; '.join(failed)}", f"excluded ({'; '.join(failed + met)})"
    said = "; ".join(met + [f"{w}: not on its card" for w in unstated])
    return None, (f"unchecked, kept eligible ({said})" if unstated else f"met ({said})")


def ranked(r: Route) -> list[int]:
    """The candidates a route ranked (those eligible, or all able when none was), best first."""
    return sorted((i for i, row in enumerate(r.table) if row.get("rank")), key=lambda i: r.table[i]["rank"])


def scene_creators(
    ckpts: list[str],
    device: Any,
    min_recall: float = 0.0,
    min_variety: float = 0.0,
    catalogue_dir: str = "lenet",
) -> dict[str, list]:
    """The class-conditional creators among ``ckpts``, by the dataset each was trained on (its card's
    reference), best first by :func:`route` within each dataset (objective ``quality``; the prompt's classes
    are not known here, so conformance is not a constraint). A creator the variety constraint excludes is
    left out while another of its dataset meets it (it is no fallback either). The creators draw and score
    only (:func:`~artdirector.creators.sampling_creator`): a fallback diffusion model is built if it draws."""
    by_dataset: dict[str, list] = {}
    for path in ckpts:
        creator = sampling_creator(path, map_location=device)
        if "class" not in creator.accepts:
            continue
        dataset = ((creator.card or {}).get("reference") or {}).get("dataset")
        if dataset is None:
            dataset = "mnist"
            log.warning("%s has no card saying what it was trained on: taken as an MNIST creator", path)
        by_dataset.setdefault(dataset, []).append(creator)
    out = {}
    for dataset, creators in by_dataset.items():
        r = route(
            [read_evidence(c, catalogue_dir) for c in creators],
            frozenset({"class"}),
            dataset=dataset,
            min_recall=min_recall,
            min_variety=min_variety,
        )
        out[dataset] = [creators[i] for i in ranked(r)]
        if len(creators) > 1:
            log.info("scene creators of %s: %s", dataset, r.why)
    return out
