"""Benchmark of gutaxis.stats.mixed.fit_mixed (two random intercepts) against per-feature loops.

Design like HMP2: 1,600 samples from 130 subjects nested in 5 sites (1-25 samples per
subject), 1,500 features, fixed effects ``diagnosis (3 levels) + visit_week + age + antibiotics
+ sex + diagnosis:visit_week`` (8 columns), random intercepts for subject and site, 5 % of values
missing. Times, side by side in one run:

* ``fit_mixed`` on all features (Satterthwaite df, as lmerTest);
* a loop of ``statsmodels MixedLM`` (groups = site, ``vc_formula`` for subject, REML) on a
  random sample of features, extrapolated to all of them;
* ``lmerTest::lmer`` via Rscript on the same sample (timed inside R, extrapolated), with
  lme4's default optimiser settings and with a tight bobyqa (``rhoend = 1e-12``),

and the agreement of the estimates, SEs, df and p values with lmerTest on the sample (the
default settings stop at lme4's optimiser tolerance; the tight run shows the agreement of the
two optima).

Run by hand: ``python benchmarks/bench_mixed_multi.py [--features 1500] [--sample 40]``.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from gutaxis.stats.mixed import build_design, fit_mixed  # noqa: E402

RHS = "diagnosis * visit_week + age + antibiotics + sex"


def simulate(n_samples: int, n_subjects: int, n_sites: int, n_features: int, seed: int):
    """Samples of subjects nested in sites, responses with both random intercepts."""
    rng = np.random.default_rng(seed)
    weights = rng.gamma(2.0, 1.0, n_subjects)
    sid = np.sort(rng.choice(n_subjects, n_samples, p=weights / weights.sum()))
    site = rng.integers(0, n_sites, n_subjects)
    diagnosis = rng.choice(["nonIBD", "CD", "UC"], n_subjects)
    d = pd.DataFrame({"subject_id": [f"S{i:03d}" for i in sid],
                      "site": [f"site{site[i]}" for i in sid],
                      "diagnosis": pd.Categorical(diagnosis[sid], ["nonIBD", "CD", "UC"]),
                      "visit_week": rng.uniform(0, 52, n_samples).round(),
                      "age": rng.normal(35, 12, n_subjects)[sid],
                      "antibiotics": (rng.random(n_samples) < 0.15).astype(float),
                      "sex": pd.Categorical(rng.choice(["F", "M"], n_subjects)[sid], ["F", "M"])})
    sd_subject = rng.uniform(0, 1.2, n_features)
    sd_site = rng.choice([0.0, 0.3, 0.6], n_features)
    Y = (rng.normal(size=(n_subjects, n_features))[sid] * sd_subject
         + rng.normal(size=(n_sites, n_features))[site[sid]] * sd_site
         + 0.01 * d["visit_week"].to_numpy()[:, None] * rng.normal(0, 1, n_features)
         + rng.normal(size=(n_samples, n_features)))
    Y[rng.random(Y.shape) < 0.05] = np.nan
    return d, pd.DataFrame(Y, columns=[f"F{j:04d}" for j in range(n_features)])


def statsmodels_loop(d: pd.DataFrame, Y: pd.DataFrame):
    import statsmodels.formula.api as smf

    rows = []
    for name in Y.columns:
        frame = d.assign(y=Y[name].to_numpy()).dropna(subset=["y"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = smf.mixedlm("y ~ " + RHS, frame, groups=frame["site"], re_formula="1",
                              vc_formula={"subject_id": "0 + C(subject_id)"}).fit(reml=True)
        fe = fit.fe_params
        rows.append(pd.DataFrame({"feature_id": name, "term": fe.index, "estimate": fe.to_numpy(),
                                  "se": fit.bse_fe.to_numpy()}))
    return pd.concat(rows, ignore_index=True)


LMER = """
suppressMessages(library(lmerTest))
d <- read.delim("{data}")
d$diagnosis <- factor(d$diagnosis, levels = c("nonIBD", "CD", "UC"))
d$sex <- factor(d$sex, levels = c("F", "M"))
feats <- grep("^F[0-9]+$", names(d), value = TRUE)
out <- NULL
start <- proc.time()[["elapsed"]]
for (f in feats) {{
  m <- suppressMessages(lmer(as.formula(paste(f, "~ {rhs} + (1 | subject_id) + (1 | site)")), data = d,
                             REML = TRUE{control}))
  s <- coef(summary(m, ddf = "Satterthwaite"))
  out <- rbind(out, data.frame(feature = f, term = rownames(s), est = s[, 1], se = s[, 2], df = s[, 3],
                               p = s[, 5]))
}}
cat(proc.time()[["elapsed"]] - start, "\\n", file = "{timing}")
write.table(out, "{out}", sep = "\\t", row.names = FALSE, quote = FALSE)
"""


TIGHT = (", control = lmerControl(optimizer = 'bobyqa', "
         "optCtrl = list(rhoend = 1e-12, maxfun = 1e5))")


def lmertest_loop(d: pd.DataFrame, Y: pd.DataFrame, design_columns, control: str = ""):
    """lmerTest fits of every column of ``Y`` (default lmer settings unless ``control``)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        d.assign(**Y).to_csv(tmp / "d.tsv", sep="\t", index=False)
        script = LMER.format(data=tmp / "d.tsv", rhs=RHS, timing=tmp / "t.txt", out=tmp / "o.tsv",
                             control=control)
        (tmp / "run.R").write_text(script)
        done = subprocess.run(["Rscript", str(tmp / "run.R")], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        seconds = float((tmp / "t.txt").read_text())
        ref = pd.read_csv(tmp / "o.tsv", sep="\t")
    # R names: (Intercept), diagnosisCD, visit_week, diagnosisCD:visit_week, sexM ...
    r_names = {"(Intercept)": "Intercept"}
    for col in design_columns:
        r_names[col.replace("[", "").replace("]", "")] = col
    ref["term"] = ref["term"].map(r_names)
    return ref, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=1500)
    parser.add_argument("--samples", type=int, default=1600)
    parser.add_argument("--subjects", type=int, default=130)
    parser.add_argument("--sites", type=int, default=5)
    parser.add_argument("--sample", type=int, default=40,
                        help="features fitted one by one with statsmodels and lmerTest")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-statsmodels", action="store_true")
    args = parser.parse_args(argv)

    d, Y = simulate(args.samples, args.subjects, args.sites, args.features, args.seed)
    X = build_design(d, RHS)
    sizes = d.groupby("subject_id").size()
    print(f"{len(d)} samples, {d['subject_id'].nunique()} subjects ({sizes.min()}-{sizes.max()} "
          f"samples each) in {d['site'].nunique()} sites, {Y.shape[1]} features, "
          f"{X.shape[1]} fixed columns, threads={os.environ.get('OMP_NUM_THREADS', 'default')}")
    start = time.perf_counter()
    res = fit_mixed(Y, X, d[["subject_id", "site"]])
    ours_s = time.perf_counter() - start
    print(f"fit_mixed: {ours_s:.1f} s for {Y.shape[1]} features; status "
          f"{res.fits['status'].value_counts().to_dict()}")

    rng = np.random.default_rng(args.seed + 1)
    picked = np.sort(rng.choice(Y.shape[1], args.sample, replace=False))
    sub = Y.iloc[:, picked]
    for label, control in (("default lmer settings", ""), ("bobyqa rhoend 1e-12", TIGHT)):
        ref, r_s = lmertest_loop(d, sub, X.columns, control)
        print(f"lmerTest loop ({label}): {r_s:.1f} s for {args.sample} features -> "
              f"{r_s / args.sample * Y.shape[1]:.0f} s extrapolated to {Y.shape[1]}")
        both = ref.merge(res.coefficients, left_on=["feature", "term"],
                         right_on=["feature_id", "term"], suffixes=("_r", ""))
        assert len(both) == len(ref), (len(both), len(ref))
        for r_col, col in (("est", "estimate"), ("se_r", "se"), ("df_r", "df"), ("p_r", "p")):
            diff = (both[col] - both[r_col]).abs()
            rel = diff / both[r_col].abs()
            print(f"  vs lmerTest {col}: max abs diff {diff.max():.2e}, max rel diff {rel.max():.2e}")
    if not args.no_statsmodels:
        start = time.perf_counter()
        sm = statsmodels_loop(d, sub)
        sm_s = time.perf_counter() - start
        print(f"statsmodels MixedLM loop: {sm_s:.1f} s for {args.sample} features -> "
              f"{sm_s / args.sample * Y.shape[1]:.0f} s extrapolated to {Y.shape[1]}")
        both = sm.merge(res.coefficients, on=["feature_id", "term"], suffixes=("_sm", ""))
        for col in ("estimate", "se"):
            diff = (both[col] - both[col + "_sm"]).abs()
            print(f"  vs statsmodels {col}: max abs diff {diff.max():.2e}, "
                  f"median {diff.median():.2e}")


if __name__ == "__main__":
    main()
