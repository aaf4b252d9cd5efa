"""Responder models: per-sample transforms, in-fold filters, the inner search, metrics,
nested CV without leakage, the permutation test, feature stability, survival of biomarkers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (average_precision_score, balanced_accuracy_score, brier_score_loss,
                             roc_auc_score)
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.proportion import proportion_confint

from gutaxis.io.errors import InputError
from gutaxis.models.features import (EXCLUSION_COLUMNS, NON_RESPONDER, RESPONDER, ModelData,
                                    build_model_data)
from gutaxis.models.metrics import (auroc, balanced_accuracy, brier_score, calibration_bins,
                                   delong_interval, repeat_metrics, wilson_interval)
from gutaxis.models.pipeline import (Block, InnerSearchCV, PipelineOptions, balanced_weights,
                                    build_estimator, preprocessor)
from gutaxis.models.transformers import (BlockPreprocessor, BlockTransformer, UnivariateSelector,
                                        anova_f, transform_rows)
from gutaxis.models.feature_table import differential_links, integration_links
from gutaxis.models.survival import biomarker_survival
from gutaxis.models.fit import (CVSettings, config_problems, feature_stability, nested_cv,
                            outer_splits, performance_row, permutation_importance_auroc,
                            permutation_test, permuted_labels)
from gutaxis.clinical.survival import logrank_test

GRIDS = {"l1_logistic": {"C": [0.3, 1.0]}, "elastic_net": {"C": [0.1, 1.0], "l1_ratio": [0.5]},
         "random_forest": {"n_estimators": 30, "max_features": ["sqrt"], "min_samples_leaf": [1]}}


def simulated(n=40, p=200, informative=0, effect=1.0, seed=0, labels_seed=None) -> ModelData:
    """Noise features; the first `informative` shift by `effect` SD in responders."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2, int), np.zeros(n - n // 2, int)]
    rng.shuffle(y)
    if labels_seed is not None:
        y = np.random.default_rng(labels_seed).permutation(y)
    X = rng.normal(size=(n, p))
    X[:, :informative] += effect * y[:, None]
    rows = pd.DataFrame({"subject_id": [f"S{i:03d}" for i in range(n)], "cohort": "a",
                         "timepoint": "baseline", "label": np.where(y == 1, RESPONDER, NON_RESPONDER)})
    block = Block("omics", "omics", "omics", tuple(range(p)), tuple(f"f{j:03d}" for j in range(p)))
    return ModelData("sim", X, y, rows, [block], "concatenate", "baseline",
                     pd.DataFrame(columns=EXCLUSION_COLUMNS))


# --------------------------------------------------------------------------- transforms


def test_clr_rows_by_hand_and_independent_of_other_rows():
    x = np.array([[0.5, 0.3, 0.2, 0.0], [0.0, 0.0, 0.6, 0.4]])
    out = transform_rows(x, "clr", pseudocount_fraction=0.5)
    for row, got in zip(x, out):
        c = 0.5 * row[row > 0].min()
        logged = np.log(row + c)
        np.testing.assert_allclose(got, logged - logged.mean())
    # a row's transform does not depend on the other rows (no pooled pseudocount)
    np.testing.assert_array_equal(transform_rows(x[:1], "clr"), out[:1])


def test_logit_and_log2_rows():
    p = np.array([[50.0, 0.0, 100.0]])
    out = transform_rows(p, "logit", scale=100.0, epsilon=1e-3)
    np.testing.assert_allclose(out, [[0.0, np.log(1e-3 / (1 - 1e-3)), np.log((1 - 1e-3) / 1e-3)]])
    out = transform_rows(np.array([[4.0, 0.0, 8.0]]), "log2", pseudocount_fraction=0.5)
    np.testing.assert_allclose(out, [[2.0, 1.0, 3.0]])


def test_block_transformer_learns_filters_from_training_rows_only():
    train = np.array([[0.5, 0.5, 0.0, 0.0], [0.4, 0.6, 0.0, 0.0], [0.3, 0.6, 0.1, 0.0]])
    test = np.array([[0.1, 0.1, 0.4, 0.4]])
    bt = BlockTransformer("clr", "level", min_prevalence=0.5).fit(train)
    # feature 2 is present in 1/3 training rows, feature 3 never: both dropped
    np.testing.assert_array_equal(bt.support_, [True, True, False, False])
    got = bt.transform(test)
    sub = test[:, :2]
    np.testing.assert_allclose(got, np.log(sub) - np.log(sub).mean(axis=1, keepdims=True))
    np.testing.assert_array_equal(bt.get_feature_names_out(["a", "b", "c", "d"]), ["a", "b"])


