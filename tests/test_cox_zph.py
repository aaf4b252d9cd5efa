"""Proportional-hazards tests as R's survival::cox.zph: R agreement, the issue-19 example, planted
non-proportional hazards, the null level and exact properties of the score test."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gutaxis.clinical.survival import COX_COLUMNS, cox_ph, cox_zph
from test_survival import run_r

TRANSFORMS = ("km", "rank", "identity")

# Issue 19's example: the demo's PFS2 model of s__Hungatella_hathewayi (z score) + cohort
# (reference eso; 47 subjects, 45 events, tied times), rounded to 10 digits. The workflow
# reported ph_p_value 0.00128 (Pearson t-test of the unscaled residuals vs rank of time);
# R survival 3.5-3 coxph(ties = "efron") + cox.zph(transform = "rank") gives 2.8e-5.
ISSUE_DATA = """\
biomarker lung other time event
-0.3873180801 0 0 38 0
-0.6069480006 0 0 18.6 1
1.037127342 0 0 1.7 1
0.06155912621 0 0 2.3 1
1.349979868 0 0 2.5 1
0.7079642154 0 0 2.8 1
-1.731190025 0 0 6.9 1
-0.05147334538 0 0 3.3 1
0.6859099909 0 0 2.3 1
0.6890107544 0 0 2.4 1
-1.901774778 0 0 4.5 1
-0.1824630861 0 0 2.6 1
-0.06705041589 0 0 3.4 1
0.1831182134 0 0 18.7 1
-0.3984587983 0 0 13 1
0.2759959623 0 0 4.5 1
0.4627135445 1 0 1.5 1
1.394246239 1 0 2 1
-0.6416482129 1 0 17.9 1
0.2171008802 1 0 7.6 1
1.827674598 1 0 1.8 1
-0.4118520884 1 0 17.8 1
0.4235059197 1 0 15.1 1
-1.667792556 1 0 7.3 1
-0.2461630727 1 0 2.6 1
0.3938290663 1 0 3 1
0.5059877567 1 0 2.3 1
0.05199194764 1 0 1.9 1
-0.1869073369 1 0 18.6 0
-0.2081411337 1 0 2.6 1
-0.970298513 1 0 4.4 1
0.7282926509 1 0 2.9 1
2.957093949 0 1 0.5 1
1.260032416 0 1 1.7 1
-0.1620487513 0 1 1.5 1
-1.772785748 0 1 16.5 1
0.4064134318 0 1 8.8 1
0.1761836993 0 1 1.3 1
-0.5657250979 0 1 2.7 1
1.001744918 0 1 1.8 1
-1.872765188 0 1 7.7 1
-0.743785186 0 1 9.9 1
0.4791480632 0 1 21.3 1
-0.5223626249 0 1 1.8 1
-0.1362895657 0 1 2.9 1
-1.869528452 0 1 10.4 1
0.02814550436 0 1 3.7 1
"""
ISSUE_COVARIATES = ["biomarker", "lung", "other"]


def issue_data() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(ISSUE_DATA), sep=" ")


def tied_data(seed: int = 8, n: int = 120) -> pd.DataFrame:
    """Three covariates (x1 binary), times rounded to whole units: many ties."""
    rng = np.random.default_rng(seed)
    x1 = rng.integers(0, 2, n)
    x2 = np.round(rng.normal(size=n), 3)
    x3 = rng.normal(size=n)
    event_time = rng.exponential(10 / np.exp(0.6 * x1 - 0.4 * x2))
    censor = rng.uniform(0, 30, n)
    return pd.DataFrame({"time": np.round(np.minimum(event_time, censor)),
                         "event": (event_time <= censor).astype(int), "x1": x1, "x2": x2, "x3": x3})


def fit(data: pd.DataFrame, covariates, **kwargs) -> pd.DataFrame:
    return cox_ph(data["time"], data["event"], data[list(covariates)], **kwargs)


# --------------------------------------------------------------------------- the issue's example


def test_issue_example_gives_r_numbers_not_the_old_correlation():
    """R survival 3.5-3 numbers recorded from coxph(ties = "efron") + cox.zph on ISSUE_DATA."""
    r = {  # chisq biomarker, lung, other, GLOBAL; p biomarker, lung, other, GLOBAL
        "rank": [17.543776632088974, 0.25379105269553193, 1.1299746806013369, 17.920273811789116,
                 2.8076822268559567e-05, 0.6144182405389681, 0.28778073962279427, 0.00045682025197629701],
        "km": [17.485719678672858, 0.24044775591013376, 1.0678834877503129, 17.857500991316503,
               2.8947385378627026e-05, 0.62388290877017738, 0.30142400558086901, 0.00047063893350407081],
    }
    data = issue_data()
    for transform, expected in r.items():
        result = fit(data, ISSUE_COVARIATES, ph_time_transform=transform)
        ours = np.r_[result["ph_chisq"], result["ph_global_chisq"].iloc[0],
                     result["ph_p_value"], result["ph_global_p"].iloc[0]]
        np.testing.assert_allclose(ours, expected, rtol=1e-6, err_msg=transform)
        assert (result["ph_global_df"] == 3).all()
    # the old check (Pearson t-test of the unscaled residuals with rank(time)) said 0.00128
    assert fit(data, ISSUE_COVARIATES, ph_time_transform="rank")["ph_p_value"].iloc[0] < 1e-4


def test_default_transform_is_km_as_cox_zph():
    result = fit(issue_data(), ISSUE_COVARIATES)
    assert list(result.columns) == COX_COLUMNS
    assert (result["ph_time_transform"] == "km").all() and (result["ties"] == "efron").all()


# --------------------------------------------------------------------------- R cross-check


@pytest.mark.rcheck
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_matches_r_cox_zph(tmp_path, ties):
    """chisq and p (per covariate and GLOBAL), rho, g(t) and the scaled Schoenfeld residuals
    equal R's cox.zph for km / rank / identity, on tied data with a binary covariate."""
    sets = {"tied": (tied_data(), ["x1", "x2", "x3"]), "issue": (issue_data(), ISSUE_COVARIATES)}
    for name, (data, covariates) in sets.items():
        data.to_csv(tmp_path / f"{name}.csv", index=False)
    code = f"""
    suppressMessages(library(survival)); options(digits = 17)
    sets <- list(tied = c("x1", "x2", "x3"), issue = c({", ".join(repr(c) for c in ISSUE_COVARIATES)}))
    for (name in names(sets)) {{
      d <- read.csv(file.path("{tmp_path}", paste0(name, ".csv")))
      f <- coxph(as.formula(paste("Surv(time, event) ~", paste(sets[[name]], collapse = " + "))),
                 data = d, ties = "{ties}")
      cat("COEF", name, "-", coef(f), "\\n")
      for (tr in c("km", "rank", "identity")) {{
        z <- cox.zph(f, transform = tr)
        cat("TAB", name, tr, z$table[, "chisq"], z$table[, "p"], "\\n")
        cat("RHO", name, tr, apply(z$y, 2, function(y) cor(z$x, y)), "\\n")
        cat("X", name, tr, z$x, "\\n")
        cat("Y", name, tr, z$y, "\\n")
      }}
    }}
    """
    lines = [line.split() for line in run_r(code).splitlines() if line.split()[:1] in
             (["COEF"], ["TAB"], ["RHO"], ["X"], ["Y"])]
    assert len(lines) == 2 * (1 + 4 * len(TRANSFORMS))
    worst = {}
    for kind, name, transform, *values in lines:
        data, covariates = sets[name]
        r = np.array(values, dtype=float)
        if kind == "COEF":
            np.testing.assert_allclose(fit(data, covariates, ties=ties)["coef"], r, rtol=1e-7)
            continue
        result = fit(data, covariates, ties=ties, ph_time_transform=transform)
        if kind == "TAB":
            ours = np.r_[result["ph_chisq"], result["ph_global_chisq"].iloc[0],
                         result["ph_p_value"], result["ph_global_p"].iloc[0]]
        elif kind == "RHO":
            ours = result["ph_rho"].to_numpy()
        else:
            zph = cox_zph(data["time"], data["event"], data[covariates], result["coef"], ties=ties,
                          transform=transform)
            ours = zph.transformed if kind == "X" else zph.scaled_residuals.T.ravel()
        np.testing.assert_allclose(ours, r, rtol=1e-6, atol=1e-12, err_msg=f"{kind} {name} {transform}")
        worst[transform] = max(worst.get(transform, 0.0), float(np.max(np.abs(ours - r))))
    print(f"max |ours - R| ({ties}):", worst)


