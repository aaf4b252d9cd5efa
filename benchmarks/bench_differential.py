"""Benchmark of the differential-testing engine against per-feature scipy/statsmodels loops.

Design: 5,000 features x 200 subjects x 2 timepoints (baseline, post) with 10%
of subjects missing one timepoint (so ~380 samples), responders/non-responders
and three cohorts. Times, side by side in one run:

* paired t + Wilcoxon signed-rank for all features (gutaxis.stats.paired), and the
  Hodges-Lehmann effect with CI, versus scipy called per feature;
* the mixed-model family ``y ~ timepoint * response + cohort + (1|subject)``
  (gutaxis.stats.mixed, REML) versus a loop of ``statsmodels MixedLM`` fits. The
  loop is timed on a random sample of features and extrapolated to all of
  them (stated in the output); the estimates of both are compared on that
  sample.

Run by hand: ``python benchmarks/bench_differential.py [--features 5000]
[--sample 100] [--seed 0]``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from gutaxis.stats.mixed import build_design, fit_random_intercept  # noqa: E402
from gutaxis.io.pairing import paired_design  # noqa: E402
from gutaxis.stats.paired import (hodges_lehmann, paired_differences,  # noqa: E402
                                  paired_t_test, wilcoxon_signed_rank)


def simulate(n_subjects: int, n_features: int, seed: int):
    rng = np.random.default_rng(seed)
    subjects = [f"S{i:03d}" for i in range(n_subjects)]
    rows = []
    for s in subjects:
        lost = rng.choice(["baseline", "post"]) if rng.random() < 0.10 else None
        rows += [(f"{s}_{t}", s, t) for t in ("baseline", "post") if t != lost]
    samples = pd.DataFrame(rows, columns=["sample_id", "subject_id", "timepoint"])
    response = dict(zip(subjects, rng.choice(["non_responder", "responder"], n_subjects)))
    cohort = dict(zip(subjects, rng.choice(["lung", "esophageal", "other"], n_subjects)))
    samples["response"] = pd.Categorical(samples["subject_id"].map(response),
                                         ["non_responder", "responder"])
    samples["cohort"] = pd.Categorical(samples["subject_id"].map(cohort))
    samples["timepoint"] = pd.Categorical(samples["timepoint"], ["baseline", "post"])
    subj_idx = samples["subject_id"].str[1:].astype(int).to_numpy()
    post = (samples["timepoint"] == "post").to_numpy()
    subject_sd = rng.choice([0.0, 0.3, 1.0], n_features)  # some features at the boundary
    values = (rng.normal(0, 1, (n_subjects, n_features))[subj_idx] * subject_sd
              + post[:, None] * rng.normal(0, 0.3, n_features)
              + rng.normal(0, 1, (len(samples), n_features)))
    table = pd.DataFrame(values, index=samples["sample_id"],
                         columns=[f"F{j:05d}" for j in range(n_features)])
    return table, samples


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--features", type=int, default=5000)
    parser.add_argument("--sample", type=int, default=100,
                        help="features fitted one by one with scipy/statsmodels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from scipy import stats
    import statsmodels.formula.api as smf

    table, samples = simulate(args.subjects, args.features, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    picked = np.sort(rng.choice(args.features, min(args.sample, args.features), replace=False))
    print(f"design: {args.features} features x {len(samples)} samples "
          f"({args.subjects} subjects x 2 timepoints, 10% of subjects missing one)")

    rows = []
    # ---------------- paired tests ----------------
    design = paired_design(samples, "baseline", "post")
    diff, t_pair = timed(paired_differences, table, design.pairs)
    d = diff.to_numpy()
    tt, t_t = timed(paired_t_test, d)
    wx, t_w = timed(wilcoxon_signed_rank, d)
    hl, t_hl = timed(hodges_lehmann, d)
    start = time.perf_counter()
    sp_t = [stats.ttest_rel(table.loc[design.pairs["post_sample"]].iloc[:, j],
                            table.loc[design.pairs["pre_sample"]].iloc[:, j]) for j in picked]
    sp_w = [stats.wilcoxon(d[:, j]) for j in picked]
    t_scipy = (time.perf_counter() - start) / picked.size * args.features
    dt = max(abs(tt["p"].to_numpy()[picked] - [r.pvalue for r in sp_t]).max(),
             abs(tt["t"].to_numpy()[picked] - [r.statistic for r in sp_t]).max())
    dw = abs(wx["p"].to_numpy()[picked] - [r.pvalue for r in sp_w]).max()
    rows.append(("pairing + differences", t_pair, np.nan, ""))
    rows.append(("paired t (all features)", t_t, np.nan, f"max |diff| vs scipy {dt:.1e}"))
    rows.append(("Wilcoxon signed-rank (all features)", t_w, np.nan,
                 f"max |p diff| vs scipy {dw:.1e}"))
    rows.append(("paired t + Wilcoxon", t_t + t_w, t_scipy,
                 f"scipy loop extrapolated from {picked.size} features"))
    rows.append(("Hodges-Lehmann + CI (all features)", t_hl, np.nan, "effect for Wilcoxon rows"))

    # ---------------- mixed models ----------------
    rhs = "timepoint * response + cohort"
    X = build_design(samples, rhs)
    fit, t_mixed = timed(fit_random_intercept, table, X, samples["subject_id"])
    coef = fit.coefficients.set_index(["feature_id", "term"])
    fits = fit.fits.set_index("feature_id")
    diffs = {"fe": [], "se": [], "group_var": []}
    early_stop = 0
    start = time.perf_counter()
    sm_fits = []
    for j in picked:
        data = samples.assign(y=table.iloc[:, j].to_numpy())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sm_fits.append(smf.mixedlm("y ~ " + rhs, data, groups=data["subject_id"])
                           .fit(reml=True))
    t_sm = (time.perf_counter() - start) / picked.size
    for j, m in zip(picked, sm_fits):
        fid = table.columns[j]
        ours = coef.loc[fid]
        if m.llf < fits.loc[fid, "llf"] - 1e-6:
            # statsmodels stopped short of the REML maximum (typically near the
            # boundary group variance = 0); ours has the higher REML likelihood.
            early_stop += 1
            continue
        diffs["fe"].append(np.abs(ours["estimate"].to_numpy() - m.fe_params.to_numpy()).max())
        diffs["se"].append(np.abs(ours["se"].to_numpy() - m.bse_fe.to_numpy()).max())
        diffs["group_var"].append(abs(fits.loc[fid, "group_var"] - m.cov_re.iloc[0, 0]))
    t_sm_all = t_sm * args.features
    n_boundary = int((fit.fits["status"] == "boundary").sum())
    rows.append(("mixed-model family (REML, all features)", t_mixed, t_sm_all,
                 f"statsmodels loop: {t_sm * 1000:.0f} ms/feature x {args.features} "
                 f"(timed on {picked.size} features, extrapolated)"))
    print()
    print(f"{'step':42s} {'gutaxis s':>10s} {'loop s':>10s} {'speed-up':>9s}  note")
    for name, ours_t, loop_t, note in rows:
        speed = f"{loop_t / ours_t:8.0f}x" if np.isfinite(loop_t) else ""
        loop = f"{loop_t:10.2f}" if np.isfinite(loop_t) else ""
        print(f"{name:42s} {ours_t:10.3f} {loop:>10s} {speed:>9s}  {note}")
    print()
    compared = len(diffs["fe"])
    print(f"mixed models vs statsmodels on {compared} of {picked.size} sampled features: "
          f"max |diff| fixed effects {max(diffs['fe']):.2e}, SE {max(diffs['se']):.2e}, "
          f"group variance {max(diffs['group_var']):.2e}")
    print(f"  {early_stop} sampled feature(s) where statsmodels stopped below the REML maximum "
          "(boundary); ours has the higher REML log-likelihood there")
    print(f"  boundary fits (group variance 0) among all features: {n_boundary}; "
          f"statuses: {fit.fits['status'].value_counts().to_dict()}")


if __name__ == "__main__":
    main()
