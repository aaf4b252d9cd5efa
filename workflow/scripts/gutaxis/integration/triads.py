"""Axis triads: microbe -> metabolite -> immune chains tested by causal mediation analysis.

Candidates come from the change-view association blocks: a microbe-metabolite
link and a metabolite-immune link sharing the metabolite, both significant.
Each candidate (up to a cap) is tested with statsmodels ``Mediation`` (OLS
mediator and outcome models, bootstrap CIs), with bootstrap p-values that are
never 0 (:func:`bootstrap_p`), BH-adjusted over the triads tested, and ranked by
the proportion mediated.

With 48 patients this is hypothesis generation: mediation assumes no
unmeasured confounding of any of the three links and a causal order that the
data cannot establish.
"""

from __future__ import annotations

import logging
import zlib
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.stats.mediation import Mediation

from gutaxis.integration.associations import _standardise, average_ranks, bh_fdr, covariate_basis
from gutaxis.integration.views import StudySheets, build_views
from gutaxis.io.errors import InputError, Problem
from gutaxis.io.settings import with_overrides
from gutaxis.io.subject_covariates import subject_covariates

__all__ = ["TriadResult", "TriadSettings", "axis_triad_tables", "axis_triads", "bootstrap_p", "candidate_triads", "mediate_triad"]

RULES = ("sign_consistent", "both_significant")

TRIAD_COLUMNS = [
    "microbe", "metabolite", "immune",
    "rho_microbe_metabolite", "q_microbe_metabolite",
    "rho_metabolite_immune", "q_metabolite_immune", "rho_microbe_immune",
    "n",
    "acme", "acme_ci_low", "acme_ci_high", "acme_p", "acme_q",
    "ade", "ade_ci_low", "ade_ci_high", "ade_p",
    "total", "total_ci_low", "total_ci_high", "total_p",
    "prop_mediated", "prop_mediated_ci_low", "prop_mediated_ci_high", "prop_mediated_p",
]
#: the within-subject changes behind the top triads (the triads figure draws them)
DATA_COLUMNS = ["rank", "microbe", "metabolite", "immune", "subject_id",
                "microbe_change", "metabolite_change", "immune_change"]

log = logging.getLogger("gutaxis.integration")


@dataclass
class TriadResult:
    """Result of :func:`axis_triads`.

    Attributes
    ----------
    table : DataFrame
        One row per triad tested, columns :data:`TRIAD_COLUMNS`, ranked by
        proportion mediated (descending; NaN last), then ACME q, then ids.
    candidates : DataFrame
        Every candidate chain with its link statistics, ``priority`` rank and
        ``tested`` flag (False beyond the cap, with the reason).
    summary : dict
        Rule, thresholds, cap, number of candidates and of triads tested,
        n_rep, seed, scale.
    """

    table: pd.DataFrame
    candidates: pd.DataFrame
    summary: dict = field(default_factory=dict)