def test_change_block_is_post_minus_pre_and_imputes_training_median():
    pre = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, np.nan]])
    post = np.array([[2.0, 2.0], [2.0, 8.0], [6.0, 1.0]])
    bt = BlockTransformer("log2", "change").fit(np.hstack([pre, post]))
    out = bt.transform(np.hstack([pre, post]))
    expected = np.log2(post) - np.log2(pre)
    np.testing.assert_allclose(out[:2], expected[:2])
    assert out[2, 0] == pytest.approx(1.0)
    # missing change imputed by the training median of that feature's changes (0 and 1)
    assert out[2, 1] == pytest.approx(np.median([0.0, 1.0]))


def test_univariate_selector_matches_anova_ranking():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 12))
    y = np.repeat([0, 1], 15)
    X[:, 4] += 2 * y
    X[:, 9] -= 1.5 * y
    sel = UnivariateSelector(k=3).fit(X, y)
    f = np.array([stats.f_oneway(X[y == 0, j], X[y == 1, j]).statistic for j in range(12)])
    np.testing.assert_array_equal(np.flatnonzero(sel.get_support()), np.sort(np.argsort(-f)[:3]))
    assert UnivariateSelector(k=0).fit(X, y).get_support().all()


def test_anova_f_and_block_preprocessor_match_sklearn_steps():
    from sklearn.feature_selection import SelectKBest, f_classif
    rng = np.random.default_rng(8)
    X = rng.lognormal(size=(30, 40))
    X[rng.random(X.shape) < 0.3] = 0.0
    y = np.repeat([0, 1], 15)
    X[:, 3] *= np.exp(1.5 * y)
    np.testing.assert_allclose(anova_f(X, y), f_classif(X, y)[0])
    prep = BlockPreprocessor("clr", "level", min_prevalence=0.5, k=8).fit(X[:24], y[:24])
    # the same steps as separate scikit-learn estimators, fitted on the same rows
    bt = BlockTransformer("clr", "level", min_prevalence=0.5).fit(X[:24])
    reference = Pipeline([("select", SelectKBest(f_classif, k=8)), ("scale", StandardScaler())])
    reference.fit(bt.transform(X[:24]), y[:24])
    np.testing.assert_allclose(prep.transform(X[24:]), reference.transform(bt.transform(X[24:])))
    names = np.asarray([f"x{i}" for i in range(40)], dtype=object)
    expected = bt.get_feature_names_out(names)[reference.named_steps["select"].get_support()]
    np.testing.assert_array_equal(prep.get_feature_names_out(names), expected)
    clinical = np.array([[1.0, np.nan], [3.0, 0.0], [5.0, 1.0], [np.nan, 1.0]])
    out = BlockPreprocessor(clinical=True).fit_transform(clinical)
    filled = np.array([[1.0, 1.0], [3.0, 0.0], [5.0, 1.0], [3.0, 1.0]])
    np.testing.assert_allclose(out, StandardScaler().fit_transform(filled))


def test_balanced_weights_equal_sklearn_balanced():
    from sklearn.utils.class_weight import compute_class_weight
    y = np.array([0, 0, 0, 1, 1, 0, 1])
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    assert balanced_weights(y) == {0: expected[0], 1: expected[1]}


def test_inner_search_equals_grid_search_cv():
    data = simulated(n=36, p=60, informative=3, seed=5)
    options = PipelineOptions(max_features_per_block=10, grids=GRIDS)
    pipe = Pipeline([("prep", preprocessor(data.blocks, options)),
                     ("model", LogisticRegression(penalty="l1", solver="liblinear",
                                                  class_weight="balanced", random_state=0))])
    grid = {"model__C": [0.05, 0.2, 0.5, 1.0, 3.0]}
    cv = StratifiedKFold(3, shuffle=True, random_state=11)
    ours = InnerSearchCV(pipe, grid, cv).fit(data.X, data.y)
    ref = GridSearchCV(pipe, grid, cv=cv, scoring="roc_auc").fit(data.X, data.y)
    means = ref.cv_results_["mean_test_score"]
    np.testing.assert_allclose(ours.cv_scores_.mean(axis=0), means)
    # the first of the candidates tied (to rounding) with GridSearchCV's best
    first_best = int(np.flatnonzero(np.isclose(means, means.max(), rtol=0, atol=1e-12))[0])
    assert ours.best_params_ == ref.cv_results_["params"][first_best]
    refit = GridSearchCV(pipe, {k: [v] for k, v in ours.best_params_.items()}, cv=cv,
                         scoring="roc_auc").fit(data.X, data.y)
    np.testing.assert_allclose(ours.predict_proba(data.X), refit.predict_proba(data.X))


