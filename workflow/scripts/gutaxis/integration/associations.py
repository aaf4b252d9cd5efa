"""Pairwise association blocks between two omics: (partial) Spearman, p-values, BH FDR.

Every pair of features (one from block A, one from block B) measured on the same
rows (subjects) is correlated at once: each feature is ranked, the ranks are
centred (or residualised on covariates) and scaled to unit length, and the whole
correlation block is one matrix product ``A_std.T @ B_std``.  p-values come from
the t distribution or from subject-level permutations (also matrix products, in
chunks); Benjamini–Hochberg q-values use every pair of the block.

References
----------
Spearman C (1904) The proof and measurement of association between two things.
Am J Psychol 15:72-101.
Kim S (2015) ppcor: an R package for a fast calculation to semi-partial
correlation coefficients. Commun Stat Appl Methods 22:665-674.
Freedman D, Lane D (1983) A nonstochastic interpretation of reported
significance levels. J Bus Econ Stat 1:292-298.
Benjamini Y, Hochberg Y (1995) Controlling the false discovery rate. J R Stat
Soc B 57:289-300.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from gutaxis.integration.association_display import strongest_submatrix
from gutaxis.integration.views import StudySheets, build_views
from gutaxis.metabolome.structure import without_unmeasured
from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.settings import with_overrides
from gutaxis.io.subject_covariates import subject_covariates

__all__ = [
    "AssociationSettings",
    "BlockAssociation",
    "ViewAssociationSettings",
    "associate_blocks",
    "association_view",
    "average_ranks",
    "bh_fdr",
    "block_correlation",
    "covariate_basis",
    "permutation_pvalues",
    "subject_permutations",
    "t_test_pvalues",
]

# Tolerance on |r| when counting permutation statistics at least as extreme as the
# observed one, so that floating-point noise never makes the identity permutation
# "less extreme" than itself (vegan uses the same EPS in its permutation tests).
PERMUTATION_EPS = float(np.sqrt(np.finfo(float).eps))

# A feature whose centred ranks (or covariate residuals) have a norm below this
# fraction of the scale of ranks carries no information for a correlation.
_ZERO_VARIANCE_RTOL = 1e-8

DROPPED_COLUMNS = ["kind", "id", "reason"]
#: columns of the table the workflow writes per block and view
VIEW_TABLE_COLUMNS = ["feature_a", "feature_b", "rho", "p", "q", "n", "block", "view"]

log = logging.getLogger("gutaxis.integration")


# --------------------------------------------------------------------------- basics
def average_ranks(x: np.ndarray) -> np.ndarray:
    """Rank every column of ``x`` over its rows, ties receiving their average rank.

    Parameters
    ----------
    x : ndarray, shape (n, p)
        Finite values; rows are samples (subjects), columns features.

    Returns
    -------
    ndarray of float, shape (n, p)
        Ranks 1..n per column; tied values get the mean of the ranks they span
        (the convention of Spearman's rho with ties, ``scipy.stats.rankdata``
        ``method="average"``).
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {x.shape}")
    return stats.rankdata(x, axis=0, method="average").astype(float, copy=False)


def covariate_basis(
    covariates: pd.DataFrame | None, n: int, *, rank_numeric: bool = True
) -> tuple[np.ndarray, list[str]]:
    """Orthonormal basis of the covariate design ``[1, covariates]``.

    Categorical covariates (object, category or bool dtype) are one-hot encoded
    with the first level (in sorted order) as reference; numeric covariates are
    converted to average ranks when ``rank_numeric`` is true, so that the partial
    Spearman correlation is the partial correlation of ranks of *all* variables,
    as in ppcor's ``pcor(method = "spearman")`` (Kim 2015) and pingouin's
    ``partial_corr(method="spearman")``.  (Ranking a 0/1 indicator is an affine
    map, so categoricals are unaffected by this choice.)

    Parameters
    ----------
    covariates : DataFrame or None
        ``n`` rows, one column per covariate, no missing values.  ``None`` or no
        columns gives the intercept-only design (plain Spearman).
    n : int
        Number of rows.
    rank_numeric : bool
        Rank numeric covariates before building the design.

    Returns
    -------
    basis : ndarray, shape (n, r)
        Orthonormal columns spanning the design (from its SVD); the
        intercept is always in the span.  Collinear or constant columns are
        absorbed, so ``r = rank(design)``.
    terms : list of str
        Design column names before orthonormalisation (``"intercept"``,
        numeric names, ``"<column>[<level>]"`` for indicator columns).
    """
    columns = [np.ones(n)]
    terms = ["intercept"]
    if covariates is not None:
        for name in covariates.columns:
            values = covariates[name]
            if _is_categorical(values):
                levels = sorted(pd.unique(values.astype(str)))
                as_str = values.astype(str).to_numpy()
                for level in levels[1:]:
                    columns.append((as_str == level).astype(float))
                    terms.append(f"{name}[{level}]")
            else:
                v = values.to_numpy(dtype=float)
                columns.append(stats.rankdata(v) if rank_numeric else v)
                terms.append(str(name))
    design = np.column_stack(columns)
    u, s, _ = np.linalg.svd(design, full_matrices=False)
    keep = s > s[0] * max(design.shape) * np.finfo(float).eps
    return u[:, keep], terms


