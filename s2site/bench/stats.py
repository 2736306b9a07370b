"""Latency samples and their summary (min, p50, p90, p99, max)."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


class Latencies:
    """Samples in seconds, kept in a compact array."""

    def __init__(self) -> None:
        self.samples = array("d")

    def __len__(self) -> int:
        return len(self.samples)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)

    def extend(self, seconds: Iterable[float]) -> None:
        self.samples.extend(seconds)

    def summary(self, start: int = 0) -> dict[str, float] | None:
        """Milliseconds; ``start`` skips the samples taken before it (a live window)."""
        return summarize(self.samples[start:])


def summarize(samples: Iterable[float]) -> dict[str, float] | None:
    ordered = sorted(samples)
    if not ordered:
        return None
    count = len(ordered)
    summary = {"count": float(count), "min": ordered[0] * 1000}
    for name, q in QUANTILES:
        rank = max(1, math.ceil(count * q))
        summary[name] = ordered[rank - 1] * 1000
    summary["max"] = ordered[-1] * 1000
    return summary


def describe(summary: dict[str, float] | None) -> str:
    if summary is None:
        return "no samples"
    parts = [f"{key} {summary[key]:.2f} ms" for key in ("min", "p50", "p90", "p99", "max")]
    return ", ".join(parts) + f" (n={int(summary['count'])})"
