#!/usr/bin/env python
"""Leave-one-cohort-out AUROC of the workflow beside the published log-ratio's AUROC, per cohort.

Reads the workflow's ``results/models/group_performance.tsv`` (this example's config:
leave-one-cohort-out) and the data set's ``reference_results/log_ratio_per_sample.tsv`` (the
published per-sample log ratio of marker OGUs, Kanaeva & Olekhnovich), and writes
``per_cohort_auroc.tsv`` beside this script: for each cohort, the workflow's held-out AUROC
(L1 logistic, with DeLong's 95 % interval) and the AUROC of the published log ratio in that
cohort (higher ratio = responder; DeLong interval).

The two answer different questions. The published markers were chosen on all 11 cohorts,
so the log ratio has seen every test cohort (leakage); the workflow's model is refitted
without the held-out cohort, selection included.

Usage (from the repository root, after the workflow has run)::

    python config/examples/ici_responders_ogu_11cohorts/compare_published.py \\
        --data ../shared/data/ici_responders_ogu_11cohorts --results results
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "workflow" / "scripts"))
from gutaxis.models.metrics import delong_interval  # noqa: E402


def published_per_cohort(data: Path) -> pd.DataFrame:
    ratio = pd.read_csv(data / "reference_results/log_ratio_per_sample.tsv", sep="\t")
    rows = []
    for cohort, part in ratio.groupby("dataset", sort=True):
        y = (part["response"] == "R").astype(int).to_numpy()
        if 0 < y.sum() < len(y):
            area, _, low, high = delong_interval(y, part["log_ratio"].to_numpy())
        else:
            area = low = high = float("nan")
        rows.append({"cohort": cohort, "published_n": len(y), "published_log_ratio_auroc": area,
                     "published_low": low, "published_high": high})
    y = (ratio["response"] == "R").astype(int).to_numpy()
    area, _, low, high = delong_interval(y, ratio["log_ratio"].to_numpy())
    rows.append({"cohort": "pooled", "published_n": len(y), "published_log_ratio_auroc": area,
                 "published_low": low, "published_high": high})
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ici_responders_ogu_11cohorts"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--model", default="l1_logistic")
    args = parser.parse_args(argv)
    groups = pd.read_csv(args.results / "models/group_performance.tsv", sep="\t")
    ours = groups[groups["model"] == args.model].rename(columns={
        "group": "cohort", "n_subjects": "workflow_n", "auroc": "workflow_auroc",
        "auroc_low": "workflow_low", "auroc_high": "workflow_high"})
    performance = pd.read_csv(args.results / "models/performance.tsv", sep="\t")
    pooled = performance[performance["model"] == args.model].iloc[0]
    ours = pd.concat([ours, pd.DataFrame([{
        "cohort": "pooled", "workflow_n": pooled["n_subjects"], "workflow_auroc": pooled["auroc_pooled"],
        "workflow_low": pooled["auroc_delong_low"], "workflow_high": pooled["auroc_delong_high"]}])],
        ignore_index=True)
    table = ours[["cohort", "workflow_n", "workflow_auroc", "workflow_low", "workflow_high"]].merge(
        published_per_cohort(args.data), on="cohort", how="outer")
    for column in ("workflow_n", "published_n"):
        table[column] = table[column].astype("Int64")
    table.to_csv(HERE / "per_cohort_auroc.tsv", sep="\t", index=False, float_format="%.3f")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    scored = ours[ours["cohort"] != "pooled"]["workflow_auroc"].dropna()
    print(f"workflow mean +- SD over cohorts: {scored.mean():.3f} +- {scored.std(ddof=1):.3f}")


if __name__ == "__main__":
    main()
