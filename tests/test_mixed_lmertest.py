"""Mixed-model inference as lme4/lmerTest: SEs from sigma^2 (X'V^-1 X)^-1, Satterthwaite df."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gutaxis.stats.mixed import build_design, fit_random_intercept


def unbalanced(seed: int = 3, n_subjects: int = 24):
    """1-4 of 4 visits per subject, a between-subject group, a continuous covariate."""
    rng = np.random.default_rng(seed)
    rows = [(f"s{s:02d}", t) for s in range(n_subjects)
            for t in rng.choice(["t0", "t1", "t2", "t3"], size=rng.integers(1, 5), replace=False)]
    d = pd.DataFrame(rows, columns=["subject", "tp"])
    sid = d["subject"].str[1:].astype(int).to_numpy()
    d["grp"] = pd.Categorical(np.where(sid % 3 == 0, "b", "a"), ["a", "b"])
    d["tp"] = pd.Categorical(d["tp"], ["t0", "t1", "t2", "t3"])
    d["x"] = rng.normal(size=len(d))
    u = rng.normal(size=n_subjects)
    e = rng.normal(size=len(d))
    Y = pd.DataFrame({
        "time": 0.5 * (d["tp"] == "t1") + u[sid] + rng.normal(size=len(d)),
        "large_subject_effect": 0.3 * d["x"] + 2 * u[sid] + rng.normal(size=len(d)),
        "small_subject_effect": 0.3 * u[sid] + rng.normal(size=len(d)),
        "missing_cells": 0.7 * u[sid] + 0.4 * (d["grp"] == "b") + rng.normal(size=len(d)),
        # within-subject values pulled apart: the REML subject variance is 0 (a boundary fit)
        "boundary": e - 0.9 * pd.Series(e).groupby(d["subject"]).transform("mean").to_numpy(),
    })
    Y.loc[rng.choice(len(d), 6, replace=False), "missing_cells"] = np.nan
    return d, Y


def test_boundary_fit_has_residual_df_and_ols_standard_errors():
    d, Y = unbalanced()
    X = build_design(d, "tp + grp + x")
    res = fit_random_intercept(Y[["boundary"]], X, d["subject"], df_method="satterthwaite")
    assert res.fits["status"].iloc[0] == "boundary"
    coef = res.coefficients.set_index("term")
    assert (coef["df"] == len(d) - X.shape[1]).all()
    x, y = X.to_numpy(), Y["boundary"].to_numpy()
    xtx_inv = np.linalg.inv(x.T @ x)
    resid = y - x @ (xtx_inv @ x.T @ y)
    sigma2 = float(resid @ resid) / (len(d) - X.shape[1])
    np.testing.assert_allclose(coef.loc[X.columns, "se"], np.sqrt(sigma2 * np.diag(xtx_inv)), rtol=1e-8)


def test_complete_paired_design_gives_the_paired_t_test():
    """Two visits per subject, interior fit: the time term is the paired t test (df = n - 1)."""
    rng = np.random.default_rng(1)
    n = 30
    u = rng.normal(size=n)
    pre = u + rng.normal(size=n)
    post = u + 0.4 + rng.normal(size=n)
    d = pd.DataFrame({"subject": [f"s{i}" for i in range(n)] * 2,
                      "tp": pd.Categorical(["pre"] * n + ["post"] * n, ["pre", "post"])})
    res = fit_random_intercept(pd.DataFrame({"y": np.r_[pre, post]}), build_design(d, "tp"), d["subject"],
                               df_method="satterthwaite")
    assert res.fits["status"].iloc[0] == "ok"
    row = res.coefficients.set_index("term").loc["tp[post]"]
    paired = stats.ttest_rel(post, pre)
    assert row["df"] == pytest.approx(n - 1, rel=1e-6)
    assert row["p"] == pytest.approx(paired.pvalue, rel=1e-6)
    assert row["estimate"] / row["se"] == pytest.approx(paired.statistic, rel=1e-8)


@pytest.mark.rcheck
@pytest.mark.skipif(shutil.which("Rscript") is None or subprocess.run(
    ["Rscript", "-e", "suppressMessages(library(lmerTest))"], capture_output=True).returncode != 0,
    reason="Rscript with lmerTest not available")
def test_matches_lmertest_on_an_unbalanced_design(tmp_path):
    """Estimates, SEs, Satterthwaite df and p equal lmerTest's, incl. missing cells and a boundary fit."""
    d, Y = unbalanced()
    X = build_design(d, "tp + grp + x")
    ours = fit_random_intercept(Y, X, d["subject"], df_method="satterthwaite").coefficients
    d.assign(**Y).to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    script = f"""
suppressMessages(library(lmerTest))
d <- read.delim("{tmp_path}/d.tsv")
d$tp <- factor(d$tp, levels = c("t0", "t1", "t2", "t3")); d$grp <- factor(d$grp, levels = c("a", "b"))
out <- NULL
for (f in c({", ".join(f'"{c}"' for c in Y.columns)})) {{
  m <- suppressMessages(lmer(as.formula(paste(f, "~ tp + grp + x + (1 | subject)")), data = d, REML = TRUE,
                             control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12))))
  s <- coef(summary(m, ddf = "Satterthwaite"))
  out <- rbind(out, data.frame(feature = f, term = rownames(s), est = s[, 1], se = s[, 2], df = s[, 3],
                               p = s[, 5], singular = isSingular(m)))
}}
write.table(out, "{tmp_path}/out.tsv", sep = "\\t", row.names = FALSE, quote = FALSE)
"""
    (tmp_path / "check.R").write_text(script)
    done = subprocess.run(["Rscript", str(tmp_path / "check.R")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ref = pd.read_csv(tmp_path / "out.tsv", sep="\t")
    names = {"(Intercept)": "Intercept", "tpt1": "tp[t1]", "tpt2": "tp[t2]", "tpt3": "tp[t3]", "grpb": "grp[b]",
             "x": "x"}
    ref["term"] = ref["term"].map(names)
    both = ref.merge(ours, left_on=["feature", "term"], right_on=["feature_id", "term"], suffixes=("_r", ""))
    assert len(both) == len(ref) == 5 * 6
    assert ref.loc[ref["feature"] == "boundary", "singular"].all()
    np.testing.assert_allclose(both["estimate"], both["est"], atol=1e-6)
    np.testing.assert_allclose(both["se"], both["se_r"], rtol=1e-6)
    np.testing.assert_allclose(both["df"], both["df_r"], rtol=1e-6)
    np.testing.assert_allclose(both["p"], both["p_r"], atol=1e-6)


def test_complete_paired_design_interaction_is_the_two_sample_t_test_of_changes():
    rng = np.random.default_rng(4)
    n = 32
    group = np.where(np.arange(n) < 14, "a", "b")
    u = rng.normal(size=n)
    pre = u + rng.normal(size=n)
    post = u + 0.2 + 0.6 * (group == "b") + rng.normal(size=n)
    d = pd.DataFrame({"subject": [f"s{i}" for i in range(n)] * 2,
                      "tp": pd.Categorical(["pre"] * n + ["post"] * n, ["pre", "post"]),
                      "grp": pd.Categorical(np.r_[group, group], ["a", "b"])})
    res = fit_random_intercept(pd.DataFrame({"y": np.r_[pre, post]}), build_design(d, "tp * grp"), d["subject"],
                               df_method="satterthwaite")
    assert res.fits["status"].iloc[0] == "ok"
    row = res.coefficients.set_index("term").loc["tp[post]:grp[b]"]
    change = post - pre
    two_sample = stats.ttest_ind(change[group == "b"], change[group == "a"])
    assert row["df"] == pytest.approx(n - 2, rel=1e-6)
    assert row["p"] == pytest.approx(two_sample.pvalue, rel=1e-6)


def test_satterthwaite_tests_hold_their_level_on_an_unbalanced_null():
    """400 null features (random subject effects, no fixed effect) on the unbalanced design: each
    term's fraction of p < 0.05 stays within binomial noise of 0.05 (the Wald z test exceeds it)."""
    d, _ = unbalanced(seed=8, n_subjects=20)
    rng = np.random.default_rng(8)
    sid = d["subject"].str[1:].astype(int).to_numpy()
    sd_u = rng.uniform(0.0, 1.5, 400)  # from no subject effect (boundary fits) to a strong one
    Y = pd.DataFrame(rng.normal(size=(20, 400))[sid] * sd_u + rng.normal(size=(len(d), 400)))
    X = build_design(d, "tp + grp + x")
    satt = fit_random_intercept(Y, X, d["subject"], df_method="satterthwaite").coefficients
    wald = fit_random_intercept(Y, X, d["subject"], df_method="z").coefficients
    rate = satt[satt["term"] != "Intercept"].groupby("term")["p"].apply(lambda p: float((p < 0.05).mean()))
    assert rate.max() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400), rate  # 0.083
    z_rate = wald[wald["term"] == "grp[b]"]["p"].lt(0.05).mean()
    assert z_rate > rate["grp[b]"]  # 20 subjects: the between-subject z test is anti-conservative
