"""Formula models (differential.models): MaAsLin-class designs over sheet columns."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from gutaxis.differential.contrast import run_contrast
from gutaxis.io.errors import InputError
from gutaxis.differential.models import (ModelSpec, fit_formula_model, formula_variables, model_frame,
                                    prevalence_filter, with_response)
from gutaxis.differential.transforms import arcsine_sqrt_transform, log2_half_minimum_transform
from test_differential import CONTRAST, simulate_trial


def cohort(n_subjects=40, n_features=60, seed=1, dose_effect=None, sites=4):
    """Repeated samples (2-6 per subject) of subjects in sites; a continuous dose per sample, a
    binary sample-level antibiotics flag and a subject-level group; log-normal compositions."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        for v in range(rng.integers(2, 7)):
            rows.append((f"S{s:02d}_{v}", f"S{s:02d}", f"v{v}", "stool", f"site{s % sites}",
                         f"{rng.uniform(0, 10):.3f}", rng.choice(["yes", "no"])))
    samples = pd.DataFrame(rows, columns=["sample_id", "subject_id", "timepoint", "sample_type",
                                          "site", "dose", "antibiotics"])
    subjects = pd.DataFrame({"subject_id": [f"S{s:02d}" for s in range(n_subjects)],
                             "cohort": "all",
                             "group": rng.choice(["ctrl", "case"], n_subjects)})
    sid = samples["subject_id"].str[1:].astype(int).to_numpy()
    site = sid % sites
    dose = samples["dose"].astype(float).to_numpy()
    log_abundance = (rng.normal(0, 1, n_features) + rng.normal(0, 0.8, (n_subjects, n_features))[sid]
                     + rng.normal(0, 0.5, (sites, n_features))[site]
                     + rng.normal(0, 0.7, (len(samples), n_features)))
    effect = np.zeros(n_features) if dose_effect is None else dose_effect
    log_abundance += dose[:, None] * effect[None, :]
    values = np.exp(log_abundance)
    values[values < np.quantile(values, 0.15, axis=0)] = 0.0  # below a detection limit
    table = pd.DataFrame(values / values.sum(axis=1, keepdims=True),
                         index=pd.Index(samples["sample_id"], name="sample_id"),
                         columns=[f"F{j:03d}" for j in range(n_features)])
    return table, samples, subjects


def test_formula_variables_reads_the_sheet_columns_in_order():
    assert formula_variables("diagnosis * antibiotics + np.log(age) + C(site)") == [
        "diagnosis", "antibiotics", "age", "site"]
    with pytest.raises(InputError, match="not a formula"):
        formula_variables("a + + (")


def test_model_frame_types_columns_and_puts_the_reference_first():
    table, samples, subjects = cohort(n_subjects=6)
    spec = ModelSpec(name="m", fixed="dose + antibiotics + group", random=("site", "subject_id"),
                     reference={"antibiotics": "no", "group": "ctrl"})
    frame = model_frame(samples, subjects, table.index, spec, "samples.tsv", "subjects.tsv")
    assert frame["dose"].dtype == float
    assert list(frame["antibiotics"].cat.categories) == ["no", "yes"]
    assert list(frame["group"].cat.categories) == ["ctrl", "case"]
    assert frame["site"].dtype == "category"  # grouping columns are never numbers
    with pytest.raises(InputError, match="level 'maybe' does not occur"):
        model_frame(samples, subjects, table.index,
                    ModelSpec(name="m", fixed="antibiotics", reference={"antibiotics": "maybe"}),
                    "samples.tsv", "subjects.tsv")
    with pytest.raises(InputError, match="column 'bmi' is in neither samples.tsv nor subjects.tsv"):
        model_frame(samples, subjects, table.index, ModelSpec(name="m", fixed="bmi"),
                    "samples.tsv", "subjects.tsv")


