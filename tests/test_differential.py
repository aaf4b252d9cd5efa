"""Tests for gutaxis.differential: the contrast engine, its output shape and its error rates."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.multitest import multipletests

import gutaxis.differential as differential
from gutaxis.differential import (RESULT_COLUMNS, hodges_lehmann_shift, mann_whitney, ols_fit,
                                  run_contrast)
from gutaxis.errors import InputError

CONTRAST = {"name": "post_vs_baseline", "pre": "baseline", "post": "post"}


def simulate_trial(n_subjects=40, n_features=300, n_changed=20, effect=0.5, seed=0,
                   compositional=False, missing_timepoint=0.1, residual_sd=0.5):
    """Paired trial with planted pre->post changes on the log2 scale.

    Each subject has a random level per feature (sd 0.7), ``n_changed``
    features shift by +-``effect`` log2 units after treatment, and 10% of
    subjects lost one of their two samples. Responder labels (10% not
    evaluable) and cohorts are random, i.e. carry no signal.
    """
    rng = np.random.default_rng(seed)
    subjects = [f"P{i:03d}" for i in range(n_subjects)]
    rows = []
    for s in subjects:
        lost = rng.choice(["baseline", "post"]) if rng.random() < missing_timepoint else None
        rows += [(f"{s}_{t}", s, t, "stool") for t in ("baseline", "post") if t != lost]
    samples = pd.DataFrame(rows, columns=["sample_id", "subject_id", "timepoint", "sample_type"])
    responders = pd.DataFrame({
        "subject_id": subjects,
        "cohort": rng.choice(["lung", "esophageal", "other"], n_subjects),
        "dcr_recist": rng.choice(["responder", "non_responder", ""], n_subjects,
                                 p=[0.45, 0.45, 0.1])})
    subject_index = samples["subject_id"].map({s: i for i, s in enumerate(subjects)}).to_numpy()
    post = (samples["timepoint"] == "post").to_numpy()
    shift = np.zeros(n_features)
    changed = rng.choice(n_features, min(n_changed, n_features), replace=False)
    shift[changed] = effect * rng.choice([-1, 1], changed.size)
    log2_values = (rng.normal(5, 1, n_features) + rng.normal(0, 0.7, (n_subjects, n_features))[
        subject_index] + post[:, None] * shift
        + rng.normal(0, residual_sd, (len(samples), n_features)))
    values = np.exp2(log2_values)
    if compositional:
        values /= values.sum(axis=1, keepdims=True)
    features = [f"F{j:04d}" for j in range(n_features)]
    table = pd.DataFrame(values, index=pd.Index(samples["sample_id"], name="sample_id"),
                         columns=pd.Index(features, name="feature_id"))
    truth = pd.Series(shift, index=features)
    return table, samples, responders, truth


@pytest.fixture(scope="module")
def trial():
    return simulate_trial(n_features=60, n_changed=8, effect=1.0, seed=42)


@pytest.fixture(scope="module")
def result(trial):
    table, samples, responders, _ = trial
    annotations = pd.DataFrame({"name": [f"metabolite {c}" for c in table.columns]},
                               index=table.columns)
    return run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                        annotations=annotations, modality="metabolites")


def _fdp_and_power(res, truth, method, term="timepoint[post]", alpha=0.1):
    rows = res.results[(res.results["method"] == method) & (res.results["term"] == term)]
    called = set(rows.loc[rows["q"] < alpha, "feature"])
    true = set(truth.index[truth != 0])
    fdp = len(called - true) / max(len(called), 1)
    return fdp, len(called & true) / len(true)


def test_planted_effects_power_and_fdr():
    """300 features, 40 subjects, 20 true changes of 0.5 log2 units, over 8 seeds.

    BH at q = 0.1 has FDR = pi0 * 0.1 = 0.093 here. The mean false discovery
    proportion over S seeds has sampling sd ~ sd(FDP)/sqrt(S), so we accept
    mean FDP <= 0.1 + 2 * that standard error (a one-sided test of FDR <= 0.1
    at ~2.5%, deterministic for these seeds). Power: the paired effect size is
    0.5 / (0.5 * sqrt 2) = 0.71 sd with 36 pairs, i.e. ~0.9 at the BH cut-off,
    so >= 0.75 is required. The LMM uses Wald z tests like statsmodels; with
    40 subjects the normal reference inflates small p values ~1.5x (measured
    FDR ~0.15 over 30 seeds), so its bound is 0.15 + 2 se - loose enough for
    that documented inflation, tight enough to catch wrong standard errors.
    """
    fdp = {m: [] for m in ("paired_t", "wilcoxon", "lmm")}
    power = {m: [] for m in fdp}
    for seed in range(8):
        table, samples, responders, truth = simulate_trial(seed=seed)
        res = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                           methods=("paired", "mixed"), effect="mean")
        for m in fdp:
            f, pw = _fdp_and_power(res, truth, m)
            fdp[m].append(f)
            power[m].append(pw)
    for m, allowed in (("paired_t", 0.1), ("wilcoxon", 0.1), ("lmm", 0.15)):
        se = np.std(fdp[m], ddof=1) / np.sqrt(len(fdp[m]))
        assert np.mean(fdp[m]) <= allowed + 2 * se, (m, fdp[m])
        assert np.mean(power[m]) >= 0.75, (m, power[m])


def test_no_signal_in_random_responder_labels_is_found():
    table, samples, responders, _ = simulate_trial(n_features=200, seed=3)
    res = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                       methods=("mixed", "baseline"))
    r = res.results[res.results["term"].str.contains("response")]
    assert set(r["method"]) == {"lmm", "ols", "mann_whitney"}
    assert (r["q"] < 0.1).mean() < 0.02
    assert 0.02 < (r["p"] < 0.05).mean() < 0.09  # calibrated under the null


def test_output_shape_families_and_q_values(result):
    r = result.results
    assert list(r.columns) == RESULT_COLUMNS
    expected = {("paired_t", "timepoint[post]"), ("wilcoxon", "timepoint[post]"),
                ("lmm", "timepoint[post]"), ("lmm", "timepoint[post]:response[responder]"),
                ("lmm", "response[responder]"), ("ols", "response[responder]"),
                ("mann_whitney", "response[responder]")}
    assert set(map(tuple, r[["method", "term"]].drop_duplicates().to_numpy())) == expected
    for family, rows in r.groupby("family"):
        assert rows["feature"].is_unique
        np.testing.assert_allclose(rows["q"], multipletests(rows["p"], method="fdr_bh")[1])
    up = (r["q"] < 0.1) & (r["effect"] > 0)
    assert (r.loc[up, "direction"] == "up").all()
    assert (r.loc[r["q"] >= 0.1, "direction"] == "none").all()
    assert (r["ci_low"] <= r["effect"]).all() and (r["effect"] <= r["ci_high"]).all()
    np.testing.assert_allclose(r["fold_change"], 2.0 ** r["effect"])  # log2 transform
    assert r["annotation"].str.startswith("metabolite ").all()
    assert (r["prevalence"] == 1.0).all()
    assert "timepoint * response + cohort" in result.formulas["lmm_response"]
    assert "lmm_time: feature ~ timepoint + cohort + (1 | subject_id)" in result.formula


def test_paired_rows_equal_scipy_on_the_pairs(trial, result):
    table, samples, _, _ = trial
    sheet = samples.set_index("sample_id")
    wide = sheet.reset_index().pivot(index="subject_id", columns="timepoint", values="sample_id")
    wide = wide.dropna()
    log_post = np.log2(table.loc[wide["post"]].to_numpy())
    log_pre = np.log2(table.loc[wide["baseline"]].to_numpy())
    r = result.results
    t_rows = r[r["method"] == "paired_t"].set_index("feature")
    w_rows = r[r["method"] == "wilcoxon"].set_index("feature")
    for j in range(0, table.shape[1], 7):
        f = table.columns[j]
        t = stats.ttest_rel(log_post[:, j], log_pre[:, j])
        w = stats.wilcoxon(log_post[:, j], log_pre[:, j])
        assert t_rows.loc[f, "p"] == pytest.approx(t.pvalue, rel=1e-10)
        assert t_rows.loc[f, "effect"] == pytest.approx(np.mean(log_post[:, j] - log_pre[:, j]))
        assert w_rows.loc[f, "p"] == pytest.approx(w.pvalue, rel=1e-10)
        assert t_rows.loc[f, "n_pairs"] == len(wide)


def test_lmm_row_equals_statsmodels_for_one_feature(trial, result):
    table, samples, responders, _ = trial
    f = table.columns[5]
    data = samples.merge(responders, on="subject_id")
    data = data[data["dcr_recist"] != ""]
    data = data.assign(y=np.log2(table.loc[data["sample_id"], f].to_numpy()))
    data["timepoint"] = pd.Categorical(data["timepoint"], ["baseline", "post"])
    data["response"] = pd.Categorical(data["dcr_recist"], ["non_responder", "responder"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = smf.mixedlm("y ~ timepoint * response + cohort", data,
                          groups=data["subject_id"]).fit(reml=True)
    r = result.results
    row = r[(r["method"] == "lmm") & (r["term"] == "timepoint[post]:response[responder]")
            & (r["feature"] == f)].iloc[0]
    name = "timepoint[T.post]:response[T.responder]"
    assert row["effect"] == pytest.approx(ref.fe_params[name], abs=1e-4)
    # the default reference is Student t with between-within df (n_obs - n_subjects - 2 within
    # terms), so p is statsmodels' Wald z p-value re-referred to that t distribution
    df = len(data) - data["subject_id"].nunique() - 2
    z = ref.fe_params[name] / ref.bse_fe[name]
    assert row["p"] == pytest.approx(2 * stats.t.sf(abs(z), df), abs=1e-4)
    assert row["p"] > ref.pvalues[name]
    wald = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                        methods=("mixed",), mixed_df="z", modality="x").results
    wald_row = wald[(wald["method"] == "lmm") & (wald["term"] == "timepoint[post]:response[responder]")
                    & (wald["feature"] == f)].iloc[0]
    assert wald_row["p"] == pytest.approx(ref.pvalues[name], abs=1e-4)


def test_ols_fit_equals_statsmodels_including_missing_values():
    rng = np.random.default_rng(8)
    design = pd.DataFrame({"Intercept": 1.0, "responder": rng.integers(0, 2, 30).astype(float),
                           "age": rng.normal(60, 9, 30)})
    Y = rng.normal(size=(30, 5))
    Y[[1, 4, 9], 2] = np.nan
    fit = ols_fit(Y, design)
    for j in range(5):
        keep = ~np.isnan(Y[:, j])
        ref = sm.OLS(Y[keep, j], design[keep]).fit()
        np.testing.assert_allclose(fit["estimate"][j], ref.params, rtol=1e-10)
        np.testing.assert_allclose(fit["se"][j], ref.bse, rtol=1e-10)
        np.testing.assert_allclose(fit["p"][j], ref.pvalues, rtol=1e-8)
        np.testing.assert_allclose(fit["ci_low"][j], ref.conf_int()[0], rtol=1e-10)


def test_mann_whitney_equals_scipy_per_feature():
    rng = np.random.default_rng(4)
    a = rng.normal(0.5, 1, (7, 12))
    b = rng.normal(0, 1, (9, 12))
    a[:, 6:] = np.round(a[:, 6:])  # ties in half of the features
    b[:, 6:] = np.round(b[:, 6:])
    a[0, 3] = np.nan
    res = mann_whitney(a, b)
    for j in range(12):
        x, y = a[:, j][~np.isnan(a[:, j])], b[:, j]
        ref = stats.mannwhitneyu(x, y)
        assert res["p"][j] == pytest.approx(ref.pvalue, rel=1e-12)
        assert res["u"][j] == ref.statistic


def test_hodges_lehmann_shift_is_median_of_pairwise_differences():
    rng = np.random.default_rng(6)
    a, b = rng.normal(1, 1, (11, 4)), rng.normal(0, 1, (13, 4))
    res = hodges_lehmann_shift(a, b, max_elements=50)
    for j in range(4):
        d = np.sort((a[:, j][:, None] - b[:, j][None, :]).ravel())
        assert res["estimate"][j] == pytest.approx(np.median(d))
        assert res["ci_low"][j] < res["estimate"][j] < res["ci_high"][j]


def test_untested_features_and_dropped_samples_are_reported(trial):
    table, samples, responders, _ = trial
    table = table.copy()
    table["SPARSE"] = np.nan
    table.iloc[:6, table.columns.get_loc("SPARSE")] = 1.0 + np.arange(6)
    table["FLAT"] = 3.0
    res = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders)
    assert not res.results["feature"].isin(["SPARSE", "FLAT"]).any()
    why = {(f, m): reason for f, m, reason
           in res.untested[["feature", "method", "reason"]].itertuples(index=False)}
    assert why[("FLAT", "paired_t")] == "zero variance of within-subject differences"
    assert why[("SPARSE", "wilcoxon")].startswith("too few pairs")
    assert why[("FLAT", "ols")] == "zero variance at baseline"
    assert why[("SPARSE", "lmm")].startswith("too few subjects with repeated samples")
    assert why[("FLAT", "lmm")].startswith("too few") or "zero residual" in why[("FLAT", "lmm")]
    dropped = res.dropped_samples
    unpaired = samples[~samples["subject_id"].duplicated(keep=False)]["sample_id"]
    assert set(dropped.loc[dropped["analysis"] == "paired", "sample_id"]) == set(unpaired)
    unlabelled = responders.loc[responders["dcr_recist"] == "", "subject_id"]
    assert set(dropped.loc[dropped["analysis"] == "baseline", "subject_id"]) <= set(unlabelled)
    assert (dropped["reason"] != "").all()


def test_rclr_missing_values_use_the_masked_paths():
    table, samples, responders, _ = simulate_trial(n_features=40, seed=5, compositional=True)
    rng = np.random.default_rng(5)
    table = table.mask(rng.random(table.shape) < 0.15, 0.0)
    res = run_contrast(table, samples, CONTRAST, transform="rclr", responders=responders)
    r = res.results
    paired = r[r["method"] == "paired_t"]
    assert (paired["n_pairs"] < 36).any()  # pairs lost to zeros, per feature
    assert (paired["prevalence"] < 1).all()
    assert set(r["method"]) >= {"paired_t", "wilcoxon", "lmm", "ols", "mann_whitney"}
    assert "zeros treated as missing" in res.transform


def test_ancombc2_sensitivity_and_agreement_column():
    table, samples, responders, truth = simulate_trial(
        n_subjects=14, n_features=25, n_changed=5, effect=2.0, seed=9, compositional=True)
    res = run_contrast(table, samples, CONTRAST, transform="clr", responders=responders,
                       methods=("paired",), sensitivity="ancombc2", modality="taxa")
    r = res.results
    sens = r[r["method"] == "ancombc2"].set_index("feature")
    assert len(sens) == 25 and (sens["term"] == "timepoint[post]").all()
    main = r[r["method"] == "paired_t"].set_index("feature")
    sig_m, sig_s = main["q"] < 0.1, sens.loc[main.index, "q"] < 0.1
    same = np.sign(main["effect"]) == np.sign(sens.loc[main.index, "effect"])
    expected = (sig_m & sig_s & same) | (~sig_m & ~sig_s)
    assert (main["sensitivity_agrees"].astype(bool) == expected).all()
    assert sens["sensitivity_agrees"].isna().all()
    assert res.notes["message"].str.startswith("ran on").any()
    assert not res.notes["message"].str.contains(r"[0-9] s\b").any()  # no wall-clock time
    capped = run_contrast(table, samples, CONTRAST, transform="clr", responders=responders,
                          methods=("paired",), sensitivity="ancombc2", modality="taxa",
                          ancombc2_max_subjects=5)
    assert not (capped.results["method"] == "ancombc2").any()
    skipped = capped.untested[capped.untested["method"] == "ancombc2"]
    n_pairs = int(sens["n_pairs"].iloc[0])
    assert len(skipped) == 25
    assert skipped["reason"].str.contains(f"{n_pairs} paired subjects > differential.ancombc2_max_subjects = 5").all()
    # strong planted changes: both methods find them in the same direction
    strong = truth.index[truth != 0]
    assert (np.sign(sens.loc[strong, "effect"]) == np.sign(truth[strong])).mean() >= 0.8


def test_ancombc2_failure_is_reported_not_raised(monkeypatch):
    table, samples, responders, _ = simulate_trial(n_subjects=10, n_features=12, seed=1,
                                                   compositional=True)

    def broken(*args, **kwargs):
        raise RuntimeError("did not converge")

    import skbio.stats.composition as comp
    monkeypatch.setattr(comp, "ancombc2", broken)
    res = run_contrast(table, samples, CONTRAST, transform="clr", methods=("paired",),
                       covariates=(), sensitivity="ancombc2")
    assert not (res.results["method"] == "ancombc2").any()
    failed = res.untested[res.untested["method"] == "ancombc2"]
    assert len(failed) == 12
    assert failed["reason"].str.contains("ancombc2 failed: RuntimeError: did not converge").all()
    assert res.notes["message"].str.contains("did not converge").any()
    assert (res.results["method"] == "paired_t").sum() == 12


def test_input_problems_are_reported_together():
    table, samples, responders, _ = simulate_trial(n_features=5, seed=2)
    table = table.rename(index={table.index[0]: "GHOST"})
    bad_labels = responders.assign(dcr_recist="yes")
    with pytest.raises(InputError) as err:
        run_contrast(table, samples, CONTRAST, transform="log2", responders=bad_labels,
                     covariates=("cohort", "bmi"), file_table="metabolome.tsv")
    text = str(err.value)
    assert "GHOST" in text and "metabolome.tsv" in text
    assert "'bmi'" in text and "unknown labels ['yes']" in text
    assert len(err.value.problems) == 3


def test_runs_are_deterministic(trial):
    table, samples, responders, _ = trial
    a = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders)
    b = run_contrast(table.iloc[::-1], samples.iloc[::-1], CONTRAST, transform="log2",
                     responders=responders.iloc[::-1])
    pd.testing.assert_frame_equal(a.results, b.results, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(a.untested, b.untested)


def test_constant_covariate_is_dropped_with_a_note(trial):
    table, samples, responders, _ = trial
    res = run_contrast(table, samples, CONTRAST, transform="log2",
                       responders=responders.assign(cohort="lung"))
    assert "cohort" not in res.formulas["lmm_time"]
    assert res.notes["message"].str.contains("covariate 'cohort' dropped").any()


def test_module_exposes_method_order():
    assert differential.METHOD_ORDER[:2] == ["paired_t", "wilcoxon"]


def test_lmm_rows_without_a_standard_error_are_listed_as_untested(trial, monkeypatch):
    """A fit whose SE is not estimable gives no result row with p = NaN; it is untested."""
    table, samples, responders, _ = trial
    real = differential.fit_random_intercept
    victim = str(table.columns[3])

    def without_se(*args, **kwargs):
        fit = real(*args, **kwargs)
        co = fit.coefficients.copy()
        co.loc[co["feature_id"] == victim, ["se", "p", "ci_low", "ci_high"]] = np.nan
        return type(fit)(co, fit.fits)

    monkeypatch.setattr(differential, "fit_random_intercept", without_se)
    res = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                       methods=("mixed",), modality="x")
    lmm = res.results[res.results["method"] == "lmm"]
    assert lmm["p"].notna().all()
    assert victim not in set(lmm["feature"])
    lost = res.untested[(res.untested["method"] == "lmm") & (res.untested["feature"] == victim)]
    assert len(lost) >= 2 and lost["reason"].str.contains("not estimable").all()
