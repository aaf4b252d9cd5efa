"""Mixed models per term: a fixed-effect column not estimable on a feature's observed rows
is dropped for that feature only and the other terms are still fitted (issue 16, item 4)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from gutaxis.differential.contrast import run_contrast
from gutaxis.stats.mixed import (RANK_TOL, build_design, estimable_columns, fit_random_intercept,
                           fitted_formula)

RHS = "timepoint * response + cohort"


def _sparse_progression(n_subjects=46, n_progression=6, seed=0):
    """Baseline and post for every subject, a third timepoint for six subjects (one responder)."""
    rng = np.random.default_rng(seed)
    subjects = [f"S{i:02d}" for i in range(n_subjects)]
    response = np.array(["non_responder", "responder"])[np.arange(n_subjects) % 2]
    cohort = rng.permutation(np.array(["lung", "other"])[np.arange(n_subjects) % 2])
    progressed = ([s for s, r in zip(subjects, response) if r == "non_responder"]
                  [:n_progression - 1] + [subjects[1]])
    rows = [(s, t) for s in subjects for t in ("baseline", "post")]
    rows += [(s, "progression") for s in progressed]
    data = pd.DataFrame(rows, columns=["subject_id", "timepoint"])
    data["response"] = pd.Categorical(data["subject_id"].map(dict(zip(subjects, response))),
                                      ["non_responder", "responder"])
    data["cohort"] = pd.Categorical(data["subject_id"].map(dict(zip(subjects, cohort))))
    data["timepoint"] = pd.Categorical(data["timepoint"], ["baseline", "post", "progression"])
    return data


def _values(data, n_features=12, post_effect=1.0, seed=1):
    rng = np.random.default_rng(seed)
    codes = pd.factorize(data["subject_id"])[0]
    post = (data["timepoint"] == "post").to_numpy()[:, None]
    return (rng.normal(0, 1.0, (codes.max() + 1, n_features))[codes] + post * post_effect
            + rng.normal(0, 0.5, (len(data), n_features)))


def _features(data, seed=1):
    """Features whose observed rows make different columns inestimable."""
    Y = _values(data, seed=seed)
    progression = (data["timepoint"] == "progression").to_numpy()
    responder = (data["response"] == "responder").to_numpy()
    Y[progression, 0] = np.nan  # third timepoint missing: two zero columns
    Y[progression & responder, 1] = np.nan  # responder missing there: interaction zero
    Y[progression & ~responder, 2] = np.nan  # only the responder there: interaction = time
    Y[np.random.default_rng(seed).random(len(data)) < 0.2, 3] = np.nan  # random NaN, all kept
    return pd.DataFrame(Y, columns=["no_progression", "no_responder_progression",
                                    "responder_only_progression", "random_nan"]
                        + [f"f{j}" for j in range(4, Y.shape[1])])


def test_planted_time_effect_is_recovered_when_the_third_timepoint_is_missing():
    data = _sparse_progression()
    X = build_design(data, RHS)
    Y = _features(data)
    before = fit_random_intercept(Y, X, data["subject_id"], drop_inestimable=False)
    after = fit_random_intercept(Y, X, data["subject_id"], df_method="between_within")
    fits_before = before.fits.set_index("feature_id")
    fits = after.fits.set_index("feature_id")
    lost = ["no_progression", "no_responder_progression", "responder_only_progression"]
    assert (fits_before.loc[lost, "status"] == "failed").all()  # all-or-nothing used to lose them
    assert fits.loc[lost, "status"].isin(["ok", "boundary"]).all()
    assert fits.loc["no_progression", "dropped_terms"] == (
        "timepoint[progression];timepoint[progression]:response[responder]")
    assert fits.loc["no_progression", "dropped_reasons"] == (
        "zero on every observed row;zero on every observed row")
    assert fits.loc["no_responder_progression", "dropped_terms"] == (
        "timepoint[progression]:response[responder]")
    assert fits.loc["responder_only_progression", "dropped_terms"] == (
        "timepoint[progression]:response[responder]")
    assert fits.loc["responder_only_progression", "dropped_reasons"] == (
        "a linear combination of timepoint[progression] on the observed rows")
    assert fits.loc["random_nan", "dropped_terms"] == ""
    # the planted post effect (1.0; residual sd 0.5, 23 non-responder pairs) is found
    co = after.coefficients.set_index(["feature_id", "term"])
    for name in lost:
        row = co.loc[(name, "timepoint[post]")]
        assert row["ci_low"] < 1.0 < row["ci_high"] and row["p"] < 1e-3
        assert (name, "timepoint[progression]:response[responder]") not in co.index
    # coefficients only for the fitted columns, in design order
    kept = fits.loc["no_progression", "fitted_terms"].split(";")
    assert list(co.loc["no_progression"].index) == kept
    assert kept == [c for c in X.columns if "progression" not in c]


def test_remaining_terms_equal_a_direct_fit_of_the_reduced_design():
    data = _sparse_progression(seed=2)
    X = build_design(data, RHS)
    Y = _features(data, seed=3)
    for df_method in ("z", "between_within"):
        res = fit_random_intercept(Y, X, data["subject_id"], df_method=df_method)
        fits = res.fits.set_index("feature_id")
        for name in ["no_progression", "no_responder_progression", "responder_only_progression"]:
            cols = fits.loc[name, "fitted_terms"].split(";")
            direct = fit_random_intercept(Y[[name]], X[cols], data["subject_id"],
                                          df_method=df_method, drop_inestimable=False)
            ours = res.coefficients[res.coefficients["feature_id"] == name]
            np.testing.assert_allclose(ours.iloc[:, 2:].to_numpy(float),
                                       direct.coefficients.iloc[:, 2:].to_numpy(float),
                                       rtol=1e-9, atol=1e-12)
            assert list(ours["term"]) == cols
            for col in ("gamma", "scale", "llf", "n_obs", "n_groups"):
                assert fits.loc[name, col] == pytest.approx(direct.fits.loc[0, col], rel=1e-9)
    # between-within df on the reduced design: 46 subjects, 2 between columns left
    # (intercept, response, cohort -> 3), 1 within column left (timepoint[post] + interaction -> 2)
    co = res.coefficients.set_index(["feature_id", "term"])
    n_obs = fits.loc["no_progression", "n_obs"]
    assert co.loc[("no_progression", "response[responder]"), "df"] == 46 - 3
    assert co.loc[("no_progression", "timepoint[post]"), "df"] == n_obs - 46 - 2


def test_reduced_fit_matches_statsmodels_mixedlm_on_the_reduced_formula():
    data = _sparse_progression(seed=4)
    X = build_design(data, RHS)
    Y = _features(data, seed=5)
    res = fit_random_intercept(Y, X, data["subject_id"])
    fits = res.fits.set_index("feature_id")
    checked = 0
    for name in ["no_progression", "responder_only_progression"]:
        if fits.loc[name, "status"] != "ok":
            continue
        cols = fits.loc[name, "fitted_terms"].split(";")
        observed = Y[name].notna().to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = sm.MixedLM(Y[name][observed].to_numpy(), X.loc[observed, cols],
                             groups=data["subject_id"][observed].to_numpy()).fit(
                reml=True, method=["bfgs"], gtol=1e-10, maxiter=200)
        ours = res.coefficients[res.coefficients["feature_id"] == name].set_index("term")
        assert list(ref.fe_params.index) == list(ours.index)
        np.testing.assert_allclose(ours["estimate"], ref.fe_params, atol=1e-4)
        np.testing.assert_allclose(ours["se"], ref.bse_fe, atol=1e-4)
        np.testing.assert_allclose(ours["p"], ref.pvalues.iloc[:len(cols)], atol=1e-4)
        assert fits.loc[name, "group_var"] == pytest.approx(ref.cov_re.iloc[0, 0], abs=1e-4)
        assert fits.loc[name, "scale"] == pytest.approx(ref.scale, abs=1e-4)
        assert fits.loc[name, "llf"] == pytest.approx(ref.llf, abs=1e-4)
        checked += 1
    assert checked >= 1


def test_features_without_dropped_terms_are_byte_identical_to_the_full_design_fit():
    """``drop_inestimable=False`` is the all-or-nothing fit of the previous version."""
    data = _sparse_progression(seed=6)
    X = build_design(data, RHS)
    rng = np.random.default_rng(7)
    Y = _values(data, n_features=80, seed=8)
    Y[rng.random(Y.shape) < rng.uniform(0, 0.5, Y.shape[1])] = np.nan  # rCLR-like zeros
    Y = pd.DataFrame(Y, columns=[f"f{j:02d}" for j in range(Y.shape[1])])
    for df_method in ("z", "between_within"):
        for chunk in (1000, 7):
            new = fit_random_intercept(Y, X, data["subject_id"], df_method=df_method,
                                       chunk_size=chunk)
            old = fit_random_intercept(Y, X, data["subject_id"], df_method=df_method,
                                       chunk_size=chunk, drop_inestimable=False)
            same = new.fits["dropped_terms"].eq("").to_numpy()
            assert 0 < same.sum() < len(same)  # both kinds of features present
            ids = set(new.fits.loc[same, "feature_id"])
            a = old.fits[old.fits["feature_id"].isin(ids)].reset_index(drop=True)
            b = new.fits[new.fits["feature_id"].isin(ids)].reset_index(drop=True)
            assert a.to_csv() == b[a.columns].to_csv()
            ca = old.coefficients[old.coefficients["feature_id"].isin(ids)].reset_index(drop=True)
            cb = new.coefficients[new.coefficients["feature_id"].isin(ids)].reset_index(drop=True)
            assert ca.to_csv() == cb.to_csv()
            assert np.array_equal(ca["estimate"].to_numpy(), cb["estimate"].to_numpy())
            # the others failed as a whole before and are fitted now
            assert (old.fits.loc[~same, "status"] == "failed").all()
            assert (new.fits.loc[~same, "status"] != "failed").any()


def _greedy_rank(X_obs: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Brute force: visit columns (intercept first) and keep one that raises the rank."""
    order = list(np.flatnonzero(intercept)) + list(np.flatnonzero(~intercept))
    kept = []
    for j in order:
        if intercept[j] or np.linalg.matrix_rank(X_obs[:, kept + [j]]) > len(kept):
            kept.append(j)
    keep = np.zeros(X_obs.shape[1], dtype=bool)
    keep[kept] = True
    return keep