def test_maaslin_transforms_by_hand():
    table = pd.DataFrame({"a": [0.0, 0.25, 1.0], "b": [0.0, 0.0, 0.5]})
    ast = arcsine_sqrt_transform(table).values
    assert ast.loc[1, "a"] == pytest.approx(np.pi / 6) and ast.loc[2, "a"] == pytest.approx(np.pi / 2)
    log = log2_half_minimum_transform(table).values
    # zeros take half the feature's smallest non-zero value: a -> 0.125, b -> 0.25
    assert log["a"].tolist() == pytest.approx([-3.0, -2.0, 0.0])
    assert log["b"].tolist() == pytest.approx([-2.0, -2.0, -1.0])
    with pytest.raises(InputError, match="outside"):
        arcsine_sqrt_transform(table * 3)


def test_prevalence_filter_is_strictly_more_than_the_fraction():
    table = pd.DataFrame({"in_3_of_10": [1.0] * 3 + [0.0] * 7, "in_2_of_10": [1.0] * 2 + [0.0] * 8})
    kept, reasons = prevalence_filter(table, 0.2, 0.0)
    assert list(kept.columns) == ["in_3_of_10"]
    assert "20.0% of samples (needs more than 20.0%)" in reasons["in_2_of_10"]


def test_ols_model_equals_statsmodels_and_bh_per_term():
    table, samples, subjects = cohort(seed=2)
    spec = ModelSpec(name="ols", fixed="dose + antibiotics", random=(), normalization="tss",
                     transform="log", reference={"antibiotics": "no"})
    res = fit_formula_model(table, samples, subjects, spec).results
    row = res[(res["feature"] == "F007") & (res["variable"] == "dose")].iloc[0]
    y = np.log2(np.where(table["F007"] > 0, table["F007"], table["F007"][table["F007"] > 0].min() / 2))
    X = sm.add_constant(pd.DataFrame({"dose": samples["dose"].astype(float).to_numpy(),
                                      "ab": (samples["antibiotics"] == "yes").astype(float).to_numpy()}))
    fit = sm.OLS(y, X).fit()
    assert row["effect"] == pytest.approx(fit.params["dose"], rel=1e-10)
    assert row["se"] == pytest.approx(fit.bse["dose"], rel=1e-10)
    assert row["p"] == pytest.approx(fit.pvalues["dose"], rel=1e-8)
    assert row["value"] == "dose" and row["formula"] == "feature ~ dose + antibiotics"
    dose = res[res["variable"] == "dose"]
    np.testing.assert_allclose(dose["q"], multipletests(dose["p"], method="fdr_bh")[1])


def test_planted_dose_effect_found_and_null_features_hold_their_level():
    n_features = 80
    effect = np.zeros(n_features)
    effect[:8] = 0.25
    table, samples, subjects = cohort(n_subjects=50, n_features=n_features, seed=3, dose_effect=effect)
    spec = ModelSpec(name="dose", fixed="dose + antibiotics", random=("subject_id",),
                     normalization="tss", transform="clr")
    res = fit_formula_model(table, samples, subjects, spec, alpha=0.1).results
    dose = res[res["variable"] == "dose"].set_index("feature")
    planted = [f"F{j:03d}" for j in range(8)]
    assert (dose.loc[planted, "q"] < 0.1).all()
    assert (dose.loc[planted, "effect"] > 0).all()
    # CLR is relative: the unplanted features fall a little with the planted ones, but
    # antibiotics is pure noise and may call at most a handful
    assert ((res["variable"] == "antibiotics") & (res["q"] < 0.1)).sum() <= 2


@pytest.mark.parametrize("median", [False, True])
def test_label_swap_null_calls_at_most_at_level(median):
    """The dose of every sample permuted across samples, 20 times: at most 5 studies with any
    call (BH at 0.1 expects about 2) and at most 7 % of the tests at p < 0.05, with and without
    the median comparison."""
    table, samples, subjects = cohort(n_subjects=40, n_features=50, seed=4)
    spec = ModelSpec(name="null", fixed="dose", random=("subject_id",), normalization="tss",
                     transform="log", outcome="nonzero" if median else "value",
                     median_comparison=median)
    studies_with_calls, p_values = 0, []
    for seed in range(20):
        shuffled = samples.assign(dose=np.random.default_rng(seed).permutation(samples["dose"].to_numpy()))
        res = fit_formula_model(table, shuffled, subjects, spec, alpha=0.1).results
        studies_with_calls += int((res["q"] < 0.1).any())
        p_values.append(res["p"].to_numpy())
    assert studies_with_calls <= 5
    assert (np.concatenate(p_values) < 0.05).mean() <= 0.07