# --------------------------------------------------------------------------- planted effects, null level


def piecewise_data(rng, n: int, early: float, late: float, cut: float = 0.5) -> pd.DataFrame:
    """x1 binary with log HR ``early`` before ``cut`` and ``late`` after (base hazard 1); x2 normal
    with a constant log HR 0.5; uniform censoring."""
    x1 = rng.integers(0, 2, n)
    x2 = rng.normal(size=n)
    base = 0.5 * x2
    rate_early, rate_late = np.exp(base + early * x1), np.exp(base + late * x1)
    e = rng.exponential(1.0, n)  # cumulative hazard at the event
    event_time = np.where(e < rate_early * cut, e / rate_early, cut + (e - rate_early * cut) / rate_late)
    censor = rng.uniform(0, 3, n)
    return pd.DataFrame({"time": np.round(np.minimum(event_time, censor), 3),
                         "event": (event_time <= censor).astype(int), "x1": x1, "x2": x2})


def test_planted_time_varying_effect_is_detected():
    rng = np.random.default_rng(19)
    data = piecewise_data(rng, 500, early=1.0, late=-1.0, cut=0.3)
    for transform in TRANSFORMS:
        result = fit(data, ["x1", "x2"], ph_time_transform=transform).set_index("term")
        assert result.loc["x1", "ph_p_value"] < 1e-6, transform
        assert result.loc["x1", "ph_rho"] < -0.2, transform  # the effect falls over time
        assert result.loc["x2", "ph_p_value"] > 0.05, transform  # x2 is proportional
        assert result["ph_global_p"].iloc[0] < 1e-6, transform
    # the scaled residuals track beta(t): about +1 early and -1 late (Grambsch & Therneau 1994)
    zph = cox_zph(data["time"], data["event"], data[["x1", "x2"]],
                  fit(data, ["x1", "x2"])["coef"])
    early, late = zph.scaled_residuals[zph.time < 0.24, 0], zph.scaled_residuals[zph.time > 0.36, 0]
    assert early.mean() == pytest.approx(1.0, abs=0.4) and late.mean() == pytest.approx(-1.0, abs=0.4)