def test_estimable_columns_equal_a_brute_force_rank_search():
    rng = np.random.default_rng(11)
    n, F = 40, 60
    a, b = rng.normal(size=n), (rng.random(n) < 0.3).astype(float)
    # intercept in the middle; a sum of two columns; a rare indicator; a rescaled copy
    X = np.column_stack([a, b, np.ones(n), a + 3 * b, (np.arange(n) < 3).astype(float),
                         1e4 * a, rng.normal(size=n)])
    intercept = np.array([False, False, True, False, False, False, False])
    masks = rng.random((F, n)) < rng.uniform(0.3, 0.95, (F, 1))
    XtX = np.einsum("fs,sp,sq->fpq", masks.astype(float), X, X)
    keep, why = estimable_columns(XtX, intercept)
    expected = np.array([_greedy_rank(X[m], intercept) for m in masks])
    np.testing.assert_array_equal(keep, expected)
    assert keep[:, 2].all() and not keep[:, 3].any() and not keep[:, 5].any()
    assert ((why == 1) == (~keep & (XtX.diagonal(axis1=1, axis2=2) == 0))).all()
    assert ((why == 2) == (~keep & (XtX.diagonal(axis1=1, axis2=2) > 0))).all()
    # a design passing the smallest-eigenvalue test keeps every column
    full = np.einsum("sp,sq->pq", X[:, [0, 1, 2, 4, 6]], X[:, [0, 1, 2, 4, 6]])[None]
    d = np.sqrt(np.diagonal(full, axis1=1, axis2=2))
    assert np.linalg.eigvalsh(full / d[:, :, None] / d[:, None, :])[0, 0] >= RANK_TOL
    assert estimable_columns(full)[0].all()


