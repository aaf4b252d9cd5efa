"""The differential engine for every study type: no response, baseline-only, crossover period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from gutaxis.differential.contrast import RESULT_COLUMNS, run_baseline, run_contrast
from gutaxis.io.errors import InputError
from gutaxis.plots.differential import heatmap_data, paired_data
from test_differential import CONTRAST, simulate_trial


def baseline_cohort(n_subjects=60, n_features=80, n_planted=10, effect=1.2, seed=3):
    """One baseline sample per subject of three cohorts; ``n_planted`` features are higher
    (log2, +``effect``) in responders, a cohort shifts every feature by up to 1."""
    rng = np.random.default_rng(seed)
    subjects = [f"S{i:03d}" for i in range(n_subjects)]
    cohort = rng.choice(["c1", "c2", "c3"], n_subjects)
    label = np.array(["responder", "non_responder"] * (n_subjects // 2))
    rng.shuffle(label)
    label[:3] = ""  # three not evaluable
    samples = pd.DataFrame({"sample_id": [f"{s}_b" for s in subjects], "subject_id": subjects,
                            "timepoint": "baseline", "sample_type": "stool"})
    cohort_shift = pd.Series({"c1": 0.0, "c2": 0.5, "c3": 1.0})[cohort].to_numpy()
    planted = np.zeros(n_features)
    planted[:n_planted] = effect
    log2 = (rng.normal(6, 1, n_features) + cohort_shift[:, None]
            + (label == "responder")[:, None] * planted + rng.normal(0, 0.6, (n_subjects, n_features)))
    features = [f"F{j:03d}" for j in range(n_features)]
    table = pd.DataFrame(np.exp2(log2), index=pd.Index(samples["sample_id"], name="sample_id"),
                         columns=pd.Index(features, name="feature_id"))
    responders = pd.DataFrame({"subject_id": subjects, "cohort": cohort, "dcr_recist": label})
    subjects_table = pd.DataFrame({"subject_id": subjects, "cohort": cohort})
    return table, samples, responders, subjects_table, pd.Series(planted, index=features)


@pytest.fixture(scope="module")
def cohort_data():
    return baseline_cohort()


def test_baseline_comparison_finds_the_planted_responder_difference(cohort_data):
    table, samples, responders, subjects, planted = cohort_data
    res = run_baseline(table, samples, "baseline", transform="log2", responders=responders,
                       subjects=subjects, modality="metabolites")
    out = res.results
    assert list(out.columns) == RESULT_COLUMNS
    assert set(out["method"]) == {"ols", "mann_whitney"}
    assert set(out["term"]) == {"response[responder]"}
    assert set(out["contrast"]) == {"baseline"}
    truth = set(planted.index[planted != 0])
    for method in ("ols", "mann_whitney"):
        rows = out[out["method"] == method]
        called = set(rows.loc[rows["q"] < 0.05, "feature"])
        assert truth <= called, method
        assert len(called - truth) <= 2, method
    # the adjusted effect is close to the planted +1.2 log2
    ols = out[(out["method"] == "ols") & out["feature"].isin(truth)]
    assert abs(ols["effect"].mean() - 1.2) < 0.25
    # the three not evaluable subjects are listed, not silently dropped
    assert (res.dropped_samples["reason"].str.contains("no response label")).sum() == 3
    assert res.formulas["ols_baseline"].startswith("feature ~ response + cohort")


def test_baseline_ols_row_equals_statsmodels_with_the_cohort_covariate(cohort_data):
    table, samples, responders, subjects, _ = cohort_data
    res = run_baseline(table, samples, "baseline", transform="log2", responders=responders,
                       subjects=subjects)
    feature = "F004"
    frame = pd.DataFrame({"y": np.log2(table[feature].to_numpy()),
                          "response": responders["dcr_recist"].to_numpy(),
                          "cohort": responders["cohort"].to_numpy()})
    frame = frame[frame["response"] != ""]
    fit = smf.ols("y ~ C(response, Treatment('non_responder')) + cohort", frame).fit()
    term = "C(response, Treatment('non_responder'))[T.responder]"
    row = res.results[(res.results["method"] == "ols") & (res.results["feature"] == feature)].iloc[0]
    assert row["effect"] == pytest.approx(fit.params[term], rel=1e-9)
    assert row["p"] == pytest.approx(fit.pvalues[term], rel=1e-6)
    mw = stats.mannwhitneyu(frame.loc[frame["response"] == "responder", "y"],
                            frame.loc[frame["response"] == "non_responder", "y"])
    mw_row = res.results[(res.results["method"] == "mann_whitney") & (res.results["feature"] == feature)].iloc[0]
    assert mw_row["p"] == pytest.approx(mw.pvalue, rel=1e-6)


def test_baseline_comparison_of_shuffled_labels_calls_nothing(cohort_data):
    table, samples, responders, subjects, _ = cohort_data
    calls = []
    for seed in range(5):
        shuffled = responders.assign(
            dcr_recist=np.random.default_rng(seed).permutation(responders["dcr_recist"].to_numpy()))
        res = run_baseline(table, samples, "baseline", transform="log2", responders=shuffled,
                           subjects=subjects)
        calls.append(int((res.results["q"] < 0.05).sum()))
    # 5 shuffles x 80 features x 2 methods: BH at 5% under the null calls (almost) nothing
    assert sum(calls) <= 2, calls


def test_baseline_comparison_needs_responder_labels(cohort_data):
    table, samples, _, subjects, _ = cohort_data
    with pytest.raises(InputError, match="needs responder labels"):
        run_baseline(table, samples, "baseline", transform="log2", responders=None, subjects=subjects)


def test_baseline_comparison_of_a_timepoint_without_samples_is_an_input_error(cohort_data):
    table, samples, responders, subjects, _ = cohort_data
    with pytest.raises(InputError, match="no sample at timepoint 'screening'"):
        run_baseline(table, samples, "screening", transform="log2", responders=responders,
                     subjects=subjects)


def test_without_responders_there_are_no_response_terms_and_time_is_still_found():
    table, samples, responders, truth = simulate_trial(n_features=50, n_changed=8, effect=1.0, seed=5)
    subjects = responders[["subject_id", "cohort"]]
    res = run_contrast(table, samples, CONTRAST, transform="log2", responders=None, subjects=subjects)
    out = res.results
    assert not out["term"].str.contains("response").any()
    assert set(out["method"]) == {"paired_t", "wilcoxon", "lmm"}
    assert "lmm_response" not in res.formulas and "ols_baseline" not in res.formulas
    assert "cohort" in res.formulas["lmm_time"]
    called = set(out.loc[(out["method"] == "paired_t") & (out["q"] < 0.1), "feature"])
    assert set(truth.index[truth != 0]) <= called
    assert ("baseline", "skipped: no responder labels given") in set(map(tuple, res.notes.to_numpy()))


def test_figures_without_a_response_column_show_no_response_groups():
    table, samples, responders, _ = simulate_trial(n_features=20, n_changed=5, effect=1.5, seed=8)
    res = run_contrast(table, samples, CONTRAST, transform="log2", responders=None,
                       subjects=responders[["subject_id", "cohort"]], methods=("paired",))
    from gutaxis.io.pairing import paired_design
    from gutaxis.stats.paired import paired_differences
    from gutaxis.differential.transforms import transform_table

    pairs = paired_design(samples, "baseline", "post").pairs.assign(cohort="lung")
    assert "response" not in pairs.columns
    values = transform_table(table, "log2").values
    changes = paired_differences(values, pairs).rename_axis(columns=None).reset_index()
    heat = heatmap_data(res.results, changes, pairs, 0.1, "paired_t", "post", 10)
    assert len(heat) and set(heat["response"]) == {"all"}
    paired = paired_data(res.results, values, pairs, "paired_t", "post", 4)
    assert len(paired) and set(paired["response"]) == {"all"}


def crossover_trial(n_subjects=30, n_features=40, period_effect=1.5, seed=9):
    """Two-period crossover on the log2 scale: interventions A and B, sequence AB (two
    thirds of the subjects) or BA, every feature +``period_effect`` in period 2, the
    first 6 features +1 after A."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_subjects):
        s = f"X{i:02d}"
        first = "a" if i % 3 != 0 else "b"
        for arm in ("a", "b"):
            period = "1" if arm == first else "2"
            rows += [(f"{s}_pre_{arm}", s, f"pre_{arm}", period), (f"{s}_post_{arm}", s, f"post_{arm}", period)]
    samples = pd.DataFrame(rows, columns=["sample_id", "subject_id", "timepoint", "period"])
    subj = samples["subject_id"].str[1:].astype(int).to_numpy()
    level = rng.normal(0, 0.7, (n_subjects, n_features))[subj]
    effect = np.zeros(n_features)
    effect[:6] = 1.0
    y = (5 + level + (samples["period"] == "2").to_numpy()[:, None] * period_effect
         + (samples["timepoint"] == "post_a").to_numpy()[:, None] * effect
         + rng.normal(0, 0.4, (len(samples), n_features)))
    table = pd.DataFrame(np.exp2(y), index=pd.Index(samples["sample_id"], name="sample_id"),
                         columns=[f"F{j:02d}" for j in range(n_features)])
    return table, samples, effect