# --------------------------------------------------------------------------- metrics


def test_auroc_matches_sklearn_with_ties_and_columns():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    scores = np.round(rng.normal(size=(50, 4)) + y[:, None], 1)  # rounding makes ties
    got = auroc(y, scores)
    np.testing.assert_allclose(got, [roc_auc_score(y, scores[:, j]) for j in range(4)])
    for j in range(4):  # the 1-D path ranks on its own
        assert auroc(y, scores[:, j]) == pytest.approx(roc_auc_score(y, scores[:, j]), abs=1e-12)
    assert np.isnan(auroc(np.ones(5, int), np.arange(5.0)))


def test_delong_against_placement_values_by_brute_force():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(12, int), np.zeros(15, int)]
    s = np.round(rng.normal(size=27) + 0.8 * y, 1)
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    se = np.sqrt(v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size)
    area, got_se, low, high = delong_interval(y, s)
    assert area == pytest.approx(psi.mean())
    assert got_se == pytest.approx(se)
    assert low == pytest.approx(psi.mean() - stats.norm.ppf(0.975) * se)


def test_repeat_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 40)
    p = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, 40), 0, 1)
    m = repeat_metrics(y, p)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p))
    assert m["auprc"] == pytest.approx(average_precision_score(y, p))
    assert balanced_accuracy(y, p) == pytest.approx(balanced_accuracy_score(y, p >= 0.5))
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p))


def test_calibration_bins_and_wilson():
    y = np.array([0, 0, 1, 0, 1, 1, 1, 0, 1, 1])
    p = np.linspace(0.05, 0.95, 10)
    bins = calibration_bins(y, p, n_bins=2)
    assert bins["n"].tolist() == [5, 5]
    assert bins["observed"].tolist() == [0.4, 0.8]
    assert bins["mean_predicted"].iloc[0] == pytest.approx(p[:5].mean())
    low, high = wilson_interval(np.array([2]), np.array([5]))
    ref = proportion_confint(2, 5, method="wilson")
    assert (low[0], high[0]) == pytest.approx(ref)


# --------------------------------------------------------------------------- nested CV


def test_grouped_outer_folds_keep_subjects_together_and_labels_permute_by_subject():
    y = np.repeat([1, 0, 1, 0, 1, 0, 1, 0, 1, 0], 2)
    groups = np.repeat([f"S{i}" for i in range(10)], 2)
    settings = CVSettings(outer_folds=5, seed=4)
    for train, test in outer_splits(y, groups, settings, repeat=0, grouped=True):
        assert not set(groups[train]) & set(groups[test])
    permuted = permuted_labels(y, groups, seed=4, index=3)
    assert permuted.sum() == y.sum()
    assert all(len(set(permuted[groups == g])) == 1 for g in set(groups))
    np.testing.assert_array_equal(permuted, permuted_labels(y, groups, seed=4, index=3))


def _nested_auroc(data, seed, options):
    settings = CVSettings(outer_folds=5, outer_repeats=1, inner_folds=3, seed=seed)
    return nested_cv(data, "l1_logistic", options, settings).repeats["auroc"].iloc[0]


def _outside_selection_auroc(data, seed, k):
    """The leaky contrast: choose the k best features on ALL rows, then cross-validate."""
    keep = UnivariateSelector(k).fit(data.X, data.y).get_support()
    pipe = Pipeline([("scale", StandardScaler()),
                     ("model", LogisticRegression(penalty="l1", solver="liblinear", C=1.0,
                                                  class_weight="balanced"))])
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    proba = cross_val_predict(pipe, data.X[:, keep], data.y, cv=cv, method="predict_proba")[:, 1]
    return roc_auc_score(data.y, proba)


def test_random_labels_give_auroc_near_half_while_outside_selection_is_optimistic():
    options = PipelineOptions(max_features_per_block=20, grids=GRIDS)
    nested, leaky = [], []
    for seed in range(30):
        data = simulated(n=40, p=300, seed=seed)
        nested.append(_nested_auroc(data, seed, options))
        leaky.append(_outside_selection_auroc(data, seed, 20))
    assert 0.45 <= np.mean(nested) <= 0.55
    # selecting features before splitting leaks the labels into every test fold
    assert np.mean(leaky) > 0.75
    assert np.mean(leaky) - np.mean(nested) > 0.2


