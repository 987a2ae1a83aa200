"""Score decided links against known truth (the synthetic generator's ``truth/`` files).

Precision is the share of decided links that are right; recall the share of *recoverable*
true links (those the exported data still identifies) that were decided right. Both are given
overall and per method, so a weak method shows up even when the total looks good.

>>> predicted = pl.DataFrame({"from_id": ["C1", "C2", "C3"], "to_id": ["T1", "T9", "T3"],
...                           "method": ["cross_system_id", "name_match", "cross_system_id"]})
>>> truth = pl.DataFrame({"from_id": ["C1", "C2", "C3", "C4"], "to_id": ["T1", "T2", "T3", "T4"],
...                       "recoverable": [True, True, True, False]})
>>> score = link_accuracy(predicted, truth)
>>> score["precision"], round(score["recall"], 3)
(0.6666666666666666, 0.667)
>>> score["by_method"]["name_match"]["precision"]
0.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl


def link_accuracy(predicted: pl.DataFrame, truth: pl.DataFrame) -> dict[str, Any]:
    """Precision and recall of ``predicted`` (from_id, to_id, method) against ``truth``
    (from_id, to_id, recoverable)."""
    judged = predicted.join(
        truth.select("from_id", pl.col("to_id").alias("true_id"), "recoverable"),
        on="from_id", how="left",
    ).with_columns((pl.col("to_id") == pl.col("true_id")).fill_null(False).alias("right"))
    recoverable = int(truth["recoverable"].sum())

    def score(frame: pl.DataFrame) -> dict[str, Any]:
        right = int(frame["right"].sum())
        right_recoverable = int((frame["right"] & frame["recoverable"].fill_null(False)).sum())
        return {
            "links": frame.height,
            "right": right,
            "wrong": frame.height - right,
            "precision": right / frame.height if frame.height else 1.0,
            "recall": right_recoverable / recoverable if recoverable else 1.0,
        }

    overall = score(judged)
    overall["recoverable"] = recoverable
    overall["by_method"] = {
        method: score(judged.filter(pl.col("method") == method))
        for method in sorted(judged["method"].unique().to_list())
    }
    return overall


def read_truth(truth_dir: Path, kind: str = "customer") -> pl.DataFrame:
    """The generator's true ``customer`` or ``area`` links as from_id, to_id, recoverable."""
    if kind == "customer":
        path, key = truth_dir / "customer_links.csv", "customer_id"
    else:
        path, key = truth_dir / "area_links.csv", "area_code"
    frame = pl.read_csv(path, infer_schema=False)
    return frame.select(
        pl.col(key).alias("from_id"),
        pl.col("transformer_id").alias("to_id"),
        (pl.col("recoverable") == "true").alias("recoverable"),
    )