def test_samples_missing_a_model_column_are_dropped_with_the_column():
    table, samples, subjects = cohort(n_subjects=10, seed=5)
    samples.loc[[0, 3], "dose"] = ""
    spec = ModelSpec(name="m", fixed="dose", random=("subject_id",))
    result = fit_formula_model(table, samples, subjects, spec)
    assert result.dropped_samples["sample_id"].tolist() == samples.loc[[0, 3], "sample_id"].tolist()
    assert (result.dropped_samples["reason"] == "missing dose").all()
    assert (result.results["n"] <= len(samples) - 2).all()


def test_the_paired_trial_model_gives_todays_mixed_model_results():
    """``timepoint * response + cohort`` with a random intercept per subject, as a formula model,
    equals the contrast engine's lmm rows (the paired-trial default of the model section)."""
    table, samples, responders, _ = simulate_trial(n_features=30, seed=6)
    contrast = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                            covariates=["cohort"], methods=("mixed",), sensitivity="none")
    lmm = contrast.results[contrast.results["method"] == "lmm"]
    subjects = with_response(responders[["subject_id", "cohort"]], responders, "dcr_recist")
    subjects["response"] = subjects["response"].replace({"responder": "responder",
                                                         "non_responder": "non_responder"})
    spec = ModelSpec(name="paired", fixed="timepoint * response + cohort", random=("subject_id",),
                     reference={"timepoint": "baseline", "response": "non_responder"})
    ours = fit_formula_model(np.log2(table), samples, subjects, spec).results
    term = "timepoint[post]:response[responder]"
    a = lmm[lmm["term"] == term].set_index("feature").sort_index()
    b = ours[ours["term"] == term].set_index("feature").sort_index()
    assert len(a) == 30 and list(a.index) == list(b.index)
    np.testing.assert_allclose(b["effect"], a["effect"], rtol=1e-9)
    np.testing.assert_allclose(b["p"], a["p"], rtol=1e-7)
    np.testing.assert_allclose(b["q"], a["q"], rtol=1e-7)  # BH per term = per family


def test_logistic_fit_equals_statsmodels_and_augmentation_equals_weighted_copies():
    import statsmodels.api as sm

    from gutaxis.stats.logistic import logistic_fit

    rng = np.random.default_rng(7)
    n = 120
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    Y = (rng.random((n, 3)) < 1 / (1 + np.exp(-(X @ np.array([[0.2, -0.5, 1.0], [0.8, 0.0, -0.4],
                                                              [-0.3, 0.6, 0.0]]))))).astype(float)
    Y[:10, 1] = np.nan
    plain = logistic_fit(Y, X, augment=False)
    for j in range(3):
        ok = ~np.isnan(Y[:, j])
        ref = sm.Logit(Y[ok, j], X[ok]).fit(disp=0)
        np.testing.assert_allclose(plain["estimate"][j], ref.params, rtol=1e-8)
        np.testing.assert_allclose(plain["se"][j], ref.bse, rtol=1e-6)
        np.testing.assert_allclose(plain["p"][j], ref.pvalues, rtol=1e-6)
    # augmentation = the data plus a y=1 and a y=0 copy of every row, weighted k/(2n)
    k = X.shape[1] - 1
    aug = logistic_fit(Y[:, :1], X)
    w = np.r_[np.ones(n), np.full(2 * n, k / (2 * n))]
    ref = sm.GLM(np.r_[Y[:, 0], np.ones(n), np.zeros(n)], np.vstack([X, X, X]),
                 family=sm.families.Binomial(), freq_weights=w).fit()
    np.testing.assert_allclose(aug["estimate"][0], ref.params, rtol=1e-8)
    # complete separation: finite estimates with augmentation
    sep = np.column_stack([X[:, 2]]).astype(float)
    assert np.isfinite(logistic_fit(sep, X)["estimate"]).all()


