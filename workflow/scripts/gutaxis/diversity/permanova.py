"""PERMANOVA and PERMDISP on a distance matrix with free or within-stratum permutations.

Every permutation is evaluated as part of a block of matrix products on the
Gower-centred matrix, never by recomputing the statistic in a Python loop.

The permutation tests follow vegan (Oksanen et al.): ``adonis2(d ~ a + b,
by = "terms", strata = s)`` for PERMANOVA and ``permutest(betadisper(d, g,
type = "centroid"))`` for PERMDISP, including vegan/permute's rule of
enumerating every permutation when fewer than 5,040 exist.

References
----------
Anderson, M. J. (2001). A new method for non-parametric multivariate analysis of
variance. Austral Ecology 26, 32-46.
McArdle, B. H. & Anderson, M. J. (2001). Fitting multivariate models to community
data: a comment on distance-based redundancy analysis. Ecology 82, 290-297.
Anderson, M. J. (2006). Distance-based tests for homogeneity of multivariate
dispersions. Biometrics 62, 245-253.
Legendre, P. & Legendre, L. (2012). Numerical Ecology, 3rd ed., sections 9.2 and 11.4.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.pairing import pair_samples, unpaired_samples
from gutaxis.diversity.design import call_by_metric_role, metric_roles, with_front
from gutaxis.io.settings import with_overrides

#: vegan/permute (``how(minperm = 5040)``): below this many possible permutations
#: every permutation is evaluated instead of a Monte-Carlo sample.
COMPLETE_ENUMERATION_BELOW = 5040

#: permuted statistics within this relative distance of the observed one count as
#: ties (>=); vegan uses an absolute sqrt(machine eps) for the same purpose.
TIE_TOLERANCE = 1e-9

#: default memory for the permuted design blocks (bytes).
DEFAULT_BLOCK_BYTES = 128 * 2**20

PERMANOVA_COLUMNS = [
    "test", "term", "df", "sum_of_squares", "r2", "pseudo_f", "p_value", "permutations",
    "permutation_scheme", "strata", "n_samples", "n_strata", "formula", "seed", "note",
]
PERMDISP_COLUMNS = [
    "test", "term", "n_samples", "n_groups", "df_groups", "df_residual", "sum_sq_groups",
    "sum_sq_residual", "f", "p_value", "permutations", "permutation_scheme", "strata",
    "centroid", "seed", "note",
]
GROUP_DISTANCE_COLUMNS = ["test", "term", "group", "n", "mean_distance_to_centroid"]
NOTE_COLUMNS = ["test", "item", "reason"]


# ---------------------------------------------------------------------------
# input handling


def _missing(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


def distance_array(distances, source: str = "distance matrix") -> tuple[list[str], np.ndarray]:
    """Validate a distance matrix and return its ids and a float64 array.

    Parameters
    ----------
    distances : DataFrame, skbio.DistanceMatrix
        Square, symmetric, non-negative, zero diagonal; DataFrame index and columns
        are the sample ids in the same order.
    source : str
        Name used in error messages.

    Returns
    -------
    ids : list of str
    matrix : ndarray, shape (n, n)
    """
    if hasattr(distances, "ids") and hasattr(distances, "data"):
        ids, matrix = [str(i) for i in distances.ids], np.asarray(distances.data, dtype=float)
    elif isinstance(distances, pd.DataFrame):
        if list(map(str, distances.index)) != list(map(str, distances.columns)):
            raise InputError(Problem(source, "index and columns",
                                     "rows and columns do not name the same samples in the same order",
                                     "write the matrix with identical row and column ids"))
        ids = [str(i) for i in distances.index]
        try:
            matrix = distances.to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise InputError(Problem(source, "cells", "not every cell is a number",
                                     "write numeric distances only")) from None
    else:
        raise InputError(Problem(source, "whole input", "not a DataFrame or skbio DistanceMatrix",
                                 "pass the distances as a sample x sample DataFrame"))
    problems = ProblemCollector()
    n = matrix.shape[0]
    if matrix.ndim != 2 or matrix.shape[1] != n:
        problems.add(source, "shape", f"the matrix is {matrix.shape}, not square", "pass a square matrix")
        problems.raise_if_any()
    if len(set(ids)) != n:
        problems.add(source, "sample ids", "sample ids are duplicated", "give every sample one row")
    if n < 3:
        problems.add(source, "sample ids", f"only {n} samples", "test at least 3 samples")
    if not np.all(np.isfinite(matrix)):
        bad = np.argwhere(~np.isfinite(matrix))[:3]
        problems.add(source, ", ".join(f"({ids[i]}, {ids[j]})" for i, j in bad),
                     "distances are missing or infinite", "recompute the distances without missing values")
    else:
        scale = max(1.0, float(np.abs(matrix).max()))
        if np.any(matrix < 0):
            problems.add(source, "cells", "negative distances", "use a dissimilarity (>= 0)")
        if np.abs(matrix - matrix.T).max() > 1e-8 * scale:
            problems.add(source, "cells", "the matrix is not symmetric", "pass d[i, j] == d[j, i]")
        if np.abs(np.diag(matrix)).max() > 1e-8 * scale:
            problems.add(source, "diagonal", "non-zero self-distances", "set the diagonal to 0")
    problems.raise_if_any()
    return ids, matrix


def _aligned_metadata(ids, metadata, columns, source):
    problems = ProblemCollector()
    frame = metadata.copy()
    frame.index = frame.index.astype(str)
    absent = [c for c in columns if c not in frame.columns]
    for column in absent:
        problems.add(source, f"column '{column}'", "the column is missing",
                     f"add '{column}' to the sample metadata or remove it from the model")
    missing_ids = sorted(set(ids) - set(frame.index))
    if missing_ids:
        problems.add(source, "sample ids " + ", ".join(missing_ids[:8]),
                     f"{len(missing_ids)} samples of the distance matrix have no metadata row",
                     "add the samples to the metadata or drop them from the distance matrix")
    if frame.index.duplicated().any():
        problems.add(source, "sample ids", "duplicated metadata rows", "keep one row per sample")
    problems.raise_if_any()
    frame = frame.loc[ids, list(columns)]
    for column in columns:
        gap = _missing(frame[column])
        if gap.any():
            problems.add(source, f"column '{column}', samples " + ", ".join(frame.index[gap][:8]),
                         f"{int(gap.sum())} samples have no value",
                         "drop those samples before the test (record them as dropped)")
    problems.raise_if_any()
    return frame


def _is_categorical(values: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


# ---------------------------------------------------------------------------
# algebra


def gower_centred(distances: np.ndarray) -> np.ndarray:
    """Gower's centred matrix of a distance matrix.

    .. math:: G = -\\tfrac12 (I - \\tfrac1n 11') A (I - \\tfrac1n 11'),\\quad A_{ij} = d_{ij}^2

    ``trace(G)`` is the total sum of squares :math:`SS_T = \\frac1n\\sum_{i<j} d_{ij}^2`.

    Parameters
    ----------
    distances : ndarray, shape (n, n)

    Returns
    -------
    ndarray, shape (n, n)

    References
    ----------
    Gower, J. C. (1966). Some distance properties of latent root and vector methods
    used in multivariate analysis. Biometrika 53, 325-338.
    """
    g = np.square(distances, dtype=float)
    g *= -0.5
    row_means = g.mean(axis=1)
    g -= row_means[:, None]
    g -= row_means[None, :]
    g += row_means.mean()
    return g


def _orthonormal_term_bases(columns: list[np.ndarray]) -> list[np.ndarray]:
    """Nested orthonormal bases: term k's basis spans what it adds to terms 1..k-1.

    The hat matrix of the first k centred terms is the sum of ``Q Q'`` over their
    bases, so sequential (type I) sums of squares are ``trace(Q_k' G Q_k)``.
    """
    n = columns[0].shape[0]
    previous = np.empty((n, 0))
    bases = []
    for x in columns:
        xc = x - x.mean(axis=0)
        resid = xc - previous @ (previous.T @ xc)
        u, s, _ = np.linalg.svd(resid, full_matrices=False)
        scale = max(1.0, float(np.linalg.norm(xc, axis=0).max()))
        basis = u[:, s > 1e-10 * scale]
        bases.append(basis)
        previous = np.hstack([previous, basis])
    return bases


def _design_columns(values: pd.Series) -> np.ndarray:
    if _is_categorical(values):
        levels = sorted(values.astype(str).unique())
        labels = values.astype(str).to_numpy()
        return (labels[:, None] == np.asarray(levels[1:], dtype=object)[None, :]).astype(float)
    return values.to_numpy(dtype=float)[:, None]


# ---------------------------------------------------------------------------
# permutations


def count_restricted_permutations(strata: Sequence | None, n_samples: int | None = None) -> int:
    """Number of permutations that keep every sample inside its stratum.

    ``prod over strata of (stratum size)!``; ``n_samples!`` without strata.
    """
    if strata is None:
        return math.factorial(int(n_samples))
    _, sizes = np.unique(pd.Series(strata).astype(str).to_numpy(), return_counts=True)
    return math.prod(math.factorial(int(k)) for k in sizes)


def all_restricted_permutations(strata: Sequence) -> np.ndarray:
    """Every within-stratum permutation, identity first.

    Parameters
    ----------
    strata : sequence, length n
        Stratum label of each position.

    Returns
    -------
    ndarray of int, shape (count_restricted_permutations(strata), n)
        Row ``r`` maps position ``i`` to the position whose label it receives.
    """
    labels = pd.Series(strata).astype(str).to_numpy()
    n = len(labels)
    perms = np.arange(n)[None, :]
    for stratum in sorted(set(labels)):
        members = np.flatnonzero(labels == stratum)
        if len(members) < 2:
            continue
        local = np.array(list(itertools.permutations(members)))  # identity first
        count = len(local)
        perms = np.repeat(perms, count, axis=0)
        perms[:, members] = np.tile(local, (len(perms) // count, 1))
    return perms


def restricted_permutations(
    strata: Sequence | None,
    n_permutations: int,
    seed: int,
    block_size: int = 1000,
    n_samples: int | None = None,
) -> Iterator[np.ndarray]:
    """Random permutations within strata (free when ``strata`` is None), in blocks.

    Each row of a block gives, for every position, the position whose label it
    receives; positions only exchange labels with members of their own stratum
    (``permute::how(blocks = strata)``).

    Implementation: every position draws a uniform key; sorting ``stratum code +
    key`` shuffles each stratum independently, for a whole block in one
    ``argsort``. The stream of keys does not depend on ``block_size``, and a
    stratum's shuffle depends only on its members' keys, so the permutations do
    not change when strata are renamed.

    Parameters
    ----------
    strata : sequence of length n, or None
    n_permutations : int
    seed : int
        Seed of ``numpy.random.default_rng``.
    block_size : int
        Permutations per yielded block.
    n_samples : int
        Required when ``strata`` is None.

    Yields
    ------
    ndarray of int, shape (b, n)
    """
    if strata is None:
        codes = np.zeros(int(n_samples), dtype=float)
    else:
        codes = pd.factorize(pd.Series(strata).astype(str), sort=True)[0].astype(float)
    n = len(codes)
    by_stratum = np.argsort(codes, kind="stable")
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_permutations:
        b = min(block_size, n_permutations - done)
        keys = rng.random((b, n))
        keys += codes[None, :]
        order = np.argsort(keys, axis=1)
        block = np.empty((b, n), dtype=np.intp)
        block[:, by_stratum] = order
        done += b
        yield block


def _permutation_blocks(strata, n, permutations, seed, block_size, complete_below):
    """(blocks, number of permutations, scheme label) following vegan's enumeration rule."""
    total = count_restricted_permutations(strata, n)
    if total < complete_below:
        every = all_restricted_permutations(strata if strata is not None else np.zeros(n))[1:]
        blocks = (every[i:i + block_size] for i in range(0, len(every), block_size))
        return blocks, len(every), "complete enumeration"
    return (restricted_permutations(strata, permutations, seed, block_size, n_samples=n),
            permutations, "Monte Carlo")


def _exceedances(permuted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    tolerance = TIE_TOLERANCE * np.maximum(1.0, np.abs(observed))
    return np.sum(permuted >= observed - tolerance, axis=0)


def _block_size(n, columns, max_block_bytes):
    # permuted bases, their products with G, the index block and its keys
    per_permutation = 8 * n * (2 * max(columns, 1) + 2)
    return int(max(1, min(10_000, max_block_bytes // per_permutation)))


# ---------------------------------------------------------------------------
# PERMANOVA


def permanova(
    distances,
    metadata: pd.DataFrame,
    terms: Sequence[str],
    strata: str | None = None,
    permutations: int = 999,
    seed: int = 0,
    *,
    test: str = "permanova",
    complete_below: int = COMPLETE_ENUMERATION_BELOW,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
    source: str = "sample metadata",
) -> pd.DataFrame:
    """Sequential PERMANOVA with free or within-stratum (restricted) permutations.

    For centred design bases :math:`Q_k` added term by term (type I, as
    ``adonis2(..., by = "terms")``), with Gower's matrix :math:`G`:

    .. math::

        SS_k = \\operatorname{tr}(Q_k' G Q_k),\\quad
        SS_{res} = \\operatorname{tr}(G) - \\sum_k SS_k,\\quad
        F_k = \\frac{SS_k / df_k}{SS_{res} / (n - 1 - \\sum_k df_k)},\\quad
        R^2_k = SS_k / \\operatorname{tr}(G)

    A permutation :math:`\\pi` relabels the samples (rows of the design), so
    :math:`SS_k^\\pi = \\operatorname{tr}(Q_{k,\\pi}' G Q_{k,\\pi})`; a block of
    permutations costs one product ``G @ [Q_pi1 | Q_pi2 | ...]``. With ``strata``,
    labels move only within a stratum (``adonis2(..., strata = s)``,
    ``permute::how(blocks = s)``). Every term is tested against the residual of the
    full model with the same permutations (vegan's default ``model = "reduced"``,
    which without conditioning terms permutes the raw observations).

    ``p = (#{F^pi >= F} + 1) / (permutations + 1)``. When fewer than
    `complete_below` permutations exist they are all evaluated (identity excluded
    from the count, as vegan), which makes ``p`` the exact permutation p-value.
    Samples are put in sorted sample-id order before permuting, so ``p`` does not
    depend on the row order of the inputs or on the stratum labels.

    Parameters
    ----------
    distances : DataFrame (sample x sample) or skbio.DistanceMatrix
    metadata : DataFrame
        Indexed by sample id; holds `terms` and `strata`. Non-numeric columns are
        factors (levels sorted), numeric columns are covariates with one df.
    terms : sequence of str
        Model terms in the order they are added.
    strata : str, optional
        Metadata column whose levels restrict the permutations (e.g. ``subject_id``).
    permutations : int
        Monte-Carlo permutations.
    seed : int
        Seed of ``numpy.random.default_rng``.
    test : str
        Label written in the ``test`` column.
    complete_below : int
        Enumerate all permutations when fewer than this many exist.
    max_block_bytes : int
        Memory for one block of permutations; bounds the peak memory beyond the
        two n x n matrices (distances and G).
    source : str
        Name of the metadata in error messages.

    Returns
    -------
    DataFrame
        One row per term, then ``Residual`` and ``Total`` (the layout of
        ``adonis2``), columns :data:`PERMANOVA_COLUMNS`. ``permutations`` is the
        number evaluated; ``permutation_scheme`` is ``free`` or ``within <strata>``
        plus ``Monte Carlo``/``complete enumeration``; ``formula`` is the fitted model.

    References
    ----------
    Anderson (2001); McArdle & Anderson (2001); Oksanen et al., vegan ``adonis2``.
    """
    terms = list(terms)
    if not terms:
        raise InputError(Problem(source, "terms", "no model terms", "name at least one column to test"))
    ids, matrix = distance_array(distances)
    columns = terms + ([strata] if strata is not None and strata not in terms else [])
    frame = _aligned_metadata(ids, metadata, columns, source)
    order = np.argsort(np.asarray(ids, dtype=str), kind="stable")
    matrix = matrix[np.ix_(order, order)]
    frame = frame.iloc[order]
    n = len(ids)

    gower = gower_centred(matrix)
    del matrix
    total_ss = float(np.trace(gower))
    bases = _orthonormal_term_bases([_design_columns(frame[t]) for t in terms])
    dfs = np.array([b.shape[1] for b in bases])
    df_resid = n - 1 - int(dfs.sum())
    basis = np.hstack(bases)
    ends = np.cumsum(dfs)
    starts = ends - dfs
    testable = dfs > 0

    def term_ss(column_ss):  # (b, columns) -> (b, terms)
        out = np.zeros((column_ss.shape[0], len(terms)))
        for k in np.flatnonzero(testable):
            out[:, k] = column_ss[:, starts[k]:ends[k]].sum(axis=1)
        return out

    def pseudo_f(ss):
        resid = total_ss - ss.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (ss / np.where(testable, dfs, np.nan)) / (resid / df_resid)

    observed_ss = term_ss(np.einsum("ij,ij->j", basis, gower @ basis)[None, :])
    observed_f = pseudo_f(observed_ss)[0] if df_resid > 0 else np.full(len(terms), np.nan)

    strata_values = frame[strata].astype(str).to_numpy() if strata is not None else None
    notes = [""] * len(terms)
    for k, term in enumerate(terms):
        if not testable[k]:
            notes[k] = "term adds nothing to the terms before it (aliased); not tested"
        elif strata is not None and term != strata and frame.groupby(strata)[term].nunique().max() < 2:
            notes[k] = (f"'{term}' is constant within every '{strata}' stratum: restricted "
                        "permutations cannot test it")
    if df_resid <= 0:
        notes = [n_ or "no residual degrees of freedom; not tested" for n_ in notes]

    n_evaluated, scheme, p_values = 0, "", np.full(len(terms), np.nan)
    if permutations > 0 and df_resid > 0 and testable.any():
        block = _block_size(n, basis.shape[1], max_block_bytes)
        blocks, n_evaluated, how = _permutation_blocks(strata_values, n, permutations, seed, block,
                                                       complete_below)
        count = np.zeros(len(terms))
        for perm in blocks:
            b = perm.shape[0]
            permuted = basis[perm.T].reshape(n, b * basis.shape[1])
            column_ss = np.einsum("ij,ij->j", permuted, gower @ permuted).reshape(b, basis.shape[1])
            count += _exceedances(pseudo_f(term_ss(column_ss)), observed_f)
        p_values = np.where(testable, (count + 1) / (n_evaluated + 1), np.nan)
        scheme = ("free" if strata is None else f"within {strata}") + f", {how}"

    resid_ss = total_ss - float(observed_ss.sum())
    formula = "distance ~ " + " + ".join(terms)
    n_strata = int(len(set(strata_values))) if strata is not None else np.nan
    rows = [
        [test, term, int(dfs[k]), float(observed_ss[0, k]), float(observed_ss[0, k]) / total_ss,
         float(observed_f[k]), float(p_values[k]), n_evaluated, scheme, strata or "", n, n_strata,
         formula, seed, notes[k]]
        for k, term in enumerate(terms)
    ]
    rows.append([test, "Residual", df_resid, resid_ss, resid_ss / total_ss, np.nan, np.nan,
                 n_evaluated, scheme, strata or "", n, n_strata, formula, seed, ""])
    rows.append([test, "Total", n - 1, total_ss, 1.0, np.nan, np.nan, n_evaluated, scheme,
                 strata or "", n, n_strata, formula, seed, ""])
    return pd.DataFrame(rows, columns=PERMANOVA_COLUMNS)


# ---------------------------------------------------------------------------
# PERMDISP


@dataclass(frozen=True)
class PermdispResult:
    """PERMDISP output.

    Attributes
    ----------
    table : DataFrame
        One row, columns :data:`PERMDISP_COLUMNS`.
    group_distances : DataFrame
        Columns :data:`GROUP_DISTANCE_COLUMNS`, one row per group.
    distances : Series
        Distance of every sample to its group centroid, indexed by sample id.
    """

    table: pd.DataFrame
    group_distances: pd.DataFrame
    distances: pd.Series


def distances_to_centroids(gower: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """Distances of samples to their group centroid in the PCoA space of ``gower``.

    With :math:`G = \\sum_k \\lambda_k v_k v_k'` and principal coordinates
    :math:`x_{ik} = v_{ik}\\sqrt{|\\lambda_k|}`, vegan's ``betadisper`` takes
    :math:`z_i^2 = \\sum_{\\lambda_k>0} (x_{ik}-c_{gk})^2 - \\sum_{\\lambda_k<0} (x_{ik}-c_{gk})^2`
    (the negative-eigenvalue correction) and sets negative :math:`z_i^2` to 0. This
    is the same quantity computed without an eigendecomposition:

    .. math:: z_i^2 = G_{ii} - \\frac{2}{n_g}\\sum_{j\\in g} G_{ij} + \\frac{1}{n_g^2}\\sum_{j,l\\in g} G_{jl}

    Parameters
    ----------
    gower : ndarray (n, n)
        :func:`gower_centred` matrix.
    onehot : ndarray (n, k)
        Group membership, one 1 per row.

    Returns
    -------
    ndarray (n,)
    """
    sizes = onehot.sum(axis=0)
    to_group = gower @ onehot  # (n, k)
    within = np.einsum("jg,jg->g", onehot, to_group)  # 1_g' G 1_g
    group = onehot.argmax(axis=1)
    rows = np.arange(len(group))
    z2 = np.diag(gower) - 2.0 * to_group[rows, group] / sizes[group] + within[group] / sizes[group] ** 2
    return np.sqrt(np.clip(z2, 0.0, None))


def _one_way_f(values: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """One-way ANOVA F of each row of ``values`` (b, n) on the groups of ``onehot``."""
    n, k = onehot.shape
    centred = values - values.mean(axis=1, keepdims=True)
    sizes = onehot.sum(axis=0)
    group_sums = centred @ onehot
    between = np.sum(group_sums**2 / sizes, axis=1)
    within = np.sum(centred**2, axis=1) - between
    with np.errstate(divide="ignore", invalid="ignore"):
        return (between / (k - 1)) / (within / (n - k))


def permdisp(
    distances,
    grouping: pd.Series,
    strata: pd.Series | None = None,
    permutations: int = 999,
    seed: int = 0,
    *,
    test: str = "permdisp",
    term: str | None = None,
    complete_below: int = COMPLETE_ENUMERATION_BELOW,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
    source: str = "sample metadata",
) -> PermdispResult:
    """PERMDISP: homogeneity of multivariate dispersion (vegan ``betadisper``).

    Distances to the group centroid :math:`z_i` (see :func:`distances_to_centroids`)
    are compared with a one-way ANOVA, :math:`F = \\frac{SS_B/(k-1)}{SS_W/(n-k)}`.
    As ``permutest.betadisper``, the permutation distribution comes from permuting
    the residuals :math:`z_i - \\bar z_{g(i)}` (within `strata` when given) and
    recomputing F; ``p = (#{F^pi >= F} + 1) / (permutations + 1)``.

    Parameters
    ----------
    distances : DataFrame or skbio.DistanceMatrix
    grouping : Series
        Group of each sample, indexed by sample id (at least two groups).
    strata : Series, optional
        Stratum of each sample, indexed by sample id; restricts the permutations.
    permutations, seed, complete_below, max_block_bytes :
        As :func:`permanova`.
    test, term : str
        Labels for the output (``term`` defaults to ``grouping.name``).

    Returns
    -------
    PermdispResult

    References
    ----------
    Anderson (2006); Anderson, Ellingsen & McArdle (2006) Ecology Letters 9, 683-693;
    vegan ``betadisper(type = "centroid")``.
    """
    ids, matrix = distance_array(distances)
    term = term or str(grouping.name or "group")
    meta = pd.DataFrame({"group": grouping})
    if strata is not None:
        meta["stratum"] = strata
    frame = _aligned_metadata(ids, meta, list(meta.columns), source)
    order = np.argsort(np.asarray(ids, dtype=str), kind="stable")
    matrix = matrix[np.ix_(order, order)]
    frame = frame.iloc[order]
    sorted_ids = np.asarray(ids, dtype=object)[order]
    n = len(ids)
    labels = frame["group"].astype(str).to_numpy()
    levels = sorted(set(labels))
    if len(levels) < 2:
        raise InputError(Problem(source, f"grouping '{term}'", f"only one group ({levels[0]})",
                                 "PERMDISP needs at least two groups"))
    onehot = (labels[:, None] == np.asarray(levels, dtype=object)[None, :]).astype(float)
    gower = gower_centred(matrix)
    del matrix
    z = distances_to_centroids(gower, onehot)
    del gower
    k = len(levels)
    sizes = onehot.sum(axis=0)
    group_means = (z @ onehot) / sizes
    f_observed = _one_way_f(z[None, :], onehot)
    ss_between = float(np.sum(sizes * (group_means - z.mean()) ** 2))
    ss_within = float(np.sum((z - group_means[onehot.argmax(axis=1)]) ** 2))

    note = "" if n > k else "no residual degrees of freedom; not tested"
    strata_values = frame["stratum"].astype(str).to_numpy() if strata is not None else None
    p_value, n_evaluated, scheme = np.nan, 0, ""
    if permutations > 0 and n > k:
        residuals = z - group_means[onehot.argmax(axis=1)]
        block = _block_size(n, 1, max_block_bytes)
        blocks, n_evaluated, how = _permutation_blocks(strata_values, n, permutations, seed, block,
                                                       complete_below)
        count = 0
        for perm in blocks:
            count += int(_exceedances(_one_way_f(residuals[perm], onehot)[:, None], f_observed)[0])
        p_value = (count + 1) / (n_evaluated + 1)
        scheme = ("free" if strata is None else f"within {strata.name or 'strata'}") + f", {how}"
    strata_name = "" if strata is None else str(strata.name or "strata")
    table = pd.DataFrame([[test, term, n, k, k - 1, n - k, ss_between, ss_within,
                           float(f_observed[0]), p_value, n_evaluated, scheme, strata_name,
                           "centroid", seed, note]], columns=PERMDISP_COLUMNS)
    group_table = pd.DataFrame({"test": test, "term": term, "group": levels,
                                "n": sizes.astype(int), "mean_distance_to_centroid": group_means},
                               columns=GROUP_DISTANCE_COLUMNS)
    series = pd.Series(z, index=pd.Index(sorted_ids, name="sample_id"), name="distance_to_centroid")
    return PermdispResult(table, group_table, series.reindex(ids))


# ---------------------------------------------------------------------------
# the standard set of tests for a paired pre/post trial


@dataclass(frozen=True)
class BetaTests:
    """The standard PERMANOVA/PERMDISP tests of one distance matrix.

    Attributes
    ----------
    permanova : DataFrame (:data:`PERMANOVA_COLUMNS`)
    permdisp : DataFrame (:data:`PERMDISP_COLUMNS`)
    group_distances : DataFrame (:data:`GROUP_DISTANCE_COLUMNS`)
    notes : DataFrame (:data:`NOTE_COLUMNS`)
        Samples left out of a test and tests not run, each with the reason.
    """

    permanova: pd.DataFrame
    permdisp: pd.DataFrame
    group_distances: pd.DataFrame
    notes: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        """Field name -> table (the names of the workflow rule's outputs)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class BetaTestSettings:
    """Which PERMANOVA/PERMDISP tests :func:`standard_beta_tests` runs, and how.

    Attributes
    ----------
    response_column : str or None
        Subjects-table column of the responder labels; None in a study without
        response (every response test is left out).
    cohort_column : str
        Subjects-table column of the cohort.
    sequential_terms : tuple of str
        Baseline model terms in order, among ``"cohort"`` and ``"response"``
        (``diversity.sequential_terms``).
    permutations : int
        ``diversity.permutations``.
    seed : int
        Seed of the permutations (the config's ``seed``).
    covariates : tuple of str
        Sample-sheet columns added to the time test (a crossover's ``period``).
    response_within_cohort : bool
        Add the response test with permutations within cohort (a baseline-only study).
    """

    response_column: str | None = "response"
    cohort_column: str = "cohort"
    sequential_terms: Sequence[str] = ("cohort", "response")
    permutations: int = 999
    seed: int = 0
    covariates: Sequence[str] = ()
    response_within_cohort: bool = False

    @classmethod
    def from_config(cls, diversity: Mapping, seed: int, *, response: bool, period: str = "",
                    baseline_only: bool = False) -> BetaTestSettings:
        """The settings of one study.

        Parameters
        ----------
        diversity : mapping
            The config's ``diversity`` section (``sequential_terms``, ``permutations``).
        seed : int
        response : bool
            Does the study have a response (``response.primary``)?
        period : str
            Sample-sheet column of a crossover's periods ("" otherwise).
        baseline_only : bool
            A study without contrasts.
        """
        return cls(response_column="response" if response else None,
                   sequential_terms=tuple(diversity["sequential_terms"]),
                   permutations=diversity["permutations"], seed=seed,
                   covariates=(period,) if period else (), response_within_cohort=baseline_only)


def standard_beta_tests(
    distances,
    samples: pd.DataFrame,
    subjects: pd.DataFrame,
    pre: str,
    post: str | None,
    settings: BetaTestSettings | None = None,
    **overrides,
) -> BetaTests:
    """PERMANOVA (+ PERMDISP beside each) for time, response and cohort.

    Tests (``test`` column):

    - ``time_within_subject``: ``distance ~ timepoint`` on the paired pre/post
      samples, timepoint labels permuted within subject (``strata = subject_id``).
    - ``response_at_baseline``: ``distance ~ response`` on `pre` samples of
      evaluable subjects, free permutations.
    - ``cohort_at_baseline``: ``distance ~ cohort`` on `pre` samples, free.
    - ``sequential_at_baseline``: `sequential_terms` added in order (type I),
      free permutations.
    - ``response_within_cohort`` (with `response_within_cohort`):
      ``distance ~ response`` on `pre` samples, labels permuted within cohort
      (``strata = cohort``), so a pooled multi-cohort set is not tested on its
      cohort differences.

    Without `post` (a baseline-only study) the time test is left out; without
    `response_column` (a study without response) every response test is left out
    and `sequential_terms` keeps cohort only. `covariates` (sample-sheet columns,
    e.g. a crossover's ``period``) enter the time test before ``timepoint``
    (``distance ~ period + timepoint``, type I; PERMDISP for timepoint only).

    A test whose factor has fewer than two levels is not run and is listed in
    ``notes``; so are samples without a pair, a response or a cohort.

    Parameters
    ----------
    distances : DataFrame or skbio.DistanceMatrix
    samples : DataFrame
        Sample sheet: ``sample_id, subject_id, timepoint``.
    subjects : DataFrame
        ``subject_id`` plus `response_column` (``responder``/``non_responder``/empty)
        and `cohort_column`.
    pre, post : str
        Timepoints compared (`post` None: baseline tests only).
    settings : BetaTestSettings, optional
        Which tests run and how (every field's default when omitted).
    **overrides
        Replace fields of `settings` for this call, e.g. ``permutations=99``.

    Returns
    -------
    BetaTests
    """
    options = with_overrides(settings, BetaTestSettings, overrides)
    response_column, cohort_column = options.response_column, options.cohort_column
    permutations, seed, covariates = options.permutations, options.seed, options.covariates
    ids, matrix = distance_array(distances)
    position = {sample: i for i, sample in enumerate(ids)}
    in_matrix = samples[samples["sample_id"].astype(str).isin(ids)]
    problems = ProblemCollector()
    for column in ("subject_id", response_column, cohort_column):
        if column is not None and column not in subjects.columns:
            problems.add("subjects", f"column '{column}'", "the column is missing",
                         f"add '{column}' to the subjects table")
    for column in covariates:
        if column not in samples.columns:
            problems.add("samples", f"column '{column}'", "the column is missing",
                         f"add '{column}' to the sample sheet")
    problems.raise_if_any()
    clinical = subjects.set_index(subjects["subject_id"].astype(str))
    notes: list[list[str]] = []
    permanova_tables, permdisp_tables, group_tables = [], [], []

    def run(test, frame, terms, strata, dispersion_terms=None, adjusted=()):
        meta = frame.set_index("sample_id")
        keep = sorted(meta.index)
        index = np.array([position[s] for s in keep])
        sub = pd.DataFrame(matrix[np.ix_(index, index)], index=keep, columns=keep)
        table = permanova(sub, meta, terms, strata=strata, permutations=permutations, seed=seed, test=test)
        # covariates adjusted for (constant within each stratum) have no valid permutation p
        if adjusted:
            covariate = table["term"].isin(list(adjusted))
            table.loc[covariate, "p_value"] = np.nan
            table.loc[covariate, "note"] = "covariate: adjusted for, not tested"
        permanova_tables.append(table)
        for term in terms if dispersion_terms is None else dispersion_terms:
            result = permdisp(sub, meta[term].rename(term),
                              strata=meta[strata].rename(strata) if strata else None,
                              permutations=permutations, seed=seed, test=test, term=term)
            permdisp_tables.append(result.table)
            group_tables.append(result.group_distances)

    # time within subject
    if post is not None:
        pairs = pair_samples(in_matrix, pre, post)
        for row in unpaired_samples(in_matrix, pre, post).itertuples():
            notes.append(["time_within_subject", row.sample_id, row.reason])
        columns = ["sample_id", "subject_id", "timepoint", *covariates]
        paired = in_matrix[in_matrix["sample_id"].astype(str).isin(
            set(pairs["pre_sample"]) | set(pairs["post_sample"]))][columns]
        used = [c for c in covariates if paired[c].astype(str).nunique() >= 2]
        for column in covariates:
            if column not in used:
                notes.append(["time_within_subject", column, f"{column} has one level among the paired "
                              "samples; left out of the model"])
        if len(pairs) >= 2:
            run("time_within_subject", paired[["sample_id", "subject_id", "timepoint", *used]].astype(str),
                [*used, "timepoint"], "subject_id", dispersion_terms=["timepoint"], adjusted=used)
        else:
            notes.append(["time_within_subject", "", f"only {len(pairs)} subjects with both samples; not run"])

    # baseline tests
    baseline = in_matrix[in_matrix["timepoint"].astype(str) == pre][["sample_id", "subject_id"]].astype(str)
    baseline = baseline[~_missing(baseline["subject_id"])]
    if response_column is not None:
        baseline["response"] = baseline["subject_id"].map(clinical[response_column]).astype(object)
    baseline["cohort"] = baseline["subject_id"].map(clinical[cohort_column]).astype(object)

    def baseline_test(test, terms, strata=None):
        usable = pd.Series(True, index=baseline.index)
        for term in [*terms, *([strata] if strata else [])]:
            gap = _missing(baseline[term])
            for sample in baseline.loc[usable & gap, "sample_id"]:
                notes.append([test, sample, f"no {term} for the subject"])
            usable &= ~gap
        frame = baseline[usable]
        for term in terms:
            levels = sorted(frame[term].astype(str).unique())
            if len(levels) < 2:
                notes.append([test, term, f"{term} has {len(levels)} level(s) "
                              f"({', '.join(levels) or 'none'}) among baseline samples; not run"])
                return
        if len(frame) <= sum(frame[t].nunique() - 1 for t in terms) + 1:
            notes.append([test, "", "too few baseline samples for the model; not run"])
            return
        extra = [strata] if strata and strata not in terms else []
        run(test, frame[["sample_id"] + list(terms) + extra].astype(str), list(terms), strata)

    if response_column is not None:
        baseline_test("response_at_baseline", ["response"])
    baseline_test("cohort_at_baseline", ["cohort"])
    allowed = ("cohort", "response") if response_column is not None else ("cohort",)
    sequential = [t for t in options.sequential_terms if t in allowed]
    if len(sequential) >= 2:
        baseline_test("sequential_at_baseline", sequential)
    if response_column is not None and options.response_within_cohort:
        cohorts = baseline.loc[~_missing(baseline["cohort"]), "cohort"].astype(str).nunique()
        if cohorts >= 2:
            baseline_test("response_within_cohort", ["response"], strata="cohort")
        else:
            notes.append(["response_within_cohort", "cohort", f"{cohorts} cohort(s) among baseline samples; "
                          "response_at_baseline is the same test"])

    def stack(tables, columns):
        return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)

    notes_table = pd.DataFrame(notes, columns=NOTE_COLUMNS)
    return BetaTests(stack(permanova_tables, PERMANOVA_COLUMNS), stack(permdisp_tables, PERMDISP_COLUMNS),
                     stack(group_tables, GROUP_DISTANCE_COLUMNS), notes_table)


#: the empty table of each part of :class:`BetaTests`, for a metric that is not tested
EMPTY_TABLE_COLUMNS = {"permanova": PERMANOVA_COLUMNS, "permdisp": PERMDISP_COLUMNS,
                       "group_distances": GROUP_DISTANCE_COLUMNS}


def metric_beta_tests(distances: pd.DataFrame, samples: pd.DataFrame, subjects: pd.DataFrame,
                      check: pd.DataFrame, metric: str, contrasts: Sequence[dict], baseline: str,
                      settings: BetaTestSettings, significance_level: float) -> BetaTests:
    """:func:`standard_beta_tests` of every contrast for one β metric, the calls made by the primary metric.

    Every row starts with ``contrast, pre, post, metric``. A study without
    contrasts (baseline only) gets the baseline tests alone, in rows of contrast
    ``baseline``. A metric that ``beta_metrics.tsv`` marks as not computed
    (undefined for some sample pairs) gets empty tables and one note per contrast.
    ``significant``, ``role`` and ``called`` come from
    :func:`gutaxis.diversity.design.call_by_metric_role`.

    Parameters
    ----------
    distances : DataFrame
        The metric's sample x sample distances (unused when the metric is not computed).
    samples : DataFrame
        Checked sample sheet.
    subjects : DataFrame
        :func:`gutaxis.diversity.design.study_labels`.
    check : DataFrame
        ``beta_metrics.tsv``.
    metric : str
    contrasts : sequence of dict
        ``name, pre, post`` of each contrast (empty: baseline only).
    baseline : str
        The baseline timepoint.
    settings : BetaTestSettings
    significance_level : float

    Returns
    -------
    BetaTests
    """
    primary, roles = metric_roles(check)
    contrasts = list(contrasts) or [{"name": "baseline", "pre": baseline, "post": ""}]
    parts: dict[str, list] = {name: [] for name in [*EMPTY_TABLE_COLUMNS, "notes"]}
    for contrast in contrasts:
        front = {"contrast": contrast["name"], "pre": contrast["pre"], "post": contrast["post"], "metric": metric}
        if roles.get(metric) == "not computed":
            reason = "metric undefined for some sample pairs (beta_metrics.tsv); not tested"
            tables = {name: pd.DataFrame(columns=columns) for name, columns in EMPTY_TABLE_COLUMNS.items()}
            tables["notes"] = pd.DataFrame([["all", metric, reason]], columns=NOTE_COLUMNS)
        else:
            tables = standard_beta_tests(distances, samples, subjects, contrast["pre"], contrast["post"] or None,
                                         settings).tables()
        for name, table in tables.items():
            parts[name].append(with_front(table, front))
    stacked = {name: pd.concat(tables, ignore_index=True) for name, tables in parts.items()}
    for name in ("permanova", "permdisp"):
        stacked[name] = call_by_metric_role(stacked[name], metric, primary, significance_level)
    return BetaTests(**stacked)