def test_fitted_formula_writes_partly_dropped_terms_by_their_columns():
    terms = {"Intercept": ["Intercept"], "timepoint": ["timepoint[post]", "timepoint[prog]"],
             "response": ["response[r]"],
             "timepoint:response": ["timepoint[post]:response[r]", "timepoint[prog]:response[r]"],
             "cohort": ["cohort[lung]"]}
    requested = "feature ~ timepoint * response + cohort + (1 | subject_id)"
    full = "Intercept;timepoint[post];timepoint[prog];response[r];timepoint[post]:response[r];" \
           "timepoint[prog]:response[r];cohort[lung]"
    out = fitted_formula(requested, terms, [
        full,
        "Intercept;timepoint[post];timepoint[prog];response[r];timepoint[post]:response[r];"
        "cohort[lung]",
        "Intercept;timepoint[post];response[r];timepoint[post]:response[r]"])
    assert list(out) == [
        requested,
        "feature ~ timepoint + response + timepoint[post]:response[r] + cohort"
        " + (1 | subject_id)",
        "feature ~ timepoint[post] + response + timepoint[post]:response[r] + (1 | subject_id)"]


def test_run_contrast_lists_the_dropped_term_and_tests_the_rest():
    data = _sparse_progression(seed=12)
    rng = np.random.default_rng(13)
    n_features = 40
    Y = _values(data, n_features=n_features, post_effect=0.0, seed=14)
    Y[:, 0] += 2.0 * (data["timepoint"] == "post").to_numpy()  # planted time effect
    values = np.exp(Y + 4)
    values[(data["timepoint"] == "progression").to_numpy(), 0] = 0.0  # rCLR: NaN there
    sample_ids = data["subject_id"] + "_" + data["timepoint"].astype(str)
    features = [f"F{j:02d}" for j in range(n_features)]
    table = pd.DataFrame(values, index=pd.Index(sample_ids, name="sample_id"),
                         columns=pd.Index(features, name="feature_id"))
    samples = pd.DataFrame({"sample_id": sample_ids, "subject_id": data["subject_id"],
                            "timepoint": data["timepoint"].astype(str), "sample_type": "stool"})
    subjects = data.drop_duplicates("subject_id")
    responders = pd.DataFrame({"subject_id": subjects["subject_id"],
                               "cohort": subjects["cohort"].astype(str),
                               "dcr_recist": subjects["response"].astype(str)})
    contrast = {"name": "post_vs_baseline", "pre": "baseline", "post": "post",
                "timepoints": ["baseline", "post", "progression"]}
    res = run_contrast(table, samples, contrast, transform="rclr", responders=responders,
                       methods=("mixed",), modality="x")
    r = res.results[res.results["feature"] == "F00"]
    time_row = r[r["term"] == "timepoint[post]"]
    assert len(time_row) == 1 and time_row["q"].iloc[0] < 0.01
    assert time_row["effect"].iloc[0] == pytest.approx(2.0, abs=0.5)
    reduced = "feature ~ timepoint[post] + cohort + (1 | subject_id)"
    assert time_row["model"].iloc[0] == reduced
    assert not (r["term"].str.contains("progression")).any()
    u = res.untested[res.untested["feature"] == "F00"]
    reasons = set(u["reason"])
    why = "not estimable on the rows observed for this feature (zero on every observed row); " \
          "the other terms were fitted"
    assert f"mixed model: term timepoint[progression] {why}" in reasons
    assert f"mixed model: term timepoint[progression]:response[responder] {why}" in reasons
    assert (u["method"] == "lmm").all() and len(u) == 2
    fits = res.model_fits.set_index(["model", "feature"])
    assert fits.loc[("lmm_time", "F00"), "formula"] == reduced
    assert fits.loc[("lmm_response", "F00"), "formula"] == (
        "feature ~ timepoint[post] + response + cohort + timepoint[post]:response[responder]"
        " + (1 | subject_id)")  # patsy's term order: main effects, then interactions
    # features that kept every column carry the requested formula, unchanged
    others = res.model_fits[res.model_fits["dropped_terms"] == ""]
    assert set(others["formula"]) == set(res.formulas.values())
