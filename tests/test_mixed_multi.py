"""Several random intercepts (crossed or nested factors) as lme4/lmerTest, and per-feature
between-within df."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gutaxis.stats.mixed import build_design, fit_random_intercept


def test_between_within_df_classifies_columns_on_the_rows_a_feature_observes():
    """``diet`` changes within subjects only at t2: within-subject on the full design, but a
    between-subject column for a feature not measured at t2, whose df must then equal a fit of
    its observed rows alone (G - p_b there, not N - G - p_w)."""
    rng = np.random.default_rng(5)
    n = 16
    d = pd.DataFrame({"subject": np.repeat([f"s{i:02d}" for i in range(n)], 3),
                      "tp": pd.Categorical(np.tile(["t0", "t1", "t2"], n), ["t0", "t1", "t2"])})
    base = np.repeat(rng.integers(0, 2, n), 3).astype(float)
    d["diet"] = np.where((d["tp"] == "t2") & (np.arange(3 * n) % 2 == 0), 1 - base, base)
    d["x"] = rng.normal(size=3 * n)
    u = np.repeat(rng.normal(size=n), 3)
    Y = pd.DataFrame({"all_visits": u + rng.normal(size=3 * n), "no_t2": u + rng.normal(size=3 * n)})
    Y.loc[d["tp"] == "t2", "no_t2"] = np.nan
    X = build_design(d, "diet + x")
    res = fit_random_intercept(Y, X, d["subject"], df_method="between_within")
    co = res.coefficients.set_index(["feature_id", "term"])["df"]
    # full design: diet and x vary within subjects (p_w = 2), intercept between (p_b = 1)
    assert co[("all_visits", "diet")] == 3 * n - n - 2
    assert co[("all_visits", "Intercept")] == n - 1
    # on the t0/t1 rows diet is constant within subjects: between, p_b = 2, p_w = 1
    assert co[("no_t2", "diet")] == n - 2
    assert co[("no_t2", "x")] == 2 * n - n - 1
    seen = Y["no_t2"].notna().to_numpy()
    alone = fit_random_intercept(Y.loc[seen, ["no_t2"]], X[seen], d["subject"][seen],
                                 df_method="between_within").coefficients
    np.testing.assert_array_equal(alone["df"].to_numpy(), co.loc["no_t2"].to_numpy())


# --------------------------------------------------------------------------------------
# several random intercepts
# --------------------------------------------------------------------------------------

import shutil  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402

from gutaxis.stats.mixed import fit_mixed  # noqa: E402

needs_lmertest = pytest.mark.skipif(
    shutil.which("Rscript") is None or subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(lmerTest))"], capture_output=True).returncode != 0,
    reason="Rscript with lmerTest not available")


def nested(seed: int = 1, n_subjects: int = 40, n_sites: int = 5, n_features: int = 12):
    """HMP2-like: subjects nested in sites, 1-10 samples each, a 3-level diagnosis (between
    subjects), a continuous visit week and age; subject and site effects of varied size, 3 % NaN."""
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 11, n_subjects)
    sid = np.repeat(np.arange(n_subjects), size)
    site = rng.integers(0, n_sites, n_subjects)
    d = pd.DataFrame({"subject": [f"s{i:02d}" for i in sid], "site": [f"site{site[i]}" for i in sid],
                      "dx": pd.Categorical(rng.choice(["nonIBD", "CD", "UC"], n_subjects)[sid],
                                           ["nonIBD", "CD", "UC"]),
                      "week": rng.uniform(0, 50, sid.size).round(), "age": rng.normal(40, 10, n_subjects)[sid]})
    sd_u = rng.uniform(0.0, 1.5, n_features)
    sd_v = rng.choice([0.2, 0.5, 1.0], n_features)
    Y = (rng.normal(size=(n_subjects, n_features))[sid] * sd_u
         + rng.normal(size=(n_sites, n_features))[site[sid]] * sd_v
         + 0.02 * d["week"].to_numpy()[:, None] + rng.normal(size=(sid.size, n_features)))
    Y[rng.random(Y.shape) < 0.03] = np.nan
    return d, pd.DataFrame(Y, columns=[f"f{j:02d}" for j in range(n_features)])


def crossed(seed: int = 2, n_subjects: int = 30, n_batches: int = 6, n_features: int = 10):
    """Subjects crossed with sequencing batches (2-6 samples per subject in random batches, so not
    every subject x batch cell exists), 3 timepoints and a covariate; the last feature has its
    between-batch differences pulled apart (the REML batch variance is 0: a boundary fit)."""
    rng = np.random.default_rng(seed)
    rows = [(s, t, rng.integers(0, n_batches)) for s in range(n_subjects)
            for t in rng.choice(3, size=rng.integers(2, 7), replace=True)]
    sid, tp, batch = (np.array(c) for c in zip(*rows))
    d = pd.DataFrame({"subject": [f"s{i:02d}" for i in sid], "batch": [f"b{b}" for b in batch],
                      "tp": pd.Categorical([f"t{t}" for t in tp], ["t0", "t1", "t2"]),
                      "x": rng.normal(size=sid.size)})
    Y = (rng.normal(size=(n_subjects, n_features))[sid] * rng.uniform(0.2, 1.5, n_features)
         + rng.normal(size=(n_batches, n_features))[batch] * rng.uniform(0.2, 1.0, n_features)
         + 0.4 * (tp == 1)[:, None] + rng.normal(size=(sid.size, n_features)))
    e = rng.normal(size=sid.size)
    Y[:, -1] = e - 0.9 * pd.Series(e).groupby(batch).transform("mean").to_numpy() \
        + rng.normal(size=n_subjects)[sid]
    Y[rng.random(Y.shape) < 0.05] = np.nan
    return d, pd.DataFrame(Y, columns=[f"f{j:02d}" for j in range(n_features)])


def lmertest(tmp_path, d: pd.DataFrame, Y: pd.DataFrame, rhs: str, random: str, factors: dict):
    """Coefficients (Satterthwaite) and variance components of lmerTest, one fit per feature."""
    d.assign(**Y).to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    levels = "; ".join(f'd${k} <- factor(d${k}, levels = c({", ".join(repr(v) for v in lv)}))'
                       for k, lv in factors.items())
    script = f"""
