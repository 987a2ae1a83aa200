"""How many of each object a province with N customers has.

The ratios are those of the reference model (Guangdong excluding Guangzhou and Shenzhen):
11,779 feeders, 208,706 distribution transformers and 14,297,503 customers, i.e. one feeder
per ≈1,214 customers and one transformer (= one 台区) per ≈68.5 customers, with 8–14 feeders
per 110 kV / 35 kV substation. Counts are a pure function of N, so two runs with the same N
always build networks of the same size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

REFERENCE_CUSTOMERS = 14_297_503
REFERENCE_FEEDERS = 11_779
REFERENCE_TRANSFORMERS = 208_706
FEEDERS_PER_STATION = 11  # midpoint of the 8–14 seen in practice


@dataclass(frozen=True)
class Sizes:
    """Object counts for one generated province."""

    customers: int
    stations: int
    feeders: int
    transformers: int


def sizes_for(customers: int) -> Sizes:
    """Scale the reference ratios to ``customers`` (at least one of everything)."""
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    feeders = max(1, round(customers * REFERENCE_FEEDERS / REFERENCE_CUSTOMERS))
    transformers = max(1, round(customers * REFERENCE_TRANSFORMERS / REFERENCE_CUSTOMERS))
    transformers = min(transformers, customers)
    feeders = min(feeders, transformers)
    stations = max(1, round(feeders / FEEDERS_PER_STATION))
    return Sizes(customers, stations, feeders, transformers)


def apportion(total: int, weights: npt.ArrayLike, minimum: int = 0) -> npt.NDArray[np.int64]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder).

    Each part gets ``minimum`` first when the total allows it; the result always sums to
    ``total`` exactly, which keeps derived counts (customers per area, feeders per station)
    consistent with :func:`sizes_for`.
    """
    w = np.asarray(weights, dtype=np.float64)
    n = w.size
    base = np.full(n, minimum if total >= minimum * n else 0, dtype=np.int64)
    rest = total - int(base.sum())
    if rest <= 0 or n == 0:
        return base
    share = w / w.sum() * rest
    parts = np.floor(share).astype(np.int64)
    short = rest - int(parts.sum())
    if short:
        order = np.argsort(-(share - parts), kind="stable")
        parts[order[:short]] += 1
    return base + parts
