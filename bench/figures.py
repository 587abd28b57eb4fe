"""Small statistics over measured samples; units are carried by the caller's names."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def rounded(value: float, digits: int = 3) -> float:
    return round(value, digits) if math.isfinite(value) else value


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when either is missing or the denominator is 0."""
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator == 0:
        return math.nan
    return round(numerator / denominator, 3)


def latency_figures(prefix: str, seconds: Sequence[float]) -> dict[str, float]:
    """``{prefix}_p50_ms``, ``_p99_ms`` and ``_max_ms`` of samples given in seconds."""
    return {
        f"{prefix}_p50_ms": ms(percentile(seconds, 50)),
        f"{prefix}_p99_ms": ms(percentile(seconds, 99)),
        f"{prefix}_max_ms": ms(max(seconds)) if seconds else math.nan,
    }
