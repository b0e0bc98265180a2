"""The quality gate: publish a new encoder only if it is sane and not worse than the serving one,
where "worse" must be shown beyond noise.

With held-out labels, the new and the serving encoder are compared on the same held-out images as
a paired test per metric (kNN and linear-probe correctness per image): the exact one-sided McNemar
test on the discordant images gives the probability of seeing this many "serving right, new wrong"
images if the two were equally good, and a paired bootstrap gives an interval for the accuracy
difference. The new encoder is rejected only when it is worse with the configured confidence.

With too few held-out labels to ever show a difference (or none), the label-free rule decides:
finite embeddings, no collapse, an effective rank not far below the serving encoder's; alignment
and uniformity on the Lambda views and agreement with the serving model's pseudo-labels are
reported. The decision names the rule that decided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .manifest import GateDecision

METRICS = ("knnAccuracy", "linearProbeAccuracy")


@dataclass(frozen=True)
class GatePolicy:
    confidence: float = 0.95  # reject only when "new is worse" holds at this confidence
    min_heldout: int = 20  # below this many held-out labels the paired test cannot decide: label-free rule
    min_rank_ratio: float = 0.5  # label-free: the new effective rank must be at least this share of the serving one
    # Too few held-out labels: "checks" (a trained version must pass the label-free checks) or "accept" (an
    # imported encoder is the user's choice: accepted, with the label-free statistics reported)
    label_free: str = "checks"
    # Replacing an encoder the user imported (a pretrained one): the new one must also not score lower
    # in estimate on any held-out metric; within noise is not good enough to replace a known-good choice
    no_lower_estimate: bool = False
    bootstrap: int = 2000
    seed: int = 0


def mcnemar_worse_p(new_only: int, serving_only: int) -> float:
    """One-sided exact McNemar: P(at least `serving_only` of the discordant images favour the serving
    encoder | both equally good), i.e. a binomial(n = discordant, 1/2) upper tail."""
    n = new_only + serving_only
    if n == 0:
        return 1.0
    return float(sum(math.comb(n, k) for k in range(serving_only, n + 1)) / 2**n)


def paired_bootstrap(new_correct: np.ndarray, serving_correct: np.ndarray, confidence: float, rounds: int, seed: int) -> tuple[float, float]:
    """Two-sided percentile interval of accuracy(new) - accuracy(serving), resampling images."""
    diff = new_correct.astype(np.float64) - serving_correct.astype(np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(rounds, len(diff)))
    means = diff[idx].mean(axis=1)
    alpha = 1 - confidence
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


def compare(metric: str, new_correct: np.ndarray, serving_correct: np.ndarray, policy: GatePolicy) -> dict:
    """The paired comparison of one metric on the same held-out images."""
    new_correct = np.asarray(new_correct, dtype=bool)
    serving_correct = np.asarray(serving_correct, dtype=bool)
    if new_correct.shape != serving_correct.shape:
        raise ValueError(f"{metric}: the two encoders were scored on different images")
    new_only = int((new_correct & ~serving_correct).sum())
    serving_only = int((~new_correct & serving_correct).sum())
    lo, hi = paired_bootstrap(new_correct, serving_correct, policy.confidence, policy.bootstrap, policy.seed)
    p = mcnemar_worse_p(new_only, serving_only)
    worse = p < 1 - policy.confidence
    better = mcnemar_worse_p(serving_only, new_only) < 1 - policy.confidence
    return {
        "metric": metric,
        "n": int(len(new_correct)),
        "new": round(float(new_correct.mean()), 4),
        "serving": round(float(serving_correct.mean()), 4),
        "difference": round(float(new_correct.mean() - serving_correct.mean()), 4),
        "interval": [round(lo, 4), round(hi, 4)],
        "confidence": policy.confidence,
        "newOnly": new_only,
        "servingOnly": serving_only,
        "pWorse": round(p, 4),
        "verdict": "worse" if worse else "better" if better else "within noise",
    }


def decide(new: dict, serving: dict | None, policy: GatePolicy | None = None) -> GateDecision:
    """`new` and `serving`: metrics from evaluate.evaluate_heldout, with per-image correctness under
    "correct" ({metric: bool array over the held-out images}) and the label-free statistics."""
    policy = policy or GatePolicy()
    reasons: list[str] = []
    passed = True
    if not new.get("finite", False):
        passed = False
        reasons.append("embeddings contain NaN or infinity")
    if new.get("collapsed", True):
        passed = False
        reasons.append(f"embeddings collapsed (mean std {new.get('stdMean', float('nan')):.4f}, effective rank {new.get('effectiveRank', float('nan')):.2f})")
    if serving is None:
        reasons.append("no serving encoder to compare against")
        return _finish(passed, "sanity: first encoder", reasons, [])

    held = min((len(v) for v in (new.get("correct") or {}).values()), default=0)
    comparisons: list[dict] = []
    if held >= policy.min_heldout and serving.get("correct"):
        for metric in METRICS:
            a, b = (new.get("correct") or {}).get(metric), (serving.get("correct") or {}).get(metric)
            if a is None or b is None:
                reasons.append(f"{metric} not measurable on the held-out labels")
                continue
            c = compare(metric, a, b, policy)
            comparisons.append(c)
            lo, hi = c["interval"]
            line = (
                f"{metric} {c['new']:.4f} vs serving {c['serving']:.4f} on {c['n']} held-out images: difference {c['difference']:+.4f} "
                f"({int(policy.confidence * 100)}% interval {lo:+.4f} to {hi:+.4f}; {c['newOnly']} images only the new one gets right, "
                f"{c['servingOnly']} only the serving one; McNemar p(worse) {c['pWorse']:.3f}): {c['verdict']}"
            )
            reasons.append(line)
            if c["verdict"] == "worse":
                passed = False
            elif policy.no_lower_estimate and c["difference"] < 0:
                passed = False
                reasons.append(
                    f"{metric}: lower than the imported serving encoder's, which is kept (an import is replaced only by a version that scores no lower)"
                )
        rule = f"paired test on {held} held-out labels at {policy.confidence:.0%} confidence"
        return _finish(passed, rule + (", no lower estimate than an imported encoder" if policy.no_lower_estimate else ""), reasons, comparisons)

    # Too few held-out labels: every comparison would be within noise. Label-free checks decide.
    reasons.append(
        f"{held} held-out labels: too few for the paired test (at least {policy.min_heldout}); the label-free checks decide"
        if held
        else "no held-out labels: the label-free checks decide"
    )
    rank_new, rank_serving = new.get("effectiveRank", float("nan")), serving.get("effectiveRank", float("nan"))
    if policy.label_free == "accept":
        reasons.append(
            "an imported encoder is accepted without held-out labels to compare it on (label images to have the paired test decide); "
            f"effective rank {rank_new:.2f} vs serving {rank_serving:.2f}, reported"
        )
        return _finish(passed, "import: accepted without held-out labels", reasons, comparisons)
    if math.isfinite(rank_new) and math.isfinite(rank_serving) and rank_new < policy.min_rank_ratio * rank_serving:
        passed = False
        reasons.append(f"effective rank {rank_new:.2f} is under {policy.min_rank_ratio} of the serving encoder's {rank_serving:.2f}")
    elif math.isfinite(rank_new):
        reasons.append(f"effective rank {rank_new:.2f} vs serving {rank_serving:.2f}")
    for key, better in (("alignment", "lower"), ("uniformity", "lower")):
        if key in new and key in serving:
            reasons.append(f"{key} {new[key]:.4f} vs serving {serving[key]:.4f} ({better} is better; reported, not gated)")
    if "pseudoLabelAgreement" in new:
        reasons.append(f"agreement with the serving model's pseudo-labels {new['pseudoLabelAgreement']:.3f} (reported, not gated)")
    return _finish(passed, "label-free: too few held-out labels", reasons, comparisons)


def _finish(passed: bool, rule: str, reasons: list[str], comparisons: list[dict]) -> GateDecision:
    if passed:
        reasons.insert(0, "passed")
    return GateDecision(passed=passed, reasons=reasons, rule=rule, comparisons=comparisons)