def _is_categorical(values: pd.Series) -> bool:
    return (
        isinstance(values.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(values)
        or pd.api.types.is_string_dtype(values)
        or pd.api.types.is_bool_dtype(values)
    )


def _standardise(
    ranks: np.ndarray, basis: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residualise ranks on ``basis`` and scale each column to unit norm.

    Returns the standardised matrix (columns with no variation left are
    removed), a boolean mask of kept columns, and a per-column code of why a
    column was removed (0 kept, 1 constant ranks, 2 nothing left after
    covariates).
    """
    n = ranks.shape[0]
    centred_norm = np.linalg.norm(ranks - ranks.mean(axis=0), axis=0)
    resid = ranks - basis @ (basis.T @ ranks)
    resid_norm = np.linalg.norm(resid, axis=0)
    constant = centred_norm <= _ZERO_VARIANCE_RTOL * n
    absorbed = ~constant & (resid_norm <= _ZERO_VARIANCE_RTOL * centred_norm)
    keep = ~(constant | absorbed)
    code = np.where(constant, 1, np.where(absorbed, 2, 0))
    std = resid[:, keep] / resid_norm[keep]
    return std, keep, code


def block_correlation(a_std: np.ndarray, b_std: np.ndarray) -> np.ndarray:
    """All correlations between columns of two standardised blocks.

    With columns centred (or residualised) and scaled to unit Euclidean norm,
    the Pearson correlation of column i of A and column j of B is the inner
    product ``r_ij = a_i . b_j``, so the whole block is ``A.T @ B``.  Applied to
    ranks this is Spearman's rho (ties: average ranks); applied to covariate
    residuals of ranks it is the partial Spearman correlation.

    Parameters
    ----------
    a_std, b_std : ndarray, shapes (n, p_a) and (n, p_b)
        Unit-norm, mean-zero columns over the same n rows.

    Returns
    -------
    ndarray, shape (p_a, p_b)
        Correlations, clipped to [-1, 1] against rounding.
    """
    r = a_std.T @ b_std
    np.clip(r, -1.0, 1.0, out=r)
    return r


def t_test_pvalues(r: np.ndarray, n: int | np.ndarray, k: int = 0) -> np.ndarray:
    """Two-sided p-values of (partial) correlations from the t approximation.

    ``t = r * sqrt(df / (1 - r**2))`` with ``df = n - 2 - k`` for ``k``
    covariates, and ``p = 2 * P(T_df > |t|)``.  For Spearman's rho this is the
    large-sample approximation used by ``scipy.stats.spearmanr`` and R's
    ``cor.test(method = "spearman", exact = FALSE)``-style tests on ranks; for
    partial correlations the same statistic with ``k`` fewer degrees of freedom
    is the test of ppcor's ``pcor.test`` (Kim 2015).  ``|r| = 1`` gives p = 0.

    Parameters
    ----------
    r : array_like
        Correlations.
    n : int or array_like
        Number of observations behind each correlation (broadcast against r).
    k : int
        Number of covariates adjusted for (design rank minus the intercept).

    Returns
    -------
    ndarray
        p-values, same shape as ``r``.
    """
    shape = np.shape(r)
    abs_r = np.atleast_1d(np.abs(np.asarray(r, dtype=float)))
    df = np.asarray(n, dtype=float) - 2.0 - k
    if np.any(df < 1):
        raise ValueError(f"need n - 2 - k >= 1 degrees of freedom, got df={df.min()}")
    # in place: these arrays hold millions of pairs
    minus_t = abs_r * abs_r
    np.subtract(1.0, minus_t, out=minus_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(df, minus_t, out=minus_t)
        np.sqrt(minus_t, out=minus_t)
        np.multiply(minus_t, -abs_r, out=minus_t)
    minus_t[abs_r >= 1.0] = -np.inf
    p = special.stdtr(df, minus_t)
    p *= 2.0
    return p.reshape(shape)


def bh_fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), vectorised.

    ``q_(i) = min_{j >= i} min(1, m * p_(j) / j)`` over the ascending p-values
    ``p_(1) <= ... <= p_(m)`` (Benjamini & Hochberg 1995); the arithmetic is
    that of statsmodels ``multipletests(method="fdr_bh")``.  NaN p-values are
    left out of ``m`` and stay NaN.

    Parameters
    ----------
    p : array_like
        p-values of any shape.

    Returns
    -------
    ndarray
        q-values, same shape as ``p``.
    """
    p = np.asarray(p, dtype=float)
    flat = p.ravel()
    q = np.full(flat.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(flat))
    if finite.size:
        order = finite[np.argsort(flat[finite], kind="stable")]
        q[order] = _bh_sorted(flat[order])
    return q.reshape(p.shape)


def _bh_sorted(p_sorted: np.ndarray) -> np.ndarray:
    """BH q-values for p-values already sorted ascending (same order out)."""
    m = p_sorted.size
    raw = p_sorted / (np.arange(1, m + 1) / m)
    q = np.minimum.accumulate(raw[::-1])[::-1]
    np.minimum(q, 1.0, out=q)
    return q


# ----------------------------------------------------------------- permutations
def subject_permutations(
    n: int, n_perm: int, seed: int | None, strata: np.ndarray | None = None
) -> np.ndarray:
    """Random row permutations, optionally restricted to within strata.

    Parameters
    ----------
    n : int
        Number of rows (subjects).
    n_perm : int
        Number of permutations.
    seed : int or None
        Seed for ``numpy.random.default_rng``.
    strata : array_like of length n, optional
        Group labels; rows are only exchanged within their group (e.g. cohort,
        when cohort is also a covariate).

    Returns
    -------
    ndarray of int32, shape (n_perm, n)
        Row ``i`` maps new position -> original row.
    """
    rng = np.random.default_rng(seed)
    base = np.tile(np.arange(n, dtype=np.int32), (n_perm, 1))
    if strata is None:
        return rng.permuted(base, axis=1)
    labels = pd.Series(np.asarray(strata)).astype(str).to_numpy()
    perms = base
    for level in sorted(set(labels)):
        rows = np.flatnonzero(labels == level).astype(np.int32)
        shuffled = rng.permuted(np.tile(np.arange(rows.size), (n_perm, 1)), axis=1)
        perms[:, rows] = rows[shuffled]
    return perms


def permutation_pvalues(
    a_std: np.ndarray,
    b_std: np.ndarray,
    r_obs: np.ndarray,
    perms: np.ndarray,
    basis: np.ndarray | None = None,
    *,
    chunk_bytes: int = 64 * 2**20,
) -> np.ndarray:
    """Two-sided permutation p-values for a whole correlation block.

    Rows (subjects) of block B are permuted relative to block A with the same
    permutation for every pair, and ``p = (#{|r_perm| >= |r_obs|} + 1) /
    (n_perm + 1)``.  With covariates this is the Freedman–Lane scheme: the
    covariate residuals of B's ranks are permuted and residualised again, so
    ``r_perm = a . (P b) / ||(I - H) P b||``; because ``a`` is already
    orthogonal to the design, only the norm needs the second residualisation,
    ``||(I - H) P b||**2 = 1 - ||Q.T P b||**2``.  Without covariates ``Q`` is the
    intercept and the denominator is 1 (plain permutation of ranks).  Each batch
    of permutations is one matrix product; B's columns and the permutations are
    processed in chunks of at most ``chunk_bytes`` of correlations.

    Parameters
    ----------
    a_std, b_std : ndarray, shapes (n, p_a), (n, p_b)
        Standardised (unit-norm residual) ranks, as for :func:`block_correlation`.
    r_obs : ndarray, shape (p_a, p_b)
        Observed correlations.
    perms : ndarray of int, shape (n_perm, n)
        Row permutations (see :func:`subject_permutations`).
    basis : ndarray, shape (n, r), optional
        Orthonormal covariate basis; ``None`` means intercept only.
    chunk_bytes : int
        Memory budget for one batch of permuted correlations.

    Returns
    -------
    ndarray, shape (p_a, p_b)
        Permutation p-values in ``[1 / (n_perm + 1), 1]``.

    References
    ----------
    Freedman D, Lane D (1983) J Bus Econ Stat 1:292-298.
    Phipson B, Smyth GK (2010) Permutation p-values should never be zero. Stat
    Appl Genet Mol Biol 9:39.
    """
    n, p_a = a_std.shape
    p_b = b_std.shape[1]
    n_perm = perms.shape[0]
    if basis is None:
        basis = np.full((n, 1), 1.0 / np.sqrt(n))
    threshold = np.abs(r_obs) - PERMUTATION_EPS
    counts = np.zeros((p_a, p_b), dtype=np.int32)
    if counts.size == 0:
        return np.ones((p_a, p_b))
    per_column = 8 * p_a
    cols_per_chunk = int(max(1, min(p_b, chunk_bytes // per_column)))
    for start in range(0, p_b, cols_per_chunk):
        cols = slice(start, min(p_b, start + cols_per_chunk))
        b_chunk = b_std[:, cols]
        width = b_chunk.shape[1]
        perms_per_batch = int(max(1, min(n_perm, chunk_bytes // (per_column * width))))
        thr = threshold[:, cols]
        for first in range(0, n_perm, perms_per_batch):
            batch = perms[first:first + perms_per_batch]
            # (n, batch * width): permuted copies of the chunk side by side
            stacked = b_chunk[batch.T].reshape(n, -1)
            proj = basis.T @ stacked
            denom = np.sqrt(np.clip(1.0 - np.einsum("ij,ij->j", proj, proj), 0.0, None))
            r_perm = a_std.T @ stacked
            np.abs(r_perm, out=r_perm)
            with np.errstate(divide="ignore", invalid="ignore"):
                r_perm /= denom
            r_perm = r_perm.reshape(p_a, len(batch), width)
            counts[:, cols] += (r_perm >= thr[:, None, :]).sum(axis=1, dtype=np.int32)
    return (counts + 1.0) / (n_perm + 1.0)


# ---------------------------------------------------------------- the block run
@dataclass(frozen=True)
class AssociationSettings:
    """How :func:`associate_blocks` tests a block and which pairs it returns.

    Attributes
    ----------
    rank_covariates : bool
        Rank numeric covariates before adjusting for them (the ppcor and
        pingouin convention for the partial Spearman correlation).
    n_perm : int
        Subject-level permutations; 0 uses the t approximation.
    seed : int or None
        Seed of the permutations.
    missing : {"drop", "raise"}
        Features with missing values: drop them (reported with the reason) or
        raise :class:`~gutaxis.io.errors.InputError`.  Pairwise-complete
        correlation is not offered: it would need a re-ranking per pair.
    min_abs_rho, max_q, top_k : float, float, int or None
        Filters on the *returned* table (|rho| >= min_abs_rho, q <= max_q, then
        the first top_k rows in output order); None = no filter.  They never
        change q.
    chunk_bytes : int
        Memory budget of one batch of permuted correlations.
    """

    rank_covariates: bool = True
    n_perm: int = 0
    seed: int | None = None
    missing: str = "drop"
    min_abs_rho: float | None = None
    max_q: float | None = None
    top_k: int | None = None
    chunk_bytes: int = 64 * 2**20

    @classmethod
    def from_config(cls, section: Mapping, seed: int | None = None) -> AssociationSettings:
        """The test of the config's ``integration`` section: its ``n_perm`` permutations
        seeded with the run's ``seed``; features missing in a view are dropped.

        The section's ``max_q`` and ``top_k`` cut the table the workflow writes
        (:func:`association_view`) after the heatmap and the q counts have seen
        every pair, so they are no filters here.
        """
        return cls(n_perm=int(section.get("n_perm", 0)), seed=seed, missing="drop")


@dataclass
class BlockAssociation:
    """Result of :func:`associate_blocks`.

    Attributes
    ----------
    table : DataFrame
        One row per written pair: ``feature_a, feature_b, rho, p, q, n``,
        ordered by p ascending, then |rho| descending, then input order.
    dropped : DataFrame
        ``kind`` (``feature_a``, ``feature_b`` or ``row``), ``id``, ``reason``.
    summary : dict
        Method, n, k, df, p-value method, permutations, seed, counts of features
        and pairs tested and written, the filters applied.
    """

    table: pd.DataFrame
    dropped: pd.DataFrame
    summary: dict = field(default_factory=dict)


def associate_blocks(
    a: pd.DataFrame,
    b: pd.DataFrame,
    covariates: pd.DataFrame | None = None,
    settings: AssociationSettings | None = None,
    *,
    strata: pd.Series | np.ndarray | None = None,
    source_a: str = "block A",
    source_b: str = "block B",
    **overrides,
) -> BlockAssociation:
    """Spearman or partial Spearman correlation of every feature pair of two blocks.

    Each feature is converted to average ranks over the rows; with covariates
    the ranks are regressed on ``[1, covariates]`` (categoricals one-hot,
    numeric covariates ranked when ``rank_covariates``) and the residuals are
    correlated, which is the partial Spearman correlation
    ``rho_ab.Z = corr(e_a, e_b)``, ``e = (I - H) rank(x)``.  The block is one
    matrix product of unit-norm residual columns.  p-values: the t
    approximation ``t = rho sqrt((n-2-k) / (1-rho^2))`` on ``n-2-k`` degrees
    of freedom (``k`` = design rank minus 1), or, with ``n_perm > 0``,
    subject-level Freedman–Lane permutations of B's rows,
    ``p = (#{|r_perm| >= |r_obs|} + 1) / (n_perm + 1)``.  q-values are
    Benjamini–Hochberg over *all* tested pairs of the block, before any of
    the output filters is applied.

    Parameters
    ----------
    a, b : DataFrame
        Rows = the same subjects (or samples) in both blocks, columns = feature
        ids, values on the scale to be ranked (any monotone transform gives the
        same result).  ``b`` is re-ordered to ``a``'s rows.
    covariates : DataFrame, optional
        Indexed like ``a``; rows with a missing covariate are dropped (reported).
    settings : AssociationSettings, optional
        Ranking of covariates, permutations, missing values, output filters
        (default: :class:`AssociationSettings` ()).
    strata : array_like, optional
        Permute rows only within these groups (indexed like ``a`` if a Series).
    source_a, source_b : str
        Names used in error messages and the dropped table.
    **overrides
        Fields of :class:`AssociationSettings` replacing those of ``settings``
        (e.g. ``n_perm=199, seed=1``).

    Returns
    -------
    BlockAssociation
        ``table`` (feature_a, feature_b, rho, p, q, n), ``dropped`` and
        ``summary``.

    References
    ----------
    Kim S (2015) ppcor. Commun Stat Appl Methods 22:665-674.
    Benjamini Y, Hochberg Y (1995) J R Stat Soc B 57:289-300.
    """
    settings = with_overrides(settings, AssociationSettings, overrides)
    if settings.missing not in ("drop", "raise"):
        raise ValueError(f"missing must be 'drop' or 'raise', got {settings.missing!r}")
    a, b, covariates, strata_values, dropped_rows = _align(
        a, b, covariates, strata, source_a, source_b
    )
    a_values, a_ids, dropped_a = _finite_features(a, "feature_a", source_a, settings.missing)
    b_values, b_ids, dropped_b = _finite_features(b, "feature_b", source_b, settings.missing)
    n = a.shape[0]

    basis, terms = covariate_basis(covariates, n, rank_numeric=settings.rank_covariates)
    k = basis.shape[1] - 1
    df = n - 2 - k
    if df < 1:
        raise InputError(Problem(
            source_a, f"{n} rows",
            f"too few subjects for a correlation test with {k} covariate term(s) "
            f"(n - 2 - k = {df})",
            "use fewer covariates or a view with more subjects",
        ))

    a_std, keep_a, code_a = _standardise(average_ranks(a_values), basis)
    b_std, keep_b, code_b = _standardise(average_ranks(b_values), basis)
    dropped = pd.concat(
        [dropped_rows, dropped_a, dropped_b,
         _variance_drops(a_ids, code_a, "feature_a"),
         _variance_drops(b_ids, code_b, "feature_b")],
        ignore_index=True,
    )
    a_ids = a_ids[keep_a]
    b_ids = b_ids[keep_b]

    rho = block_correlation(a_std, b_std)
    if settings.n_perm > 0:
        perms = subject_permutations(n, settings.n_perm, settings.seed, strata_values)
        p = permutation_pvalues(a_std, b_std, rho, perms, basis, chunk_bytes=settings.chunk_bytes)
        p_method = "permutation_freedman_lane" if k else "permutation"
    else:
        p = t_test_pvalues(rho, n, k)
        p_method = "t"

    table, n_written = _tidy(rho, p, a_ids, b_ids, n, settings)
    summary = {
        "method": "partial_spearman" if k else "spearman",
        "covariate_terms": ";".join(terms[1:]),
        "n": n,
        "k": k,
        "df": df,
        "p_method": p_method,
        "n_perm": int(settings.n_perm),
        "seed": settings.seed,
        "features_a_tested": int(a_ids.size),
        "features_b_tested": int(b_ids.size),
        "pairs_tested": int(rho.size),
        "pairs_written": int(n_written),
        "min_abs_rho": settings.min_abs_rho,
        "max_q": settings.max_q,
        "top_k": settings.top_k,
    }
    return BlockAssociation(table=table, dropped=dropped, summary=summary)


# ------------------------------------------------------------ the workflow step
@dataclass(frozen=True)
class ViewAssociationSettings:
    """What the workflow's association step does with one block in one view.

    Attributes
    ----------
    method : {"partial_spearman", "spearman"}
        The requested correlation; ``spearman`` ignores ``covariates``.
    covariates : tuple of str
        Subjects-table columns adjusted for.
    permutation_strata : str
        Subjects-table column within whose groups subjects are permuted ("" = free).
    max_q : float
        The written table keeps the pairs with q <= max_q (1 or more: every pair).
    top_k : int
        ... then at most this many rows, in output order (0: no limit).
    heatmap_pairs, heatmap_features : int
        The heatmap shows the features of the ``heatmap_pairs`` strongest pairs, at
        most ``heatmap_features`` per side (:func:`~gutaxis.integration.association_display.strongest_submatrix`).
    test : AssociationSettings
        How :func:`associate_blocks` tests the block (no output filters: the
        heatmap and the q counts see every pair).
    """

    method: str = "partial_spearman"
    covariates: tuple = ()
    permutation_strata: str = ""
    max_q: float = 1.0
    top_k: int = 0
    heatmap_pairs: int = 50
    heatmap_features: int = 30
    test: AssociationSettings = AssociationSettings()

    @classmethod
    def from_config(cls, section: Mapping, seed: int | None = None) -> ViewAssociationSettings:
        """From the config's ``integration`` section (``method``, ``covariates``,
        ``permutation_strata``, ``max_q``, ``top_k``, ``heatmap``, ``n_perm``) and the run's seed."""
        heatmap = section.get("heatmap") or {}
        return cls(method=section.get("method", cls.method),
                   covariates=tuple(section.get("covariates") or ()),
                   permutation_strata=section.get("permutation_strata") or "",
                   max_q=section.get("max_q", cls.max_q), top_k=section.get("top_k", cls.top_k),
                   heatmap_pairs=heatmap.get("n_pairs", cls.heatmap_pairs),
                   heatmap_features=heatmap.get("max_features", cls.heatmap_features),
                   test=AssociationSettings.from_config(section, seed))


def association_view(study: StudySheets, tables: Mapping[str, pd.DataFrame], labels: Sequence[pd.Series],
                     *, block: str, view: str, structures: Mapping[str, str],
                     settings: ViewAssociationSettings) -> dict[str, pd.DataFrame]:
    """The association tables of one block (two modalities) in one view, as the workflow writes them.

    The view's subjects come from :func:`~gutaxis.integration.views.build_views`; the
    metabolites not measured at the view's timepoints are left out; the block is tested by
    :func:`associate_blocks` (covariates for the partial correlation, permutation strata);
    a view with too few subjects for ``n - 2 - k >= 1`` is reported as not tested.

    Parameters
    ----------
    study : StudySheets
        Sample sheet, subjects table, the contrast's timepoints.
    tables : mapping of str -> DataFrame
        The two modalities' prepared tables, side a first (modality -> samples x features).
    labels : sequence of two Series
        Feature id -> display label of each side (the heatmap's labels).
    block, view : str
        The block's name and the view (a timepoint or ``change``).
    structures : mapping of str -> path
        ``missingness_structure.tsv`` of the metabolome sides.
    settings : ViewAssociationSettings

    Returns
    -------
    dict of str -> DataFrame
        ``table`` (the written pairs, :data:`VIEW_TABLE_COLUMNS`), ``dropped``
        (``kind, id, reason`` of subjects and features left out), ``summary`` (one row)
        and ``heatmap`` (the strongest submatrix).
    """
    (name_a, table_a), (name_b, table_b) = tables.items()
    views = build_views(study.samples, table_a, table_b, pre=study.pre, post=study.post, name_a=name_a,
                        name_b=name_b, samples_file=study.samples_file)
    blocks, gaps = without_unmeasured(dict(zip(tables, views.views[view])), structures, study.timepoints(view))
    a, b = blocks.values()
    membership = views.membership[views.membership["view"] == view]
    not_used = membership[~membership["used"]]
    left_out = pd.concat([pd.DataFrame({"kind": "subject", "id": not_used["subject_id"],
                                        "reason": not_used["reason"]}),
                          *(pd.DataFrame({"kind": "feature", "id": reasons.index, "reason": reasons.to_numpy()})
                            for reasons in gaps.values())], ignore_index=True)
    covariates, strata = _view_covariates(study, a.index, settings)
    summary = {"block": block, "view": view, "modality_a": name_a, "modality_b": name_b,
               "requested_method": settings.method,
               "covariates": ";".join(settings.covariates) if covariates is not None else ""}
    complete = a.index if covariates is None else covariates.index[covariates.notna().all(axis=1)]
    k = covariate_basis(None if covariates is None else covariates.loc[complete], len(complete))[0].shape[1] - 1
    if len(complete) - 2 - k < 1:
        reason = (f"{len(complete)} subject(s) in view {view} with {k} covariate term(s): "
                  "too few for a correlation test")
        log.warning("%s: not tested: %s", block, reason)
        table = pd.DataFrame(columns=VIEW_TABLE_COLUMNS)
        summary.update(status="not_tested", reason=reason, n=len(complete))
        return {"table": table, "dropped": left_out[DROPPED_COLUMNS], "summary": pd.DataFrame([summary]),
                "heatmap": strongest_submatrix(table)}
    result = associate_blocks(a, b, covariates, settings.test, strata=strata,
                              source_a=f"{name_a} ({view} view)", source_b=f"{name_b} ({view} view)")
    full = result.table
    heatmap = strongest_submatrix(full, n_pairs=settings.heatmap_pairs, max_features=settings.heatmap_features,
                                  labels_a=labels[0], labels_b=labels[1])
    table = _written_pairs(full, settings).assign(block=block, view=view)[VIEW_TABLE_COLUMNS]
    summary.update(status="tested", reason="")
    summary.update(result.summary)
    summary.update(pairs_written=len(table), max_q=settings.max_q, top_k=settings.top_k,
                   n_q_below_0_05=int((full["q"] < 0.05).sum()), n_q_below_0_1=int((full["q"] < 0.1).sum()))
    log.info("%s %s: %d subjects, %d pairs tested, %d with q < 0.05, %d written", block, view,
             result.summary["n"], result.summary["pairs_tested"], summary["n_q_below_0_05"], len(table))
    dropped = pd.concat([left_out, result.dropped], ignore_index=True)
    return {"table": table, "dropped": dropped[DROPPED_COLUMNS], "summary": pd.DataFrame([summary]),
            "heatmap": heatmap}


def _view_covariates(study: StudySheets, subject_ids, settings: ViewAssociationSettings):
    """The covariates of a partial correlation (None for plain Spearman) and the
    permutation strata (None without permutations or strata) of the view's subjects."""
    covariates = strata = None
    if settings.method == "partial_spearman" and settings.covariates:
        covariates = subject_covariates(study.subjects, settings.covariates, subject_ids, study.subjects_file)
    if settings.test.n_perm > 0 and settings.permutation_strata:
        strata = subject_covariates(study.subjects, [settings.permutation_strata], subject_ids,
                                    study.subjects_file).iloc[:, 0]
    return covariates, strata


def _written_pairs(full: pd.DataFrame, settings: ViewAssociationSettings) -> pd.DataFrame:
    """The pairs the workflow writes: q <= max_q (below 1 only), then the first top_k (0: all)."""
    table = full[full["q"].to_numpy() <= settings.max_q] if settings.max_q < 1 else full
    return table.head(settings.top_k) if settings.top_k else table


# ------------------------------------------------------------------ internals
def _empty_dropped() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in DROPPED_COLUMNS})


def _dropped(kind: str, ids, reasons) -> pd.DataFrame:
    ids = [str(i) for i in ids]
    if not ids:
        return _empty_dropped()
    if isinstance(reasons, str):
        reasons = [reasons] * len(ids)
    return pd.DataFrame({"kind": kind, "id": ids, "reason": list(reasons)})


def _align(a, b, covariates, strata, source_a, source_b):
    """Check both blocks cover the same rows; order everything like ``a``."""
    problems = ProblemCollector()
    for frame, source in ((a, source_a), (b, source_b)):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{source} must be a pandas DataFrame, got {type(frame).__name__}")
        if frame.index.has_duplicates:
            dups = sorted(map(str, frame.index[frame.index.duplicated()].unique()))
            problems.add(source, f"rows {', '.join(dups[:10])}", "row ids appear more than once",
                         "give each subject/sample one row per view")
        if frame.columns.has_duplicates:
            dups = sorted(map(str, frame.columns[frame.columns.duplicated()].unique()))
            problems.add(source, f"columns {', '.join(dups[:10])}", "feature ids appear more than once",
                         "make feature ids unique")
    problems.raise_if_any()
    only_a = a.index.difference(b.index)
    only_b = b.index.difference(a.index)
    if len(only_a) or len(only_b):
        for ids, source, other in ((only_a, source_a, source_b), (only_b, source_b, source_a)):
            if len(ids):
                shown = ", ".join(map(str, sorted(map(str, ids))[:10]))
                problems.add(source, f"rows {shown}" + (" ..." if len(ids) > 10 else ""),
                             f"{len(ids)} row(s) have no counterpart in {other}",
                             "build both blocks with gutaxis.integration.views so rows are matched subjects")
        problems.raise_if_any()
    b = b.loc[a.index]

    dropped_rows = _empty_dropped()
    strata_values = None
    if strata is not None:
        strata_values = (strata.reindex(a.index) if isinstance(strata, pd.Series)
                         else pd.Series(np.asarray(strata), index=a.index))
        if strata_values.isna().any():
            raise InputError(Problem(
                "strata", ", ".join(map(str, strata_values.index[strata_values.isna()][:10])),
                "no stratum for these rows", "give every row a stratum label"))
    if covariates is not None:
        covariates = covariates.reindex(a.index)
        incomplete = covariates.isna().any(axis=1)
        if incomplete.any():
            reasons = [
                "missing covariate(s) " + ", ".join(covariates.columns[covariates.loc[i].isna()])
                for i in covariates.index[incomplete]
            ]
            dropped_rows = _dropped("row", covariates.index[incomplete], reasons)
            keep = ~incomplete.to_numpy()
            a, b, covariates = a.loc[keep], b.loc[keep], covariates.loc[keep]
            if strata_values is not None:
                strata_values = strata_values.loc[keep]
    if strata_values is not None:
        strata_values = strata_values.to_numpy()
    return a, b, covariates, strata_values, dropped_rows


def _finite_features(frame: pd.DataFrame, kind: str, source: str, missing: str):
    """Values as float, with features holding NaN dropped (or an error raised)."""
    try:
        values = frame.to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError(Problem(source, "values", f"non-numeric values ({err})",
                                 "pass a numeric feature table")) from None
    ids = frame.columns.to_numpy()
    if np.isinf(values).any():
        cols = ids[np.isinf(values).any(axis=0)]
        raise InputError(Problem(source, "columns " + ", ".join(map(str, cols[:10])),
                                 "infinite values", "transform without producing inf (e.g. add a pseudocount)"))
    n_missing = np.isnan(values).sum(axis=0)
    has_missing = n_missing > 0
    if not has_missing.any():
        return values, ids, _empty_dropped()
    if missing == "raise":
        problems = ProblemCollector()
        for fid, count in zip(ids[has_missing], n_missing[has_missing]):
            problems.add(source, f"column {fid}", f"{count} missing value(s) in this view",
                         "impute missing values upstream or use missing='drop'")
        problems.raise_if_any()
    reasons = [f"{c} of {values.shape[0]} values missing in this view "
               "(pairwise-complete correlation not computed)" for c in n_missing[has_missing]]
    return values[:, ~has_missing], ids[~has_missing], _dropped(kind, ids[has_missing], reasons)


def _variance_drops(ids: np.ndarray, code: np.ndarray, kind: str) -> pd.DataFrame:
    reasons = {1: "constant after ranking in this view (rho undefined)",
               2: "no rank variation left after regressing out covariates (rho undefined)"}
    mask = code > 0
    return _dropped(kind, ids[mask], [reasons[c] for c in code[mask]])


def _tidy(rho, p, a_ids, b_ids, n, settings: AssociationSettings):
    """Long table of all pairs with BH q over all of them, then the output filters."""
    min_abs_rho, max_q, top_k = settings.min_abs_rho, settings.max_q, settings.top_k
    p_a, p_b = rho.shape
    flat_rho = rho.ravel()
    flat_p = p.ravel()
    # p ascending, then |rho| descending, then input (row-major) order: two stable
    # sorts; the second is nearly free when p is already monotone in |rho|.
    order = np.argsort(-np.abs(flat_rho), kind="stable")
    order = order[np.argsort(flat_p[order], kind="stable")]
    p_sorted = flat_p[order]
    q_sorted = _bh_sorted(p_sorted)
    rho_sorted = flat_rho[order]

    keep = np.ones(order.size, dtype=bool)
    if min_abs_rho is not None:
        keep &= np.abs(rho_sorted) >= min_abs_rho
    if max_q is not None:
        keep &= q_sorted <= max_q
    if not keep.all():
        order, p_sorted, q_sorted, rho_sorted = (
            order[keep], p_sorted[keep], q_sorted[keep], rho_sorted[keep])
    if top_k is not None:
        order, p_sorted, q_sorted, rho_sorted = (
            order[:top_k], p_sorted[:top_k], q_sorted[:top_k], rho_sorted[:top_k])

    code_dtype = np.int32
    ia, ib = np.divmod(order, p_b)
    table = pd.DataFrame({
        "feature_a": pd.Categorical.from_codes(ia.astype(code_dtype), categories=pd.Index(a_ids.astype(str))),
        "feature_b": pd.Categorical.from_codes(ib.astype(code_dtype), categories=pd.Index(b_ids.astype(str))),
        "rho": rho_sorted,
        "p": p_sorted,
        "q": q_sorted,
        "n": np.full(order.size, n, dtype=np.int32),
    })
    return table, order.size