suppressMessages(library(lmerTest))
d <- read.delim("{tmp_path}/d.tsv")
{levels}
out <- NULL; vc <- NULL
for (f in c({", ".join(repr(c) for c in Y.columns)})) {{
  m <- suppressMessages(lmer(as.formula(paste(f, "~ {rhs} + {random}")), data = d, REML = TRUE,
       control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
  s <- coef(summary(m, ddf = "Satterthwaite"))
  out <- rbind(out, data.frame(feature = f, term = rownames(s), est = s[, 1], se = s[, 2], df = s[, 3],
                               p = s[, 5]))
  v <- as.data.frame(VarCorr(m))
  vc <- rbind(vc, data.frame(feature = f, grp = v$grp, vcov = v$vcov, singular = isSingular(m)))
}}
write.table(out, "{tmp_path}/coef.tsv", sep = "\\t", row.names = FALSE, quote = FALSE)
write.table(vc, "{tmp_path}/vc.tsv", sep = "\\t", row.names = FALSE, quote = FALSE)
"""
    (tmp_path / "check.R").write_text(script)
    done = subprocess.run(["Rscript", str(tmp_path / "check.R")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    coef = pd.read_csv(tmp_path / "coef.tsv", sep="\t")
    vc = pd.read_csv(tmp_path / "vc.tsv", sep="\t")
    singular = vc.groupby("feature")["singular"].first()
    return coef, vc.pivot(index="feature", columns="grp", values="vcov"), singular


def compare(ours, ref: pd.DataFrame, names: dict) -> dict:
    """Max abs differences (estimate, p) and max relative differences (se, df) vs lmerTest."""
    ref = ref.assign(term=ref["term"].map(names))
    both = ref.merge(ours.coefficients, left_on=["feature", "term"], right_on=["feature_id", "term"],
                     suffixes=("_r", ""))
    assert len(both) == len(ref) and ref["term"].notna().all()
    return {"estimate": float((both["estimate"] - both["est"]).abs().max()),
            "p": float((both["p"] - both["p_r"]).abs().max()),
            "se": float(((both["se"] - both["se_r"]) / both["se_r"]).abs().max()),
            "df": float(((both["df"] - both["df_r"]) / both["df_r"]).abs().max())}


def assert_variances(ours, vc: pd.DataFrame, factors):
    fits = ours.fits.set_index("feature_id").loc[vc.index]
    for name in factors:
        np.testing.assert_allclose(fits[f"var_{name}"], vc[name], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(fits["scale"], vc["Residual"], rtol=1e-5)


@pytest.mark.rcheck
@needs_lmertest
def test_nested_subjects_in_sites_match_lmertest(tmp_path):
    d, Y = nested()
    X = build_design(d, "dx + week + age")
    ours = fit_mixed(Y, X, d[["subject", "site"]])
    coef, vc, _ = lmertest(tmp_path, d, Y, "dx + week + age", "(1 | subject) + (1 | site)",
                           {"dx": ["nonIBD", "CD", "UC"]})
    diff = compare(ours, coef, {"(Intercept)": "Intercept", "dxCD": "dx[CD]", "dxUC": "dx[UC]",
                                "week": "week", "age": "age"})
    print("nested", diff)
    assert max(diff.values()) < 1e-4, diff
    assert_variances(ours, vc, ["subject", "site"])


@pytest.mark.rcheck
@needs_lmertest
def test_crossed_subjects_and_batches_match_lmertest_with_a_boundary_fit(tmp_path):
    d, Y = crossed()
    X = build_design(d, "tp + x")
    ours = fit_mixed(Y, X, d[["subject", "batch"]])
    coef, vc, singular = lmertest(tmp_path, d, Y, "tp + x", "(1 | subject) + (1 | batch)",
                                  {"tp": ["t0", "t1", "t2"]})
    diff = compare(ours, coef, {"(Intercept)": "Intercept", "tpt1": "tp[t1]", "tpt2": "tp[t2]", "x": "x"})
    print("crossed", diff)
    assert max(diff.values()) < 1e-4, diff
    assert_variances(ours, vc, ["subject", "batch"])
    # the pulled-apart feature: lme4 singular with batch variance 0, ours a boundary fit that says so
    fits = ours.fits.set_index("feature_id")
    assert singular["f09"] and vc.loc["f09", "batch"] < 1e-12
    assert fits.loc["f09", "status"] == "boundary" and fits.loc["f09", "var_batch"] == 0
    assert "var_batch estimated as 0" in fits.loc["f09", "note"]
    assert (fits.loc[singular.index[~singular], "status"] == "ok").all()


@pytest.mark.rcheck
@needs_lmertest
def test_three_crossed_and_nested_factors_match_lmertest(tmp_path):
    d, Y = crossed(seed=5, n_features=6)
    d["plate"] = "p" + (pd.factorize(d["batch"], sort=True)[0] // 2).astype(str)  # batches nested in plates
    X = build_design(d, "tp + x")
    ours = fit_mixed(Y, X, d[["subject", "batch", "plate"]])
    coef, vc, _ = lmertest(tmp_path, d, Y, "tp + x", "(1 | subject) + (1 | batch) + (1 | plate)",
                           {"tp": ["t0", "t1", "t2"]})
    diff = compare(ours, coef, {"(Intercept)": "Intercept", "tpt1": "tp[t1]", "tpt2": "tp[t2]", "x": "x"})
    print("three factors", diff)
    assert max(diff.values()) < 1e-4, diff
    assert_variances(ours, vc, ["subject", "batch", "plate"])


@pytest.mark.parametrize("df_method", ["satterthwaite", "z", "between_within"])
def test_one_grouping_factor_is_fit_random_intercept_exactly(df_method):
    d, Y = nested(n_features=8)
    X = build_design(d, "dx + week + age")
    direct = fit_random_intercept(Y, X, d["subject"], df_method=df_method)
    for groups in (d["subject"], d["subject"].to_numpy()):
        res = fit_mixed(Y, X, groups, df_method=df_method)
        assert res.coefficients.to_csv() == direct.coefficients.to_csv()
        assert res.fits.to_csv() == direct.fits.to_csv()
    framed = fit_mixed(Y, X, d[["subject"]], df_method=df_method)
    assert framed.coefficients.to_csv() == direct.coefficients.to_csv()
    assert framed.fits.drop(columns="var_subject").to_csv() == direct.fits.to_csv()
    assert framed.fits["var_subject"].equals(direct.fits["group_var"])


def test_planted_effects_and_variances_are_recovered():
    """200 features with a planted week slope (0.02 per week) and known subject (1.0) and site (0.5)
    variances: the slope's intervals cover it at about the nominal rate, the variances average out
    to the truth, and a planted between-subject diagnosis effect (1.5) is covered and found in
    most features."""
    d, _ = nested(seed=3, n_subjects=40, n_features=1)
    rng = np.random.default_rng(3)
    sid = pd.factorize(d["subject"], sort=True)[0]
    site = pd.factorize(d["site"], sort=True)[0]
    F = 200
    Y = (rng.normal(size=(sid.max() + 1, F))[sid] + np.sqrt(0.5) * rng.normal(size=(site.max() + 1, F))[site]
         + 0.02 * d["week"].to_numpy()[:, None] + 1.5 * (d["dx"] == "CD").to_numpy()[:, None]
         + rng.normal(size=(len(d), F)))
    res = fit_mixed(pd.DataFrame(Y), build_design(d, "dx + week + age"), d[["subject", "site"]])
    co = res.coefficients.set_index("term")
    week = co.loc["week"]
    cover = ((week["ci_low"] < 0.02) & (0.02 < week["ci_high"])).mean()
    assert abs(cover - 0.95) < 3 * np.sqrt(0.05 * 0.95 / F), cover
    assert abs(week["estimate"].mean() - 0.02) < 3 * week["se"].mean() / np.sqrt(F)
    cd = co.loc["dx[CD]"]
    cover = ((cd["ci_low"] < 1.5) & (1.5 < cd["ci_high"])).mean()
    assert abs(cover - 0.95) < 3 * np.sqrt(0.05 * 0.95 / F), cover
    assert (cd["p"] < 0.05).mean() > 0.7
    fits = res.fits
    assert (fits["status"] != "failed").all()
    assert fits["var_subject"].mean() == pytest.approx(1.0, abs=0.1)
    assert fits["scale"].mean() == pytest.approx(1.0, abs=0.02)
    assert fits["var_site"].mean() == pytest.approx(0.5, abs=0.2)  # 5 sites: a noisy estimate
    np.testing.assert_allclose(fits["gamma"], fits["var_subject"] / fits["scale"], rtol=1e-12)
    assert fits["group_var"].equals(fits["var_subject"])


def test_satterthwaite_tests_hold_their_level_on_a_nested_null():
    """400 null features (subject and site effects, no fixed effect): each term's fraction of
    p < 0.05 is within binomial noise of 0.05; the z test of the between-subject diagnosis is
    anti-conservative with 5 sites."""
    d, _ = nested(seed=4, n_features=1)
    rng = np.random.default_rng(4)
    sid = pd.factorize(d["subject"], sort=True)[0]
    site = pd.factorize(d["site"], sort=True)[0]
    F = 400
    Y = (rng.normal(size=(sid.max() + 1, F))[sid] * rng.uniform(0, 1.5, F)
         + rng.normal(size=(site.max() + 1, F))[site] * rng.uniform(0, 1.0, F) + rng.normal(size=(len(d), F)))
    X = build_design(d, "dx + week + age")
    satt = fit_mixed(pd.DataFrame(Y), X, d[["subject", "site"]]).coefficients
    rate = satt[satt["term"] != "Intercept"].groupby("term")["p"].apply(lambda p: float((p < 0.05).mean()))
    noise = 3 * np.sqrt(0.05 * 0.95 / F)
    assert rate.max() <= 0.05 + noise and rate.min() >= 0.05 - noise, rate
    wald = fit_mixed(pd.DataFrame(Y), X, d[["subject", "site"]], df_method="z").coefficients
    z_rate = wald[wald["term"] == "age"]["p"].lt(0.05).mean()
    assert z_rate > rate["age"]


def test_results_do_not_depend_on_row_order_and_repeat_byte_for_byte():
    d, Y = crossed(seed=7)
    X = build_design(d, "tp + x")
    res = fit_mixed(Y, X, d[["subject", "batch"]])
    again = fit_mixed(Y, X, d[["subject", "batch"]])
    assert res.coefficients.to_csv() == again.coefficients.to_csv()
    assert res.fits.to_csv() == again.fits.to_csv()
    perm = np.random.default_rng(0).permutation(len(d))
    shuffled = fit_mixed(Y.iloc[perm], X.iloc[perm], d[["subject", "batch"]].iloc[perm])
    num = ["estimate", "se", "z", "df", "p", "ci_low", "ci_high"]
    np.testing.assert_allclose(shuffled.coefficients[num], res.coefficients[num], rtol=1e-7, atol=1e-10)
    assert shuffled.coefficients["term"].equals(res.coefficients["term"])
    np.testing.assert_allclose(shuffled.fits[["var_subject", "var_batch", "scale", "llf"]],
                               res.fits[["var_subject", "var_batch", "scale", "llf"]], rtol=1e-7, atol=1e-12)
    # a feature's numbers do not depend on the features fitted with it
    alone = fit_mixed(Y[["f03"]], X, d[["subject", "batch"]], chunk_size=1)
    np.testing.assert_allclose(alone.coefficients[num],
                               res.coefficients[res.coefficients["feature_id"] == "f03"][num], rtol=1e-9)


def test_a_factor_without_replication_on_a_features_rows_is_fixed_at_zero():
    """A feature seen at one site only (site has one level there), and one whose observed rows
    are each in a different batch: that variance is fixed at 0 with a note, and the fit equals
    the one-factor fit of the other factor (lmerTest's numbers, tested above)."""
    d, Y = nested(seed=6, n_features=3)
    first_site = d["site"] == d["site"].iloc[0]
    Y.loc[~first_site, "f00"] = np.nan
    d["batch"] = [f"b{i}" for i in range(len(d))]  # every sample its own batch ...
    d.loc[d.index[::3], "batch"] = "b_shared"  # ... except every third
    Y.loc[d.index[::3], "f01"] = np.nan  # f01 never sees the shared batch
    X = build_design(d, "week + age")
    res = fit_mixed(Y, X, d[["subject", "site", "batch"]])
    fits = res.fits.set_index("feature_id")
    assert fits.loc["f00", "var_site"] == 0 and fits.loc["f00", "status"] == "boundary"
    assert "var_site fixed at 0 (one level on the observed rows)" in fits.loc["f00", "note"]
    assert fits.loc["f01", "var_batch"] == 0
    assert "var_batch fixed at 0 (no level with two or more observations)" in fits.loc["f01", "note"]
    one = fit_mixed(Y[["f00"]], X, d[["subject", "batch"]])
    np.testing.assert_allclose(res.coefficients[res.coefficients["feature_id"] == "f00"].iloc[:, 2:],
                               one.coefficients.iloc[:, 2:], rtol=1e-6)
    single = fit_random_intercept(Y[["f01"]], X, d["subject"], df_method="satterthwaite")
    two = fit_mixed(Y[["f01"]], X, d[["subject", "site"]])
    mine = res.coefficients[res.coefficients["feature_id"] == "f01"].iloc[:, 2:]
    np.testing.assert_allclose(mine, two.coefficients.iloc[:, 2:], rtol=1e-6)
    assert single.fits["status"].iloc[0] in ("ok", "boundary")
    # no factor left to estimate: the feature fails with a reason instead of crashing
    lone = pd.DataFrame({"y": Y["f00"]})
    lone.loc[d["subject"].duplicated(), "y"] = np.nan  # one sample per subject, one site
    failed = fit_mixed(lone, X, d[["subject", "site"]]).fits.iloc[0]
    assert failed["status"] == "failed" and "no grouping factor" in failed["note"]


def test_between_within_is_refused_with_several_factors():
    d, Y = crossed(n_features=2)
    with pytest.raises(ValueError, match="several grouping factors"):
        fit_mixed(Y, build_design(d, "tp + x"), d[["subject", "batch"]], df_method="between_within")