def candidate_triads(
    links_xm: pd.DataFrame,
    links_my: pd.DataFrame,
    *,
    max_q: float = 0.05,
) -> pd.DataFrame:
    """Chains microbe -> metabolite -> immune whose two links are both significant.

    Parameters
    ----------
    links_xm : DataFrame
        Microbe-metabolite association table (``feature_a`` = microbe,
        ``feature_b`` = metabolite, ``rho``, ``q``), e.g. the change-view table
        of :func:`gutaxis.integration.associations.associate_blocks`.  A table written
        with ``max_q`` filtering is fine as long as its cut is not stricter
        than ``max_q`` here.
    links_my : DataFrame
        Metabolite-immune table (``feature_a`` = metabolite, ``feature_b`` =
        immune subset).
    max_q : float
        A link is significant when ``q < max_q``.

    Returns
    -------
    DataFrame
        ``microbe, metabolite, immune, rho_microbe_metabolite,
        q_microbe_metabolite, rho_metabolite_immune, q_metabolite_immune``,
        ordered by priority: the weaker link's q ascending, then
        ``|rho_xm * rho_my|`` descending, then ids.
    """
    xm = links_xm.loc[links_xm["q"] < max_q, ["feature_a", "feature_b", "rho", "q"]]
    my = links_my.loc[links_my["q"] < max_q, ["feature_a", "feature_b", "rho", "q"]]
    xm = xm.astype({"feature_a": str, "feature_b": str}).set_axis(
        ["microbe", "metabolite", "rho_microbe_metabolite", "q_microbe_metabolite"], axis=1)
    my = my.astype({"feature_a": str, "feature_b": str}).set_axis(
        ["metabolite", "immune", "rho_metabolite_immune", "q_metabolite_immune"], axis=1)
    chains = xm.merge(my, on="metabolite", how="inner")
    chains = chains[["microbe", "metabolite", "immune", "rho_microbe_metabolite",
                     "q_microbe_metabolite", "rho_metabolite_immune", "q_metabolite_immune"]]
    weaker_q = np.maximum(chains["q_microbe_metabolite"], chains["q_metabolite_immune"])
    strength = -np.abs(chains["rho_microbe_metabolite"] * chains["rho_metabolite_immune"])
    order = np.lexsort((chains["immune"], chains["metabolite"], chains["microbe"], strength, weaker_q))
    return chains.iloc[order].reset_index(drop=True)


def _triad_seed(seed: int | None, ids: tuple[str, str, str]) -> int:
    """Seed of one triad from the run seed and the triad's ids.

    Each triad's bootstrap depends only on the run seed and its own ids, so its
    result does not change with the cap, the order or the worker it ran on.
    """
    words = [0 if seed is None else int(seed)] + [zlib.crc32(s.encode()) for s in ids]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def bootstrap_p(replicates, null: float = 0.0, axis: int = 0) -> np.ndarray:
    r"""Two-sided bootstrap p-value of ``effect == null``, never 0 (Phipson & Smyth 2010).

    With the :math:`B` non-missing replicates :math:`e^*_1, \dots, e^*_B` of an
    effect (along `axis`), count the replicates on each side of the null value,
    ties on both sides,

    .. math:: b_- = \#\{r : e^*_r \le e_0\},\qquad b_+ = \#\{r : e^*_r \ge e_0\}.

    The percentile-bootstrap one-sided p-values are the bootstrap probabilities of
    those tails (the smallest :math:`\alpha` whose one-sided :math:`1-\alpha`
    percentile bound excludes :math:`e_0`). Estimated from :math:`B` replicates as
    :math:`b/B` they are 0 whenever every replicate falls on one side, which says
    only that the tail is below about :math:`1/B`. As for Monte Carlo permutation
    p-values (Phipson & Smyth 2010; Davison & Hinkley 1997, ch. 4) each tail is
    estimated as :math:`p_\mp = (b_\mp + 1)/(B + 1)`, and the two-sided p-value is
    twice the smaller one (equal tails), capped at 1:

    .. math:: p = \min\left(1,\; \frac{2\,(\min(b_-, b_+) + 1)}{B + 1}\right).

    Doubling a valid one-sided p gives a valid two-sided one (union bound over the
    two tails), so :math:`P(p \le \alpha) \le \alpha` whenever each tail's p is
    valid. The smallest attainable value is :math:`2/(B+1)` (every replicate on one
    side); ``(2 b + 1)/(B + 1)`` would equal the one-sided p there, which is not a
    valid two-sided p. With no tie and no floor this is statsmodels'
    ``2 min(#{e* > 0}, #{e* < 0}) / B`` (``_pvalue`` of ``MediationResults``) with
    one added to each count and to ``B``.

    Parameters
    ----------
    replicates : array_like
        Bootstrap replicates of one or more effects, replicates along `axis`;
        NaN replicates (e.g. a ratio whose denominator is 0) are left out of
        :math:`B` and of the counts.
    null : float
        Null value :math:`e_0` of the effect.
    axis : int
        Axis of the replicates.

    Returns
    -------
    ndarray
        p-values in :math:`[2/(B+1), 1]`, shape of `replicates` without `axis`
        (a 0-d array for one effect); NaN where every replicate is NaN.

    References
    ----------
    Phipson B, Smyth GK (2010) Permutation p-values should never be zero:
    calculating exact p-values when permutations are randomly drawn. Stat Appl
    Genet Mol Biol 9:39.
    Davison AC, Hinkley DV (1997) Bootstrap Methods and their Application.
    Cambridge University Press, ch. 4.
    """
    e = np.moveaxis(np.asarray(replicates, dtype=float), axis, 0)
    present = ~np.isnan(e)
    n = present.sum(axis=0)
    below = (present & (e <= null)).sum(axis=0)
    above = (present & (e >= null)).sum(axis=0)
    p = np.minimum(1.0, 2.0 * (np.minimum(below, above) + 1.0) / (n + 1.0))
    return np.where(n > 0, p, np.nan)