def test_crossover_period_covariate_enters_the_mixed_model_and_removes_the_period_bias():
    table, samples, effect = crossover_trial()
    contrast = {"name": "arm_a", "pre": "pre_a", "post": "post_a",
                "timepoints": ["pre_a", "post_a", "pre_b", "post_b"]}
    with_period = run_contrast(table, samples, contrast, transform="log2", covariates=["period"],
                               methods=("mixed",))
    without = run_contrast(table, samples, contrast, transform="log2", covariates=[], methods=("mixed",))
    assert "period" in with_period.formulas["lmm_time"]
    assert "period" not in without.formulas["lmm_time"]

    def post_a(res):
        rows = res.results[res.results["term"] == "timepoint[post_a]"].set_index("feature")
        return rows.loc[table.columns, "effect"].to_numpy()

    # timepoint[post_a] vs pre_a: the same period, so both models estimate the planted change
    assert np.abs(post_a(with_period) - effect).max() < 0.45

    def pre_b(res):
        rows = res.results[res.results["term"] == "timepoint[pre_b]"].set_index("feature")
        return rows.loc[table.columns, "effect"].to_numpy()

    # pre_b vs pre_a differ only by period: +1.5 for AB subjects, -1.5 for BA. With two
    # thirds AB, leaving the period out biases the pre_b term by 1.5 x (2/3 - 1/3) = 0.5;
    # with the period covariate it is ~0 and the period coefficient recovers the +1.5
    assert abs(pre_b(without).mean() - 0.5) < 0.1
    assert np.abs(pre_b(with_period)).mean() < 0.1
    coefs = with_period.coefficients
    period = coefs[(coefs["model"] == "lmm_time") & (coefs["term"] == "period[2]")]
    assert abs(period["estimate"].mean() - 1.5) < 0.1