def test_presence_model_and_median_comparison():
    n_features = 60
    effect = np.zeros(n_features)
    effect[:6] = 0.3
    table, samples, subjects = cohort(n_subjects=60, n_features=n_features, seed=8, dose_effect=effect)
    presence = fit_formula_model(table, samples, subjects, ModelSpec(
        name="prev", fixed="dose", random=(), outcome="presence")).results
    assert (presence["effect_scale"] == "log odds of presence (> 0)").all()
    # more dose, more abundance, fewer values below the detection limit
    planted = presence[presence["feature"].isin([f"F{j:03d}" for j in range(6)])]
    assert (planted["effect"] > 0).all() and (planted["q"] < 0.1).mean() >= 0.5
    spec = ModelSpec(name="abund", fixed="dose", random=("subject_id",), normalization="tss",
                     transform="log", outcome="nonzero", median_comparison=True)
    res = fit_formula_model(table, samples, subjects, spec).results
    # after TSS the planted bloom pushes every other share down; against the median the
    # unplanted features centre on 0 and the planted ones are called up
    others = res[~res["feature"].isin([f"F{j:03d}" for j in range(6)])]
    shift = res["median_shift"].iloc[0]
    assert res["median_shift"].notna().all() and shift < 0
    assert abs(others["effect"].median()) < 0.2 * abs(shift)
    assert (others["q"] < 0.1).sum() <= 2
    called = res[(res["q"] < 0.1) & (res["direction"] == "up")]["feature"]
    assert set(called) == {f"F{j:03d}" for j in range(6)}
    # the same model without the median comparison is relative: the untouched taxa are "down"
    relative = fit_formula_model(table, samples, subjects, replace(spec, median_comparison=False)).results
    untouched = relative[~relative["feature"].isin(called)]
    assert (untouched["direction"] == "down").sum() > 20


def test_presence_with_random_intercepts_is_refused_at_planning():
    from gutaxis.differential.models import config_problems

    problems = config_problems([{"name": "p", "fixed": "dose", "outcome": "presence"},
                                {"name": "p", "fixed": "dose", "random": []}])
    text = " ".join(str(p) for p in problems)
    assert "no random intercepts" in text and "used twice" in text


def test_contrast_mixed_models_take_a_second_random_intercept():
    """A site effect on every feature, sites unbalanced between responders and non-responders:
    ``random_effects: [subject_id, site]`` fits both intercepts (formula and variances say so)
    and its time x response tests hold their level on a null."""
    table, samples, responders, _ = simulate_trial(n_features=40, seed=11, effect=0.0, n_changed=0)
    rng = np.random.default_rng(11)
    site = {s: f"site{rng.integers(0, 4)}" for s in responders["subject_id"]}
    samples = samples.assign(site=samples["subject_id"].map(site))
    shift = pd.Series(rng.normal(0, 1.0, 4), index=[f"site{i}" for i in range(4)])
    table = table * np.exp2(shift.loc[samples.set_index("sample_id").loc[table.index, "site"]].to_numpy())[:, None]
    res = run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                       covariates=["cohort"], methods=("mixed",), sensitivity="none",
                       random_effects=("subject_id", "site"))
    assert res.formulas["lmm_time"].endswith("+ (1 | subject_id) + (1 | site)")
    assert (res.model_fits["var_site"] > 0).mean() > 0.5
    lmm = res.results[res.results["method"] == "lmm"]
    assert (lmm["q"] < 0.1).sum() <= 1
    with pytest.raises(InputError, match="between-within"):
        run_contrast(table, samples, CONTRAST, transform="log2", responders=responders,
                     methods=("mixed",), mixed_df="between_within", random_effects=("subject_id", "site"))
