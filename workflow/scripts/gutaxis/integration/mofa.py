"""Latent factors shared across omics: MOFA+ (mofapy2) on matched samples, and tests of the factor scores.

MOFA+ (Argelaguet et al. 2018, 2020) decomposes several feature tables measured on
the same samples ("views") as ``Y_m = Z W_m^T + noise``: one matrix of factor scores
``Z`` (samples x factors) shared by all views and one weight (loading) matrix per
view, with an automatic-relevance-determination prior that lets a factor be active
in some views only and a spike-and-slab prior that makes the weights sparse. Here
the samples are subject x timepoint units with a sample in every modality, the
features are centred (and by default scaled) per feature, and the fit is made
reproducible: one seed, the global numpy generator restored afterwards, one BLAS
thread, factors in a fixed order and sign. The scores are then tested against
time (paired, within subject) and response (at baseline).

References
----------
Argelaguet R et al. (2018) Multi-Omics Factor Analysis - a framework for
unsupervised integration of multi-omics data sets. Mol Syst Biol 14:e8124.
Argelaguet R et al. (2020) MOFA+: a statistical framework for comprehensive
integration of multi-modal single-cell data. Genome Biol 21:111.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from gutaxis.integration.associations import bh_fdr
from gutaxis.io.errors import InputError, Problem
from gutaxis.integration.views import StudySheets, locate_samples
from gutaxis.metabolome.structure import without_unmeasured

__all__ = [
    "FACTOR_TEST_COLUMNS",
    "MofaFit",
    "factor_tests",
    "fit_mofa",
    "latent_factor_tables",
    "matched_samples",
    "mofa_views",
]

log = logging.getLogger("gutaxis.latent_factors")

UNIT_LEVELS = ["subject_id", "timepoint"]
MEMBERSHIP_COLUMNS = ["subject_id", "timepoint", "used", "reason"]
DROPPED_COLUMNS = ["view", "feature_id", "reason"]
STATUS_COLUMNS = ["status", "reason", "n_samples", "n_subjects", "n_views", "views", "n_features",
                  "n_factors", "iterations", "converged", "seed", "convergence_mode", "max_iter",
                  "method"]
VARIANCE_COLUMNS = ["factor", "view", "variance_explained"]
WEIGHT_COLUMNS = ["factor", "view", "feature_id", "weight", "abs_rank"]
SCORE_COLUMNS = ["subject_id", "timepoint", "factor", "score"]
FACTOR_TEST_COLUMNS = ["factor", "test", "group_a", "group_b", "n_a", "n_b", "effect", "effect_kind",
                       "statistic", "p", "q"]
#: the name given to the all-factor row of the variance-explained table
ALL_FACTORS = "all"


@dataclass
class MofaFit:
    """Result of :func:`fit_mofa`.

    Attributes
    ----------
    status : DataFrame
        One row, :data:`STATUS_COLUMNS`: ``status`` is ``fitted`` or
        ``not_fitted`` and ``reason`` says why not.
    scores : DataFrame
        :data:`SCORE_COLUMNS` (long), factors named ``Factor1``... in order of
        total variance explained; empty when not fitted.
    weights : DataFrame
        :data:`WEIGHT_COLUMNS`: every feature's weight on every factor;
        ``abs_rank`` = 1 for the largest |weight| within factor and view.
    variance_explained : DataFrame
        :data:`VARIANCE_COLUMNS`: R^2 (fraction) per factor and view, plus
        ``factor == "all"`` rows for all factors together.
    """

    status: pd.DataFrame
    scores: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SCORE_COLUMNS))
    weights: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=WEIGHT_COLUMNS))
    variance_explained: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=VARIANCE_COLUMNS))

    @property
    def fitted(self) -> bool:
        return bool(self.status["status"].iloc[0] == "fitted")


# --------------------------------------------------------------------------- samples
def matched_samples(
    samples: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    timepoints,
    *,
    samples_file: str = "samples.tsv",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subject x timepoint units that have a sample in every table.

    Parameters
    ----------
    samples : DataFrame
        Sample sheet (``sample_id, subject_id, timepoint``).
    tables : dict of str -> DataFrame
        Modality name -> feature table (index = sample ids).
    timepoints : sequence of str
        Timepoints considered (e.g. the contrast's pre and post).
    samples_file : str
        Sheet name for messages.

    Returns
    -------
    matched : DataFrame
        ``subject_id, timepoint`` and one column per modality holding its
        sample id, for the complete units, sorted by subject then timepoint
        order.
    membership : DataFrame
        ``subject_id, timepoint, used, reason`` for every unit seen in any
        table at these timepoints.
    """
    timepoints = list(timepoints)
    located = {}
    for name, table in tables.items():
        loc, _ = locate_samples(samples, table, source=name, samples_file=samples_file)
        loc = loc[loc["timepoint"].isin(timepoints)]
        located[name] = loc.set_index(UNIT_LEVELS)["sample_id"]
    units = sorted(set().union(*(set(s.index) for s in located.values())),
                   key=lambda u: (u[0], timepoints.index(u[1])))
    index = pd.MultiIndex.from_tuples(units, names=UNIT_LEVELS) if units else \
        pd.MultiIndex.from_arrays([[], []], names=UNIT_LEVELS)
    wide = pd.DataFrame({name: s.reindex(index) for name, s in located.items()}, index=index)
    present = wide.notna()
    used = present.all(axis=1).to_numpy()
    reasons = ["; ".join(f"no {name} sample" for name in wide.columns if not present.iloc[i][name])
               for i in range(len(wide))]
    membership = pd.DataFrame({"subject_id": index.get_level_values(0), "timepoint": index.get_level_values(1),
                               "used": used, "reason": reasons}, columns=MEMBERSHIP_COLUMNS)
    matched = wide[used].reset_index()
    return matched, membership


