"""Tests for gutaxis.stats.mixed: vectorised random-intercept REML vs statsmodels MixedLM."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from scipy import stats

from gutaxis.stats.mixed import between_within_df, build_design, fit_random_intercept

RHS = "timepoint * response + cohort + age"


def _design(seed, n_subjects=30, p_missing=0.2):
    """Three timepoints, each sample missing with probability p_missing (unbalanced)."""
    rng = np.random.default_rng(seed)
    rows = [(f"S{s:02d}", t) for s in range(n_subjects)
            for t in ("baseline", "post", "progression") if rng.random() >= p_missing]
    data = pd.DataFrame(rows, columns=["subject", "timepoint"])
    subjects = sorted(data["subject"].unique())
    response = dict(zip(subjects, rng.choice(["non_responder", "responder"], len(subjects))))
    cohort = dict(zip(subjects, rng.choice(["esophageal", "lung", "other"], len(subjects))))
    age = dict(zip(subjects, rng.normal(60, 8, len(subjects))))
    data["response"] = pd.Categorical(data["subject"].map(response),
                                      ["non_responder", "responder"])
    data["cohort"] = pd.Categorical(data["subject"].map(cohort))
    data["age"] = data["subject"].map(age)
    data["timepoint"] = pd.Categorical(data["timepoint"], ["baseline", "post", "progression"])
    return data


def _responses(data, seed, n_features=24, nan_fraction=0.05):
    rng = np.random.default_rng(seed + 100)
    codes = pd.factorize(data["subject"])[0]
    # mostly clear subject effects; every 6th feature has none (boundary fits)
    subject_sd = np.tile([0.0, 0.6, 1.5, 0.8, 1.0, 2.0], n_features // 6 + 1)[:n_features]
    Y = (rng.normal(size=(codes.max() + 1, n_features))[codes] * subject_sd
         + (data["timepoint"] == "post").to_numpy()[:, None] * 0.5
         + rng.normal(size=(len(data), n_features)))
    Y[rng.random(Y.shape) < nan_fraction] = np.nan
    return pd.DataFrame(Y, columns=[f"f{j}" for j in range(n_features)])


def _statsmodels(data, y, **fit_kwargs):
    frame = data.assign(y=y).dropna(subset=["y"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smf.mixedlm("y ~ " + RHS, frame, groups=frame["subject"])
        return model, model.fit(reml=True, **fit_kwargs)


def _statsmodels_at(model, gamma):
    """statsmodels' own GLS estimates, scale and Hessian SEs at a given variance ratio."""
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    model.reml = True
    cov_re = np.array([[gamma]])
    fe, _ = model.get_fe_params(cov_re, np.zeros(0))
    scale = model.get_scale(fe, cov_re, np.zeros(0))
    params = MixedLMParams.from_components(fe_params=fe, cov_re=cov_re)
    hess, _ = model.hessian(params)
    se = np.sqrt(np.diag(np.linalg.inv(-hess))[:fe.size])
    return fe, se, scale


def test_build_design_names_terms_without_treatment_prefix():
    X = build_design(_design(0), RHS)
    assert list(X.columns) == [
        "Intercept", "timepoint[post]", "timepoint[progression]", "response[responder]",
        "cohort[lung]", "cohort[other]", "timepoint[post]:response[responder]",
        "timepoint[progression]:response[responder]", "age"]


def test_matches_statsmodels_mixedlm_per_feature():
    """Fixed effects, SEs, variance components, scale and REML llf to 1e-4.

    statsmodels' default BFGS tolerance stops early on flat likelihoods, so the
    reference is fitted with a tight ``gtol``. Where statsmodels still stops
    inside the parameter space while our estimate is on the boundary
    (variance 0), ours must have the higher REML likelihood, and statsmodels
    evaluated at our estimate must reproduce our numbers.
    """
    data = _design(1)
    Y = _responses(data, 1, n_features=18)
    X = build_design(data, RHS)
    res = fit_random_intercept(Y, X, data["subject"], chunk_size=10)
    coef = res.coefficients.set_index(["feature_id", "term"])
    fits = res.fits.set_index("feature_id")
    assert set(fits["status"]) <= {"ok", "boundary"}
    n_interior = n_boundary = 0
    for name in Y.columns:
        model, ref = _statsmodels(data, Y[name], method=["bfgs"], gtol=1e-10, maxiter=200)
        ours = coef.loc[name]  # same patsy design, same term order as statsmodels
        assert [t.replace("[T.", "[") for t in ref.fe_params.index] == list(ours.index)
        k = len(ours)
        fit = fits.loc[name]
        if fit["status"] == "ok":
            n_interior += 1
            np.testing.assert_allclose(ours["estimate"], ref.fe_params, atol=1e-4)
            np.testing.assert_allclose(ours["se"], ref.bse_fe, atol=1e-4)
            np.testing.assert_allclose(ours["p"], ref.pvalues.iloc[:k], atol=1e-4)
            ci = ref.conf_int().iloc[:k]
            np.testing.assert_allclose(ours["ci_low"], ci[0], atol=1e-4)
            np.testing.assert_allclose(ours["ci_high"], ci[1], atol=1e-4)
            assert fit["group_var"] == pytest.approx(ref.cov_re.iloc[0, 0], abs=1e-4)
            assert fit["group_var_se"] == pytest.approx(ref.bse_re.iloc[0], abs=1e-4)
            assert fit["scale"] == pytest.approx(ref.scale, abs=1e-4)
            assert fit["llf"] == pytest.approx(ref.llf, abs=1e-4)
        else:
            n_boundary += 1
            assert fit["gamma"] == 0 and fit["llf"] >= ref.llf - 1e-8
            fe, se, scale = _statsmodels_at(model, gamma=1e-8)  # > its 1e-10 singular tol
            np.testing.assert_allclose(ours["estimate"], fe, atol=1e-6)
            np.testing.assert_allclose(ours["se"], se, atol=1e-6)
            assert fit["scale"] == pytest.approx(scale, rel=1e-6)
    assert n_interior >= 10 and n_boundary >= 1  # both paths exercised


