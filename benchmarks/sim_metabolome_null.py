#!/usr/bin/env python
"""Null simulation: can imputation plus normalisation of a metabolomics table invent a paired change?

Each simulated study has ``--subjects`` subjects sampled before and after a treatment that
does nothing. Three platforms (A: 120, B: 60, C: 20 features) measure log-normal
concentrations with a subject level (between-subject sd 1), visit noise (sd 0.3) and a
random sample dilution (x 0.6 to 1.6). Failure modes of real data:

* missing not at random: each feature has a detection limit at a random quantile
  (0-40 %) of its values, so about 20 % of all cells fall below it and are missing;
* platform C was not run at the post visit (every C value missing there).

Every combination of imputation (half_minimum, lod_fraction, knn) and normalisation
(pqn against the median sample, total_signal, median, none) is run through
``gutaxis.metabolome.process.process_metabolome``, with the structural-missingness step on (the
workflow) and off (what the workflow did before: the gap imputed like a non-detect).
The processed log2 values are tested post - pre with the paired t test and the
Wilcoxon signed-rank test, BH q < 0.1 over the features tested. On a complete null every
call is false: the table gives the mean number of false calls per study and the
fraction of studies with at least one (about 0.1 is BH's level on a complete null).

Usage::

    python benchmarks/sim_metabolome_null.py --seeds 20

Writes ``benchmarks/results/sim_metabolome_null.tsv`` and prints it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

from gutaxis.metabolome.process import process_metabolome  # noqa: E402

PLATFORMS = {"A": 120, "B": 60, "C": 20}
IMPUTATIONS = ["half_minimum", "lod_fraction", "knn"]
NORMALISATIONS = ["pqn", "total_signal", "median", "none"]
ALPHA = 0.1


def simulate(seed: int, n_subjects: int) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """One null study: samples x features with NaN below detection and platform C absent at post."""
    rng = np.random.default_rng(seed)
    ids = [f"{p}_{j:03d}" for p, n in PLATFORMS.items() for j in range(n)]
    n_features = len(ids)
    level = rng.normal(8, 1.5, n_features)
    subject = level + rng.normal(0, 1.0, (n_subjects, n_features))
    log_values = np.vstack([subject + rng.normal(0, 0.3, subject.shape),
                            subject + rng.normal(0, 0.3, subject.shape)])
    log_values += np.log(rng.uniform(0.6, 1.6, 2 * n_subjects))[:, None]
    values = np.exp(log_values)
    # detection limit at a per-feature quantile: 0-40 % of the feature's values below it
    limit = np.quantile(values, rng.uniform(0.0, 0.4, n_features), axis=0).diagonal()
    values = np.where(values < limit, np.nan, values)
    samples = [f"S{i:03d}_{t}" for t in ("pre", "post") for i in range(n_subjects)]
    x = pd.DataFrame(values, index=samples, columns=ids)
    below = float(np.isnan(values).mean())
    post = x.index.str.endswith("_post")
    x.loc[post, x.columns.str.startswith("C_")] = np.nan
    sheet = pd.DataFrame({"sample_id": samples,
                          "subject_id": [f"S{i:03d}" for i in range(n_subjects)] * 2,
                          "timepoint": ["pre"] * n_subjects + ["post"] * n_subjects,
                          "sample_type": "stool"})
    return x, sheet, below


def false_calls(table: pd.DataFrame, n_subjects: int) -> dict:
    """Paired t and Wilcoxon calls (BH q < ALPHA) of post - pre; every call is false here."""
    d = table.iloc[n_subjects:].to_numpy() - table.iloc[:n_subjects].to_numpy()
    tested = (~np.isnan(d)).sum(axis=0) >= 5
    d = d[:, tested]
    out = {"n_tested": int(tested.sum())}
    p_t = stats.ttest_1samp(d, 0.0, nan_policy="omit").pvalue
    complete = ~np.isnan(d).any(axis=0)  # imputed tables: only the not-measured cells stay missing
    p_w = np.full(d.shape[1], np.nan)
    p_w[complete] = stats.wilcoxon(d[:, complete], zero_method="zsplit", axis=0).pvalue
    for name, p in (("t", p_t), ("wilcoxon", p_w)):
        p = np.asarray(p, dtype=float)
        q = stats.false_discovery_control(p[~np.isnan(p)])
        out[f"calls_{name}"] = int((q < ALPHA).sum())
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--subjects", type=int, default=30)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sim_metabolome_null.tsv"))
    args = parser.parse_args(argv)
    rows, started = [], time.perf_counter()
    for seed in range(args.seeds):
        x, sheet, below = simulate(seed, args.subjects)
        for structural in (True, False):
            for impute in IMPUTATIONS:
                for normalise in NORMALISATIONS:
                    params = {"structural_missingness": {"enabled": structural},
                              "missingness": {"max_missing": 0.5},
                              "impute": {"method": impute},
                              "normalise": {"method": normalise, "reference": "median"}}
                    table = process_metabolome(x, sheet, None, params).table
                    rows.append({"seed": seed, "structural": structural, "impute": impute,
                                 "normalise": normalise, "below_detection": below,
                                 **false_calls(table, args.subjects)})
    runs = pd.DataFrame(rows)
    summary = runs.groupby(["structural", "impute", "normalise"], sort=False).agg(
        studies=("seed", "size"), below_detection=("below_detection", "mean"), tested=("n_tested", "mean"),
        false_calls_t=("calls_t", "mean"), any_call_t=("calls_t", lambda c: float((c > 0).mean())),
        false_calls_wilcoxon=("calls_wilcoxon", "mean"),
        any_call_wilcoxon=("calls_wilcoxon", lambda c: float((c > 0).mean()))).reset_index()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(args.out, sep="\t", index=False, float_format="%.3f")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(3).to_string(index=False))
    print(f"{args.seeds} seeds x {len(rows) // args.seeds} pipelines in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
