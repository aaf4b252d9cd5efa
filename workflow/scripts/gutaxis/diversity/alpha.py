"""α diversity per sample and the tests of its pre→post change (Wilcoxon, Hodges–Lehmann, LMM).

References
----------
Shannon, C. E. (1948). A mathematical theory of communication. Bell Syst. Tech. J. 27.
Simpson, E. H. (1949). Measurement of diversity. Nature 163, 688.
Pielou, E. C. (1966). The measurement of diversity in different types of biological
collections. J. Theor. Biol. 13, 131-144.
Chao, A. (1987). Estimating the population size for capture-recapture data with unequal
catchability. Biometrics 43, 783-791.
Hurlbert, S. H. (1971). The nonconcept of species diversity. Ecology 52, 577-586.
Hollander, M., Wolfe, D. A. & Chicken, E. (2014). Nonparametric Statistical Methods,
3rd ed., sections 3.1-3.3 (signed-rank test, Hodges–Lehmann estimator and its CI).
Bauer, D. F. (1972). Constructing confidence sets using rank statistics. JASA 67, 687-690.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.special import gammaln
from skbio.diversity import alpha_diversity as skbio_alpha_diversity

from gutaxis.clinical.checks import NON_RESPONDER, RESPONDER
from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.diversity.design import (AlphaDesign, abundance_values, call_significant, full_design_timepoints,
                                     with_front)
from gutaxis.io.pairing import pair_samples
from gutaxis.stats.paired import hodges_lehmann as paired_hodges_lehmann
# the signed-rank distribution and Walsh averages behind the α tests, reachable from here too
from gutaxis.stats.paired import psignrank, qsignrank, walsh_averages  # noqa: F401

#: α metrics for every table (relative abundances or counts), in output order
ALPHA_METRICS = ("shannon", "gini_simpson", "inverse_simpson", "observed_richness", "pielou_evenness")
#: metrics that need integer counts
COUNT_METRICS = ("chao1", "rarefied_richness")

#: scikit-bio function behind each metric
_SKBIO_METRIC = {
    "shannon": "shannon",  # natural log
    "gini_simpson": "simpson",  # 1 - sum p^2
    "inverse_simpson": "inv_simpson",  # 1 / sum p^2
    "observed_richness": "sobs",
    "pielou_evenness": "pielou_e",  # H / ln(S)
    "chao1": "chao1",  # bias-corrected
}

PAIRED_TEST_COLUMNS = [
    "metric", "group_by", "group", "n_pairs", "n_nonzero", "median_pre", "median_post",
    "median_change", "hl_estimate", "ci_low", "ci_high", "conf_level", "v_statistic", "p_value",
    "method",
]
LMM_COLUMNS = [
    "metric", "term", "estimate", "std_error", "z_value", "p_value", "ci_low", "ci_high",
    "formula_requested", "formula_fitted", "dropped_terms", "n_obs", "n_subjects", "method",
    "converged", "note",
]
NOT_COMPUTED_COLUMNS = ["sample_id", "metric", "reason"]


def _missing(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


# ---------------------------------------------------------------------------
# α metrics


@dataclass(frozen=True)
class AlphaResult:
    """α diversity of every sample.

    Attributes
    ----------
    values : DataFrame
        Index ``sample_id``, one column per metric (:data:`ALPHA_METRICS`, then
        :data:`COUNT_METRICS` when counts were given).
    not_computed : DataFrame
        Columns ``sample_id, metric, reason``: every NaN in `values`, explained.
    parameters : dict
        ``log_base``, ``counts``, ``rarefaction_depth``, ``detection_limit``.
    """

    values: pd.DataFrame
    not_computed: pd.DataFrame
    parameters: dict = field(default_factory=dict)


def _check_table(table: pd.DataFrame, source: str, counts: bool) -> np.ndarray:
    problems = ProblemCollector()
    x = abundance_values(table, source, problems)
    if table.index.duplicated().any():
        problems.add(source, "sample ids " + ", ".join(map(str, table.index[table.index.duplicated()][:8])),
                     "sample ids are duplicated", "keep one row per sample")
    if counts and np.isfinite(x).all() and not np.allclose(x, np.round(x)):
        problems.add(source, "cells", "counts=True but the table holds non-integer values",
                     "pass read counts, or counts=False for relative abundances")
    problems.raise_if_any()
    return x


def rarefied_richness(counts: np.ndarray, depth: int) -> np.ndarray:
    """Expected number of features in a random subsample of `depth` reads (no replacement).

    .. math:: E[S_m] = \\sum_i \\left[1 - \\binom{N - N_i}{m} \\Big/ \\binom{N}{m}\\right]

    (Hurlbert 1971; vegan ``rarefy``). Deterministic: no random subsampling.

    Parameters
    ----------
    counts : ndarray (n_samples, n_features) of integers
    depth : int
        Subsample size m; samples with fewer than m reads get NaN.

    Returns
    -------
    ndarray (n_samples,)
    """
    counts = np.asarray(counts, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    rest = totals - counts
    with np.errstate(invalid="ignore"):
        log_ratio = (gammaln(rest + 1) - gammaln(rest - depth + 1)
                     - gammaln(totals + 1) + gammaln(totals - depth + 1))
    absent_prob = np.where(rest >= depth, np.exp(log_ratio), 0.0)
    expected = np.where(counts > 0, 1.0 - absent_prob, 0.0).sum(axis=1)
    return np.where(totals[:, 0] >= depth, expected, np.nan)


def alpha_diversity(
    table: pd.DataFrame,
    counts: bool = False,
    rarefaction_depth: int | None = None,
    source: str = "feature table",
) -> AlphaResult:
    """Shannon, Gini–Simpson, inverse Simpson, observed richness, Pielou evenness (+ count metrics).

    With :math:`p_i` the relative abundance of feature i and S the number of
    features present (> 0):

    - ``shannon`` :math:`H = -\\sum p_i \\ln p_i` (natural log)
    - ``gini_simpson`` :math:`1 - \\sum p_i^2`; ``inverse_simpson`` :math:`1/\\sum p_i^2`
    - ``observed_richness`` :math:`S`; ``pielou_evenness`` :math:`H/\\ln S` (NaN when S < 2)
    - with ``counts=True`` only: ``chao1`` (bias-corrected,
      :math:`S + F_1(F_1-1)/(2(F_2+1))`) and ``rarefied_richness`` at
      `rarefaction_depth` reads (default: the smallest sample total), see
      :func:`rarefied_richness`.

    Computed with scikit-bio (``skbio.diversity.alpha_diversity``); rarefied richness
    with the closed form above.

    Parameters
    ----------
    table : DataFrame
        Samples x features (index ``sample_id``), relative abundances or counts.
    counts : bool
        True when the table holds integer read counts.
    rarefaction_depth : int, optional
    source : str
        Name of the table in error messages.

    Returns
    -------
    AlphaResult
    """
    x = _check_table(table, source, counts)
    ids = [str(i) for i in table.index]
    totals = x.sum(axis=1)
    empty = totals <= 0
    metrics = list(ALPHA_METRICS) + (list(COUNT_METRICS) if counts else [])
    values = pd.DataFrame(np.nan, index=pd.Index(ids, name="sample_id"), columns=metrics)
    reasons = []
    usable = ~empty
    data = np.round(x).astype(np.int64) if counts else x
    for metric in metrics:
        if metric == "rarefied_richness":
            continue
        if usable.any():
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                result = skbio_alpha_diversity(_SKBIO_METRIC[metric], data[usable],
                                               ids=[i for i, u in zip(ids, usable) if u], validate=False)
            values.loc[result.index, metric] = result.to_numpy(dtype=float)
    depth = None
    if counts:
        depth = int(rarefaction_depth) if rarefaction_depth is not None else int(totals[usable].min()) \
            if usable.any() else 0
        values["rarefied_richness"] = rarefied_richness(data, depth) if depth > 0 else np.nan
        for sample in np.asarray(ids)[usable & (totals < depth)]:
            reasons.append([sample, "rarefied_richness",
                            f"fewer reads than the rarefaction depth ({depth})"])
    for sample in np.asarray(ids)[empty]:
        reasons += [[sample, m, "sample has no abundance (all zero)"] for m in metrics]
    richness = values["observed_richness"].to_numpy()
    single = usable & (richness < 2)
    # scikit-bio returns 1.0 for one feature; H/ln S is 0/0 there, so it stays missing
    values.loc[single, "pielou_evenness"] = np.nan
    for sample in np.asarray(ids)[single]:
        reasons.append([sample, "pielou_evenness", "fewer than two features present (H/ln S undefined)"])
    values.columns.name = "metric"
    not_computed = pd.DataFrame(reasons, columns=NOT_COMPUTED_COLUMNS).sort_values(
        ["sample_id", "metric"], kind="stable").reset_index(drop=True)
    params = {"log_base": "e", "counts": counts, "rarefaction_depth": depth,
              "detection_limit": 0.0, "chao1": "bias-corrected" if counts else "not computed"}
    return AlphaResult(values, not_computed, params)


# ---------------------------------------------------------------------------
# signed-rank distribution, Hodges–Lehmann and the Wilcoxon test


def hodges_lehmann(differences, conf_level: float = 0.95, correct: bool = True) -> dict:
    """Hodges–Lehmann estimate of one vector of paired differences with R's confidence interval.

    :func:`gutaxis.stats.paired.hodges_lehmann` with ``interval="wilcox_test"`` (R's
    ``wilcox.test(d, conf.int = TRUE)``) on ``differences`` (NaN dropped), as a dict:
    ``estimate, ci_low, ci_high, conf_level, n, n_nonzero, ci_method``.
    """
    row = paired_hodges_lehmann(np.asarray(differences, dtype=float), conf_level,
                                interval="wilcox_test", correct=correct).iloc[0]
    return {"estimate": float(row["estimate"]), "ci_low": float(row["ci_low"]),
            "ci_high": float(row["ci_high"]), "conf_level": float(row["conf_level"]),
            "n": int(row["n"]), "n_nonzero": int(row["n_nonzero"]), "ci_method": row["ci_method"]}


def wilcoxon_signed_rank(differences, conf_level: float = 0.95) -> dict:
    """Wilcoxon signed-rank test of paired differences, as R's ``wilcox.test(d)``.

    Zero differences are dropped (scipy ``zero_method="wilcox"``, R's behaviour).
    With n (non-zero) < 50, no ties and no zeros the exact null distribution is used
    (scipy ``method="exact"``); otherwise the normal approximation with tie-corrected
    variance and continuity correction (``method="asymptotic", correction=True``).
    Two-sided. The statistic reported is R's V, the sum of the ranks of the positive
    differences.

    Parameters
    ----------
    differences : array_like
        Paired differences (post - pre); NaN are dropped.
    conf_level : float
        For the Hodges–Lehmann interval (:func:`hodges_lehmann`).

    Returns
    -------
    dict
        ``n, n_nonzero, v_statistic, p_value, method`` plus the keys of
        :func:`hodges_lehmann` (``estimate`` renamed ``hl_estimate``).
    """
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    hl = hodges_lehmann(d, conf_level)
    x = d[d != 0]
    n = len(x)
    out = {"n": len(d), "n_nonzero": n, "v_statistic": np.nan, "p_value": np.nan,
           "hl_estimate": hl["estimate"], "ci_low": hl["ci_low"], "ci_high": hl["ci_high"],
           "conf_level": hl["conf_level"], "method": "not tested: no non-zero differences"}
    if n == 0:
        return out
    ranks = stats.rankdata(np.abs(x))
    exact = n < 50 and len(np.unique(ranks)) == n and n == len(d)
    result = stats.wilcoxon(x, zero_method="wilcox", correction=not exact,
                            method="exact" if exact else "asymptotic")
    test = ("exact" if exact else "normal approximation, tie-corrected, continuity-corrected")
    out.update(v_statistic=float(ranks[x > 0].sum()), p_value=float(result.pvalue),
               method=(f"Wilcoxon signed-rank ({test}; zero differences dropped); "
                       f"Hodges-Lehmann CI: {hl['ci_method']}"))
    return out


# ---------------------------------------------------------------------------
# paired pre/post tests


def _subject_frame(subjects, response_column, cohort_column, source="subjects"):
    problems = ProblemCollector()
    for column in ("subject_id", response_column, cohort_column):
        if column not in subjects.columns:
            problems.add(source, f"column '{column}'", "the column is missing",
                         f"add '{column}' to the subjects table")
    problems.raise_if_any()
    frame = subjects[["subject_id", response_column, cohort_column]].copy()
    frame["subject_id"] = frame["subject_id"].astype(str)
    frame = frame.set_index("subject_id")
    frame.columns = ["response", "cohort"]
    for column in frame.columns:
        frame[column] = frame[column].where(~_missing(frame[column]), None)
    bad = frame["response"].notna() & ~frame["response"].isin([RESPONDER, NON_RESPONDER])
    if bad.any():
        raise InputError(Problem(source, f"column '{response_column}', subjects "
                                 + ", ".join(frame.index[bad][:8]),
                                 f"values {sorted(set(frame['response'][bad]))} are not "
                                 f"'{RESPONDER}'/'{NON_RESPONDER}'/empty",
                                 "use the responder labels written by the clinical module"))
    return frame


def paired_alpha_tests(
    values: pd.DataFrame,
    samples: pd.DataFrame,
    subjects: pd.DataFrame,
    pre: str,
    post: str,
    response_column: str = "response",
    cohort_column: str = "cohort",
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Wilcoxon signed-rank test of the pre→post change of every α metric.

    For each metric, the within-subject differences ``post - pre`` are tested
    overall, in each cohort and in each responder group (:func:`wilcoxon_signed_rank`),
    with the Hodges–Lehmann estimate and its CI (:func:`hodges_lehmann`).

    Parameters
    ----------
    values : DataFrame
        Samples x metrics (``AlphaResult.values``).
    samples : DataFrame
        Sample sheet: ``sample_id, subject_id, timepoint``.
    subjects : DataFrame
        ``subject_id`` plus `response_column` and `cohort_column`.
    pre, post : str
        Timepoints compared.
    conf_level : float

    Returns
    -------
    DataFrame
        Columns :data:`PAIRED_TEST_COLUMNS`; ``group_by`` is ``overall``, ``cohort`` or
        ``response``; rows in metric order, then overall, cohorts, responder groups
        (levels sorted). ``n_pairs``
        counts subjects with both values, ``n_nonzero`` those used by the test.
    """
    clinical = _subject_frame(subjects, response_column, cohort_column)
    pairs = pair_samples(samples[samples["sample_id"].astype(str).isin(values.index.astype(str))], pre, post)
    index = values.index.astype(str)
    table = values.set_axis(index, axis=0)
    pre_values = table.reindex(pairs["pre_sample"]).set_axis(pairs["subject_id"])
    post_values = table.reindex(pairs["post_sample"]).set_axis(pairs["subject_id"])
    groups = [("overall", "all", pairs["subject_id"].to_numpy())]
    info = clinical.reindex(pairs["subject_id"])
    for group_by in ("cohort", "response"):
        for level in sorted(info[group_by].dropna().unique()):
            groups.append((group_by, level, info.index[info[group_by] == level].to_numpy()))
    rows = []
    for metric in values.columns:
        for group_by, level, members in groups:
            a = pre_values.loc[members, metric].to_numpy(dtype=float)
            b = post_values.loc[members, metric].to_numpy(dtype=float)
            keep = ~(np.isnan(a) | np.isnan(b))
            a, b = a[keep], b[keep]
            result = wilcoxon_signed_rank(b - a, conf_level)
            rows.append([metric, group_by, level, int(keep.sum()), result["n_nonzero"],
                         float(np.median(a)) if len(a) else np.nan,
                         float(np.median(b)) if len(b) else np.nan,
                         float(np.median(b - a)) if len(a) else np.nan,
                         result["hl_estimate"], result["ci_low"], result["ci_high"],
                         result["conf_level"], result["v_statistic"], result["p_value"],
                         result["method"]])
    # rows were built in output order: metrics as in `values`, overall, cohorts, responses
    return pd.DataFrame(rows, columns=PAIRED_TEST_COLUMNS)


# ---------------------------------------------------------------------------
# linear mixed model


def _design(frame, timepoints, use_response, use_cohort, use_interaction, covariates=()):
    """Treatment-coded fixed-effect design and its column names."""
    columns = {"Intercept": np.ones(len(frame))}
    time_columns = []
    for level in timepoints[1:]:
        name = f"timepoint[{level}]"
        columns[name] = (frame["timepoint"] == level).to_numpy(float)
        time_columns.append(name)
    if use_response:
        columns[f"response[{RESPONDER}]"] = (frame["response"] == RESPONDER).to_numpy(float)
    if use_interaction:
        for name in time_columns:
            columns[f"{name}:response[{RESPONDER}]"] = columns[name] * columns[f"response[{RESPONDER}]"]
    if use_cohort:
        for level in sorted(frame["cohort"].unique())[1:]:
            columns[f"cohort[{level}]"] = (frame["cohort"] == level).to_numpy(float)
    for covariate in covariates:
        for level in sorted(frame[covariate].astype(str).unique())[1:]:
            columns[f"{covariate}[{level}]"] = (frame[covariate].astype(str) == level).to_numpy(float)
    return pd.DataFrame(columns, index=frame.index)


def _formula(metric, use_response, use_cohort, use_interaction, random, covariates=()):
    rhs = "timepoint"
    if use_response:
        rhs += " * response" if use_interaction else " + response"
    if use_cohort:
        rhs += " + cohort"
    rhs += "".join(f" + {c}" for c in covariates)
    return f"{metric} ~ {rhs}" + (" + (1|subject)" if random else "")


def fit_mixed_model(
    frame: pd.DataFrame,
    metric: str,
    timepoints: Sequence[str],
    response: bool = True,
    covariates: Sequence[str] = (),
) -> pd.DataFrame:
    """Fit ``metric ~ timepoint * response + cohort + (1|subject)``, dropping what the data cannot support.

    The model is :math:`y_{ij} = x_{ij}'\\beta + u_i + \\varepsilon_{ij}`,
    :math:`u_i \\sim N(0, \\sigma_u^2)`, fitted by REML (statsmodels ``MixedLM``;
    lme4's ``lmer`` fits the same model). Treatment coding: reference timepoint =
    ``timepoints[0]``, reference response = ``non_responder``, reference cohort =
    first in sorted order. Terms are dropped, and the reason written, when:
    response has fewer than two levels (response and interaction dropped); a
    timepoint x response cell is empty (interaction dropped); there is one cohort
    (cohort dropped); a covariate has one level (dropped); the design is
    rank-deficient (interaction, then the covariates, then cohort, then response
    dropped until it is not); no subject has two observations (OLS without the
    random intercept). With response in the model, observations of subjects
    without a response label are left out; so are observations without a
    covariate value.

    Parameters
    ----------
    frame : DataFrame
        One row per sample: ``subject_id, timepoint, response, cohort, value``
        (response/cohort may be empty).
    metric : str
        Name written in the output and formulas.
    timepoints : sequence of str
        Timepoints to model, in order; the first is the reference.
    response : bool
        False in a study without response: the model is
        ``metric ~ timepoint + cohort + (1|subject)`` and response is not mentioned.
    covariates : sequence of str
        Categorical sample-level columns of `frame` added as fixed effects
        (treatment coding, first level in sorted order as reference), e.g. the
        ``period`` of a crossover study.

    Returns
    -------
    DataFrame
        Columns :data:`LMM_COLUMNS`: one row per fixed effect, then
        ``subject_variance`` and ``residual_variance``; Wald z tests and 95% CIs.
        ``formula_fitted`` is the model actually fitted; ``dropped_terms`` says what
        was dropped and why. One row with ``term = ""`` and a ``note`` when nothing
        can be fitted.
    """
    covariates = list(covariates)
    requested = (f"{metric} ~ timepoint{' * response' if response else ''} + cohort"
                 + "".join(f" + {c}" for c in covariates) + " + (1|subject)")
    data = frame.copy()
    for column in ("subject_id", "timepoint", "response", "cohort", *covariates):
        data[column] = data[column].where(~_missing(data[column]), None)
    data = data[data["value"].notna() & data["subject_id"].notna() & data["timepoint"].isin(list(timepoints))]
    dropped, notes = [], []

    def empty(note):
        return pd.DataFrame([[metric, "", np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, requested, "",
                              "; ".join(dropped), len(data), data["subject_id"].nunique(), "", False,
                              note]], columns=LMM_COLUMNS)

    present_times = [t for t in timepoints if t in set(data["timepoint"])]
    if len(present_times) < 2:
        return empty(f"fewer than two timepoints with values ({', '.join(present_times) or 'none'}); not fitted")
    responses = sorted(data["response"].dropna().unique())
    use_response = response and len(responses) >= 2
    if response and not use_response:
        dropped.append(f"response, timepoint:response (response levels: {', '.join(responses) or 'none'})")
    elif use_response:
        lacking = data["response"].isna()
        if lacking.any():
            notes.append(f"{int(lacking.sum())} observations of {data.loc[lacking, 'subject_id'].nunique()} "
                         "subjects without a response label left out")
            data = data[~lacking]
    use_interaction = use_response
    if use_response:
        cells = data.groupby(["timepoint", "response"]).size()
        full = pd.MultiIndex.from_product([present_times, [NON_RESPONDER, RESPONDER]])
        empty_cells = [f"{t}/{r}" for t, r in full if cells.get((t, r), 0) == 0]
        if empty_cells:
            use_interaction = False
            dropped.append(f"timepoint:response (empty cells: {', '.join(empty_cells)})")
    cohorts = sorted(data["cohort"].dropna().unique())
    use_cohort = len(cohorts) >= 2
    if not use_cohort:
        dropped.append(f"cohort (single cohort: {', '.join(cohorts) or 'none'})")
    elif data["cohort"].isna().any():
        notes.append(f"{int(data['cohort'].isna().sum())} observations without a cohort left out")
        data = data[data["cohort"].notna()]
    used_covariates = []
    for covariate in covariates:
        lacking = data[covariate].isna()
        if lacking.any():
            notes.append(f"{int(lacking.sum())} observations without a {covariate} left out")
            data = data[~lacking]
        levels = sorted(data[covariate].astype(str).unique())
        if len(levels) >= 2:
            used_covariates.append(covariate)
        else:
            dropped.append(f"{covariate} (single level: {', '.join(levels) or 'none'})")
    present_times = [t for t in timepoints if t in set(data["timepoint"])]
    if len(present_times) < 2:
        return empty("fewer than two timepoints after leaving out unlabelled subjects; not fitted")

    for term in ("interaction", "covariates", "cohort", "response"):
        x = _design(data, present_times, use_response, use_cohort, use_interaction, used_covariates)
        if np.linalg.matrix_rank(x.to_numpy()) == x.shape[1]:
            break
        if term == "interaction" and use_interaction:
            use_interaction = False
            dropped.append("timepoint:response (aliased with other terms)")
        elif term == "covariates" and used_covariates:
            dropped.append(f"{', '.join(used_covariates)} (aliased with other terms)")
            used_covariates = []
        elif term == "cohort" and use_cohort:
            use_cohort = False
            dropped.append("cohort (aliased with other terms)")
        elif term == "response" and use_response:
            use_response = False
            dropped.append("response (aliased with other terms)")
    x = _design(data, present_times, use_response, use_cohort, use_interaction, used_covariates)
    if np.linalg.matrix_rank(x.to_numpy()) < x.shape[1] or len(data) <= x.shape[1]:
        return empty("design cannot be estimated (too few observations); not fitted")

    y = data["value"].to_numpy(float)
    groups = data["subject_id"].to_numpy()
    random = bool((pd.Series(groups).value_counts() >= 2).any())
    formula = _formula(metric, use_response, use_cohort, use_interaction, random, used_covariates)
    captured = []
    if random:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = sm.MixedLM(y, x, groups=groups)
            # statsmodels falls back to the next optimizer only when one does not
            # converge; L-BFGS can also stop with a singular X'V^-1X during its line
            # search (a subject variance near the boundary), so that is a fallback too
            fit, failures = None, []
            for optimizers in (["lbfgs", "powell"], ["powell"], ["nm"]):
                try:
                    fit = model.fit(reml=True, method=optimizers)
                    break
                except (np.linalg.LinAlgError, ValueError) as err:
                    failures.append(f"{optimizers[0]}: {err}")
            if fit is None:
                return empty(f"mixed model failed ({'; '.join(failures)})")
        captured = sorted({str(w.message).split("\n")[0] for w in caught})
        k = x.shape[1]
        estimate = np.asarray(fit.fe_params)
        se = np.asarray(fit.bse_fe)
        method = "statsmodels MixedLM, REML, Wald z" + (
            f" (optimizer fallback after {'; '.join(failures)})" if failures else "")
        converged = bool(fit.converged)
        extra = [("subject_variance", float(np.asarray(fit.cov_re)[0, 0])),
                 ("residual_variance", float(fit.scale))]
    else:
        fit = sm.OLS(y, x).fit()
        k = x.shape[1]
        estimate, se = np.asarray(fit.params), np.asarray(fit.bse)
        method = "statsmodels OLS (no subject with two observations: random intercept dropped), Wald z"
        converged = True
        extra = [("residual_variance", float(fit.scale))]
        dropped.append("(1|subject) (no subject with two observations)")
    z = estimate / se
    p = 2.0 * stats.norm.sf(np.abs(z))
    half = stats.norm.isf(0.025) * se
    note = "; ".join(notes + captured)
    rows = [[metric, name, estimate[i], se[i], z[i], p[i], estimate[i] - half[i], estimate[i] + half[i],
             requested, formula, "; ".join(dropped), len(data), data["subject_id"].nunique(), method,
             converged, note] for i, name in enumerate(x.columns[:k])]
    rows += [[metric, name, value, np.nan, np.nan, np.nan, np.nan, np.nan, requested, formula,
              "; ".join(dropped), len(data), data["subject_id"].nunique(), method, converged, note]
             for name, value in extra]
    return pd.DataFrame(rows, columns=LMM_COLUMNS)


def alpha_mixed_models(
    values: pd.DataFrame,
    samples: pd.DataFrame,
    subjects: pd.DataFrame,
    timepoints: Sequence[str],
    response_column: str = "response",
    cohort_column: str = "cohort",
    response: bool = True,
    covariates: Sequence[str] = (),
) -> pd.DataFrame:
    """:func:`fit_mixed_model` for every α metric.

    Parameters
    ----------
    values, samples, subjects : DataFrame
        As :func:`paired_alpha_tests`.
    timepoints : sequence of str
        Timepoints in order (first = reference).
    response, covariates :
        As :func:`fit_mixed_model`; covariates are columns of `samples`.

    Returns
    -------
    DataFrame
        Columns :data:`LMM_COLUMNS`, metrics in the column order of `values`.
    """
    clinical = _subject_frame(subjects, response_column, cohort_column)
    sheet = samples[["sample_id", "subject_id", "timepoint", *covariates]].astype(str)
    sheet = sheet[sheet["sample_id"].isin(values.index.astype(str))].set_index("sample_id")
    table = values.set_axis(values.index.astype(str), axis=0)
    base = sheet.join(clinical, on="subject_id")
    tables = []
    for metric in values.columns:
        frame = base.assign(value=table.loc[base.index, metric].to_numpy(dtype=float))
        tables.append(fit_mixed_model(frame.reset_index(drop=True), str(metric), list(timepoints),
                                      response=response, covariates=covariates))
    return pd.concat(tables, ignore_index=True)


@dataclass(frozen=True)
class AlphaChangeTables:
    """The tests of the α metrics' pre→post change: ``tests``, the paired tests
    (``contrast, pre, post`` + :data:`PAIRED_TEST_COLUMNS` + ``significant``), and
    ``mixed``, the mixed models (``contrast, timepoints`` + :data:`LMM_COLUMNS` + ``significant``)."""

    tests: pd.DataFrame
    mixed: pd.DataFrame


def alpha_change_tests(design: AlphaDesign, contrasts: Sequence[dict], timepoints: Sequence[str], baseline: str,
                       *, response: bool, period: bool, conf_level: float = 0.95,
                       significance_level: float = 0.05) -> AlphaChangeTables:
    """Paired tests and mixed models of every contrast, and the mixed model of the full design.

    Each contrast gets :func:`paired_alpha_tests` and :func:`alpha_mixed_models` of its
    two timepoints; with more than two timepoints with data the full design (every
    timepoint, baseline the reference; :func:`gutaxis.diversity.design.full_design_timepoints`)
    gets a mixed model too, as contrast ``all_timepoints``. Without response the model
    is ``metric ~ timepoint + cohort (+ period) + (1|subject)``. ``significant`` is
    ``p < significance_level``; the models' intercept (mean = 0 answers no question)
    and variance rows make no call.

    Parameters
    ----------
    design : AlphaDesign
        :func:`gutaxis.diversity.design.read_alpha` of the tidy α table.
    contrasts : sequence of dict
        ``name, pre, post``.
    timepoints : sequence of str
        The design's timepoints in time order.
    baseline : str
    response : bool
        Does the study have a response?
    period : bool
        A crossover: the sample sheet's ``period`` is a covariate of the models.
    conf_level, significance_level : float

    Returns
    -------
    AlphaChangeTables
    """
    values, samples, subjects = design
    options = {"response": response, "covariates": ["period"] if period else []}
    tests, models = [], []
    for contrast in contrasts:
        pre, post = contrast["pre"], contrast["post"]
        table = paired_alpha_tests(values, samples, subjects, pre, post, "response", "cohort",
                                   conf_level=conf_level)
        tests.append(with_front(table, {"contrast": contrast["name"], "pre": pre, "post": post}))
        fitted = alpha_mixed_models(values, samples, subjects, [pre, post], "response", "cohort", **options)
        models.append(with_front(fitted, {"contrast": contrast["name"], "timepoints": f"{pre}, {post}"}))
    everything = full_design_timepoints(timepoints, baseline, samples["timepoint"])
    if len(everything) > 2:
        fitted = alpha_mixed_models(values, samples, subjects, everything, "response", "cohort", **options)
        models.append(with_front(fitted, {"contrast": "all_timepoints", "timepoints": ", ".join(everything)}))
    tests = pd.concat(tests, ignore_index=True)
    tests["significant"] = call_significant(tests["p_value"], significance_level)
    models = pd.concat(models, ignore_index=True)
    models["significant"] = call_significant(models["p_value"], significance_level, models["term"] != "Intercept")
    return AlphaChangeTables(tests, models)


# ---------------------------------------------------------------------------
# baseline comparisons (baseline-only studies: one sample per subject)

BASELINE_TEST_COLUMNS = [
    "metric", "group_by", "group", "n_responder", "n_non_responder", "median_responder",
    "median_non_responder", "hl_shift", "u_statistic", "p_value", "method",
]
BASELINE_MODEL_COLUMNS = [
    "metric", "term", "estimate", "std_error", "t_value", "df_residual", "p_value", "ci_low", "ci_high",
    "formula_requested", "formula_fitted", "dropped_terms", "n_obs", "method", "note",
]


def mann_whitney(a, b) -> dict:
    """Two-sided Mann–Whitney U test of `a` against `b`, as R's ``wilcox.test(a, b)``.

    Exact when both groups have fewer than 50 values and there are no ties,
    otherwise the normal approximation with tie and continuity correction (scipy
    ``mannwhitneyu``). ``u_statistic`` is the U of `a` (R's W); ``hl_shift`` the
    Hodges–Lehmann shift, the median of all differences :math:`a_i - b_j`.

    Returns
    -------
    dict
        ``n_a, n_b, median_a, median_b, hl_shift, u_statistic, p_value, method``
        (NaN and ``not tested: a group is empty`` when one group is empty).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    out = {"n_a": len(a), "n_b": len(b), "median_a": float(np.median(a)) if len(a) else np.nan,
           "median_b": float(np.median(b)) if len(b) else np.nan, "hl_shift": np.nan,
           "u_statistic": np.nan, "p_value": np.nan, "method": "not tested: a group is empty"}
    if len(a) and len(b):
        tied = len(np.unique(np.concatenate([a, b]))) < len(a) + len(b)
        exact = len(a) < 50 and len(b) < 50 and not tied
        result = stats.mannwhitneyu(a, b, alternative="two-sided", use_continuity=True,
                                    method="exact" if exact else "asymptotic")
        out.update(hl_shift=float(np.median(a[:, None] - b[None, :])), u_statistic=float(result.statistic),
                   p_value=float(result.pvalue),
                   method="Mann-Whitney U, two-sided, " + (
                       "exact" if exact else "normal approximation with tie and continuity correction"))
    return out


def _baseline_frame(values, samples, subjects, baseline, response_column, cohort_column, covariates=()):
    """One row per subject at `baseline`: sample_id, subject_id, response, cohort, covariates, metrics."""
    clinical = _subject_frame(subjects, response_column, cohort_column)
    sheet = samples[["sample_id", "subject_id", "timepoint", *covariates]].astype(str)
    sheet = sheet[sheet["sample_id"].isin(values.index.astype(str)) & (sheet["timepoint"] == baseline)
                  & (sheet["subject_id"].str.strip() != "")]
    sheet = sheet.sort_values("sample_id", kind="stable").drop_duplicates("subject_id")
    table = values.set_axis(values.index.astype(str), axis=0)
    frame = sheet.join(clinical, on="subject_id").set_index("sample_id")
    return frame.join(table), list(values.columns)


def baseline_alpha_tests(
    values: pd.DataFrame,
    samples: pd.DataFrame,
    subjects: pd.DataFrame,
    baseline: str,
    response_column: str = "response",
    cohort_column: str = "cohort",
) -> pd.DataFrame:
    """α diversity at baseline, responders against non-responders (Mann–Whitney U).

    For every metric the baseline values of responders and non-responders are
    compared with :func:`mann_whitney`, overall and within each cohort (levels
    sorted). Subjects without a response label are left out.

    Parameters
    ----------
    values, samples, subjects : DataFrame
        The α values and who each sample is, as :func:`paired_alpha_tests` takes them.
    baseline : str
        The baseline timepoint (``design.baseline``).

    Returns
    -------
    DataFrame
        Columns :data:`BASELINE_TEST_COLUMNS`; ``group_by`` ``overall`` (group
        ``all``) or ``cohort``; ``hl_shift`` is responders minus non-responders.
    """
    frame, metrics = _baseline_frame(values, samples, subjects, baseline, response_column, cohort_column)
    groups = [("overall", "all", pd.Series(True, index=frame.index))]
    for level in sorted(frame["cohort"].dropna().unique()):
        groups.append(("cohort", level, frame["cohort"] == level))
    rows = []
    for metric in metrics:
        for group_by, level, members in groups:
            part = frame[members]
            result = mann_whitney(part.loc[part["response"] == RESPONDER, metric],
                                  part.loc[part["response"] == NON_RESPONDER, metric])
            rows.append([metric, group_by, level, result["n_a"], result["n_b"], result["median_a"],
                         result["median_b"], result["hl_shift"], result["u_statistic"], result["p_value"],
                         result["method"]])
    return pd.DataFrame(rows, columns=BASELINE_TEST_COLUMNS)


def fit_baseline_model(frame: pd.DataFrame, metric: str, covariates: Sequence[str] = ()) -> pd.DataFrame:
    """Fit ``metric ~ response + cohort (+ covariates)`` by least squares, one subject per row.

    :math:`y_i = x_i'\\beta + \\varepsilon_i`, :math:`\\varepsilon_i \\sim N(0, \\sigma^2)`
    (statsmodels OLS, R's ``lm``); t tests with n - p residual degrees of freedom
    and 95% t intervals. Treatment coding: reference response ``non_responder``,
    reference cohort the first in sorted order. Response is dropped when it has
    fewer than two levels, cohort and covariates when they have one level or are
    aliased with the other terms (the reason written in ``dropped_terms``);
    subjects without a response label are left out (``note``).

    Parameters
    ----------
    frame : DataFrame
        ``response, cohort, value`` (+ covariate columns), one row per subject.
    metric : str
    covariates : sequence of str

    Returns
    -------
    DataFrame
        Columns :data:`BASELINE_MODEL_COLUMNS`: one row per coefficient, then
        ``residual_variance``; one row with ``term = ""`` and a note when nothing
        can be fitted.
    """
    covariates = list(covariates)
    requested = f"{metric} ~ response + cohort" + "".join(f" + {c}" for c in covariates)
    data = frame.copy()
    for column in ("response", "cohort", *covariates):
        data[column] = data[column].where(~_missing(data[column]), None)
    data = data[data["value"].notna()]
    dropped, notes = [], []
    lacking = data["response"].isna()
    if lacking.any() and data["response"].notna().any():
        notes.append(f"{int(lacking.sum())} subjects without a response label left out")
        data = data[~lacking]
    for column in ("cohort", *covariates):
        gap = data[column].isna()
        if gap.any():
            notes.append(f"{int(gap.sum())} subjects without a {column} left out")
            data = data[~gap]
    terms = []
    for column in ("response", "cohort", *covariates):
        levels = sorted(data[column].dropna().astype(str).unique())
        if len(levels) >= 2:
            terms.append(column)
        else:
            dropped.append(f"{column} ({len(levels)} level(s): {', '.join(levels) or 'none'})")

    def design(used):
        columns = {"Intercept": np.ones(len(data))}
        for column in used:
            if column == "response":
                columns[f"response[{RESPONDER}]"] = (data["response"] == RESPONDER).to_numpy(float)
                continue
            for level in sorted(data[column].astype(str).unique())[1:]:
                columns[f"{column}[{level}]"] = (data[column].astype(str) == level).to_numpy(float)
        return pd.DataFrame(columns, index=data.index)

    for term in [*reversed(covariates), "cohort", "response"]:
        x = design(terms)
        if np.linalg.matrix_rank(x.to_numpy()) == x.shape[1]:
            break
        if term in terms:
            terms.remove(term)
            dropped.append(f"{term} (aliased with other terms)")
    x = design(terms)
    formula = f"{metric} ~ " + (" + ".join(terms) if terms else "1")

    def row(term, estimate=np.nan, se=np.nan, t=np.nan, df=np.nan, p=np.nan, low=np.nan, high=np.nan,
            method="", note=""):
        return [metric, term, estimate, se, t, df, p, low, high, requested, formula, "; ".join(dropped),
                len(data), method, note]

    if np.linalg.matrix_rank(x.to_numpy()) < x.shape[1] or len(data) <= x.shape[1]:
        return pd.DataFrame([row("", note="; ".join(notes + ["too few subjects for the model; not fitted"]))],
                            columns=BASELINE_MODEL_COLUMNS)
    fit = sm.OLS(data["value"].to_numpy(float), x).fit()
    ci = np.asarray(fit.conf_int(0.05))
    method = "statsmodels OLS, t tests"
    note = "; ".join(notes)
    df = float(fit.df_resid)
    rows = [row(name, float(fit.params.iloc[i]), float(fit.bse.iloc[i]), float(fit.tvalues.iloc[i]), df,
                float(fit.pvalues.iloc[i]), float(ci[i, 0]), float(ci[i, 1]), method, note)
            for i, name in enumerate(x.columns)]
    rows.append(row("residual_variance", float(fit.scale), df=df, method=method, note=note))
    return pd.DataFrame(rows, columns=BASELINE_MODEL_COLUMNS)


def baseline_alpha_models(values: pd.DataFrame, samples: pd.DataFrame, subjects: pd.DataFrame,
                          baseline: str, *, response_column: str = "response",
                          cohort_column: str = "cohort", covariates: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`fit_baseline_model` of every α metric on the baseline samples.

    Returns
    -------
    DataFrame
        Columns :data:`BASELINE_MODEL_COLUMNS`, metrics in the column order of `values`.
    """
    frame, metrics = _baseline_frame(values, samples, subjects, baseline, response_column, cohort_column,
                                     covariates)
    tables = [fit_baseline_model(frame[["response", "cohort", *covariates]].assign(value=frame[m].to_numpy(float)),
                                 str(m), covariates) for m in metrics]
    if not tables:
        return pd.DataFrame(columns=BASELINE_MODEL_COLUMNS)
    return pd.concat(tables, ignore_index=True)


def baseline_alpha_comparison(values: pd.DataFrame, samples: pd.DataFrame, subjects: pd.DataFrame,
                              baseline: str, has_response: bool,
                              level: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables of a baseline-only study's α step, each led by a ``timepoint`` column.

    The responder tests (:func:`baseline_alpha_tests`; empty without a response) and the
    baseline models (:func:`baseline_alpha_models`), with ``significant`` at `level`
    (never for the intercept or the residual variance).

    Returns
    -------
    tests, models : DataFrame
    """
    if has_response:
        tests = baseline_alpha_tests(values, samples, subjects, baseline, "response", "cohort")
    else:
        tests = pd.DataFrame(columns=BASELINE_TEST_COLUMNS)
    tests["significant"] = call_significant(tests["p_value"], level)
    models = baseline_alpha_models(values, samples, subjects, baseline)
    models["significant"] = call_significant(models["p_value"], level,
                                             ~models["term"].isin(["Intercept", "residual_variance"]))
    return tuple(table.assign(timepoint=baseline)[["timepoint"] + list(table.columns)]
                 for table in (tests, models))