def test_statsmodels_default_fit_agrees_on_interior_features():
    """The benchmark compares against statsmodels' default fit: close, not exact."""
    data = _design(4)
    Y = _responses(data, 4, n_features=9)
    res = fit_random_intercept(Y, build_design(data, RHS), data["subject"])
    ok = res.fits.set_index("feature_id")["status"] == "ok"
    for name in ok[ok].index:
        _, ref = _statsmodels(data, Y[name])
        ours = res.coefficients[res.coefficients["feature_id"] == name]
        np.testing.assert_allclose(ours["estimate"], ref.fe_params, atol=1e-3)


def test_chunking_and_missing_value_paths_agree():
    data = _design(5)
    Y = _responses(data, 5, nan_fraction=0.0)
    X = build_design(data, RHS)
    complete = fit_random_intercept(Y, X, data["subject"], chunk_size=1000)
    Y_nan = Y.copy()
    Y_nan["extra"] = np.where(np.arange(len(Y)) == 0, np.nan, Y["f1"])  # forces masked path
    masked = fit_random_intercept(Y_nan, X, data["subject"], chunk_size=4)
    a = complete.coefficients.set_index(["feature_id", "term"])
    b = masked.coefficients.set_index(["feature_id", "term"]).loc[a.index]
    np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-12)
    # the row order of observations must not matter
    perm = np.random.default_rng(0).permutation(len(Y))
    shuffled = fit_random_intercept(Y.iloc[perm].reset_index(drop=True),
                                    X.iloc[perm].reset_index(drop=True),
                                    data["subject"].iloc[perm].to_numpy())
    c = shuffled.coefficients.set_index(["feature_id", "term"]).loc[a.index]
    np.testing.assert_allclose(a.to_numpy(float), c.to_numpy(float), rtol=1e-8, atol=1e-10)


def test_unfittable_features_are_reported_not_skipped():
    data = _design(6, p_missing=0.0)
    X = build_design(data, "timepoint * response")
    codes = pd.factorize(data["subject"])[0]
    rng = np.random.default_rng(6)
    good = rng.normal(size=len(data))
    constant = np.full(len(data), 2.0)
    sparse = np.where(np.arange(len(data)) < 4, good, np.nan)
    no_responders = np.where(data["response"] == "responder", np.nan, good)
    # exact subject + time structure, no residual noise: sigma^2 -> 0
    degenerate = rng.normal(size=codes.max() + 1)[codes] + (data["timepoint"] == "post") * 1.0
    Y = pd.DataFrame({"good": good, "constant": constant, "sparse": sparse,
                      "no_responders": no_responders, "degenerate": degenerate})
    res = fit_random_intercept(Y, X, data["subject"], drop_inestimable=False)
    fits = res.fits.set_index("feature_id")
    assert fits.loc["good", "status"] in ("ok", "boundary")
    assert fits.loc["constant", "status"] == "failed"
    assert "zero residual variance" in fits.loc["constant", "note"]
    assert "fewer non-missing" in fits.loc["sparse", "note"]
    assert "not of full rank" in fits.loc["no_responders", "note"]
    assert fits.loc["degenerate", "status"] == "not_converged"
    assert set(res.coefficients["feature_id"]) == {"good", "degenerate"}
    assert len(res.fits) == 5  # every feature has a row
    # by default only the inestimable columns are dropped: the responder terms
    by_term = fit_random_intercept(Y, X, data["subject"]).fits.set_index("feature_id")
    assert by_term.loc["no_responders", "status"] in ("ok", "boundary")
    assert (by_term.loc["no_responders", "dropped_terms"]
            == "response[responder];timepoint[post]:response[responder];"
            "timepoint[progression]:response[responder]")
    assert (by_term.loc["no_responders", "fitted_terms"]
            == "Intercept;timepoint[post];timepoint[progression]")
    assert by_term.loc["no_responders", "dropped_reasons"] == ";".join(
        ["zero on every observed row"] * 3)
    assert by_term.loc["constant", "status"] == "failed"


