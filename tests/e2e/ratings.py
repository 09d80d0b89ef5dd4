"""Star ratings computed in Python from the simulator's ground truth, independently of the SQL.

Indicator values come from the truth exactly as tests/dbt/test_ground_truth.py derives
them (its helpers are reused); the scoring follows the default model of indicators.md with
the frameworks, weights, thresholds and adjustments read from the dbt seeds.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from typing import Any

from ingestion.registry import PROJECT_ROOT, Registry
from tests.dbt.test_ground_truth import _expected, _pieces, _pool

SEEDS = PROJECT_ROOT / "dbt_project" / "seeds"
TRUTH_KINDS = {"passages", "alerts", "fire_alarms", "device_status", "service_cases", "register", "surveys"}


@dataclass(frozen=True)
class Rating:
    stars: int
    total_score: float
    objective_score: float
    survey_score: float | None


def _seed(name: str) -> list[dict[str, str]]:
    with (SEEDS / name).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def truth_values(truth_of, registry: Registry, start: dt.date, end: dt.date) -> dict[str, dict[str, Any]]:
    """{site_id or 'district': {indicator: value or None, '_survey': score or None}} from the truth.

    `truth_of(site, kind, start, end)` is the simulator's /_control/truth.
    """
    values: dict[str, dict[str, Any]] = {}
    all_pieces, answers, weighted = [], 0, 0.0
    for site in registry.sites:
        truth = {k: truth_of(site.site_id, k, start, end) for k in site.sources if k in TRUTH_KINDS}
        pieces = _pieces(site, truth)
        all_pieces.append(pieces)
        values[site.site_id] = {k: v[2] for k, v in _expected(pieces).items()}
        survey = truth.get("surveys")
        mean = survey.get("mean_score") if survey else None
        values[site.site_id]["_survey"] = None if mean is None else 100 * (mean - 1) / 4
        if mean is not None:
            answers += survey["answers"]
            weighted += mean * survey["answers"]
    values["district"] = {k: v[2] for k, v in _expected(_pool(all_pieces)).items()}
    values["district"]["_survey"] = 100 * (weighted / answers - 1) / 4 if answers else None
    return values


def _indicator_stars(value: float | None, t: list[float], lower_better: bool) -> int:
    if value is None:
        return 0
    for star in (5, 4, 3, 2, 1):
        if (value <= t[star - 1]) if lower_better else (value >= t[star - 1]):
            return star
    return 0


def _score(value: float, stars: int, t: list[float], zero_at: float, method: str) -> float:
    """Star-anchored: k stars = 20k points, linear between thresholds, to 0 at zero_at below 1 star."""
    clamp = lambda x: max(0.0, min(1.0, x))  # noqa: E731
    if stars >= 5:
        return 100.0
    if method == "step":
        return 20.0 * stars
    if stars == 0:
        return 0.0 if t[0] == zero_at else 20.0 * clamp((value - zero_at) / (t[0] - zero_at))
    low, high = t[stars - 1], t[stars]
    return 20.0 * stars if high == low else 20.0 * stars + 20.0 * clamp((value - low) / (high - low))


def ratings(values: dict[str, dict[str, Any]], month: dt.date) -> dict[tuple[str, str], Rating]:
    """{(site_id, framework_id): Rating} for every active star framework."""
    catalog = {r["indicator_id"]: r for r in _seed("indicator_catalog.csv")}
    thresholds = {(r["framework_id"], r["indicator_id"]): r for r in _seed("framework_thresholds.csv")}
    weights = _seed("framework_weights.csv")
    adjustments = _seed("score_adjustments.csv")
    out = {}
    for rule in _seed("framework_rules.csv"):
        if rule["is_active"] != "true" or rule["mode"] != "stars":
            continue
        fw = rule["framework_id"]
        dims = {
            r["item_id"]: float(r["weight"])
            for r in weights
            if r["framework_id"] == fw and r["weight_of"] == "dimension"
        }
        inds = [
            r for r in weights if r["framework_id"] == fw and r["weight_of"] == "indicator" and float(r["weight"]) > 0
        ]
        dim_total = {d: sum(float(r["weight"]) for r in inds if r["dimension_id"] == d) for d in dims}
        zero_policy = rule["not_assessable_policy"] == "zero"
        for site_id, site_values in values.items():
            rows = []  # (dimension, weight in dimension, effective weight, stars, score, assessable, core)
            for r in inds:
                th = thresholds[(fw, r["item_id"])]
                t = [float(th[f"star_{k}"]) for k in range(1, 6)]
                value = site_values.get(r["item_id"])
                lower = catalog[r["item_id"]]["direction"] == "lower_better"
                stars = _indicator_stars(value, t, lower)
                score = (
                    _score(value, stars, t, float(th["zero_at"]), rule["score_method"])
                    if value is not None
                    else (0.0 if zero_policy else None)
                )
                w_dim = float(r["weight"]) / dim_total[r["dimension_id"]]
                effective = w_dim * dims[r["dimension_id"]] / sum(dims.values())
                core = catalog[r["item_id"]]["is_core"] == "true"
                rows.append((r["dimension_id"], w_dim, effective, stars, score, value is not None, core))
            dim_scores = {}
            for d in dims:
                scored = [(w, s) for dim, w, _, _, s, _, _ in rows if dim == d and s is not None]
                dim_scores[d] = sum(w * s for w, s in scored) / sum(w for w, _ in scored) if scored else None
            present = [(dims[d] / sum(dims.values()), s) for d, s in dim_scores.items() if s is not None]
            objective = sum(w * s for w, s in present) / sum(w for w, _ in present) if present else 0.0
            survey = site_values.get("_survey")
            share = float(rule["survey_share"]) if survey is not None else 0.0
            bonus = deductions = 0.0
            for a in adjustments:
                if a["site_id"] == site_id and a["month"] in ("", month.isoformat()) and a["framework_id"] in ("", fw):
                    if a["adjustment"] == "bonus":
                        bonus += float(a["points"])
                    else:
                        deductions += float(a["points"])
            total = (
                (1 - share) * objective + share * (survey or 0.0) + min(bonus, float(rule["bonus_cap"])) - deductions
            )
            band = next((k for k in (5, 4, 3, 2) if total >= float(rule[f"band_{k}"])), 1)
            basis = sum(e for _, _, e, _, _, assessable, _ in rows if assessable or zero_policy)
            core_min = min((row[3] for row in rows if row[6]), default=5)
            gate = 1
            for k in (5, 4, 3, 2):
                share_k = sum(e for _, _, e, st, _, _, _ in rows if st >= k) / basis if basis else 0.0
                if share_k >= float(rule["gate_weight_share"]) and core_min - k + float(rule["gate_core_margin"]) >= 0:
                    gate = k
                    break
            stars = gate if rule["gate_enabled"] == "true" and gate < band else band
            out[(site_id, fw)] = Rating(stars, total, objective, survey)
    return out