def test_planted_signal_is_found_and_significant():
    data = simulated(n=40, p=200, informative=5, effect=1.2, seed=7)
    options = PipelineOptions(max_features_per_block=20, grids=GRIDS)
    settings = CVSettings(outer_folds=5, outer_repeats=2, inner_folds=3, seed=7)
    result = nested_cv(data, "l1_logistic", options, settings)
    perm = permutation_test(result, options, n_permutations=19, repeats=1)
    row = performance_row(result, perm)
    assert row["auroc_mean"] >= 0.8
    assert perm["perm_p_value"] == pytest.approx(0.05)  # the smallest p with 19 permutations
    assert perm["perm_null_mean"] < 0.65
    stability = feature_stability(result)
    top = stability.head(5)
    assert set(top["feature"]) <= {f"f{j:03d}" for j in range(5)} | set(stability["feature"].iloc[:8])
    assert len(set(top["feature"]) & {f"f{j:03d}" for j in range(5)}) >= 4
    planted = stability[stability["feature"].isin([f"f{j:03d}" for j in range(5)])]
    assert (planted["direction"] == "higher_in_responders").all()
    assert (stability["selection_frequency"] <= 1).all() and (stability["sign_stability"].dropna() >= 0.5).all()


def test_results_identical_for_any_number_of_jobs():
    data = simulated(n=30, p=40, informative=3, seed=9)
    options = PipelineOptions(max_features_per_block=10, grids=GRIDS)
    frames = []
    for n_jobs in (1, 2):
        settings = CVSettings(outer_folds=3, outer_repeats=2, inner_folds=3, seed=2, n_jobs=n_jobs)
        result = nested_cv(data, "random_forest", options, settings)
        frames.append((result.predictions, feature_stability(result)))
    pd.testing.assert_frame_equal(frames[0][0], frames[1][0], check_exact=True)
    pd.testing.assert_frame_equal(frames[0][1], frames[1][1], check_exact=True)


def test_block_wise_stacking_weights_the_informative_block():
    data = simulated(n=40, p=30, informative=4, effect=1.5, seed=4)
    half = Block("a", "a", "omics", tuple(range(15)), tuple(f"f{j:03d}" for j in range(15)))
    other = Block("b", "b", "omics", tuple(range(15, 30)), tuple(f"f{j:03d}" for j in range(15, 30)))
    data.blocks, data.combine = [half, other], "stack"
    options = PipelineOptions(max_features_per_block=10, grids=GRIDS)
    result = nested_cv(data, "l1_logistic", options, CVSettings(outer_folds=4, outer_repeats=1, seed=1))
    assert result.repeats["auroc"].iloc[0] > 0.7
    weights = result.fold_features[result.fold_features["block"] == "stack"]
    assert set(weights["feature"]) == {"a", "b"} and len(weights) == 8
    # block a holds the planted features: its meta-weight dominates
    assert weights.groupby("feature")["coef"].mean()["a"] > weights.groupby("feature")["coef"].mean()["b"]
    estimator = build_estimator(data.blocks, "l1_logistic", options, 0, 3, combine="stack")
    assert [name for name, _ in estimator.searches] == ["a", "b"]