def test_single_observation_per_subject_is_not_identifiable():
    data = _design(7, p_missing=0.0)
    first = data.groupby("subject", observed=True).head(1).reset_index(drop=True)
    Y = pd.DataFrame({"y": np.random.default_rng(7).normal(size=len(first))})
    res = fit_random_intercept(Y, build_design(first, "response"), first["subject"])
    assert res.fits.loc[0, "status"] == "failed"
    assert "no subject with two" in res.fits.loc[0, "note"]


def _complete_paired_design(n_subjects=30, n_features=40, seed=3):
    rng = np.random.default_rng(seed)
    subject = np.repeat([f"S{i:02d}" for i in range(n_subjects)], 2)
    group = np.repeat(rng.permutation(np.arange(n_subjects) % 2), 2)
    time = np.tile([0, 1], n_subjects)
    level = rng.normal(0, 1.0, (n_subjects, n_features)).repeat(2, axis=0)
    values = level + rng.normal(0, 0.5, level.shape) + 0.3 * time[:, None] * group[:, None]
    data = pd.DataFrame({"subject_id": subject,
                         "timepoint": pd.Categorical(np.where(time, "post", "pre"), ["pre", "post"]),
                         "response": pd.Categorical(np.where(group, "r", "n"), ["n", "r"])})
    return data, values


def test_between_within_t_equals_the_exact_paired_and_two_sample_t_tests():
    """In a complete paired design the interaction is a two-sample t test of the
    changes (df n - 2) and the time effect alone a paired t test (df n - 1)."""
    data, values = _complete_paired_design()
    changes = values[1::2] - values[::2]
    group = (data["response"].to_numpy()[::2] == "r")
    fit = fit_random_intercept(values, build_design(data, "timepoint * response"), data["subject_id"],
                               df_method="between_within")
    interior = fit.fits["status"].eq("ok").to_numpy()
    assert interior.sum() >= 30
    co = fit.coefficients[fit.coefficients["term"] == "timepoint[post]:response[r]"]
    exact = stats.ttest_ind(changes[group], changes[~group])
    assert (co["df"] == 28).all()
    np.testing.assert_allclose(co["p"].to_numpy()[interior], exact.pvalue[interior], rtol=1e-6)
    between = fit.coefficients[fit.coefficients["term"] == "response[r]"]
    assert (between["df"] == 28).all()  # 30 subjects - intercept - response
    time_only = fit_random_intercept(values, build_design(data, "timepoint"), data["subject_id"],
                                     df_method="between_within")
    interior = time_only.fits["status"].eq("ok").to_numpy()
    co = time_only.coefficients[time_only.coefficients["term"] == "timepoint[post]"]
    paired = stats.ttest_rel(values[1::2], values[::2])
    assert (co["df"] == 29).all()
    np.testing.assert_allclose(co["p"].to_numpy()[interior], paired.pvalue[interior], rtol=1e-6)
    ci_half = (co["ci_high"] - co["ci_low"]).to_numpy() / 2
    np.testing.assert_allclose(ci_half, stats.t.ppf(0.975, 29) * co["se"].to_numpy(), rtol=1e-10)


def test_z_reference_is_the_default_and_less_conservative():
    data, values = _complete_paired_design(seed=5)
    X = build_design(data, "timepoint * response")
    z = fit_random_intercept(values, X, data["subject_id"]).coefficients
    t = fit_random_intercept(values, X, data["subject_id"], df_method="between_within").coefficients
    assert np.isinf(z["df"]).all()
    np.testing.assert_allclose(z["estimate"], t["estimate"])
    assert (t["p"].to_numpy() >= z["p"].to_numpy() - 1e-15).all()
    with pytest.raises(ValueError, match="df_method"):
        fit_random_intercept(values, X, data["subject_id"], df_method="kenward_roger")


def test_between_within_df_counts_missing_observations_per_feature():
    data, _ = _complete_paired_design(n_subjects=10)
    X = build_design(data, "timepoint * response").to_numpy()
    df = between_within_df(X, data["subject_id"], n_obs=np.array([20, 17]), n_groups=np.array([10, 9]))
    # columns: intercept, timepoint, response, interaction -> between, within, between, within
    np.testing.assert_array_equal(df, [[8, 8, 8, 8], [7, 6, 7, 6]])
