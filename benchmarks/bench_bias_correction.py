"""Time the bias-corrected compositional tests (issue 16): 1,500 taxa x 5,000 samples.

Run by hand (not by pytest), one BLAS thread as the workflow's differential rule:

    python benchmarks/bench_bias_correction.py [--subjects 2500] [--taxa 1500] [--repeats 3]

Simulates 2,500 subjects x (baseline, post) with sparse log-normal taxa (~50 % zeros after a
detection limit), 5 % blooming 3-fold after treatment, half responders and three cohorts, then
times ``gutaxis.differential.contrast.run_contrast`` (paired, mixed and baseline analyses, CLR with zeros
kept) three ways: relative effects only (``bias_correction="none"``, today's engine on CLR),
bias-corrected (``"mode"``) and bias-corrected with the presence tests. Prints a markdown table
(median of the repeats) for benchmarks/README.md. Target: <= 30 s for the corrected run.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from gutaxis.differential.contrast import run_contrast  # noqa: E402


def simulate(n_subjects: int, n_taxa: int, seed: int = 20261122):
    rng = np.random.default_rng(seed)
    subjects = np.array([f"S{i:05d}" for i in range(n_subjects)])
    sample_ids = np.concatenate([np.char.add(subjects, "_pre"), np.char.add(subjects, "_post")])
    post = np.r_[np.zeros(n_subjects, bool), np.ones(n_subjects, bool)]
    subj = np.r_[np.arange(n_subjects), np.arange(n_subjects)]
    mu = rng.normal(0, 2.0, n_taxa)
    log_abs = mu + rng.normal(0, 1.0, (n_subjects, n_taxa))[subj] + rng.normal(0, 0.5, (2 * n_subjects, n_taxa))
    bloom = rng.choice(n_taxa, n_taxa // 20, replace=False)
    log_abs[np.ix_(post, bloom)] += np.log(3.0)
    rel = np.exp(log_abs)
    rel /= rel.sum(axis=1, keepdims=True)
    rel[rel < np.quantile(rel, 0.5)] = 0.0  # a detection limit: half the entries are zero
    samples = pd.DataFrame({"sample_id": sample_ids, "subject_id": subjects[subj],
                            "timepoint": np.where(post, "post", "baseline")})
    responders = pd.DataFrame({"subject_id": subjects,
                               "cohort": rng.choice(["a", "b", "c"], n_subjects),
                               "dcr_recist": rng.choice(["responder", "non_responder"], n_subjects)})
    table = pd.DataFrame(rel, index=sample_ids, columns=[f"T{j:05d}" for j in range(n_taxa)])
    keep = (table > 0).mean() >= 0.1  # the workflow's prevalence filter
    return table.loc[:, keep], samples, responders


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=2500)
    parser.add_argument("--taxa", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    table, samples, responders = simulate(args.subjects, args.taxa)
    contrast = {"name": "post_vs_baseline", "pre": "baseline", "post": "post"}
    rows = []
    for label, options in (("relative (CLR, no correction)", dict(bias_correction="none")),
                           ("bias-corrected", dict(bias_correction="mode")),
                           ("bias-corrected + presence tests",
                            dict(bias_correction="mode", presence_tests=True))):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            res = run_contrast(table, samples, contrast, transform="clr", responders=responders,
                               covariates=("cohort",), **options)
            times.append(time.perf_counter() - start)
        rows.append((label, float(np.median(times)), min(times), len(res.results)))
    print(f"{table.shape[1]} taxa (after the 10 % prevalence filter) x {table.shape[0]} samples, "
          f"{args.subjects} subjects, one thread, median of {args.repeats}")
    print("| run | median s | fastest s | result rows |\n| --- | --- | --- | --- |")
    for label, med, fast, n in rows:
        print(f"| {label} | {med:.1f} | {fast:.1f} | {n:,} |")


if __name__ == "__main__":
    main()
