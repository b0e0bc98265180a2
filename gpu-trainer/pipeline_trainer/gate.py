"""The quality gate: publish a new encoder only if it is sane and not worse than the serving one."""

from __future__ import annotations

import math

from .manifest import GateDecision


def decide(new: dict, serving: dict | None, tolerance: float) -> GateDecision:
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
    else:
        for metric in ("knnAccuracy", "linearProbeAccuracy"):
            a, b = new.get(metric, float("nan")), serving.get(metric, float("nan"))
            if math.isnan(a) or math.isnan(b):
                reasons.append(f"{metric} not measurable on the held-out labels")
            elif a + tolerance < b:
                passed = False
                reasons.append(f"{metric} {a:.4f} is worse than the serving encoder's {b:.4f} (tolerance {tolerance})")
            else:
                reasons.append(f"{metric} {a:.4f} vs serving {b:.4f}: not worse (tolerance {tolerance})")
    if passed:
        reasons.insert(0, "passed")
    return GateDecision(passed=passed, reasons=reasons)
