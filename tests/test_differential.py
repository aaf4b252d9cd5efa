"""Tests for gutaxis.differential.contrast: the contrast engine, its output shape and its error rates."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.multitest import multipletests

import gutaxis.differential.contrast as differential
from gutaxis.differential.contrast import (RESULT_COLUMNS, hodges_lehmann_shift, mann_whitney, ols_fit,
                                  run_contrast)
from gutaxis.io.errors import InputError

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
    r = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                     methods=("mixed",), mixed_df="between_within", modality="x").results
    row = r[(r["method"] == "lmm") & (r["term"] == "timepoint[post]:response[responder]")
            & (r["feature"] == f)].iloc[0]
    name = "timepoint[T.post]:response[T.responder]"
    assert row["effect"] == pytest.approx(ref.fe_params[name], abs=1e-4)
    # between_within: Student t with between-within df (n_obs - n_subjects - 2 within
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
    # lmerTest inference: lme4's SE (no fixed/random cross term) and Satterthwaite df, through the engine
    from gutaxis.stats.mixed import build_design, fit_random_intercept

    satt = result  # the default: mixed_df="satterthwaite"
    satt_row = satt.results[(satt.results["method"] == "lmm") & (satt.results["feature"] == f)
                            & (satt.results["term"] == "timepoint[post]:response[responder]")].iloc[0]
    direct = fit_random_intercept(data[["y"]], build_design(data, "timepoint * response + cohort"),
                                  data["subject_id"], df_method="satterthwaite").coefficients.set_index("term")
    assert satt_row["p"] == pytest.approx(direct.loc["timepoint[post]:response[responder]", "p"], rel=1e-6)
    assert satt.notes["message"].str.contains("Satterthwaite").any()


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


def _bloom(table, samples, n_bloom=15, fold=8.0, seed=3):
    """Multiply ``n_bloom`` features by ``fold`` in every post sample, then close to 1:
    the absolute truth is "only the blooms changed"."""
    rng = np.random.default_rng(seed)
    post = (samples.set_index("sample_id").loc[table.index, "timepoint"] == "post").to_numpy()
    bloom = rng.choice(table.shape[1], n_bloom, replace=False)
    values = table.to_numpy().copy()
    values[np.ix_(post, bloom)] *= fold
    values /= values.sum(axis=1, keepdims=True)
    return pd.DataFrame(values, index=table.index, columns=table.columns), table.columns[bloom]


def test_bias_correction_removes_the_shift_of_a_bloom_and_its_false_down_calls():
    table, samples, responders, _ = simulate_trial(n_features=300, n_changed=0, seed=1)
    table, bloomed = _bloom(table, samples)
    kwargs = dict(transform="clr", responders=responders, methods=("paired",))
    relative = run_contrast(table, samples, CONTRAST, bias_correction="none", **kwargs).results
    corrected = run_contrast(table, samples, CONTRAST, bias_correction="mode", **kwargs).results
    rel = relative[relative["method"] == "paired_t"].set_index("feature")
    cor = corrected[corrected["method"] == "paired_t"].set_index("feature")
    untouched = rel.index.difference(bloomed)
    # the known shift: 15 of 300 features x8 lowers the CLR of the others by
    # (15/300) ln 8 = 0.104 in every subject (the geometric mean rises by that much)
    assert rel.loc[untouched, "effect"].median() == pytest.approx(-15 / 300 * np.log(8), abs=0.02)
    assert cor.loc[untouched, "effect"].median() == pytest.approx(0.0, abs=0.02)
    assert cor["reference_shift"].iloc[0] == pytest.approx(-15 / 300 * np.log(8), abs=0.02)
    # the relative effects stay, labelled, and the corrected effect is relative - shift
    assert np.allclose(cor["relative_effect"], rel.loc[cor.index, "effect"])
    assert cor["effect_scale"].str.contains("bias-corrected").all()
    assert rel["effect_scale"].str.contains("relative").all()
    false_rel = set(rel.index[rel["direction"] != "none"]) - set(bloomed)
    false_cor = set(cor.index[cor["direction"] != "none"]) - set(bloomed)
    assert len(false_rel) > 30  # the false "down" calls of the relative test
    assert all(rel.loc[sorted(false_rel), "direction"] == "down")
    n_called = (cor["direction"] != "none").sum()
    assert set(bloomed) <= set(cor.index[cor["direction"] == "up"])
    assert len(false_cor) / n_called <= 0.2


def test_corrected_change_is_the_log_ratio_to_the_reference_feature():
    """Property: without zeros, the corrected paired mean change equals the relative one
    minus the mode, and its test is the paired t test of y_j - z (z = weighted reference)."""
    from gutaxis.io.pairing import paired_design
    from gutaxis.differential.reference_shift import kernel_mode, reference_feature
    from gutaxis.differential.transforms import transform_table

    table, samples, responders, _ = simulate_trial(n_features=80, n_changed=6, effect=1.5,
                                                   seed=4, compositional=True)
    res = run_contrast(table, samples, CONTRAST, transform="clr", methods=("paired",),
                       covariates=(), bias_correction="mode").results
    rows = res[res["method"] == "paired_t"].set_index("feature")
    shift = rows["reference_shift"].iloc[0]
    assert np.allclose(rows["effect"], rows["relative_effect"] - shift, atol=1e-10)
    clr = transform_table(table, "clr").values
    mode = kernel_mode(rows["relative_effect"])
    z = reference_feature(clr, mode.weights)
    pairs = paired_design(samples, "baseline", "post", sample_ids=table.index).pairs
    j = rows.index[0]
    d = (clr.loc[pairs["post_sample"], j].to_numpy() - z[pairs["post_sample"]].to_numpy()
         - clr.loc[pairs["pre_sample"], j].to_numpy() + z[pairs["pre_sample"]].to_numpy())
    assert stats.ttest_1samp(d, 0).pvalue == pytest.approx(rows.loc[j, "p"], rel=1e-9)


def test_a_taxon_that_drops_below_detection_is_tested_and_called_lost():
    table, samples, responders, _ = simulate_trial(n_features=60, n_changed=0, seed=2,
                                                   compositional=True)
    post = (samples.set_index("sample_id").loc[table.index, "timepoint"] == "post").to_numpy()
    table = table.copy()
    table.loc[post, "F0007"] = 0.0
    res = run_contrast(table, samples, CONTRAST, transform="clr", responders=responders,
                       bias_correction="mode", presence_tests=True).results
    row = res[(res["feature"] == "F0007") & (res["method"] == "paired_t")].iloc[0]
    n_pairs = int(row["n_pairs"])
    assert n_pairs == int(res.loc[res["method"] == "paired_t", "n_pairs"].max()) >= 30
    assert row["direction"] == "down" and row["joint_call"] == "down + lost"
    pres = res[(res["feature"] == "F0007") & (res["method"] == "presence_mcnemar")].iloc[0]
    assert pres["direction"] == "lost" and pres["note"] == f"lost in {n_pairs}, gained in 0 of {n_pairs} pairs"
    # rCLR treats those zeros as missing: no pair is left to test
    rclr = run_contrast(table, samples, CONTRAST, transform="rclr", methods=("paired",),
                        covariates=())
    assert "F0007" not in set(rclr.results["feature"])
    assert "too few pairs" in rclr.untested.set_index("feature").loc["F0007", "reason"].iloc[0]


def test_label_swap_null_makes_no_call():
    """Pre and post swapped in a random half of the subjects of a trial with real planted
    changes and a bloom: every change is now a null (its sign is random per subject)."""
    table, samples, responders, _ = simulate_trial(n_subjects=60, n_features=200, n_changed=20,
                                                   effect=1.0, seed=11, compositional=True)
    table, _ = _bloom(table, samples, n_bloom=10, fold=3.0, seed=11)
    swap_rng = np.random.default_rng(11)
    swapped = set(samples["subject_id"].drop_duplicates().sample(frac=0.5, random_state=11))
    samples = samples.copy()
    flip = samples["subject_id"].isin(swapped)
    samples.loc[flip, "timepoint"] = samples.loc[flip, "timepoint"].map(
        {"baseline": "post", "post": "baseline"})
    zero = swap_rng.random(table.shape) < 0.3  # a sparse table
    table = table.mask(zero, 0.0)
    res = run_contrast(table, samples, CONTRAST, transform="clr", responders=responders,
                       methods=("paired", "mixed"), bias_correction="mode",
                       presence_tests=True).results
    calls = res[res["direction"] != "none"]
    per_family = calls.groupby(["method", "term"]).size()
    assert per_family.max() <= 1 if len(per_family) else True, per_family
    assert len(calls) <= 2, calls[["feature", "method", "term", "q"]]


def test_sensitivity_agrees_means_the_rank_test_calls_the_same_direction():
    table, samples, responders, truth = simulate_trial(n_features=60, n_changed=10, effect=1.0,
                                                       seed=5)
    res = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders).results
    main = res[res["method"] == "paired_t"].set_index("feature")
    rank = res[res["method"] == "wilcoxon"].set_index("feature")
    called = main.index[main["q"] < 0.1]
    assert len(called) >= 5
    expected = (rank.loc[called, "q"] < 0.1) & (np.sign(rank.loc[called, "effect"])
                                                 == np.sign(main.loc[called, "effect"]))
    assert (main.loc[called, "sensitivity_agrees"].astype(bool) == expected).all()
    assert main.loc[main.index.difference(called), "sensitivity_agrees"].isna().all()
    assert rank["sensitivity_agrees"].isna().all()
    inter = res[res["term"].str.contains(":")]
    assert inter["sensitivity_agrees"].isna().all()
    off = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                       sensitivity="none").results
    assert off["sensitivity_agrees"].isna().all()
    with pytest.raises(InputError, match="ANCOM-BC2 was removed"):
        run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                     sensitivity="ancombc2")


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
    real = differential.fit_mixed
    victim = str(table.columns[3])

    def without_se(*args, **kwargs):
        fit = real(*args, **kwargs)
        co = fit.coefficients.copy()
        co.loc[co["feature_id"] == victim, ["se", "p", "ci_low", "ci_high"]] = np.nan
        return type(fit)(co, fit.fits)

    monkeypatch.setattr(differential, "fit_mixed", without_se)
    res = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                       methods=("mixed",), modality="x")
    lmm = res.results[res.results["method"] == "lmm"]
    assert lmm["p"].notna().all()
    assert victim not in set(lmm["feature"])
    lost = res.untested[(res.untested["method"] == "lmm") & (res.untested["feature"] == victim)]
    assert len(lost) >= 2 and lost["reason"].str.contains("not estimable").all()


def test_bias_correction_does_not_depend_on_the_confidence_level():
    """The kernel width comes from the standard errors, read off the CIs at their own level:
    the corrected effects are the same whatever confidence the CIs are reported at (reading
    them as 95 % CIs made the kernel 1.5 times too wide at 80 %)."""
    table, samples, responders, _ = simulate_trial(n_features=120, n_changed=8, effect=1.0,
                                                   seed=6, compositional=True)
    table, _ = _bloom(table, samples, n_bloom=6, fold=4.0, seed=6)
    runs = [run_contrast(table, samples, CONTRAST, transform="clr", responders=responders,
                         bias_correction="mode", confidence=c).results for c in (0.95, 0.8)]
    for res in runs:
        res.sort_values(["method", "term", "feature"], inplace=True)
    # the same up to the t vs normal quantile ratio of the two levels (the rows carry no df):
    # at most 0.0012 here; reading every CI as a 95 % one gave differences up to 0.033
    np.testing.assert_allclose(runs[0]["effect"], runs[1]["effect"], rtol=0, atol=0.005)