# ----------------------------------------------------------------- models and integration plots


def _models_config(contrasts):
    return {"design": {"baseline": "baseline", "timepoints": ["baseline", "post"], "contrasts": contrasts},
            "modalities": {"taxa": {"kind": "taxonomy"}},
            "models": {"feature_sets": {
                "base": {"blocks": ["taxa"], "view": "baseline"},
                "change": {"blocks": ["taxa"], "view": "change"},
                "on_treatment": {"blocks": ["taxa"], "view": "post"},
                "all_samples": {"blocks": ["taxa"], "view": "samples", "timepoints": ["baseline", "post"]},
                "baseline_samples": {"blocks": ["taxa"], "view": "samples", "timepoints": ["baseline"]}}}}


def test_baseline_only_studies_keep_the_baseline_feature_sets_only():
    from gutaxis.models.config import unavailable_sets, usable_sets

    config = _models_config([])
    skipped = unavailable_sets(config, paired=False)
    assert set(skipped) == {"change", "on_treatment", "all_samples"}
    assert "paired samples" in skipped["change"] and "post" in skipped["all_samples"]
    assert set(usable_sets(config, paired=False)) == {"base", "baseline_samples"}
    paired = _models_config([{"name": "c", "pre": "baseline", "post": "post"}])
    assert unavailable_sets(paired, paired=True) == {}
    assert len(usable_sets(paired, paired=True)) == 5


def test_integration_figures_without_a_response_have_one_group_and_no_ne():
    from gutaxis.plots.integration import mofa_scores_data, subject_groups

    factors = pd.DataFrame({"subject_id": ["A", "A", "B"], "timepoint": ["baseline", "post", "baseline"],
                            "factor": "Factor1", "score": [0.1, 0.2, 0.3]})
    data = mofa_scores_data(factors, None, "")
    assert set(data["response"]) == {"all"}
    labels = pd.DataFrame({"subject_id": ["A", "B"], "dcr": ["responder", ""]})
    grouped = subject_groups(pd.Series(["A", "B", "C"]), labels, "dcr")
    assert grouped.tolist() == ["responder", "not_evaluable", "not_evaluable"]