def test_null_level_under_proportional_hazards():
    """200 PH data sets (tied times, binary + normal covariate): per-covariate and GLOBAL tests
    reject at 5% in at most 8% and their p values look uniform."""
    rng = np.random.default_rng(2019)
    p_values = []
    for _ in range(200):
        data = piecewise_data(rng, 100, early=0.7, late=0.7)
        data["time"] = np.round(data["time"], 2)
        result = fit(data, ["x1", "x2"])
        p_values.append(np.r_[result["ph_p_value"], result["ph_global_p"].iloc[0]])
    p_values = np.array(p_values)
    rate = (p_values < 0.05).mean(axis=0)
    assert np.all(rate <= 0.08), rate
    assert np.all(rate >= 0.01), rate  # not a test that never rejects
    for column in p_values.T:
        assert stats.kstest(column, "uniform").pvalue > 0.01


# --------------------------------------------------------------------------- exact properties


def test_scaled_residuals_average_to_beta_and_schoenfeld_to_zero():
    """At the maximum the score, the sum of the Schoenfeld residuals, is 0, so the scaled
    residuals average to beta-hat exactly, whatever the ties."""
    data = tied_data(3)
    for ties in ("efron", "breslow"):
        coef = fit(data, ["x1", "x2", "x3"], ties=ties)["coef"].to_numpy()
        zph = cox_zph(data["time"], data["event"], data[["x1", "x2", "x3"]], coef, ties=ties)
        np.testing.assert_allclose(zph.schoenfeld.sum(axis=0), 0, atol=1e-7)
        np.testing.assert_allclose(zph.scaled_residuals.mean(axis=0), coef, atol=1e-7)
        assert zph.scaled_residuals.shape == (data["event"].sum(), 3)
        assert np.all(np.diff(zph.time) >= 0)


def test_efron_equals_breslow_without_ties():
    data = tied_data(5)
    data["time"] = data["time"] + np.arange(len(data)) * 1e-4  # all times distinct
    efron = fit(data, ["x1", "x2"], ties="efron")
    breslow = fit(data, ["x1", "x2"], ties="breslow")
    for column in ("coef", "ph_chisq", "ph_rho", "ph_global_chisq"):
        np.testing.assert_allclose(efron[column], breslow[column], rtol=1e-8)


def test_invariances():
    """The tests do not change with (a) a monotone map of time for km and rank, (b) a linear
    rescaling of time for identity, (c) an affine recoding of a covariate; with one covariate
    GLOBAL equals the per-covariate test."""
    data = tied_data(11)
    base = {t: fit(data, ["x1", "x2"], ph_time_transform=t) for t in TRANSFORMS}
    logged = data.assign(time=np.log1p(data["time"]))
    for transform in ("km", "rank"):
        np.testing.assert_allclose(fit(logged, ["x1", "x2"], ph_time_transform=transform)["ph_chisq"],
                                   base[transform]["ph_chisq"], rtol=1e-7)
    stretched = data.assign(time=data["time"] * 30.4)
    np.testing.assert_allclose(fit(stretched, ["x1", "x2"], ph_time_transform="identity")["ph_chisq"],
                               base["identity"]["ph_chisq"], rtol=1e-7)
    recoded = data.assign(x2=3 * data["x2"] - 5)
    for transform in TRANSFORMS:
        np.testing.assert_allclose(fit(recoded, ["x1", "x2"], ph_time_transform=transform)["ph_chisq"],
                                   base[transform]["ph_chisq"], rtol=1e-6)
    single = fit(data, ["x1"])
    assert single["ph_global_chisq"].iloc[0] == pytest.approx(single["ph_chisq"].iloc[0], rel=1e-12)
    assert single["ph_global_df"].iloc[0] == 1


def test_degenerate_and_invalid_input():
    # all events at one time: g(t) is constant over the events, nothing to test
    result = cox_ph([2, 2, 2, 3, 4], [1, 1, 1, 0, 0], pd.DataFrame({"x": [0.0, 1, 0, 1, 1]}))
    assert result[["ph_chisq", "ph_p_value", "ph_global_p", "ph_rho"]].isna().all().all()
    data = tied_data(1)
    with pytest.raises(ValueError, match="ph_time_transform"):
        fit(data, ["x1"], ph_time_transform="log10")
    with pytest.raises(ValueError, match="ties"):
        fit(data, ["x1"], ties="exact")
    with pytest.raises(ValueError, match="event"):
        cox_zph([1, 2], [0, 0], [[0.0], [1.0]], [0.0])
