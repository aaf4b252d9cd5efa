"""The responder-models module on the demo study: the planted baseline signature is found
(cross-validated AUROC >= 0.75, permutation p < 0.05), the clinical-only control is not,
and the tables, README and figures are complete and consistent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def models(demo_run, repo):
    out = demo_run / "results" / "models"
    if not (out / "performance.tsv").exists() and \
            "workflow/rules/models.smk" not in (repo / "Snakefile").read_text():
        pytest.skip("the Snakefile does not include workflow/rules/models.smk yet")
    text = {"feature_set": str, "model": str, "subject_id": str, "feature": str, "block": str,
            "label": str, "direction": str}
    return {name: pd.read_csv(out / f"{name}.tsv", sep="\t", dtype=text)
            for name in ("performance", "predictions", "features", "survival", "km_curves",
                         "roc_curves", "calibration", "excluded")} | {"dir": out}


@pytest.fixture(scope="module")
def config(repo):
    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def truth(repo):
    return pd.read_csv(repo / "resources" / "demo" / "truth.tsv", sep="\t")


def test_every_feature_set_and_estimator_is_reported(models, config):
    cfg = config["models"]
    expected = {(name, model) for name, spec in cfg["feature_sets"].items()
                for model in (spec.get("estimators") or cfg["estimators"])}
    perf = models["performance"]
    assert set(zip(perf["feature_set"], perf["model"])) == expected
    assert perf["best"].astype(str).str.lower().eq("true").sum() == 1
    # 48 patients, one not evaluable: 24 responders and 23 non-responders at most
    assert (perf["n_responders"] <= 24).all() and (perf["n_non_responders"] <= 23).all()
    assert (perf["n_subjects"] >= 40).all()
    assert ((perf["auroc_low"] <= perf["auroc_mean"]) & (perf["auroc_mean"] <= perf["auroc_high"])).all()


def test_planted_baseline_signature_is_predictive_and_significant(models):
    """TRUTH.md: baseline taxa, metabolites and immune subsets separate DCR responders."""
    perf = models["performance"].set_index(["feature_set", "model"])
    row = perf.loc[("baseline_multiomics", "l1_logistic")]
    assert row["auroc_mean"] >= 0.75
    assert row["perm_p_value"] < 0.05
    assert row["n_permutations"] == 99 and row["perm_min_p"] == pytest.approx(0.01)
    # each single-omics baseline block carries part of the signature
    for name in ("baseline_taxa", "baseline_metabolites", "baseline_immune"):
        assert perf.loc[(name, "l1_logistic"), "auroc_mean"] >= 0.7
        assert perf.loc[(name, "l1_logistic"), "perm_p_value"] < 0.05


def test_clinical_covariates_alone_do_not_predict(models):
    """No clinical effect was planted: the negative control stays near chance."""
    perf = models["performance"]
    clinical = perf[perf["feature_set"] == "clinical"]
    assert (clinical["auroc_mean"] < 0.7).all()
    assert (clinical["perm_p_value"].dropna() > 0.05).all()


def test_top_features_are_the_planted_ones_with_the_planted_sign(models, truth):
    planted = truth[truth["effect"] == "baseline_response"]
    direction = dict(zip(planted["feature"], planted["direction"]))
    feats = models["features"]
    top = feats[(feats["feature_set"] == "baseline_multiomics") & (feats["model"] == "l1_logistic")]
    top = top.sort_values("rank").head(10)
    hits = top[top["feature"].isin(direction)]
    assert len(hits) >= 5, top[["block", "feature", "selection_frequency"]]
    for _, row in hits.iterrows():
        expected = "higher_in_responders" if direction[row["feature"]] == "up" else "lower_in_responders"
        assert row["direction"] == expected
        assert row["sign_stability"] >= 0.9


def test_predictions_are_out_of_fold_per_subject_and_repeat(models, config):
    preds = models["predictions"]
    repeats = config["models"]["outer_repeats"]
    counts = preds.groupby(["feature_set", "model", "repeat"])["subject_id"].agg(["size", "nunique"])
    assert (counts["size"] == counts["nunique"]).all()  # each subject predicted once per repeat
    assert preds.groupby(["feature_set", "model"])["repeat"].nunique().eq(repeats).all()
    assert preds["probability"].between(0, 1).all()
    assert "OTH-01" not in set(preds["subject_id"])  # the not-evaluable patient
    excluded = models["excluded"]
    # every feature set lists OTH-01 as not evaluable (the change set also as before its landmark)
    reasons = excluded[excluded["subject_id"] == "OTH-01"].groupby("feature_set")["reason"]
    assert reasons.apply(lambda r: r.str.contains("not evaluable").any()).all()
    assert set(reasons.groups) == set(preds["feature_set"])


def test_readme_states_sizes_and_exploratory(models):
    text = (models["dir"] / "README.txt").read_text()
    assert "EXPLORATORY" in text
    assert "not evaluable" in text and "baseline_multiomics: n = " in text
    assert "1/100" in text


def test_survival_of_top_biomarkers(models, config):
    surv = models["survival"]
    best = models["performance"][models["performance"]["best"].astype(str).str.lower() == "true"].iloc[0]
    assert len(surv) == config["models"]["survival"]["top_k"]
    assert (surv["feature_set"] == best["feature_set"]).all()
    ok = surv["hr_per_sd"].notna()
    assert ok.all()
    assert ((surv["hr_ci_low"] <= surv["hr_per_sd"]) & (surv["hr_per_sd"] <= surv["hr_ci_high"])).all()
    assert surv["ph_p_value"].between(0, 1).all() and surv["logrank_p"].between(0, 1).all()
    assert (surv["n_low"] + surv["n_high"] == surv["n"]).all()
    curves = models["km_curves"]
    assert set(curves["group"]) == {"low", "high"}
    assert set(curves["feature"]) == set(surv["feature"])


def test_roc_and_calibration_tables_and_figures(models, demo_run, config):
    roc = models["roc_curves"]
    assert roc.groupby(["feature_set", "model"])["fpr"].size().eq(config["models"]["roc_grid_points"]).all()
    assert (np.diff(roc.groupby(["feature_set", "model"])["tpr_mean"].apply(np.asarray).iloc[0]) >= -1e-12).all()
    cal = models["calibration"]
    assert cal.groupby(["feature_set", "model"])["n"].sum().ge(40).all()
    figures = demo_run / "results" / "figures" / "models"
    for stem in ("roc", "stability", "calibration", "km"):
        for fmt in config["style"]["formats"]:
            assert (figures / f"{stem}.{fmt}").stat().st_size > 0
        assert (figures / f"{stem}.source.tsv").exists()


def test_change_set_predicts_from_its_landmark(models, demo_run, repo):
    """Issue 19: the on-treatment (change) set is a landmark model. Its landmark is the latest
    post sample (days since treatment start from collection_date - treatment_start), and the
    subjects whose PFS2 ended before it are left out, counted and named with the reason."""
    perf = models["performance"].set_index(["feature_set", "model"])
    change = perf.loc[("change_multiomics", "l1_logistic")]
    baseline = perf.loc[("baseline_multiomics", "l1_logistic")]
    assert str(change["on_treatment"]).lower() == "true" and str(baseline["on_treatment"]).lower() == "false"
    assert "on-treatment" in change["view"] and "landmark" in change["view"]
    samples = pd.read_csv(repo / "resources/demo/samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    subjects = pd.read_csv(repo / "resources/demo/subjects.tsv", sep="\t", dtype=str, keep_default_na=False)
    start = subjects.set_index("subject_id")["treatment_start"]
    post = samples[samples["timepoint"] == "post"]
    days = (pd.to_datetime(post["collection_date"]) - pd.to_datetime(post["subject_id"].map(start))).dt.days
    assert change["landmark_months"] == pytest.approx(days.max() / 30.4375, abs=1e-6)
    ended = subjects[pd.to_numeric(subjects["pfs2_months"]) <= change["landmark_months"]]["subject_id"]
    assert change["n_before_landmark"] == len(ended) > 0
    excluded = models["excluded"]
    mine = excluded[(excluded["feature_set"] == "change_multiomics")
                    & excluded["reason"].str.contains("before the landmark")]
    assert set(mine["subject_id"]) == set(ended)
    assert not set(ended) & set(models["predictions"].query("feature_set == 'change_multiomics'")["subject_id"])
    readme = (models["dir"] / "README.txt").read_text()
    assert "ON-TREATMENT features" in readme
