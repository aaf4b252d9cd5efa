"""Differential-testing engine: one contrast, one modality, every feature at once.

:func:`run_contrast` takes a feature table (samples x features, original
scale), the sample sheet, optional responder labels and a contrast such as
``{"name": "post_vs_baseline", "pre": "baseline", "post": "post"}`` and runs

* ``paired_t``, term ``timepoint[post]``: mean within-subject change (post - pre);
* ``wilcoxon``, ``timepoint[post]``: signed-rank test; effect = Hodges-Lehmann change;
* ``lmm``, ``timepoint[post]`` (and further timepoints): change over time using
  all samples (unbalanced subjects allowed);
* ``lmm``, ``timepoint[post]:response[responder]``: does the change differ in
  responders;
* ``lmm``, ``response[responder]``: responders vs non-responders at ``pre``
  (from the interaction model);
* ``ols``, ``response[responder]``: baseline difference adjusted for covariates;
* ``mann_whitney``, ``response[responder]``: unadjusted baseline difference;
  effect = Hodges-Lehmann shift;
* compositions only (``presence_tests=True``), presence/absence beside abundance
  (:mod:`gutaxis.differential.prevalence`): ``presence_mcnemar`` (``timepoint[post]``, exact
  McNemar on the discordant pairs), ``presence_interaction``
  (``timepoint[post]:response[responder]``, the discordant pairs of responders
  vs non-responders) and ``presence_fisher`` (``response[responder]`` at
  ``pre``, Fisher's exact test).

Compositions (``bias_correction="mode"``): every abundance effect is corrected
for the compositional bias with the reference shift of
:mod:`gutaxis.differential.reference_shift` and estimates an *absolute* change under the
assumption that most features do not change; the uncorrected relative effect
stays in the columns ``relative_effect``/``relative_ci_*``/``relative_p`` and
makes no call.

Effects are on the transformed scale (``effect_scale`` says which, and whether
relative or absolute); ``fold_change`` is ``log_base ** effect`` with the
transform's base (see :mod:`gutaxis.differential.transforms`). Benjamini-Hochberg q values
are computed within each family = modality x contrast x method x term (the
``family`` column). ``sensitivity_agrees`` (``sensitivity="rank_tests"``): for a
called parametric row, whether the rank test of the same contrast (Wilcoxon for
the change, Mann-Whitney for the baseline difference) itself calls the same
direction at q < alpha. Features that could not be tested go to ``untested``
with the reason; samples not used go to ``dropped_samples``; nothing is dropped
silently.

The two mixed models are ``y ~ timepoint + covariates + (1|subject)`` on all
subjects and ``y ~ timepoint * response + covariates + (1|subject)`` on
subjects with a response label; the exact formulas fitted are returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
from scipy import special, stats
from statsmodels.stats.multitest import multipletests

from gutaxis.clinical.checks import NON_RESPONDER, RESPONDER
from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.settings import with_overrides
from gutaxis.stats.mixed import build_design, fit_mixed, fitted_formula
from gutaxis.io.pairing import paired_design
from gutaxis.stats.paired import (average_ranks, hodges_lehmann, paired_differences,
                                  paired_t_test, wilcoxon_signed_rank)
from gutaxis.differential.prevalence import (PRESENCE_METHODS, discordant_interaction_test,
                                discordant_pairs, fisher_presence_test, paired_presence_test,
                                presence_matrix)
from gutaxis.differential.reference_shift import (ASSUMPTION, WELSCH_BANDWIDTH, kernel_mode,
                                     reference_feature)
from gutaxis.differential.transforms import TransformResult, transform_table

RESULT_COLUMNS = [
    "feature", "annotation", "modality", "contrast", "term", "method", "n_subjects",
    "n_pairs", "prevalence", "mean_abundance", "effect", "ci_low", "ci_high", "p", "q",
    "direction", "fold_change", "fold_change_ci_low", "fold_change_ci_high",
    "effect_scale", "sensitivity_agrees", "family", "model", "note",
    "relative_effect", "relative_ci_low", "relative_ci_high", "relative_p", "reference_shift",
    "prevalence_q", "prevalence_direction", "joint_call",
]
UNTESTED_COLUMNS = ["feature", "annotation", "modality", "contrast", "method", "reason",
                    "n_subjects", "n_pairs"]
DROPPED_COLUMNS = ["sample_id", "subject_id", "timepoint", "analysis", "reason"]
METHOD_ORDER = ["paired_t", "wilcoxon", "lmm", "ols", "mann_whitney", "presence_mcnemar",
                "presence_interaction", "presence_fisher"]
#: presence calls by term kind: time (lost/gained), interaction (the group gains or loses the
#: feature more often than the reference), group at baseline (more/less prevalent)
PRESENCE_LABELS = {
    "time": {"up": "gained", "down": "lost", "none": "none"},
    "interaction": {"up": "more_gained", "down": "more_lost", "none": "none"},
    "group": {"up": "more_prevalent", "down": "less_prevalent", "none": "none"},
}
#: the rank test whose call confirms a parametric row of the same term (``sensitivity_agrees``)
SENSITIVITY_METHODS = ("rank_tests", "none")
#: bias corrections of compositional effects
BIAS_CORRECTIONS = ("mode", "none")
#: the ``contrast`` of the baseline responder comparison of a study without contrasts
BASELINE_NAME = "baseline"


@dataclass(frozen=True)
class ContrastSettings:
    """How :func:`run_contrast` and :func:`run_baseline` test one table (the data stay
    arguments).

    Attributes
    ----------
    alpha : float
        q threshold for ``direction`` and for the sensitivity agreement.
    min_pairs : int
        Minimum complete pairs (paired tests) or subjects with repeated samples
        (mixed models) for a feature to be tested.
    min_group_size : int
        Minimum non-missing values per response group at baseline.
    methods : tuple of {"paired", "mixed", "baseline"}
    wilcoxon_options : dict
        ``zero_method``, ``correction``, ``method`` of the signed-rank test
        (default scipy's: "wilcox", False, "auto").
    effect : {"hodges_lehmann", "mean"}
        Effect reported on rank-test rows.
    confidence : float
        Level of every confidence interval.
    sensitivity : {"rank_tests", "none"}
        ``rank_tests``: ``sensitivity_agrees`` of a called parametric row says
        whether the rank test of the same term calls the same direction.
    mixed_df : {"satterthwaite", "between_within", "z"}
        Reference distribution of the mixed-model tests (``satterthwaite``: SEs and
        degrees of freedom as lme4/lmerTest, :func:`gutaxis.stats.mixed.fit_mixed`).
    random_effects : tuple of str
        Grouping columns of the mixed models' random intercepts: ``subject_id`` and
        any further sample-sheet or subjects-table column (site, batch; nested or
        crossed); samples missing one are dropped from the mixed models with the reason.
    bias_correction : {"mode", "none"}
        ``mode`` (compositions): every abundance effect is corrected by the
        reference shift (:mod:`gutaxis.differential.reference_shift`) of its method and
        term, and estimates an absolute change if most features do not change; the
        relative effect moves to ``relative_*``.
    presence_tests : bool
        Add the presence/absence tests (compositions, where 0 means not detected).
    covariates : tuple of str
        Adjustment covariates (columns of samples, subjects or responders) of the
        mixed models and the baseline OLS; constant ones are dropped with a note.
    response_column : str
        Which responder definition (column of the responders table) to use.
    annotation_column : str, optional
        Column of the annotations filling ``annotation`` (default: the first of
        ``name``, ``lineage``, ``annotation`` present).
    modality : str
        Label written in every row (part of the BH family).
    file_table, file_samples : str
        Names used in error messages.
    """

    alpha: float = 0.1
    min_pairs: int = 5
    min_group_size: int = 3
    methods: tuple = ("paired", "mixed", "baseline")
    wilcoxon_options: Mapping = field(default_factory=dict)
    effect: str = "hodges_lehmann"
    confidence: float = 0.95
    sensitivity: str = "rank_tests"
    mixed_df: str = "satterthwaite"
    random_effects: tuple = ("subject_id",)
    bias_correction: str = "none"
    presence_tests: bool = False
    covariates: tuple = ("cohort",)
    response_column: str = "dcr_recist"
    annotation_column: str | None = None
    modality: str = ""
    file_table: str = "feature table"
    file_samples: str = "samples.tsv"

    def __post_init__(self):
        # sequences from a config or a caller become tuples, so settings compare and print alike
        for name in ("methods", "random_effects", "covariates"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))
        object.__setattr__(self, "wilcoxon_options", dict(self.wilcoxon_options or {}))

    @classmethod
    def from_config(cls, section: Mapping, **overrides) -> "ContrastSettings":
        """Settings from the config's ``differential`` section (keys named as the
        attributes; ``wilcoxon_zero_method`` becomes ``wilcoxon_options``), then
        ``overrides`` (what the section does not hold: response column, modality,
        sensitivity of the modality's kind, file names)."""
        names = {f.name for f in fields(cls)} - {"sensitivity"}  # per kind in the config
        values = {key: section[key] for key in names if key in section}
        if "wilcoxon_zero_method" in section:
            values["wilcoxon_options"] = {"zero_method": section["wilcoxon_zero_method"]}
        return cls(**(values | overrides))

    @property
    def hl_effect(self) -> bool:
        """Whether rank-test rows report the Hodges-Lehmann effect (else the mean or
        median difference)."""
        return self.effect == "hodges_lehmann"

    @property
    def corrected(self) -> bool:
        """Whether abundance effects are corrected for the compositional bias."""
        return self.bias_correction == "mode"

    @property
    def extra_groups(self) -> tuple:
        """Random-intercept grouping columns besides ``subject_id``."""
        return tuple(g for g in self.random_effects if g != "subject_id")


@dataclass(frozen=True)
class DifferentialResult:
    """Everything one contrast produced.

    Attributes
    ----------
    results : pandas.DataFrame
        One row per feature x method x term (columns :data:`RESULT_COLUMNS`).
    untested : pandas.DataFrame
        Features not tested by a method, with the reason.
    formulas : dict
        Model name -> formula actually fitted (after dropping constant covariates).
    model_fits : pandas.DataFrame
        Per feature and mixed model: status (ok / boundary / not_converged /
        failed), variance components, REML log-likelihood, note.
    dropped_samples : pandas.DataFrame
        Samples at the contrast's timepoints not used by an analysis, with reason.
    notes : pandas.DataFrame
        ``step, message``: covariates dropped, sensitivity failures, timings.
    transform : str
        Description of the transform applied.
    """

    results: pd.DataFrame
    untested: pd.DataFrame
    formulas: dict
    model_fits: pd.DataFrame
    dropped_samples: pd.DataFrame
    notes: pd.DataFrame
    transform: str
    coefficients: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: ``(method, term) -> reference feature`` (per-sample values) of each bias-corrected family
    references: dict = field(default_factory=dict)

    @property
    def formula(self) -> str:
        """All fitted formulas, one ``name: formula`` per line."""
        return "\n".join(f"{k}: {v}" for k, v in self.formulas.items())

    def formula_table(self) -> pd.DataFrame:
        """``model, feature, formula``: each model's formula (``feature`` empty), then the
        formula each feature was fitted with in each mixed model (inestimable columns left
        out for that feature)."""
        requested = pd.DataFrame({"model": list(self.formulas), "feature": "",
                                  "formula": list(self.formulas.values())})
        fits = self.model_fits
        if fits.empty or "formula" not in fits:
            return requested
        per_feature = pd.DataFrame({"model": fits["model"].to_numpy(),
                                    "feature": fits["feature"].astype(str).to_numpy(),
                                    "formula": fits["formula"].to_numpy()})
        return pd.concat([requested, per_feature], ignore_index=True)


# --------------------------------------------------------------------------
# Group comparisons at one timepoint (vectorised across features)
# --------------------------------------------------------------------------

def ols_fit(values: np.ndarray, design: pd.DataFrame, confidence: float = 0.95) -> dict:
    r"""Ordinary least squares of every column of ``values`` on one design.

    .. math:: \hat\beta = (X'X)^{-1}X'y,\quad
       \widehat{\mathrm{se}}(\hat\beta_j) = \sqrt{\hat\sigma^2 [(X'X)^{-1}]_{jj}},
       \quad \hat\sigma^2 = \mathrm{RSS}/(n-p)

    Complete features are solved together with one ``lstsq`` call; features
    with missing values use per-feature masked normal equations (batched).

    Parameters
    ----------
    values : ndarray, shape (n, n_features)
    design : pandas.DataFrame, shape (n, p)
    confidence : float

    Returns
    -------
    dict
        Arrays of shape (n_features, p): ``estimate, se, t, p, ci_low,
        ci_high``; shape (n_features,): ``n, df``, ``full_rank`` (bool).
        Equal to ``statsmodels.OLS(y, X).fit()`` per feature.

    References
    ----------
    Seber, G. A. F. & Lee, A. J. (2003). Linear Regression Analysis, 2nd ed. Wiley.
    """
    X = design.to_numpy(dtype=float)
    Y = np.asarray(values, dtype=float)
    n_obs, p = X.shape
    F = Y.shape[1]
    present = ~np.isnan(Y)
    complete = present.all(axis=0)
    est = np.full((F, p), np.nan)
    var_diag = np.full((F, p), np.nan)
    rss = np.full(F, np.nan)
    n = present.sum(axis=0)
    full_rank = np.zeros(F, dtype=bool)
    if complete.any():
        rank = np.linalg.matrix_rank(X)
        if rank == p:
            coef, _, _, _ = np.linalg.lstsq(X, Y[:, complete], rcond=None)
            resid = Y[:, complete] - X @ coef
            est[complete] = coef.T
            rss[complete] = (resid * resid).sum(axis=0)
            var_diag[complete] = np.diag(np.linalg.inv(X.T @ X))
            full_rank[complete] = True
    partial = np.flatnonzero(~complete)
    if partial.size:
        mask = present[:, partial].astype(float)
        Y0 = np.where(present[:, partial], Y[:, partial], 0.0)
        XtX = (mask.T @ (X[:, :, None] * X[:, None, :]).reshape(n_obs, p * p)).reshape(-1, p, p)
        Xty = Y0.T @ X
        diag = np.einsum("fpp->fp", XtX)
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = XtX / np.sqrt(diag[:, :, None] * diag[:, None, :])
        ok = (diag > 0).all(axis=1) & (np.linalg.eigvalsh(np.nan_to_num(scaled))[:, 0] > 1e-10)
        ok &= n[partial] > p
        idx = partial[ok]
        if idx.size:
            inv = np.linalg.inv(XtX[ok])
            coef = np.einsum("fpq,fq->fp", inv, Xty[ok])
            resid = np.where(present[:, idx], Y[:, idx] - X @ coef.T, 0.0)
            est[idx] = coef
            rss[idx] = (resid * resid).sum(axis=0)
            var_diag[idx] = np.einsum("fpp->fp", inv)
            full_rank[idx] = True
    df = (n - p).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma2 = rss / df
        se = np.sqrt(var_diag * sigma2[:, None])
        t = est / se
        pval = 2 * special.stdtr(df[:, None], -np.abs(t))
        half = special.stdtrit(df[:, None], 0.5 + confidence / 2) * se
    return dict(estimate=est, se=se, t=t, p=pval, ci_low=est - half, ci_high=est + half,
                n=n, df=df, full_rank=full_rank)


def _compress_columns(values: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` non-missing values of each selected column (NaN sorted last)."""
    sub = values[:, cols]
    keep = np.argsort(np.isnan(sub), axis=0, kind="stable")[:n]
    return np.take_along_axis(sub, keep, axis=0)


def mann_whitney(group: np.ndarray, reference: np.ndarray) -> pd.DataFrame:
    """Mann-Whitney U test per feature, as scipy decides it for each feature alone.

    ``scipy.stats.mannwhitneyu(method="auto")`` chooses exact vs normal
    approximation once for a whole array (exact when a sample has <= 8 values
    and *no value of the array* is tied). Features are therefore grouped by
    (n_group, n_reference, has ties) and scipy's vectorised test is run on each
    group, which gives every feature the p value of its own one-feature call.

    Parameters
    ----------
    group, reference : ndarray, shape (n1, F) and (n2, F)
        Values of the two groups; NaN are omitted per feature.

    Returns
    -------
    pandas.DataFrame
        ``n_group, n_reference, u, p`` per feature (``u`` for ``group``).

    References
    ----------
    Mann, H. B. & Whitney, D. R. (1947). Ann. Math. Statist. 18, 50-60.
    """
    F = group.shape[1]
    n1 = (~np.isnan(group)).sum(axis=0)
    n2 = (~np.isnan(reference)).sum(axis=0)
    _, ties = average_ranks(np.vstack([group, reference]))
    has_ties = (ties > 1).any(axis=0)
    u = np.full(F, np.nan)
    p = np.full(F, np.nan)
    keys = pd.DataFrame({"n1": n1, "n2": n2, "t": has_ties})
    for (a, b, _), rows in keys.groupby(["n1", "n2", "t"], sort=True):
        if a == 0 or b == 0:
            continue
        cols = rows.index.to_numpy()
        res = stats.mannwhitneyu(_compress_columns(group, cols, a),
                                 _compress_columns(reference, cols, b), axis=0)
        u[cols], p[cols] = res.statistic, res.pvalue
    return pd.DataFrame({"n_group": n1, "n_reference": n2, "u": u, "p": p})


def hodges_lehmann_shift(group: np.ndarray, reference: np.ndarray,
                         confidence: float = 0.95, max_elements: int = 4_000_000) -> pd.DataFrame:
    r"""Two-sample Hodges-Lehmann shift ``median(x_i - y_j)`` with its CI, per feature.

    The CI is bounded by the ``k``-th smallest and largest of the
    :math:`n_1 n_2` differences, ``k`` from the normal approximation to the
    Mann-Whitney null distribution with continuity correction,
    :math:`k = \lceil n_1n_2/2 - 0.5 - z_{1-\alpha/2}\sqrt{n_1n_2(n_1+n_2+1)/12}\rceil`.

    The order statistics are selected without writing the differences down:
    :func:`gutaxis.stats.rank_shift.difference_order_statistics` searches the sorted
    matrix :math:`x_{(i)} - y_{(j)}` in :math:`O(n \log n)` per feature
    (Johnson & Mizoguchi 1978) and returns the very floats a full sort gives;
    features with at most 2,000 differences are sorted directly
    (``max_elements`` differences held in memory at once).

    References
    ----------
    Hollander, M., Wolfe, D. A. & Chicken, E. (2014). Nonparametric Statistical
    Methods, 3rd ed., sec. 4.3. Johnson, D. B. & Mizoguchi, T. (1978).
    Selecting the Kth element in X + Y and X1 + X2 + ... + Xm. SIAM J. Comput.
    7, 147-153.
    """
    from gutaxis.stats.rank_shift import difference_order_statistics

    n1 = (~np.isnan(group)).sum(axis=0)
    n2 = (~np.isnan(reference)).sum(axis=0)
    m = n1 * n2
    z = special.ndtri(0.5 + confidence / 2)
    with np.errstate(invalid="ignore"):
        k = np.ceil(m / 2 - 0.5 - z * np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0))
    k = np.clip(np.nan_to_num(k), 1, np.maximum(m, 1)).astype(np.int64)
    ranks = np.where(m > 0, np.stack([(m - 1) // 2, m // 2, k - 1, m - k]), 0)
    mid_low, mid_high, lo, hi = difference_order_statistics(group, reference, ranks,
                                                            max_elements=max_elements)
    return pd.DataFrame({"estimate": 0.5 * (mid_low + mid_high), "ci_low": lo, "ci_high": hi})


def benjamini_hochberg(results: pd.DataFrame, by: str = "family") -> np.ndarray:
    """BH q values within each family (statsmodels ``multipletests(fdr_bh)``)."""
    q = np.full(len(results), np.nan)
    for _, idx in results.groupby(by, sort=True).indices.items():
        pv = results["p"].to_numpy()[idx]
        ok = ~np.isnan(pv)
        if ok.any():
            sub = np.full(idx.size, np.nan)
            sub[ok] = multipletests(pv[ok], method="fdr_bh")[1]
            q[idx] = sub
    return q


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------

def _validate(table, samples, contrast, responders, response_column, covariates, subjects,
              file_table, file_samples):
    problems = ProblemCollector()
    if not isinstance(table, pd.DataFrame):
        problems.add(file_table, "whole table", "not a table",
                     "pass a samples x features DataFrame")
        problems.raise_if_any()
    if table.index.duplicated().any():
        problems.add(file_table, f"samples {list(table.index[table.index.duplicated()][:5])}",
                     "sample ids repeated", "give every sample one row")
    if table.columns.duplicated().any():
        problems.add(file_table, f"features {list(table.columns[table.columns.duplicated()][:5])}",
                     "feature ids repeated", "give every feature one column")
    for key in ("name", "pre", "post"):
        if key not in contrast:
            problems.add("config", f"contrast key '{key}'", "missing",
                         "write the contrast as {name: ..., pre: ..., post: ...}")
    missing = [c for c in ("sample_id", "subject_id", "timepoint") if c not in samples.columns]
    if missing:
        problems.add(file_samples, f"columns {missing}", "required column(s) missing",
                     "add sample_id, subject_id and timepoint")
    problems.raise_if_any()
    if contrast["post"] is not None and contrast["pre"] == contrast["post"]:
        problems.add("config", f"contrast {contrast['name']}",
                     "pre and post are the same timepoint", "name two different timepoints")
    sheet_ids = set(samples["sample_id"].astype(str))
    unknown = [s for s in table.index.astype(str) if s not in sheet_ids]
    if unknown:
        problems.add(file_samples, f"samples {unknown[:5]}",
                     f"{len(unknown)} sample(s) of {file_table} are not in the sample sheet",
                     "add them to the sample sheet or remove them from the table")
    for tp in [contrast["pre"], contrast["post"], *contrast.get("timepoints", [])]:
        if tp is not None and not (samples["timepoint"] == tp).any():
            problems.add(file_samples, "column 'timepoint'", f"no sample at timepoint '{tp}'",
                         "check the contrast's timepoints against the sample sheet")
    if responders is not None:
        for col in ("subject_id", response_column):
            if col not in responders.columns:
                problems.add("responders.tsv", f"column '{col}'", "missing",
                             f"add it or choose another response_column than '{response_column}'")
        if response_column in responders.columns:
            labels = responders[response_column].dropna().astype(str)
            bad = sorted(set(labels) - {RESPONDER, NON_RESPONDER, ""})
            if bad:
                problems.add("responders.tsv", f"column '{response_column}'",
                             f"unknown labels {bad[:5]}",
                             "use 'responder', 'non_responder' or leave empty")
    sources = [samples.columns]
    if subjects is not None:
        sources.append(subjects.columns)
    if responders is not None:
        sources.append(responders.columns)
    for cov in covariates:
        if not any(cov in cols for cols in sources):
            problems.add("config", f"covariate '{cov}'",
                         "not a column of the sample sheet, subjects or responders table",
                         "remove it from the covariates or add the column")
    problems.raise_if_any()


def _sample_frame(table, samples, responders, response_column, covariates, subjects):
    """Per-sample subject, timepoint, response label and covariates."""
    sheet = samples.copy()
    sheet["sample_id"] = sheet["sample_id"].astype(str)
    sheet = sheet.drop_duplicates("sample_id").set_index("sample_id")
    frame = sheet.loc[table.index.astype(str), ["subject_id", "timepoint"]].copy()
    frame.index.name = "sample_id"  # pair_samples reads it back as a column
    frame["subject_id"] = frame["subject_id"].astype("string")
    by_subject = []
    if subjects is not None:
        by_subject.append(subjects.drop_duplicates("subject_id").set_index("subject_id"))
    if responders is not None:
        by_subject.append(responders.drop_duplicates("subject_id").set_index("subject_id"))
    for cov in covariates:
        if cov in sheet.columns:
            frame[cov] = sheet.loc[frame.index, cov].to_numpy()
            continue
        for src in by_subject:
            if cov in src.columns:
                src = src.copy()
                src.index = src.index.astype(str)
                frame[cov] = frame["subject_id"].map(src[cov]).to_numpy()
                break
    if responders is not None:
        lab = responders.drop_duplicates("subject_id").set_index("subject_id")[response_column]
        lab.index = lab.index.astype(str)
        lab = lab.replace("", np.nan)
        frame["response"] = frame["subject_id"].map(lab).to_numpy()
    return frame


def _prepare_covariates(frame: pd.DataFrame, covariates, analysis: str, notes: list):
    """Drop samples with missing covariates and covariates constant in ``frame``."""
    dropped = []
    used = []
    for cov in covariates:
        missing = frame[cov].isna() | (frame[cov].astype(str) == "")
        if missing.any():
            dropped.append(frame[missing].assign(reason=f"missing covariate '{cov}'"))
            frame = frame[~missing]
    for cov in covariates:
        if frame[cov].nunique() < 2:
            notes.append((analysis, f"covariate '{cov}' dropped from the model: it has one value "
                                    "in the samples analysed"))
            continue
        used.append(cov)
        if not pd.api.types.is_numeric_dtype(frame[cov]):
            frame = frame.assign(**{cov: pd.Categorical(frame[cov].astype(str),
                                                         sorted(frame[cov].astype(str).unique()))})
    return frame, used, dropped


def _dropped_rows(frame: pd.DataFrame, analysis: str, reason=None) -> pd.DataFrame:
    out = pd.DataFrame({"sample_id": frame.index.astype(str),
                        "subject_id": frame["subject_id"].astype(str).to_numpy(),
                        "timepoint": frame["timepoint"].astype(str).to_numpy(),
                        "analysis": analysis})
    out["reason"] = frame["reason"].to_numpy() if reason is None else reason
    return out


def _abundance_summary(raw: pd.DataFrame, sample_ids) -> tuple[np.ndarray, np.ndarray]:
    """Prevalence (fraction > 0 among non-missing) and mean on the original scale."""
    vals = raw.loc[sample_ids].to_numpy(dtype=float)
    present = ~np.isnan(vals)
    with np.errstate(invalid="ignore", divide="ignore"):
        prevalence = (vals > 0).sum(axis=0) / present.sum(axis=0)
        mean = np.nansum(vals, axis=0) / present.sum(axis=0)
    return prevalence, mean


def _rows(features, method, term, model, **cols) -> pd.DataFrame:
    out = pd.DataFrame({"feature": np.asarray(features, dtype=str), "method": method,
                        "term": term, "model": model})
    for key, val in cols.items():
        out[key] = val
    return out


def _untested(features, method, reasons, n_subjects, n_pairs) -> pd.DataFrame:
    return pd.DataFrame({"feature": np.asarray(features, dtype=str), "method": method,
                         "reason": reasons, "n_subjects": n_subjects, "n_pairs": n_pairs})


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------

def _paired_analysis(raw, tvals, frame, pre, post, settings, reference=None):
    """Paired t and Wilcoxon rows of the change ``post - pre``.

    With ``reference`` (per-sample values of the reference feature), the
    change of ``tvals - reference`` is tested (the bias-corrected log-ratio),
    and a pair where the feature is not detected (0) at both timepoints
    contributes a change of exactly 0: below detection twice is no evidence of
    change, whereas the reference moving between the two samples would
    otherwise turn it into one.
    """
    min_pairs, confidence = settings.min_pairs, settings.confidence
    design = paired_design(frame.reset_index(), pre, post)
    dropped = [_dropped_rows(frame.loc[design.unpaired["sample_id"]], "paired",
                             design.unpaired["reason"].to_numpy())] if len(design.unpaired) else []
    if reference is None:
        diff = paired_differences(tvals, design.pairs)
    else:
        diff = corrected_changes(raw, tvals, reference, design.pairs)
    features = tvals.columns.astype(str)
    n_pairs = (~diff.isna()).sum(axis=0).to_numpy()
    d = diff.to_numpy()
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(d, axis=0, initial=-np.inf) - np.nanmin(d, axis=0, initial=np.inf)
    too_few = n_pairs < min_pairs
    flat = ~too_few & ~(spread > 0)
    reasons = np.where(too_few, [f"too few pairs (n={k} < min_pairs={min_pairs})"
                                 for k in n_pairs], "zero variance of within-subject differences")
    bad = too_few | flat
    untested = [_untested(features[bad], m, reasons[bad], n_pairs[bad], n_pairs[bad])
                for m in ("paired_t", "wilcoxon")]
    ok = np.flatnonzero(~bad)
    rows = []
    if ok.size:
        prevalence, mean_ab = _abundance_summary(
            raw, list(design.pairs["pre_sample"]) + list(design.pairs["post_sample"]))
        term = f"timepoint[{post}]"
        tt = paired_t_test(d[:, ok], confidence)
        common = dict(n_subjects=n_pairs[ok], n_pairs=n_pairs[ok], prevalence=prevalence[ok],
                      mean_abundance=mean_ab[ok])
        rows.append(_rows(features[ok], "paired_t", term, f"paired t on {post} - {pre}",
                          effect=tt["mean"].to_numpy(), ci_low=tt["ci_low"].to_numpy(),
                          ci_high=tt["ci_high"].to_numpy(), p=tt["p"].to_numpy(), **common))
        wx = wilcoxon_signed_rank(d[:, ok], **settings.wilcoxon_options)
        note = "p: " + wx["p_method"].astype(str).to_numpy()
        if settings.hl_effect:
            hl = hodges_lehmann(d[:, ok], confidence)
            eff = dict(effect=hl["estimate"].to_numpy(), ci_low=hl["ci_low"].to_numpy(),
                       ci_high=hl["ci_high"].to_numpy())
            note = note + "; effect: Hodges-Lehmann"
        else:
            eff = dict(effect=tt["mean"].to_numpy(), ci_low=tt["ci_low"].to_numpy(),
                       ci_high=tt["ci_high"].to_numpy())
            note = note + "; effect: mean difference"
        rows.append(_rows(features[ok], "wilcoxon", term,
                          f"Wilcoxon signed-rank on {post} - {pre}", p=wx["p"].to_numpy(),
                          note=note, **eff, **common))
    return design, rows, untested, dropped


def _mixed_analysis(raw, tvals, frame, timepoints, settings, interaction, notes):
    """Fit the LMM family; returns rows, untested, dropped, formulas, fits, coefficients.

    ``interaction``: also the model with ``timepoint * response`` (responder labels given).

    Per feature, a fixed-effect column not estimable on its observed rows is dropped
    (:func:`gutaxis.stats.mixed.estimable_columns`) and the rest fitted: a dropped term of
    interest is an untested row, and ``formula`` (fits) and ``model`` (rows) give the
    formula fitted for that feature.
    """

    covariates, min_pairs, extra_groups = settings.covariates, settings.min_pairs, settings.extra_groups
    rows, untested, dropped, fits, coefs, formulas = [], [], [], [], [], {}
    features = tvals.columns.astype(str)
    base = frame[frame["timepoint"].isin(timepoints)].copy()
    specs = [("lmm_time", False)]
    if interaction:
        specs.append(("lmm_response", True))
    for model_name, with_response in specs:
        data = base
        if with_response:
            unlabelled = data["response"].isna()
            if unlabelled.any():
                dropped.append(_dropped_rows(data[unlabelled], model_name,
                                             "no response label (not evaluable)"))
            data = data[~unlabelled]
        data, used, dropped_cov = _prepare_covariates(data, covariates, model_name, notes)
        dropped += [_dropped_rows(x, model_name) for x in dropped_cov]
        for group in extra_groups:
            no_group = data[group].isna() | (data[group].astype(str) == "")
            if no_group.any():
                dropped.append(_dropped_rows(data[no_group], model_name,
                                             f"missing random-effect column '{group}'"))
                data = data[~no_group]
        if data["timepoint"].nunique() < 2 or data["subject_id"].nunique() < 2:
            notes.append((model_name, "skipped: fewer than two timepoints or subjects"))
            continue
        data = data.assign(timepoint=pd.Categorical(data["timepoint"], list(timepoints)))
        rhs = "timepoint"
        if with_response:
            if data["response"].nunique() < 2:
                notes.append((model_name, "skipped: fewer than two response groups"))
                continue
            data = data.assign(response=pd.Categorical(data["response"],
                                                       [NON_RESPONDER, RESPONDER]))
            rhs = "timepoint * response"
        rhs = " + ".join([rhs, *used])
        random = " + ".join(f"(1 | {g})" for g in ("subject_id", *extra_groups))
        formula = f"feature ~ {rhs} + {random}"
        formulas[model_name] = formula
        X = build_design(data, rhs)
        Y = tvals.loc[data.index]
        groups = (data[["subject_id", *extra_groups]].astype(str) if extra_groups
                  else data["subject_id"].astype(str).to_numpy())
        fit = fit_mixed(Y, X, groups, confidence=settings.confidence, df_method=settings.mixed_df)
        # per feature, the formula actually fitted (inestimable columns dropped)
        feature_formula = fitted_formula(formula, X.attrs["terms"], fit.fits["fitted_terms"],
                                         random=random)
        fit_table = fit.fits.assign(model=model_name, formula=feature_formula)
        fits.append(fit_table)
        coefs.append(fit.coefficients.assign(model=model_name))
        status = fit_table["status"].to_numpy()
        n_rep = fit_table["n_repeated_groups"].to_numpy()
        n_grp = fit_table["n_groups"].to_numpy()
        too_few = n_rep < min_pairs
        failed = np.isin(status, ["failed", "not_converged"])
        bad = too_few | failed
        reasons = np.where(too_few, [f"too few subjects with repeated samples (n={k} < "
                                     f"min_pairs={min_pairs})" for k in n_rep],
                           "mixed model " + fit_table["status"].astype(str).to_numpy() + ": "
                           + fit_table["note"].astype(str).to_numpy())
        untested.append(_untested(features[bad], "lmm", reasons[bad], n_grp[bad], n_rep[bad])
                        .assign(model=feature_formula[bad]))
        ok_features = set(features[~bad])
        if with_response:
            wanted = [t for t in X.columns if t.startswith("response[")
                      or (t.startswith("timepoint[") and ":response[" in t)]
        else:
            wanted = [t for t in X.columns if t.startswith("timepoint[")]
        # a term of interest not estimable on a fitted feature's observed rows: untested
        lost_terms = (fit_table.loc[~bad, ["feature_id", "dropped_terms", "dropped_reasons"]]
                      .assign(model=feature_formula[~bad], n_groups=n_grp[~bad],
                              n_repeated=n_rep[~bad]))
        lost_terms = lost_terms[lost_terms["dropped_terms"] != ""]
        if len(lost_terms):
            lost_terms = (lost_terms.assign(term=lost_terms["dropped_terms"].str.split(";"),
                                            why=lost_terms["dropped_reasons"].str.split(";"))
                          .explode(["term", "why"]))
            lost_terms = lost_terms[lost_terms["term"].isin(wanted)]
            untested.append(_untested(
                lost_terms["feature_id"], "lmm",
                ("mixed model: term " + lost_terms["term"] + " not estimable on the rows observed "
                 "for this feature (" + lost_terms["why"] + "); the other terms were fitted")
                .to_numpy(), lost_terms["n_groups"].to_numpy(),
                lost_terms["n_repeated"].to_numpy()).assign(model=lost_terms["model"].to_numpy()))
        co = fit.coefficients
        co = co[co["term"].isin(wanted) & co["feature_id"].isin(ok_features)]
        # a fit whose standard errors cannot be estimated gives no test: list it, never a NaN row
        no_se = ~np.isfinite(co["p"].to_numpy(dtype=float))
        if no_se.any():
            lost = co[no_se]
            info_lost = fit_table.set_index("feature_id").loc[lost["feature_id"]]
            untested.append(_untested(
                lost["feature_id"], "lmm",
                ("mixed model: standard error of " + lost["term"].astype(str)
                 + " not estimable (" + info_lost["status"].astype(str).to_numpy() + ")").to_numpy(),
                info_lost["n_groups"].to_numpy(), info_lost["n_repeated_groups"].to_numpy())
                .assign(model=info_lost["formula"].to_numpy()))
            co = co[~no_se]
        if co.empty:
            continue
        info = fit_table.set_index("feature_id")
        prevalence, mean_ab = _abundance_summary(raw, data.index)
        pos = pd.Series(np.arange(len(features)), index=features)
        fidx = pos.loc[co["feature_id"]].to_numpy()
        st = info.loc[co["feature_id"], "status"].to_numpy()
        rows.append(_rows(co["feature_id"], "lmm", co["term"].to_numpy(),
                          info.loc[co["feature_id"], "formula"].to_numpy(),
                          n_subjects=info.loc[co["feature_id"], "n_groups"].to_numpy(),
                          n_pairs=info.loc[co["feature_id"], "n_repeated_groups"].to_numpy(),
                          prevalence=prevalence[fidx], mean_abundance=mean_ab[fidx],
                          effect=co["estimate"].to_numpy(), ci_low=co["ci_low"].to_numpy(),
                          ci_high=co["ci_high"].to_numpy(), p=co["p"].to_numpy(),
                          note=np.where(st == "boundary",
                                        "random-intercept variance at the boundary 0", "")))
    return rows, untested, dropped, formulas, fits, coefs


def _baseline_analysis(raw, tvals, frame, pre, settings, notes):
    """OLS (adjusted) and Mann-Whitney (unadjusted) rows of responders vs non-responders at
    ``pre``; returns rows, untested, dropped, formulas."""
    min_group_size, confidence = settings.min_group_size, settings.confidence
    rows, untested, dropped, formulas = [], [], [], {}
    features = tvals.columns.astype(str)
    data = frame[frame["timepoint"] == pre]
    unlabelled = data["response"].isna()
    if unlabelled.any():
        dropped.append(_dropped_rows(data[unlabelled], "baseline", "no response label (not "
                                                                    "evaluable)"))
    data = data[~unlabelled]
    data, used, dropped_cov = _prepare_covariates(data, settings.covariates, "baseline", notes)
    dropped += [_dropped_rows(x, "baseline") for x in dropped_cov]
    if data["response"].nunique() < 2:
        notes.append(("baseline", "skipped: fewer than two response groups at baseline"))
        return rows, untested, dropped, formulas
    data = data.assign(response=pd.Categorical(data["response"], [NON_RESPONDER, RESPONDER]))
    rhs = " + ".join(["response", *used])
    formulas["ols_baseline"] = f"feature ~ {rhs}   (samples at '{pre}')"
    X = build_design(data, rhs)
    Y = tvals.loc[data.index].to_numpy(dtype=float)
    is_resp = (data["response"] == RESPONDER).to_numpy()
    n_resp = (~np.isnan(Y[is_resp])).sum(axis=0)
    n_non = (~np.isnan(Y[~is_resp])).sum(axis=0)
    n_all = n_resp + n_non
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(Y, axis=0, initial=-np.inf) - np.nanmin(Y, axis=0, initial=np.inf)
    too_few = np.minimum(n_resp, n_non) < min_group_size
    flat = ~too_few & ~(spread > 0)
    fit = ols_fit(Y, X, confidence)
    rank_bad = ~too_few & ~flat & ~fit["full_rank"]
    reasons = np.select(
        [too_few, flat, rank_bad],
        [np.array([f"too few non-missing values per response group (responders {a}, "
                   f"non-responders {b}; min {min_group_size})" for a, b in zip(n_resp, n_non)]),
         "zero variance at baseline", "design not of full rank after dropping missing values"],
        default="")
    bad = too_few | flat | rank_bad
    for m in ("ols", "mann_whitney"):
        untested.append(_untested(features[bad], m, reasons[bad], n_all[bad], np.nan))
    ok = np.flatnonzero(~bad)
    if not ok.size:
        return rows, untested, dropped, formulas
    term = "response[responder]"
    j = list(X.columns).index(term)
    prevalence, mean_ab = _abundance_summary(raw, data.index)
    common = dict(n_subjects=n_all[ok], n_pairs=np.nan, prevalence=prevalence[ok],
                  mean_abundance=mean_ab[ok])
    rows.append(_rows(features[ok], "ols", term, formulas["ols_baseline"],
                      effect=fit["estimate"][ok, j], ci_low=fit["ci_low"][ok, j],
                      ci_high=fit["ci_high"][ok, j], p=fit["p"][ok, j], **common))
    mw = mann_whitney(Y[is_resp][:, ok], Y[~is_resp][:, ok])
    if settings.hl_effect:
        hl = hodges_lehmann_shift(Y[is_resp][:, ok], Y[~is_resp][:, ok], confidence)
        eff = dict(effect=hl["estimate"].to_numpy(), ci_low=hl["ci_low"].to_numpy(),
                   ci_high=hl["ci_high"].to_numpy(), note="effect: Hodges-Lehmann shift")
    else:
        eff = dict(effect=np.nanmedian(Y[is_resp][:, ok], axis=0)
                   - np.nanmedian(Y[~is_resp][:, ok], axis=0),
                   ci_low=np.nan, ci_high=np.nan, note="effect: difference of medians")
    rows.append(_rows(features[ok], "mann_whitney", term,
                      f"Mann-Whitney U, responder vs non_responder at '{pre}' (unadjusted)",
                      p=mw["p"].to_numpy(), **eff, **common))
    return rows, untested, dropped, formulas


def corrected_changes(raw: pd.DataFrame, values: pd.DataFrame, reference: pd.DataFrame,
                      pairs: pd.DataFrame) -> pd.DataFrame:
    """Within-subject changes of the log-ratio to the reference, as the corrected paired
    tests use them: ``(y - z)_post - (y - z)_pre``, exactly 0 where the feature is not
    detected at either timepoint."""
    diff = paired_differences(_minus(values, reference), pairs)
    both_zero = ((raw.loc[pairs["pre_sample"], values.columns].to_numpy() == 0)
                 & (raw.loc[pairs["post_sample"], values.columns].to_numpy() == 0))
    return diff.mask(both_zero & diff.notna().to_numpy(), 0.0)


def _presence_analysis(raw, frame, design, pre, post, with_response, min_pairs,
                       min_group_size, confidence):
    """Presence/absence tests beside the abundance tests (compositions).

    ``presence_mcnemar`` (paired: exact McNemar on the discordant pairs),
    ``presence_interaction`` (does the share of pairs that gain rather than
    lose the feature differ between responders and non-responders: Fisher's
    exact test on the discordant pairs, the conditional-logistic interaction of
    1:1 matched binary data) and ``presence_fisher`` (detected in responders vs
    non-responders at ``pre``: Fisher's exact test).
    """
    rows, untested = [], []
    features = raw.columns.astype(str)
    present = presence_matrix(raw)
    if design is not None and len(design.pairs):
        pre_p = present.loc[design.pairs["pre_sample"]].to_numpy()
        post_p = present.loc[design.pairs["post_sample"]].to_numpy()
        res = paired_presence_test(pre_p, post_p, confidence)
        n = res["n_pairs"].to_numpy()
        ok = n >= min_pairs
        if (~ok).any():
            untested.append(_untested(features[~ok], "presence_mcnemar",
                                      [f"too few pairs (n={k} < min_pairs={min_pairs})"
                                       for k in n[~ok]], n[~ok], n[~ok]))
        common = dict(n_subjects=n[ok], n_pairs=n[ok], prevalence=np.nan, mean_abundance=np.nan)
        rows.append(_rows(features[ok], "presence_mcnemar", f"timepoint[{post}]",
                          f"exact McNemar test of detection (> 0), {post} vs {pre}",
                          effect=res["effect"].to_numpy()[ok], ci_low=res["ci_low"].to_numpy()[ok],
                          ci_high=res["ci_high"].to_numpy()[ok], p=res["p"].to_numpy()[ok],
                          note=[f"lost in {a}, gained in {b} of {c} pairs" for a, b, c in zip(
                              res["n_lost"].to_numpy()[ok], res["n_gained"].to_numpy()[ok],
                              n[ok])], **common))
        if with_response:
            labels = frame.drop_duplicates("subject_id").set_index("subject_id")["response"]
            lab = design.pairs["subject_id"].astype(str).map(labels)
            keep = lab.notna().to_numpy()
            if lab[keep].nunique() == 2:
                lost, gained = discordant_pairs(pre_p[keep], post_p[keep])
                inter = discordant_interaction_test(
                    lost, gained, (lab[keep] == RESPONDER).to_numpy(), confidence)
                nk = int(keep.sum())
                rows.append(_rows(
                    features, "presence_interaction", f"timepoint[{post}]:response[{RESPONDER}]",
                    "Fisher's exact test: gained vs lost among discordant pairs, responders vs "
                    "non-responders", n_subjects=nk, n_pairs=nk, prevalence=np.nan,
                    mean_abundance=np.nan, effect=inter["effect"].to_numpy(),
                    ci_low=inter["ci_low"].to_numpy(), ci_high=inter["ci_high"].to_numpy(),
                    p=inter["p"].to_numpy()))
    if with_response:
        base = frame[(frame["timepoint"] == pre) & frame["response"].notna()]
        is_resp = (base["response"] == RESPONDER).to_numpy()
        if is_resp.any() and (~is_resp).any():
            vals = present.loc[base.index].to_numpy()
            res = fisher_presence_test(vals[is_resp], vals[~is_resp], confidence)
            n1 = (~np.isnan(vals[is_resp])).sum(axis=0)
            n2 = (~np.isnan(vals[~is_resp])).sum(axis=0)
            ok = np.minimum(n1, n2) >= min_group_size
            if (~ok).any():
                untested.append(_untested(features[~ok], "presence_fisher",
                                          "too few samples per response group", n1[~ok] + n2[~ok],
                                          np.nan))
            rows.append(_rows(features[ok], "presence_fisher", f"response[{RESPONDER}]",
                              f"Fisher's exact test of detection (> 0) at '{pre}', responder vs "
                              "non_responder", n_subjects=(n1 + n2)[ok], n_pairs=np.nan,
                              prevalence=np.nan, mean_abundance=np.nan,
                              effect=res["effect"].to_numpy()[ok],
                              ci_low=res["ci_low"].to_numpy()[ok],
                              ci_high=res["ci_high"].to_numpy()[ok], p=res["p"].to_numpy()[ok]))
    return rows, untested


def _agreement(results: pd.DataFrame, alpha: float, sensitivity: str) -> pd.Series:
    """Whether the rank test of the same term calls the same direction (called rows only).

    A called ``paired_t`` or ``lmm`` row of a ``timepoint[...]`` term is
    confirmed by the ``wilcoxon`` row of the same feature and term, a called
    ``ols`` or ``lmm`` row of ``response[...]`` by the ``mann_whitney`` row:
    True when that rank test itself has q < alpha with the same sign, False
    when it does not; empty for rows not called, for the rank tests
    themselves and for terms without a rank test (interactions).
    """
    agree = pd.Series(pd.NA, index=results.index, dtype="boolean")
    if sensitivity == "none" or results.empty:
        return agree
    term = results["term"]
    partner = np.where(term.str.startswith("response["), "mann_whitney",
                       np.where(term.str.contains(":"), "", "wilcoxon"))
    key = results["feature"] + "|" + term
    rank = results["method"].isin(["wilcoxon", "mann_whitney"])
    rank_key = results.loc[rank, "method"] + "|" + key[rank]
    rank_q = pd.Series(results.loc[rank, "q"].to_numpy(), index=rank_key)
    rank_sign = pd.Series(np.sign(results.loc[rank, "effect"]).to_numpy(), index=rank_key)
    called = (results["method"].isin(["paired_t", "lmm", "ols"]) & (results["q"] < alpha)
              & (partner != ""))
    want = pd.Series(partner, index=results.index)[called] + "|" + key[called]
    q_s, sign_s = want.map(rank_q), want.map(rank_sign)
    found = q_s.notna()
    same = (q_s < alpha) & (sign_s == np.sign(results.loc[called, "effect"]))
    agree[found[found].index] = same[found].to_numpy()
    return agree


def _prepared_table(table: pd.DataFrame, effect: str, transform, transform_options,
                    file_table: str) -> tuple[pd.DataFrame, TransformResult]:
    """The table with text ids and its transform (given, or computed here); the effect
    name checked."""
    if effect not in ("hodges_lehmann", "mean"):
        raise InputError(Problem("config", "effect", f"unknown effect {effect!r}",
                                 "use 'hodges_lehmann' or 'mean'"))
    table = table.copy()
    table.index = table.index.astype(str)
    table.columns = table.columns.astype(str)
    tr = (transform if isinstance(transform, TransformResult)
          else transform_table(table, transform, file=file_table, **(transform_options or {})))
    return table, tr


@dataclass
class _Parts:
    """The pieces of one analysis, gathered method by method, then assembled."""

    rows: list = field(default_factory=list)
    untested: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    fits: list = field(default_factory=list)
    coefs: list = field(default_factory=list)
    formulas: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    #: ``(method, term) -> reference feature`` of each bias-corrected family
    references: dict = field(default_factory=dict)

    def add(self, rows=(), untested=(), dropped=(), formulas=None, fits=(), coefs=()):
        self.rows += rows
        self.untested += untested
        self.dropped += dropped
        self.formulas.update(formulas or {})
        self.fits += fits
        self.coefs += coefs


def run_contrast(table: pd.DataFrame, samples: pd.DataFrame, contrast: dict,
                 transform: str | TransformResult = "clr", transform_options: dict | None = None,
                 responders: pd.DataFrame | None = None, subjects: pd.DataFrame | None = None,
                 annotations: pd.DataFrame | None = None,
                 settings: ContrastSettings | None = None, **overrides) -> DifferentialResult:
    """Run one contrast on one feature table.

    Parameters
    ----------
    table : pandas.DataFrame
        Samples x features on the original scale (fractions for taxa,
        intensities, % of parent...). Index: sample ids.
    samples : pandas.DataFrame
        Sample sheet (``sample_id, subject_id, timepoint`` at least).
    contrast : dict
        ``{"name": ..., "pre": ..., "post": ...}`` and optionally
        ``"timepoints"``: ordered timepoints for the mixed models (default
        ``[pre, post]``; the first is the reference level).
    transform : str or TransformResult
        ``"clr" | "rclr" | "log2" | "logit" | "none"``, or an already
        transformed table.
    transform_options : dict, optional
        Passed to :func:`gutaxis.differential.transforms.transform_table`.
    responders : pandas.DataFrame, optional
        ``subject_id`` + one column per responder definition with values
        ``responder`` / ``non_responder`` / empty. Without it the response
        analyses are skipped.
    subjects : pandas.DataFrame, optional
        Subjects table, a source of covariates.
    annotations : pandas.DataFrame, optional
        Indexed by feature id; ``settings.annotation_column`` fills ``annotation``.
    settings : ContrastSettings, optional
        How to test (default :class:`ContrastSettings`).
    **overrides
        Attributes of :class:`ContrastSettings` replacing those of ``settings``
        (``run_contrast(..., methods=("paired",), alpha=0.05)``).

    Returns
    -------
    DifferentialResult
    """
    settings = with_overrides(settings, ContrastSettings, overrides)
    extra_groups = settings.extra_groups
    if extra_groups and settings.mixed_df == "between_within":
        raise InputError(Problem("config", "key 'differential.mixed_df'",
                                 "between-within degrees of freedom have no definition with "
                                 f"several random intercepts (subject_id, {', '.join(extra_groups)})",
                                 "use satterthwaite or z"))
    _check_options(settings)
    covariates = settings.covariates
    _validate(table, samples, contrast, responders, settings.response_column,
              covariates + extra_groups, subjects, settings.file_table, settings.file_samples)
    table, tr = _prepared_table(table, settings.effect, transform, transform_options,
                                settings.file_table)
    tvals = tr.values
    name, pre, post = contrast["name"], contrast["pre"], contrast["post"]
    timepoints = list(contrast.get("timepoints", [pre, post]))
    frame = _sample_frame(table, samples, responders, settings.response_column,
                          covariates + tuple(g for g in extra_groups if g not in covariates),
                          subjects)
    frame = frame[frame["timepoint"].isin(timepoints) & frame["subject_id"].notna()]
    raw = table
    parts = _Parts()
    design = None
    corrected = settings.corrected
    strata = detection_strata(raw.loc[frame.index]) if corrected else None

    def paired(values, reference=None):
        return _paired_analysis(raw, values, frame, pre, post, settings, reference=reference)

    def mixed(values, note_list):
        return _mixed_analysis(raw, values, frame, timepoints, settings, responders is not None,
                               note_list)

    def baseline(values, note_list):
        return _baseline_analysis(raw, values, frame, pre, settings, note_list)

    def corrected_rows(rows, primary, rerun, recentre=None):
        """The bias-corrected rows (compositions); the relative ones otherwise."""
        if not corrected:
            return rows
        rows, lost = _reference_corrected(rows, tvals, primary, parts.notes, rerun,
                                          parts.references, strata, settings.confidence,
                                          recentre=recentre)
        parts.add(untested=lost)
        return rows

    if "paired" in settings.methods:
        design, r, u, dr = paired(tvals)
        r = corrected_rows(r, "paired_t", lambda z: paired(tvals, reference=z)[1], recentre=(
            lambda z: corrected_changes(raw, tvals, z, design.pairs).mean(axis=0),
            _post_shifter(frame, post)))
        parts.add(r, u, dr, {"paired": f"{post} - {pre} within subject (paired t, Wilcoxon "
                                       "signed-rank)"})
    if "mixed" in settings.methods:
        r, u, dr, f, fi, co = mixed(tvals, parts.notes)
        r = corrected_rows(r, "lmm", lambda z: mixed(_minus(tvals, z), [])[0])
        parts.notes.append(("lmm", "tests and intervals: " + (
            "Wald z (as statsmodels MixedLM)" if settings.mixed_df == "z" else
            "Student t with Satterthwaite degrees of freedom and lme4 standard errors, as lmerTest "
            "(column df of the coefficients)" if settings.mixed_df == "satterthwaite" else
            "Student t with between-within degrees of freedom (column df of the coefficients)")))
        parts.add(r, u, dr, f, fi, co)
    if "baseline" in settings.methods and responders is not None:
        r, u, dr, f = baseline(tvals, parts.notes)
        r = corrected_rows(r, "ols", lambda z: baseline(_minus(tvals, z), [])[0])
        parts.add(r, u, dr, f)
    elif "baseline" in settings.methods:
        parts.notes.append(("baseline", "skipped: no responder labels given"))
    if settings.presence_tests:
        if design is None:
            design = paired_design(frame.reset_index(), pre, post)
        r, u = _presence_analysis(raw, frame, design, pre, post, responders is not None,
                                  settings.min_pairs, settings.min_group_size, settings.confidence)
        parts.add(r, u, formulas={"presence": (
            "detected (> 0) or not: exact McNemar test of the pairs (Fisher's exact test "
            "between response groups)")})
    return _assemble(parts, tr, annotations, name, settings)


def _check_options(settings: ContrastSettings):
    if settings.sensitivity not in SENSITIVITY_METHODS:
        hint = (" (ANCOM-BC2 was removed: with subject as a fixed block it called 51% of the "
                "taxa on a label-swap null)" if settings.sensitivity == "ancombc2" else "")
        raise InputError(Problem("config", "differential.sensitivity",
                                 f"unknown sensitivity method {settings.sensitivity!r}{hint}",
                                 "use 'rank_tests' or 'none'"))
    if settings.bias_correction not in BIAS_CORRECTIONS:
        raise InputError(Problem("config", "differential.bias_correction",
                                 f"unknown bias correction {settings.bias_correction!r}",
                                 "use 'mode' or 'none'"))


def _null_bandwidth(family: pd.DataFrame, confidence: float) -> float | None:
    r"""Kernel bandwidth of the reference shift from the spread a null effect would have.

    :math:`h = 2.11\,\mathrm{median}_j(\widehat{\mathrm{se}}_j)`: if the unchanged
    features' effects scatter around the bias with their sampling error, this is the Welsch
    width for that scatter (95 % efficient at the normal; see
    :func:`gutaxis.differential.reference_shift.robust_bandwidth`). The MAD of the effects themselves is
    inflated by the features that do change (blooms, responder-only changes), which made the
    kernel wide enough to let them pull the mode (mean FDR 0.13 in the bloom simulation). The
    standard errors come from the CIs at level ``confidence`` (``(ci_high - ci_low) / (2 z)``);
    None (fall back to the MAD) when they are missing.
    """
    z = special.ndtri(0.5 + confidence / 2)
    se = (family["ci_high"].to_numpy(dtype=float) - family["ci_low"].to_numpy(dtype=float)) / (2 * z)
    se = se[np.isfinite(se) & (se > 0)]
    if se.size < 2:
        return None
    return WELSCH_BANDWIDTH * float(np.median(se))


#: fewest features per detection stratum of the reference shift
STRATUM_MIN_FEATURES = 50


def detection_strata(raw: pd.DataFrame, min_features: int | None = None,
                     max_strata: int = 4) -> pd.Series:
    """Stratum of each feature by how often it is detected (> 0) in the analysed samples.

    Equal-count bins of the detection rate, as many as give ``min_features``
    per bin (at most ``max_strata``; 1 for fewer than ``2 * min_features``
    features). Why: the compositional bias is not one number for all features
    of a sparse table. When a few taxa bloom, an abundant unchanged taxon's share
    falls by the dilution, while a taxon near the detection limit mostly turns
    between detected and not; a reference shift per detection stratum compares
    each feature with unchanged features that are detected as often (in the
    bloom simulation the most-detected quarter of unchanged taxa sat 0.02-0.03
    ln below the others, enough for a mean FDR of 0.13 with one shift).
    """
    min_features = STRATUM_MIN_FEATURES if min_features is None else min_features
    rate = (raw.to_numpy(dtype=float) > 0).mean(axis=0)
    n_strata = int(np.clip(raw.shape[1] // min_features, 1, max_strata))
    order = np.argsort(rate, kind="mergesort")
    strata = np.empty(raw.shape[1], dtype=int)
    strata[order] = np.arange(raw.shape[1]) * n_strata // max(raw.shape[1], 1)
    return pd.Series(strata, index=raw.columns.astype(str), name="stratum")


def _post_shifter(frame: pd.DataFrame, post: str):
    """``(Z, t, columns) -> Z`` with ``t`` added to the reference of those features'
    columns in every sample at ``post``."""
    at_post = (frame["timepoint"] == post).reindex(frame.index).to_numpy()
    post_ids = frame.index[at_post]

    def shift(Z: pd.DataFrame, t: float, columns) -> pd.DataFrame:
        Z = Z.copy()
        Z.loc[Z.index.isin(post_ids), columns] += t
        return Z

    return shift


def _minus(values: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """The log-ratio of every feature to its stratum's reference (samples x features)."""
    return values - reference[values.columns].to_numpy()


def _reference_corrected(rows, tvals, primary, notes, rerun, references, strata, confidence,
                         recentre=None):
    """Replace each family's rows by their bias-corrected version.

    For every term of the rows of method ``primary`` (the parametric effect:
    ``paired_t``, ``lmm`` or ``ols``) and every detection stratum
    (:func:`detection_strata`), the mode of that term's effects across the
    stratum's features gives the reference weights
    (:func:`gutaxis.differential.reference_shift.kernel_mode`); ``rerun(Z)`` repeats the
    analysis on the log-ratio of each feature to its stratum's reference (``Z``:
    samples x features) and its rows of the term replace the relative ones (rank
    tests of the same term included), which move to the ``relative_*`` columns.

    ``recentre`` (paired tests only): ``(effects_of(Z), shift(Z, t, columns))``. A pair
    below detection at both timepoints scores 0 whatever the reference does, so a sparse
    feature's corrected effect moves by less than the reference; the mode of the corrected
    effects of each stratum is put back at 0 by moving the reference at the post samples
    (fixed-point steps on the cheap mean changes, then one full rerun).
    """
    if not rows:
        return rows, []
    relative = pd.concat(rows, ignore_index=True)
    out, lost_untested = [], []
    for term in pd.unique(relative.loc[relative["method"] == primary, "term"]):
        fam = relative[(relative["method"] == primary) & (relative["term"] == term)]
        fam = fam[np.isfinite(fam["effect"].to_numpy(dtype=float))]
        if len(fam) < 2:
            out.append(relative[relative["term"] == term])
            continue
        column_stratum = strata.reindex(tvals.columns).fillna(0).astype(int)
        stratum_of = column_stratum.reindex(fam["feature"]).to_numpy()
        n_strata = int(stratum_of.max()) + 1
        if np.bincount(stratum_of, minlength=n_strata).min() < 2:
            column_stratum[:] = 0
            stratum_of[:] = 0
            n_strata = 1
        members_of = [tvals.columns[(column_stratum == k).to_numpy()] for k in range(n_strata)]
        labels = ([""] if n_strata == 1 else
                  [f" (detection stratum {k + 1} of {n_strata})" for k in range(n_strata)])
        bandwidths = [_null_bandwidth(fam[stratum_of == k], confidence)
                      for k in range(n_strata)]
        Z = pd.DataFrame(np.nan, index=tvals.index, columns=tvals.columns)
        shift_of = pd.Series(np.nan, index=tvals.columns)
        for k, members in enumerate(members_of):
            part = fam[stratum_of == k]
            effects = pd.Series(part["effect"].to_numpy(dtype=float), index=part["feature"])
            shift = kernel_mode(effects, bandwidth=bandwidths[k])
            z = reference_feature(tvals[effects.index], shift.weights)
            Z.loc[:, members] = np.repeat(z.to_numpy()[:, None], len(members), axis=1)
            shift_of[members] = shift.shift
            notes.append(("bias_correction", (
                f"{primary} {term}{labels[k]}: reference shift {shift.shift:.4g} = mode of the "
                f"{shift.n_features} features' effects (Gaussian kernel, bandwidth "
                f"{shift.bandwidth:.3g}; effective reference features {shift.n_reference:.1f}); "
                f"corrected effects are absolute changes if {ASSUMPTION}")))
        if recentre is not None:
            effects_of, shift_post = recentre
            for _ in range(5):
                main = effects_of(Z).reindex(fam["feature"].to_numpy())
                largest = 0.0
                for k, members in enumerate(members_of):
                    part = main[stratum_of == k].dropna()
                    if len(part) < 2:
                        continue
                    step = kernel_mode(part, bandwidth=bandwidths[k]).shift
                    Z = shift_post(Z, step, members)
                    shift_of[members] += step
                    largest = max(largest, abs(step))
                if largest < 1e-4:
                    break
            for k, members in enumerate(members_of):
                notes.append(("bias_correction", (
                    f"{primary} {term}{labels[k]}: re-centred on the corrected changes (pairs "
                    f"below detection twice score 0): reference shift "
                    f"{float(shift_of[members].iloc[0]):.4g}")))
        again = pd.concat(rerun(Z), ignore_index=True)
        again = again[again["term"] == term].copy()
        references[(primary, term)] = Z
        before = relative[relative["term"] == term].set_index(["method", "feature"])
        keys = pd.MultiIndex.from_frame(again[["method", "feature"]])
        for col in ("effect", "ci_low", "ci_high", "p"):
            again[f"relative_{col}"] = before[col].reindex(keys).to_numpy()
        again["reference_shift"] = again["feature"].map(shift_of).to_numpy()
        out.append(again)
        lost = before.index.difference(keys)
        if len(lost):
            lost_rows = before.loc[lost].reset_index()
            lost_untested.append(_untested(
                lost_rows["feature"], lost_rows["method"].to_numpy(),
                "no test of the bias-corrected change (every pair below detection at both "
                "timepoints, or too few values)", lost_rows["n_subjects"].to_numpy(),
                lost_rows["n_pairs"].to_numpy()))
    return ([pd.concat(out, ignore_index=True)] if out else rows), lost_untested


def effect_scale_label(tr: TransformResult, corrected: bool) -> str:
    """What an abundance row's ``effect`` estimates, for the ``effect_scale`` column."""
    if tr.name in ("clr", "rclr"):
        if corrected:
            return (f"{tr.name}, bias-corrected: ln ratio to the reference features (an absolute "
                    f"change if {ASSUMPTION})")
        return f"{tr.name}: relative (ln ratio to the sample's geometric mean)"
    return tr.name


#: the abundance row whose call joins a presence test's call, per presence method
_JOINT_PARTNER = {"presence_mcnemar": "paired_t", "presence_interaction": "lmm",
                  "presence_fisher": "ols"}


def _joint_calls(results: pd.DataFrame) -> pd.DataFrame:
    """``prevalence_q``, ``prevalence_direction`` and ``joint_call`` of every row.

    An abundance row gets the presence test of the same feature and term; a
    presence row gets its own. ``joint_call`` joins the abundance call of the
    row (the primary abundance method for presence rows: paired t, the mixed
    model's interaction, the baseline OLS) and the presence call with " + ",
    e.g. ``down + lost``; ``lost`` alone when the abundance was not tested or
    not called; ``none`` when neither calls.
    """
    results = results.copy()
    pres = results[results["method"].isin(PRESENCE_METHODS)]
    key = results["feature"] + "|" + results["term"]
    q_of = pd.Series(pres["q"].to_numpy(), index=key[pres.index])
    dir_of = pd.Series(pres["direction"].to_numpy(), index=key[pres.index])
    results["prevalence_q"] = key.map(q_of[~q_of.index.duplicated()])
    results["prevalence_direction"] = key.map(dir_of[~dir_of.index.duplicated()]).fillna("")
    is_pres = results["method"].isin(PRESENCE_METHODS)
    partner = results["method"].map(_JOINT_PARTNER)
    abund = results[~is_pres]
    abund_dir = pd.Series(abund["direction"].to_numpy(),
                          index=abund["method"] + "|" + key[abund.index])
    abund_dir = abund_dir[~abund_dir.index.duplicated()]
    own = results["direction"].where(~is_pres, (partner + "|" + key).map(abund_dir))
    own = own.fillna("none")
    prev = results["prevalence_direction"].replace("", "none")
    parts = np.where((own != "none") & (prev != "none"), own + " + " + prev,
                     np.where(own != "none", own, prev))
    results["joint_call"] = parts
    return results


def _assemble(parts: _Parts, tr: TransformResult, annotations, name: str,
              settings: ContrastSettings) -> DifferentialResult:
    """The tables of one analysis from its parts: BH q within each family, direction,
    fold changes, the presence call beside each abundance row, annotations, a fixed
    row order."""
    corrected, alpha, modality = settings.corrected, settings.alpha, settings.modality
    notes = [("effect", "what the called effects estimate: " + effect_scale_label(tr, corrected)
              + ("; if most features change together the corrected effects are off by that "
                 "common change" if corrected else ""))] + list(parts.notes)
    results = (pd.concat(parts.rows, ignore_index=True) if parts.rows
               else pd.DataFrame(columns=RESULT_COLUMNS))
    for col in ("relative_effect", "relative_ci_low", "relative_ci_high", "relative_p",
                "reference_shift"):
        if col not in results:
            results[col] = np.nan
    results["modality"] = modality
    results["contrast"] = name
    results["family"] = (results["modality"] + "|" + name + "|" + results["method"] + "|"
                         + results["term"])
    results["q"] = benjamini_hochberg(results)
    presence = results["method"].isin(PRESENCE_METHODS).to_numpy()
    sig = results["q"] < alpha
    results["direction"] = np.where(sig & (results["effect"] > 0), "up",
                                    np.where(sig & (results["effect"] < 0), "down", "none"))
    kind = np.where(results["term"].str.contains(":"), "interaction",
                    np.where(results["term"].str.startswith("timepoint["), "time", "group"))
    for k, labels in PRESENCE_LABELS.items():
        rows = presence & (kind == k)
        results.loc[rows, "direction"] = results.loc[rows, "direction"].map(labels)
    results["effect_scale"] = np.where(presence, "ln odds ratio of detection",
                                       effect_scale_label(tr, corrected))
    base = tr.log_base
    for col, src in (("fold_change", "effect"), ("fold_change_ci_low", "ci_low"),
                     ("fold_change_ci_high", "ci_high")):
        fc = (np.power(base, results[src].astype(float)) if base is not None
              else np.full(len(results), np.nan))
        results[col] = np.where(presence, np.nan, fc)
    results["sensitivity_agrees"] = _agreement(results, alpha, settings.sensitivity)
    results = _joint_calls(results)
    if "note" not in results:
        results["note"] = ""
    results["note"] = results["note"].fillna("")
    annot = _annotation_lookup(annotations, settings.annotation_column)
    results["annotation"] = results["feature"].map(annot).fillna("") if annot is not None else ""
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    results = (results.assign(_m=results["method"].map(order))
               .sort_values(["_m", "term", "p", "feature"], kind="mergesort")
               .drop(columns="_m").reset_index(drop=True))
    for col in ("n_subjects", "n_pairs"):
        results[col] = results[col].astype("Int64")
    results = results[RESULT_COLUMNS]

    untested_df = (pd.concat(parts.untested, ignore_index=True) if parts.untested
                   else pd.DataFrame(columns=UNTESTED_COLUMNS))
    untested_df["modality"] = modality
    untested_df["contrast"] = name
    untested_df["annotation"] = (untested_df["feature"].map(annot).fillna("")
                                 if annot is not None else "")
    extra = [c for c in untested_df.columns if c not in UNTESTED_COLUMNS]
    untested_df = (untested_df[UNTESTED_COLUMNS + extra]
                   .assign(_m=lambda x: x["method"].map(order))
                   .sort_values(["_m", "feature"], kind="mergesort").drop(columns="_m")
                   .reset_index(drop=True))
    for col in ("n_subjects", "n_pairs"):
        untested_df[col] = untested_df[col].astype("Int64")
    dropped_df = (pd.concat(parts.dropped, ignore_index=True).sort_values(
        ["analysis", "subject_id", "timepoint", "sample_id"]).reset_index(drop=True)
        if parts.dropped else pd.DataFrame(columns=DROPPED_COLUMNS))
    fits_df = (pd.concat(parts.fits, ignore_index=True).rename(columns={"feature_id": "feature"})
               if parts.fits else pd.DataFrame())
    coef_df = (pd.concat(parts.coefs, ignore_index=True).rename(columns={"feature_id": "feature"})
               if parts.coefs else pd.DataFrame())
    notes_df = pd.DataFrame(notes, columns=["step", "message"])
    return DifferentialResult(results, untested_df, parts.formulas, fits_df, dropped_df, notes_df,
                              tr.description, coef_df, dict(parts.references))


def run_baseline(table: pd.DataFrame, samples: pd.DataFrame, baseline: str,
                 transform: str | TransformResult = "clr", transform_options: dict | None = None,
                 responders: pd.DataFrame | None = None, subjects: pd.DataFrame | None = None,
                 annotations: pd.DataFrame | None = None,
                 settings: ContrastSettings | None = None, name: str = BASELINE_NAME,
                 **overrides) -> DifferentialResult:
    r"""Responders vs non-responders at one timepoint, without a paired contrast.

    The analysis of a baseline-only study (one sample per subject): the
    ``baseline`` rows of :func:`run_contrast` on the samples at ``baseline``,

    * ``ols``, ``response[responder]``: :math:`y = \beta_0 + \beta_1
      \,[\text{responder}] + \gamma' z + \varepsilon` per feature, adjusted
      for the covariates ``z`` (e.g. ``cohort`` of a multi-cohort study; a
      covariate with one value is dropped with a note);
    * ``mann_whitney``, ``response[responder]``: the unadjusted Mann-Whitney U
      test (Mann & Whitney 1947), effect = Hodges-Lehmann shift.

    BH q values within each method (family ``modality|name|method|term``).

    Parameters
    ----------
    table, samples, transform, transform_options, subjects, annotations, settings, **overrides
        As in :func:`run_contrast` (``presence_fisher`` is the presence test; the
        paired and mixed settings play no part).
    baseline : str
        The timepoint compared (``design.baseline``).
    responders : DataFrame
        ``subject_id`` + the ``settings.response_column`` labels (``responder`` /
        ``non_responder`` / empty = left out and listed in ``dropped_samples``).
    name : str
        Written in the ``contrast`` column (default ``baseline``).

    Returns
    -------
    DifferentialResult
        ``results`` has the rows of methods ``ols`` and ``mann_whitney`` only;
        ``model_fits`` and ``coefficients`` are empty.

    Raises
    ------
    InputError
        Bad table, sheet or responder labels, or ``responders`` not given.
    """
    settings = with_overrides(settings, ContrastSettings, overrides)
    _check_options(settings)
    if responders is None:
        raise InputError(Problem("config", "key 'response.primary'",
                                 "the baseline responder comparison needs responder labels",
                                 "define a response (response.definitions) or leave the baseline "
                                 "comparison out"))
    pseudo = {"name": name, "pre": baseline, "post": None}
    _validate(table, samples, pseudo, responders, settings.response_column, settings.covariates,
              subjects, settings.file_table, settings.file_samples)
    table, tr = _prepared_table(table, settings.effect, transform, transform_options,
                                settings.file_table)
    frame = _sample_frame(table, samples, responders, settings.response_column,
                          settings.covariates, subjects)
    frame = frame[(frame["timepoint"] == baseline) & frame["subject_id"].notna()]
    parts = _Parts()
    tvals = tr.values

    def analysis(values, note_list):
        return _baseline_analysis(table, values, frame, baseline, settings, note_list)

    rows, untested, dropped, formulas = analysis(tvals, parts.notes)
    if settings.corrected:
        rows, lost = _reference_corrected(rows, tvals, "ols", parts.notes,
                                          lambda z: analysis(_minus(tvals, z), [])[0],
                                          parts.references,
                                          detection_strata(table.loc[frame.index]),
                                          settings.confidence)
        untested += lost
    parts.add(rows, untested, dropped, formulas)
    if settings.presence_tests:
        r, u = _presence_analysis(table, frame, None, baseline, None, True, 0,
                                  settings.min_group_size, settings.confidence)
        parts.add(r, u)
    return _assemble(parts, tr, annotations, name, settings)


def _annotation_lookup(annotations, column):
    if annotations is None or len(annotations) == 0:
        return None
    if column is None:
        column = next((c for c in ("name", "lineage", "annotation") if c in annotations.columns),
                      None)
    if column is None or column not in annotations.columns:
        return None
    ann = annotations[column].astype(str)
    ann.index = ann.index.astype(str)
    return ann