def mediate_triad(
    exposure: np.ndarray,
    mediator: np.ndarray,
    outcome: np.ndarray,
    covariates: np.ndarray | None = None,
    *,
    n_rep: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Causal mediation of exposure -> mediator -> outcome with linear models.

    Mediator model ``M = a0 + a X + C g + e``; outcome model
    ``Y = b0 + c' X + b M + C h + e`` (OLS, ``C`` covariates).  statsmodels'
    ``Mediation`` (Imai, Keele & Tingley 2010) estimates, for a unit change of
    the exposure (0 -> 1), the average causal mediation effect (ACME, = a*b for
    these models), the average direct effect (ADE, = c'), the total effect and
    the proportion mediated (ACME / total), with nonparametric bootstrap
    percentile CIs and two-sided bootstrap p-values
    ``min(1, 2 (min(#{e* <= 0}, #{e* >= 0}) + 1) / (n_rep + 1))`` over the
    replicates ``e*`` (:func:`bootstrap_p`; never 0, smallest ``2 / (n_rep + 1)``
    when every replicate falls on one side, where statsmodels' own
    ``2 min(#{e* > 0}, #{e* < 0}) / n_rep`` is 0).  Values are reported for the
    "average" (treated and control identical without interaction).

    statsmodels draws from numpy's *global* legacy generator; it is seeded
    with ``seed`` for this call only and its previous state is restored, so
    results are reproducible and nothing else is disturbed.

    Parameters
    ----------
    exposure, mediator, outcome : ndarray, shape (n,)
        Complete cases.
    covariates : ndarray, shape (n, c), optional
        Extra columns for both models (no intercept column).
    n_rep : int
        Bootstrap replicates.
    seed : int
        Seed of numpy's global generator for this fit.
    alpha : float
        1 - confidence level of the CIs.

    Returns
    -------
    dict
        ``acme, acme_ci_low, acme_ci_high, acme_p``, likewise ``ade``,
        ``total``, ``prop_mediated``, and ``n``.

    References
    ----------
    Imai K, Keele L, Tingley D (2010) A general approach to causal mediation
    analysis. Psychol Methods 15:309-334.
    Phipson B, Smyth GK (2010) Stat Appl Genet Mol Biol 9:39.
    """
    n = exposure.size
    extra = np.empty((n, 0)) if covariates is None else np.asarray(covariates, dtype=float).reshape(n, -1)
    mediator_exog = np.column_stack([np.ones(n), exposure, extra])
    outcome_exog = np.column_stack([np.ones(n), exposure, mediator, extra])
    model = Mediation(sm.OLS(outcome, outcome_exog), sm.OLS(mediator, mediator_exog),
                      exposure=(1, 1), mediator=2)
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        result = model.fit(method="bootstrap", n_rep=n_rep)
    finally:
        np.random.set_state(saved)
    summary = result.summary(alpha=alpha)
    # the replicates behind each summary row (MediationResults attributes)
    replicates = {"acme": result.ACME_avg, "ade": result.ADE_avg, "total": result.total_effect,
                  "prop_mediated": result.prop_med_avg}
    out = {"n": n}
    for key, row in (("acme", "ACME (average)"), ("ade", "ADE (average)"),
                     ("total", "Total effect"), ("prop_mediated", "Prop. mediated (average)")):
        estimate, low, high, _ = summary.loc[row].to_numpy(dtype=float)
        out.update({key: estimate, f"{key}_ci_low": low, f"{key}_ci_high": high,
                    f"{key}_p": float(bootstrap_p(replicates[key]))})
    return out


@dataclass(frozen=True)
class TriadSettings:
    """How :func:`axis_triads` chooses and tests the triads.

    Attributes
    ----------
    max_q : float
        A link is significant when its q is below this.
    rule : {"sign_consistent", "both_significant"}
        Candidate rule (see :func:`axis_triads`).
    max_triads : int
        Cap on the number of triads tested (recorded in the summary).
    n_rep : int
        Bootstrap replicates per triad.
    seed : int
        Run seed; each triad's bootstrap seed derives from it and the ids.
    scale : {"standardised", "rank"}
        Values fed to the mediation models: z-scores of the given values
        (effects per SD of exposure, in SD of outcome) or z-scores of
        average ranks (robust to outliers, matches the Spearman screen).
    alpha : float
        1 - confidence level.
    n_jobs : int
        Processes for the mediation fits (results do not depend on it).
    """

    max_q: float = 0.05
    rule: str = "sign_consistent"
    max_triads: int = 200
    n_rep: int = 1000
    seed: int = 0
    scale: str = "standardised"
    alpha: float = 0.05
    n_jobs: int = 1

    @classmethod
    def from_config(cls, section: Mapping, seed: int = 0, n_jobs: int = 1) -> TriadSettings:
        """From the config's ``integration.triads`` section (``link_max_q``, ``rule``,
        ``max_triads``, ``n_rep``, ``scale``, ``conf_level``), the run's seed and the processes."""
        return cls(max_q=section["link_max_q"], rule=section["rule"], max_triads=section["max_triads"],
                   n_rep=section["n_rep"], seed=seed, scale=section["scale"], alpha=1 - section["conf_level"],
                   n_jobs=n_jobs)


def _mediate_job(job):
    x, m, y, c, n_rep, seed, alpha = job
    return mediate_triad(x, m, y, c, n_rep=n_rep, seed=seed, alpha=alpha)


def axis_triads(
    microbes: pd.DataFrame,
    metabolites: pd.DataFrame,
    immune: pd.DataFrame,
    links_xm: pd.DataFrame,
    links_my: pd.DataFrame,
    covariates: pd.DataFrame | None = None,
    settings: TriadSettings | None = None,
    **overrides,
) -> TriadResult:
    """Find and test microbe -> metabolite -> immune chains on one view (e.g. change).

    Candidates (:func:`candidate_triads`): microbe-metabolite and
    metabolite-immune links both with ``q < max_q``.  With
    ``rule="sign_consistent"`` (default) a chain is kept only when the sign of
    the indirect path equals the sign of the total microbe-immune
    association, ``sign(rho_xm) * sign(rho_my) == sign(rho_xy)``, where
    ``rho_xy`` is the (partial, if covariates) Spearman correlation computed
    here on the same rows; ``rho_xy`` need not be significant (mediation can
    exist with a weak total effect).  ``rule="both_significant"`` keeps every
    chain.  Candidates are tested in priority order (weaker link's q, then
    ``|rho_xm rho_my|``) up to ``max_triads``; the rest are listed as not
    tested.  Each tested triad: :func:`mediate_triad` on the subjects with
    complete values, BH over the ACME p-values of the triads tested (the
    bootstrap p-values are at least ``2 / (n_rep + 1)``, so no q is 0).

    Parameters
    ----------
    microbes, metabolites, immune : DataFrame
        The view's blocks, rows = the same subjects (``index`` subject_id),
        columns = features; e.g. the change matrices of
        :func:`gutaxis.integration.views.build_views` for the two modality pairs.
    links_xm, links_my : DataFrame
        Association tables of the same view (feature_a, feature_b, rho, q).
    covariates : DataFrame, optional
        Indexed by subject; added to both mediation models (categoricals
        one-hot) and used for ``rho_xy``.
    settings : TriadSettings, optional
        Link threshold, rule, cap, bootstrap, scale (default: :class:`TriadSettings` ()).
    **overrides
        Fields of :class:`TriadSettings` replacing those of ``settings``
        (e.g. ``n_rep=100, seed=1``).

    Returns
    -------
    TriadResult

    References
    ----------
    Imai K, Keele L, Tingley D (2010) Psychol Methods 15:309-334.
    Benjamini Y, Hochberg Y (1995) J R Stat Soc B 57:289-300.
    """
    settings = with_overrides(settings, TriadSettings, overrides)
    if settings.rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {settings.rule!r}")
    if settings.scale not in ("standardised", "rank"):
        raise ValueError(f"scale must be 'standardised' or 'rank', got {settings.scale!r}")
    index = microbes.index
    for name, frame in (("metabolites", metabolites), ("immune", immune)):
        if not frame.index.equals(index):
            raise InputError(Problem(name, "rows", "rows differ from the microbe block's rows",
                                     "pass the blocks of one view (gutaxis.integration.views.build_views)"))
    cov = None if covariates is None else covariates.reindex(index)
    chains = _ranked_chains(microbes, immune, links_xm, links_my, cov, settings)
    jobs = _mediation_jobs((microbes, metabolites, immune), chains[chains["tested"]], cov, settings)
    if settings.n_jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(settings.n_jobs) as pool:
            fits = list(pool.map(_mediate_job, jobs))
    else:
        fits = [_mediate_job(job) for job in jobs]

    tested = chains[chains["tested"]].reset_index(drop=True)
    table = pd.concat([tested, pd.DataFrame(fits, index=tested.index)], axis=1) if fits else \
        tested.reindex(columns=list(tested.columns) + [c for c in TRIAD_COLUMNS if c not in tested.columns])
    table["acme_q"] = bh_fdr(table["acme_p"].to_numpy(dtype=float)) if len(table) else []
    table = table.sort_values(["prop_mediated", "acme_q", "microbe", "metabolite", "immune"],
                              ascending=[False, True, True, True, True], na_position="last",
                              kind="mergesort")
    table = table[TRIAD_COLUMNS].reset_index(drop=True)
    summary = {
        "rule": settings.rule, "max_q": settings.max_q, "max_triads": settings.max_triads,
        "n_candidates": int(len(chains)), "n_tested": int(len(table)),
        "capped": bool(len(chains) > settings.max_triads), "n_rep": settings.n_rep, "seed": settings.seed,
        "scale": settings.scale, "alpha": settings.alpha, "n_subjects": int(len(index)),
    }
    return TriadResult(table=table, candidates=chains, summary=summary)


def _ranked_chains(microbes, immune, links_xm, links_my, cov, settings: TriadSettings) -> pd.DataFrame:
    """The candidate chains kept by the rule, in priority order, flagged as tested up to the cap."""
    chains = candidate_triads(links_xm, links_my, max_q=settings.max_q)
    chains["rho_microbe_immune"] = _rho_for_pairs(microbes, immune, cov, chains["microbe"], chains["immune"])
    indirect_sign = np.sign(chains["rho_microbe_metabolite"] * chains["rho_metabolite_immune"])
    chains["sign_consistent"] = indirect_sign == np.sign(chains["rho_microbe_immune"])
    if settings.rule == "sign_consistent":
        chains = chains[chains["sign_consistent"]].reset_index(drop=True)
    chains["priority"] = np.arange(1, len(chains) + 1)
    chains["tested"] = chains["priority"] <= settings.max_triads
    chains["reason"] = np.where(chains["tested"], "", f"beyond the cap of {settings.max_triads} triads tested")
    return chains


def _mediation_jobs(blocks, chains: pd.DataFrame, cov, settings: TriadSettings) -> list[tuple]:
    """One :func:`mediate_triad` argument tuple per chain: its complete rows, rescaled."""
    microbes, metabolites, immune = blocks
    covariate_matrix = None if cov is None else _covariate_columns(cov)
    jobs = []
    for row in chains.itertuples(index=False):
        x = microbes[row.microbe].to_numpy(dtype=float)
        m = metabolites[row.metabolite].to_numpy(dtype=float)
        y = immune[row.immune].to_numpy(dtype=float)
        complete = np.isfinite(x) & np.isfinite(m) & np.isfinite(y)
        if covariate_matrix is not None:
            complete &= np.isfinite(covariate_matrix).all(axis=1)
        c = None if covariate_matrix is None else covariate_matrix[complete]
        x, m, y = (_rescale(v[complete], settings.scale) for v in (x, m, y))
        seed = _triad_seed(settings.seed, (row.microbe, row.metabolite, row.immune))
        jobs.append((x, m, y, c, settings.n_rep, seed, settings.alpha))
    return jobs


# ------------------------------------------------------------ the workflow step
def axis_triad_tables(study: StudySheets, tables: Mapping[str, pd.DataFrame], links_xm: pd.DataFrame,
                      links_my: pd.DataFrame, *, covariates: Sequence[str], config: Mapping, seed: int = 0,
                      n_jobs: int = 1) -> dict[str, pd.DataFrame]:
    """The triad tables of the workflow: :func:`axis_triads` on the change view of three modalities.

    Parameters
    ----------
    study : StudySheets
        Sample sheet, subjects table (for ``covariates``) and the contrast's timepoints.
    tables : mapping of str -> DataFrame
        The prepared microbe, metabolite and immune tables, in that order.
    links_xm, links_my : DataFrame
        The change-view association tables of the microbe-metabolite and
        metabolite-immune blocks.
    covariates : sequence of str
        Subjects-table columns added to the mediation models (may be empty).
    config : mapping
        The config's ``integration.triads`` section (:meth:`TriadSettings.from_config`,
        ``fdr_level`` of the calls, ``plot_top`` triads whose data are written).
    seed, n_jobs : int
        Run seed and processes of the mediation fits.

    Returns
    -------
    dict of str -> DataFrame
        ``triads`` (ranked), ``candidates``, ``summary`` (one row) and ``data``
        (:data:`DATA_COLUMNS`, the changes behind the ``plot_top`` first triads).
    """
    names = list(tables)
    microbes, metabolites, immune = _change_blocks(study, tables)
    covariate_table = None
    if covariates:
        covariate_table = subject_covariates(study.subjects, covariates, microbes.index, study.subjects_file)
    result = axis_triads(microbes, metabolites, immune, links_xm, links_my, covariate_table,
                         TriadSettings.from_config(config, seed, n_jobs))
    table = result.table
    table.insert(0, "rank", range(1, len(table) + 1))
    summary = dict(result.summary, microbes=names[0], metabolites=names[1], immune=names[2], view="change",
                   pre=study.pre, post=study.post, covariates=";".join(covariates),
                   fdr_level=config["fdr_level"], n_called=int((table["acme_q"] < config["fdr_level"]).sum()))
    log.info("%d candidate triads, %d tested, %d with ACME q < %g", summary["n_candidates"],
             summary["n_tested"], summary["n_called"], config["fdr_level"])
    data = [pd.DataFrame({
        "rank": row.rank, "microbe": row.microbe, "metabolite": row.metabolite, "immune": row.immune,
        "subject_id": microbes.index, "microbe_change": microbes[row.microbe].to_numpy(),
        "metabolite_change": metabolites[row.metabolite].to_numpy(),
        "immune_change": immune[row.immune].to_numpy(),
    }) for row in table.head(config["plot_top"]).itertuples(index=False)]
    data = pd.concat(data, ignore_index=True) if data else pd.DataFrame(columns=DATA_COLUMNS)
    return {"triads": table, "candidates": result.candidates, "summary": pd.DataFrame([summary]),
            "data": data[DATA_COLUMNS]}


def _change_blocks(study: StudySheets, tables: Mapping[str, pd.DataFrame]):
    """The change (post - pre) matrices of the three modalities on the subjects that have all three."""
    (x_name, x_table), (m_name, m_table), (y_name, y_table) = tables.items()
    xm = build_views(study.samples, x_table, m_table, pre=study.pre, post=study.post, name_a=x_name,
                     name_b=m_name, samples_file=study.samples_file).views["change"]
    my = build_views(study.samples, m_table, y_table, pre=study.pre, post=study.post, name_a=m_name,
                     name_b=y_name, samples_file=study.samples_file).views["change"]
    subjects = xm[0].index.intersection(my[0].index).sort_values()
    return xm[0].loc[subjects], xm[1].loc[subjects], my[1].loc[subjects]


def _covariate_columns(cov: pd.DataFrame) -> np.ndarray:
    """Covariates as model columns (categoricals one-hot, first level dropped)."""
    parts = []
    for name in cov.columns:
        values = cov[name]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            parts.append(values.to_numpy(dtype=float)[:, None])
        else:
            as_str = values.astype(str).where(values.notna())
            levels = sorted(as_str.dropna().unique())
            onehot = np.column_stack([(as_str == lev).to_numpy(dtype=float) for lev in levels[1:]]) \
                if len(levels) > 1 else np.empty((len(values), 0))
            onehot[values.isna().to_numpy()] = np.nan
            parts.append(onehot)
    return np.column_stack(parts) if parts else np.empty((len(cov), 0))


def _rescale(v: np.ndarray, scale: str) -> np.ndarray:
    if scale == "rank":
        v = average_ranks(v[:, None])[:, 0]
    sd = v.std(ddof=1)
    return (v - v.mean()) / sd if sd > 0 else v - v.mean()


def _rho_for_pairs(a: pd.DataFrame, b: pd.DataFrame, cov, ids_a, ids_b) -> np.ndarray:
    """(Partial) Spearman rho for the listed (a, b) pairs, on complete rows.

    Only the features involved are ranked; rows with any missing value in
    them (or in the covariates) are left out, as in the mediation fits.
    """
    if len(ids_a) == 0:
        return np.empty(0)
    cols_a = pd.unique(np.asarray(ids_a))
    cols_b = pd.unique(np.asarray(ids_b))
    block_a = a[cols_a].to_numpy(dtype=float)
    block_b = b[cols_b].to_numpy(dtype=float)
    rows = np.isfinite(block_a).all(axis=1) & np.isfinite(block_b).all(axis=1)
    if cov is not None:
        rows &= cov.notna().all(axis=1).to_numpy()
    basis, _ = covariate_basis(None if cov is None else cov.loc[rows], int(rows.sum()))
    std_a, keep_a, _ = _standardise(average_ranks(block_a[rows]), basis)
    std_b, keep_b, _ = _standardise(average_ranks(block_b[rows]), basis)
    full = np.full((cols_a.size, cols_b.size), np.nan)
    full[np.ix_(keep_a, keep_b)] = std_a.T @ std_b
    pos_a = pd.Index(cols_a).get_indexer(ids_a)
    pos_b = pd.Index(cols_b).get_indexer(ids_b)
    return full[pos_a, pos_b]