def mofa_views(
    tables: dict[str, pd.DataFrame],
    matched: pd.DataFrame,
    *,
    scale_features: bool = True,
    max_features: int | None = None,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """One samples x features matrix per modality on the matched units, ready for MOFA.

    Features missing in every unit or constant are dropped (no information);
    with ``max_features`` only the most variable features of a view are kept
    (MOFA's recommendation for large views, so that no view dominates by its
    number of features); each feature is then centred and, with
    ``scale_features``, divided by its standard deviation (``ddof = 0``, over the
    observed values), so every view enters on one scale.

    Parameters
    ----------
    tables : dict of str -> DataFrame
        Modality -> transformed feature table (index = sample ids).
    matched : DataFrame
        From :func:`matched_samples`.
    scale_features : bool
        Scale features to unit variance.
    max_features : int, optional
        Keep this many most variable features per view (None or 0: all).

    Returns
    -------
    views : dict of str -> DataFrame
        Indexed by (subject_id, timepoint) like ``matched``.
    dropped : DataFrame
        ``view, feature_id, reason``.
    """
    index = pd.MultiIndex.from_frame(matched[UNIT_LEVELS])
    views, dropped = {}, []
    for name, table in tables.items():
        block = table.loc[matched[name].to_numpy()].set_axis(index, axis=0).astype(float)
        sd = block.std(axis=0, ddof=0, skipna=True)
        empty = block.notna().sum(axis=0) == 0
        constant = ~empty & ~(sd > 0)
        for ids, reason in ((block.columns[empty.to_numpy()], "no value in any matched sample"),
                            (block.columns[constant.to_numpy()], "constant over the matched samples")):
            dropped.append(pd.DataFrame({"view": name, "feature_id": ids.astype(str), "reason": reason}))
        keep = ~(empty | constant)
        block, sd = block.loc[:, keep.to_numpy()], sd[keep]
        if max_features and block.shape[1] > max_features:
            order = np.lexsort((np.arange(block.shape[1]), -sd.to_numpy()))
            cut = order[max_features:]
            dropped.append(pd.DataFrame({
                "view": name, "feature_id": block.columns[cut].astype(str),
                "reason": f"not among the {max_features} most variable features of the view"}))
            kept = np.sort(order[:max_features])
            block, sd = block.iloc[:, kept], sd.iloc[kept]
        block = block - block.mean(axis=0)
        if scale_features:
            block = block / sd
        views[name] = block
    dropped = pd.concat(dropped, ignore_index=True) if dropped else pd.DataFrame(columns=DROPPED_COLUMNS)
    return views, dropped[DROPPED_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------- fit
def _status(status: str, reason: str, views: dict, n_factors: int, seed: int, convergence_mode: str,
            max_iter: int, iterations=np.nan, converged=np.nan) -> pd.DataFrame:
    first = next(iter(views.values()), None)
    n = 0 if first is None else first.shape[0]
    subjects = 0 if first is None else first.index.get_level_values(0).nunique()
    return pd.DataFrame([{
        "status": status, "reason": reason, "n_samples": n, "n_subjects": subjects,
        "n_views": len(views), "views": ";".join(views),
        "n_features": ";".join(str(v.shape[1]) for v in views.values()),
        "n_factors": n_factors, "iterations": iterations, "converged": converged, "seed": seed,
        "convergence_mode": convergence_mode, "max_iter": max_iter, "method": "MOFA+ (mofapy2)",
    }], columns=STATUS_COLUMNS)


def fit_mofa(
    views: dict[str, pd.DataFrame],
    *,
    n_factors: int = 5,
    seed: int = 0,
    max_iter: int = 1000,
    convergence_mode: str = "fast",
    min_samples: int = 15,
    spikeslab_weights: bool = True,
) -> MofaFit:
    """Fit MOFA+ with Gaussian likelihoods to aligned views; or say why not.

    Model (Argelaguet et al. 2018): ``y_{nd}^m = sum_k z_{nk} w_{dk}^m + e``,
    ``e ~ N(0, 1/tau_d^m)``, ARD prior on the weights per view and factor,
    spike-and-slab prior on the weights, variational Bayes. Variance explained
    by factor k in view m is ``R^2_{mk} = 1 - sum (y - z_k w_k^T)^2 / sum y^2``
    over observed values (mofapy2's ``calculate_variance_explained``).

    Not fitted (``status`` ``not_fitted`` with the reason) when fewer than
    ``min_samples`` matched samples or two views exist, a view has no feature,
    or the samples do not exceed the factors.

    Reproducibility: mofapy2 draws its initialisation from numpy's global
    generator seeded with ``seed``; its state is restored afterwards, BLAS runs
    on one thread, factors are ordered by total R^2 over views (descending) and
    each factor's sign is set so that its largest absolute weight is positive.

    Parameters
    ----------
    views : dict of str -> DataFrame
        View name -> samples x features, all with the same index
        (subject_id, timepoint), centred (e.g. from :func:`mofa_views`); NaN is
        allowed (missing values).
    n_factors : int
        Number of factors.
    seed : int
        Seed of the fit.
    max_iter : int
        Iteration cap.
    convergence_mode : {"fast", "medium", "slow"}
        ELBO change threshold of mofapy2 (0.0005 %, 0.00005 %, 0.000005 %).
    min_samples : int
        Fewest matched samples for a fit.
    spikeslab_weights : bool
        Sparse (spike-and-slab) weights.

    Returns
    -------
    MofaFit
    """
    if convergence_mode not in ("fast", "medium", "slow"):
        raise InputError(Problem("config", "key 'integration.mofa.convergence_mode'",
                                 f"unknown mode {convergence_mode!r}", "use fast, medium or slow"))
    names = list(views)
    index = views[names[0]].index if names else pd.Index([])
    for name in names[1:]:
        if not views[name].index.equals(index):
            raise ValueError(f"view {name!r} has other rows than view {names[0]!r}")
    n = len(index)
    reason = ""
    if len(names) < 2:
        reason = f"{len(names)} view(s); MOFA integrates two or more"
    elif n < min_samples:
        reason = (f"only {n} matched sample(s) (subject and timepoint with every modality); "
                  f"at least {min_samples} are needed (integration.mofa.min_samples)")
    elif any(v.shape[1] == 0 for v in views.values()):
        reason = "view(s) " + ", ".join(k for k, v in views.items() if v.shape[1] == 0) + " have no feature left"
    elif n_factors >= n:
        reason = f"{n_factors} factors for {n} samples; use fewer factors"
    if reason:
        log.warning("MOFA not fitted: %s", reason)
        return MofaFit(status=_status("not_fitted", reason, views, n_factors, seed, convergence_mode, max_iter))

    ent, output = _run_mofapy2(views, n_factors, seed, max_iter, convergence_mode, spikeslab_weights)
    for line in output.splitlines():
        if line.strip() and not line.strip().startswith("#"):
            log.info("mofapy2: %s", line.rstrip())
    model = ent.model
    z = np.asarray(model.nodes["Z"].getExpectation(), dtype=float)
    w = [np.asarray(x, dtype=float) for x in model.nodes["W"].getExpectation()]
    r2 = np.asarray(model.calculate_variance_explained()[0], dtype=float)  # views x factors
    r2_total = np.asarray(model.calculate_variance_explained(total=True)[0], dtype=float)
    k = z.shape[1]

    order = np.lexsort((np.arange(k), -r2.sum(axis=0)))
    z, w, r2 = z[:, order], [x[:, order] for x in w], r2[:, order]
    all_w = np.vstack(w)
    biggest = all_w[np.argmax(np.abs(all_w), axis=0), np.arange(k)]
    sign = np.where(biggest < 0, -1.0, 1.0)
    z, w = z * sign, [x * sign for x in w]
    factors = [f"Factor{i + 1}" for i in range(k)]

    scores = pd.DataFrame(z, index=index, columns=factors).rename_axis(columns="factor")
    scores = scores.stack().rename("score").reset_index()[SCORE_COLUMNS]
    weights = []
    for name, wm in zip(names, w):
        frame = pd.DataFrame(wm, index=views[name].columns.astype(str), columns=factors)
        ranks = frame.abs().rank(axis=0, ascending=False, method="first").astype(int)
        long = frame.stack().rename("weight").reset_index()
        long.columns = ["feature_id", "factor", "weight"]
        long["abs_rank"] = ranks.stack().to_numpy()
        long["view"] = name
        weights.append(long)
    weights = pd.concat(weights, ignore_index=True)
    weights["factor_pos"] = weights["factor"].map({f: i for i, f in enumerate(factors)})
    weights = weights.sort_values(["factor_pos", "view", "abs_rank"], kind="stable")
    weights = weights[WEIGHT_COLUMNS].reset_index(drop=True)
    variance = pd.DataFrame({
        "factor": np.repeat(factors + [ALL_FACTORS], len(names)),
        "view": names * (k + 1),
        "variance_explained": np.concatenate([r2.T.ravel(), r2_total]),
    }, columns=VARIANCE_COLUMNS)
    stats_ = model.getTrainingStats()
    iterations = int(len(stats_["elbo"])) - 1
    converged = "Converged!" in output
    status = _status("fitted", "" if converged else f"not converged within {max_iter} iterations",
                     views, k, seed, convergence_mode, max_iter, iterations, converged)
    return MofaFit(status=status, scores=scores, weights=weights, variance_explained=variance)


def _run_mofapy2(views, n_factors, seed, max_iter, convergence_mode, spikeslab_weights):
    """Build and train mofapy2 quietly and reproducibly; return the entry point and its output."""
    from mofapy2.run.entry_point import entry_point

    names = list(views)
    first = views[names[0]]
    sample_names = [f"{s}|{t}" for s, t in first.index]
    data = [[views[m].to_numpy(dtype=float, copy=True)] for m in names]
    features = [[f"{m}:{f}" for f in views[m].columns] for m in names]
    output = io.StringIO()
    saved = np.random.get_state()
    try:
        # np.errstate: mofapy2's ELBO takes S log S of spike-and-slab probabilities that reach 0 or 1
        with contextlib.redirect_stdout(output), _one_blas_thread(), np.errstate(divide="ignore", invalid="ignore"):
            ent = entry_point()
            ent.set_data_options(scale_views=False, center_groups=True)
            ent.set_data_matrix(data, likelihoods=["gaussian"] * len(names), views_names=names,
                                groups_names=["all"], samples_names=[sample_names],
                                features_names=features)
            ent.set_model_options(factors=n_factors, spikeslab_weights=spikeslab_weights, ard_weights=True)
            ent.set_train_options(iter=max_iter, convergence_mode=convergence_mode, seed=int(seed),
                                  dropR2=None, quiet=True, verbose=False)
            ent.build()
            ent.run()
    finally:
        np.random.set_state(saved)
    return ent, output.getvalue()


@contextlib.contextmanager
def _one_blas_thread():
    """Run BLAS on one thread, so sums are added in one order and the fit is byte-reproducible."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1):
        yield


# --------------------------------------------------------------------------- tests
def factor_tests(
    scores: pd.DataFrame,
    *,
    pre: str,
    post: str,
    response: pd.Series | None = None,
    responder: str = "responder",
    non_responder: str = "non_responder",
) -> pd.DataFrame:
    """Test every factor's scores against time (paired) and response (at ``pre``).

    * time: Wilcoxon signed-rank test of ``d_i = z_i(post) - z_i(pre)`` over the
      subjects with both units (two-sided; zero differences dropped, Wilcoxon
      1945); effect = median of ``d``.
    * response: Mann-Whitney U test of the ``pre`` scores of responders against
      non-responders (two-sided; Mann & Whitney 1947); effect = difference of
      the group medians (responder - non-responder).

    BH q-values are computed within each test over the factors.

    Parameters
    ----------
    scores : DataFrame
        Long scores (``subject_id, timepoint, factor, score``).
    pre, post : str
        Timepoints.
    response : Series, optional
        subject_id -> responder label; other labels (empty, not evaluable) are
        left out. None skips the response test.
    responder, non_responder : str
        Labels of the two groups.

    Returns
    -------
    DataFrame
        :data:`FACTOR_TEST_COLUMNS`, one row per factor and test.

    References
    ----------
    Wilcoxon F (1945) Individual comparisons by ranking methods. Biometrics Bull 1:80-83.
    Mann HB, Whitney DR (1947) Ann Math Stat 18:50-60.
    """
    if scores.empty:
        return pd.DataFrame(columns=FACTOR_TEST_COLUMNS)
    factors = list(pd.unique(scores["factor"]))
    wide = scores.pivot_table(index=["subject_id", "timepoint"], columns="factor", values="score",
                              aggfunc="first")[factors]
    rows = []
    by_time = wide.unstack("timepoint")
    for factor in factors:
        if pre in by_time[factor].columns and post in by_time[factor].columns:
            pair = by_time[factor][[pre, post]].dropna()
        else:
            pair = pd.DataFrame(columns=[pre, post])
        diff = (pair[post] - pair[pre]).to_numpy(dtype=float)
        row = {"factor": factor, "test": "time_paired_wilcoxon", "group_a": post, "group_b": pre,
               "n_a": len(diff), "n_b": len(diff), "effect_kind": f"median of {post} - {pre}"}
        if len(diff) >= 2 and np.any(diff != 0):
            res = stats.wilcoxon(diff, alternative="two-sided")
            row.update(effect=float(np.median(diff)), statistic=float(res.statistic), p=float(res.pvalue))
        else:
            row.update(effect=float(np.median(diff)) if len(diff) else np.nan, statistic=np.nan, p=np.nan)
        rows.append(row)
    if response is not None:
        at_pre = wide.xs(pre, level="timepoint") if pre in wide.index.get_level_values(1) else wide.iloc[:0]
        labels = response.reindex(at_pre.index.astype(str))
        for factor in factors:
            a = at_pre.loc[(labels == responder).to_numpy(), factor].dropna().to_numpy(dtype=float)
            b = at_pre.loc[(labels == non_responder).to_numpy(), factor].dropna().to_numpy(dtype=float)
            row = {"factor": factor, "test": f"response_mann_whitney_{pre}", "group_a": responder,
                   "group_b": non_responder, "n_a": len(a), "n_b": len(b),
                   "effect_kind": f"median({responder}) - median({non_responder}) at {pre}"}
            if len(a) and len(b):
                res = stats.mannwhitneyu(a, b, alternative="two-sided")
                row.update(effect=float(np.median(a) - np.median(b)), statistic=float(res.statistic),
                           p=float(res.pvalue))
            else:
                row.update(effect=np.nan, statistic=np.nan, p=np.nan)
            rows.append(row)
    out = pd.DataFrame(rows)
    out["q"] = np.nan
    for test, idx in out.groupby("test", sort=False).groups.items():
        out.loc[idx, "q"] = bh_fdr(out.loc[idx, "p"].to_numpy(dtype=float))
    return out[FACTOR_TEST_COLUMNS]


# --------------------------------------------------------------------------- the workflow step
def latent_factor_tables(study: StudySheets, tables: dict[str, pd.DataFrame], structures: dict[str, str],
                         response: pd.Series | None, *, config: dict, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The MOFA+ tables of the workflow: the matched pre and post units of every modality,
    the views, the fit and the tests of its factors.

    Parameters
    ----------
    study : StudySheets
        Sample sheet and the contrast's timepoints.
    tables : dict of str -> DataFrame
        Modality -> prepared feature table, in design order.
    structures : dict of str -> path
        ``missingness_structure.tsv`` of the metabolome modalities: the metabolites not
        measured at pre or post stay out of the fit.
    response : Series or None
        subject_id -> responder label; None (an intervention study) tests the factors
        against time only.
    config : dict
        The config's ``integration.mofa`` section (``scale_features``,
        ``max_features_per_view``, ``n_factors``, ``max_iter``, ``convergence_mode``,
        ``min_samples``).
    seed : int
        Seed of the fit.

    Returns
    -------
    dict of str -> DataFrame
        ``status``, ``variance_explained``, ``factors`` (scores), ``loadings`` (weights),
        ``factor_tests``, ``samples`` (unit membership) and ``dropped`` (features left out).
    """
    timepoints = [study.pre, study.post]
    tables, gaps = without_unmeasured(tables, structures, timepoints)
    matched, membership = matched_samples(study.samples, tables, timepoints, samples_file=study.samples_file)
    views, dropped = mofa_views(tables, matched, scale_features=config["scale_features"],
                                max_features=config["max_features_per_view"])
    not_measured = [pd.DataFrame({"view": name, "feature_id": reasons.index, "reason": reasons.to_numpy()})
                    for name, reasons in gaps.items()]
    fit = fit_mofa(views, n_factors=config["n_factors"], seed=seed, max_iter=config["max_iter"],
                   convergence_mode=config["convergence_mode"], min_samples=config["min_samples"])
    status = fit.status.iloc[0]
    log.info("MOFA %s on %s samples (%s subjects) %s", status["status"], status["n_samples"],
             status["n_subjects"], status["reason"])
    return {"status": fit.status, "variance_explained": fit.variance_explained, "factors": fit.scores,
            "loadings": fit.weights,
            "factor_tests": factor_tests(fit.scores, pre=study.pre, post=study.post, response=response),
            "samples": membership, "dropped": pd.concat([*not_measured, dropped], ignore_index=True)}