def test_permutation_importance_matches_a_direct_loop():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4))
    y = (X[:, 0] + 0.3 * rng.normal(size=20) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    mean, sd = permutation_importance_auroc(model, X, y, repeats=3, rng=np.random.default_rng(5))
    orders = np.vstack([np.random.default_rng(5).permutation(20) for _ in range(1)])
    rng2 = np.random.default_rng(5)
    orders = np.vstack([rng2.permutation(20) for _ in range(3)])
    base = roc_auc_score(y, model.predict_proba(X)[:, 1])
    for j in range(4):
        drops = []
        for order in orders:
            Xp = X.copy()
            Xp[:, j] = X[order, j]
            drops.append(base - roc_auc_score(y, model.predict_proba(Xp)[:, 1]))
        assert mean[j] == pytest.approx(np.mean(drops))
        assert sd[j] == pytest.approx(np.std(drops, ddof=1))
    assert mean[0] == mean.max() and mean[0] > 0.2


# --------------------------------------------------------------------------- feature sets


@pytest.fixture
def study():
    subjects = pd.DataFrame({"subject_id": [f"P{i:02d}" for i in range(12)],
                             "cohort": ["lung", "other"] * 6,
                             "ecog": ["0", "1", "", "2"] * 3})
    samples = pd.DataFrame({
        "sample_id": [f"P{i:02d}_{t}" for i in range(12) for t in ("b", "p")],
        "subject_id": [f"P{i:02d}" for i in range(12) for _ in (0, 1)],
        "timepoint": ["baseline", "post"] * 12, "sample_type": "stool"})
    samples = samples[samples["sample_id"] != "P03_p"]  # one subject lacks its post sample
    rng = np.random.default_rng(0)
    taxa = pd.DataFrame(rng.dirichlet(np.ones(5), size=len(samples)), index=samples["sample_id"],
                        columns=[f"t{j}" for j in range(5)])
    labels = ["responder", "non_responder"] * 6
    labels[0] = ""  # not evaluable
    responders = pd.DataFrame({"subject_id": subjects["subject_id"], "cohort": subjects["cohort"],
                               "dcr": labels})
    modalities = {"taxa": {"kind": "taxonomy", "transform": "clr"}}
    return subjects, samples, taxa, responders, modalities


def test_feature_set_rows_exclusions_and_layouts(study):
    subjects, samples, taxa, responders, modalities = study
    contrasts = [{"name": "pv", "pre": "baseline", "post": "post"}]
    common = dict(baseline="baseline", contrasts=contrasts, cohorts=["lung", "other"], min_per_class=3,
                  min_folds=3)
    data = build_model_data("b", {"blocks": ["taxa"], "view": "baseline", "clinical": ["cohort", "ecog"]},
                            {"taxa": taxa}, samples, subjects, responders, "dcr", modalities, **common)
    assert len(data.rows) == 11 and "P00" not in set(data.rows["subject_id"])
    assert data.excluded.set_index("subject_id").loc["P00", "reason"].startswith("response not evaluable")
    clinical = data.blocks[-1]
    assert clinical.features == ("cohort=lung", "cohort=other", "ecog")
    ecog = data.X[:, clinical.columns[-1]]
    assert np.isnan(ecog).sum() == (data.rows["subject_id"].isin(["P02", "P06", "P10"])).sum()
    change = build_model_data("c", {"blocks": ["taxa"], "view": "change"}, {"taxa": taxa}, samples,
                              subjects, responders, "dcr", modalities, **common)
    assert "P03" not in set(change.rows["subject_id"])
    assert "no taxa sample at post" in change.excluded.set_index("subject_id").loc["P03", "reason"]
    row = change.rows.index[change.rows["subject_id"] == "P01"][0]
    np.testing.assert_allclose(change.X[row], np.r_[taxa.loc["P01_b"], taxa.loc["P01_p"]])
    grouped = build_model_data("s", {"blocks": ["taxa"], "view": "samples", "timepoints": ["baseline", "post"]},
                               {"taxa": taxa}, samples, subjects, responders, "dcr", modalities, **common)
    assert grouped.grouped and len(grouped.rows) == 21


def test_too_few_per_class_or_no_subject_fails_clearly(study):
    subjects, samples, taxa, responders, modalities = study
    common = dict(baseline="baseline", contrasts=[], cohorts=[])
    with pytest.raises(InputError, match=r"only 5 responder subject\(s\).*min_per_class"):
        build_model_data("b", {"blocks": ["taxa"]}, {"taxa": taxa}, samples, subjects, responders, "dcr",
                         modalities, min_per_class=8, **common)
    empty = taxa.iloc[0:0]
    with pytest.raises(InputError, match="no subject has a responder label and samples"):
        build_model_data("b", {"blocks": ["taxa"]}, {"taxa": empty}, samples, subjects, responders, "dcr",
                         modalities, min_per_class=2, **common)
    with pytest.raises(InputError, match="models.label"):
        build_model_data("b", {"blocks": ["taxa"]}, {"taxa": taxa}, samples, subjects, responders, "orr",
                         modalities, min_per_class=2, **common)


def test_config_problems_name_the_key():
    config = {"models": {"label": "", "feature_sets": {"x": {"blocks": ["nope"], "view": "later"}},
                         "outer_folds": 10, "min_per_class": 8, "estimators": ["l1_logistic"]},
              "response": {"primary": "dcr", "definitions": {"dcr": {}}},
              "design": {"timepoints": ["baseline", "post"], "contrasts": []},
              "modalities": {"taxa": {"kind": "taxonomy"}}}
    text = "\n".join(str(p) for p in config_problems(config))
    assert "'nope' is not a modality" in text
    assert "unknown view 'later'" in text
    assert "models.outer_folds" in text


# --------------------------------------------------------------------------- links and survival


def test_links_to_differential_and_integration():
    features = pd.DataFrame({"block": ["taxa", "taxa", "immune"], "feature": ["a", "b", "CD8"],
                             "integration_view": ["baseline"] * 3})
    diff = pd.DataFrame({"feature": ["a", "a", "b", "a"],
                         "term": ["response[responder]", "response[responder]", "response[responder]",
                                  "timepoint[post]"],
                         "method": ["mann_whitney", "ols", "ols", "paired_t"],
                         "effect": [9.0, 1.5, -0.5, 0.2], "q": [0.9, 0.01, 0.2, 0.04]})
    links = differential_links(features, {"taxa": diff}, post="post")
    assert links.loc[0, "diff_baseline_q"] == 0.01 and links.loc[0, "diff_baseline_effect"] == 1.5
    assert links.loc[1, "diff_baseline_q"] == 0.2 and links.loc[0, "diff_change_q"] == 0.04
    assert np.isnan(links.loc[2, "diff_baseline_q"])
    assoc = pd.DataFrame({"feature_a": ["a", "a", "b"], "feature_b": ["CD8", "Th17", "CD8"],
                          "rho": [0.6, -0.3, 0.1], "q": [0.01, 0.03, 0.5]})
    integ = integration_links(features, [("taxa", "immune", "baseline", assoc)], max_q=0.05)
    assert integ.loc[0, "integration_links"] == 2 and integ.loc[0, "integration_top_partner"] == "immune:CD8"
    assert integ.loc[1, "integration_links"] == 0
    assert integ.loc[2, "integration_links"] == 1 and integ.loc[2, "integration_top_partner"] == "taxa:a"


def test_biomarker_survival_matches_direct_phreg_and_logrank():
    from statsmodels.duration.hazard_regression import PHReg
    rng = np.random.default_rng(3)
    n = 60
    marker = rng.normal(size=n)
    cohort = np.where(np.arange(n) % 2, "lung", "other")
    time = rng.exponential(np.exp(-0.8 * marker))
    event = (rng.random(n) < 0.8).astype(int)
    subjects = pd.DataFrame({"subject_id": [f"S{i}" for i in range(n)], "cohort": cohort,
                             "t": time, "e": event})
    values = pd.DataFrame({"m": marker}, index=subjects["subject_id"])
    table, curves = biomarker_survival(values, subjects, time_column="t", event_column="e")
    z = (marker - marker.mean()) / marker.std(ddof=1)
    exog = np.column_stack([z, (cohort == "other").astype(float)])
    fit = PHReg(time, exog, status=event, ties="efron").fit()
    assert table.loc[0, "hr_per_sd"] == pytest.approx(np.exp(fit.params[0]))
    assert table.loc[0, "hr_per_sd"] > 1.5  # higher marker, shorter time
    high = marker > np.median(marker)
    assert table.loc[0, "logrank_p"] == pytest.approx(logrank_test(time, event, np.where(high, "h", "l")).p_value)
    assert table.loc[0, "n_high"] == high.sum() and set(curves["group"]) == {"low", "high"}


def test_view_timepoints_name_the_groups_a_feature_set_uses():
    """Metabolites not measured at one of these are left out of the set (models_fit)."""
    from gutaxis.models.features import view_timepoints

    contrasts = [{"name": "post_vs_baseline", "pre": "baseline", "post": "post"},
                 {"name": "prog", "pre": "baseline", "post": "progression"}]
    assert view_timepoints({"view": "baseline"}, "baseline", contrasts) == ["baseline"]
    assert view_timepoints({}, "T0", contrasts) == ["T0"]
    assert view_timepoints({"view": "post"}, "baseline", contrasts) == ["post"]
    assert view_timepoints({"view": "change"}, "baseline", contrasts) == ["baseline", "post"]
    assert view_timepoints({"view": "change", "contrast": "prog"}, "baseline", contrasts) == ["baseline",
                                                                                              "progression"]
    assert view_timepoints({"view": "samples", "timepoints": ["a", "b"]}, "a", contrasts) == ["a", "b"]
