"""Random-intercept linear mixed models fitted by REML for many features at once.

The model for every feature (column of ``values``) is

.. math:: y = X\\beta + Z u + e,\\quad u \\sim N(0, \\sigma_u^2 I),\\quad
   e \\sim N(0, \\sigma^2 I),

with one random intercept per subject (``groups``) and the same fixed-effects
design ``X`` for every feature. Write :math:`\\gamma = \\sigma_u^2/\\sigma^2`.
For subject *i* with :math:`n_i` observations
:math:`V_i = I + \\gamma J` and :math:`V_i^{-1} = I - \\frac{\\gamma}{1+n_i\\gamma}J`,
so every quantity of the REML profile log-likelihood,

.. math:: \\ell(\\gamma) = -\\tfrac12\\sum_i \\ln(1+n_i\\gamma)
   - \\tfrac{N-p}{2}\\ln(r'V^{-1}r) - \\tfrac12\\ln|X'V^{-1}X| + \\text{const},

is a weighted sum of per-subject sufficient statistics (:math:`X_i'1`,
:math:`1'y_i`, ...) in which the weight depends only on :math:`n_i`. Summing
the statistics by group size once per feature turns each evaluation of
:math:`\\ell` and :math:`d\\ell/d\\gamma` into a few ``(features, p, p)`` array
operations. :math:`\\gamma` is found for all features together: a log grid
locates the maximum, then bisection on the sign of the analytic derivative
refines it to machine precision; :math:`\\hat\\gamma = 0` (the boundary) is
accepted when the derivative at 0 is not positive.

Estimates, standard errors, z tests and confidence intervals reproduce
``statsmodels.MixedLM(...).fit(reml=True)`` (0.14): fixed effects are the GLS
estimates at :math:`\\hat\\gamma`, ``scale`` is :math:`r'V^{-1}r/(N-p)`, the
group variance is ``scale * gamma``, and standard errors come from the inverse
of statsmodels' observed Hessian in (beta, gamma) - including its
fixed/random cross term - so they equal ``bse_fe`` and ``bse_re``.
Missing values (NaN) drop that observation for that feature only: the
sufficient statistics are computed with a per-feature mask, so unbalanced and
incomplete features use the same vectorised path (no per-feature fallback).

Several random intercepts (:func:`fit_mixed`, crossed or nested grouping
factors such as subject within site, or subject x sequencing batch) use the same
absorption for the factor with most levels and carry the other factors as
indicator columns scaled by lme4's :math:`\\theta_k = \\sigma_k/\\sigma`; the REML
deviance is then a function of a few (features, p + q, p + q) arrays, minimised
for all features together by a grid start and damped Newton steps, with
estimates, standard errors and Satterthwaite df as lme4/lmerTest (Bates et al.
2015; Kuznetsova et al. 2017).

A fixed-effect column that is not estimable on the rows a feature observes (all
zero there, or a linear combination of earlier columns, e.g. a sparse third
timepoint whose few observed samples are all from responders) is dropped for
that feature only (:func:`estimable_columns`); features are grouped by their set
of kept columns and each group is fitted with its reduced design, so one
inestimable term no longer costs the feature its whole model.

References
----------
Harville, D. A. (1977). Maximum likelihood approaches to variance component
estimation and to related problems. JASA 72, 320-338.
Lindstrom, M. J. & Bates, D. M. (1988). Newton-Raphson and EM algorithms for
linear mixed-effects models for repeated-measures data. JASA 83, 1014-1022.
Bates, D., Maechler, M., Bolker, B. & Walker, S. (2015). Fitting linear mixed-effects
models using lme4. J Stat Softw 67(1).
Kuznetsova, A., Brockhoff, P. B. & Christensen, R. H. B. (2017). lmerTest package:
tests in linear mixed effects models. J Stat Softw 82(13).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy
from scipy import special

#: reference distributions of the fixed-effect tests (see :func:`fit_random_intercept`)
DF_METHODS = ("z", "between_within", "satterthwaite")
# Variance ratios tried before refinement: 0 and a 0.25-decade log grid.
GAMMA_GRID = np.concatenate([[0.0], np.logspace(-6, 6, 49)])
_BISECTION_STEPS = 64
#: a column is dropped when its squared residual on the earlier kept columns,
#: on the unit-diagonal (correlation) scale of the observed X'X, is below this;
#: the same threshold as the smallest-eigenvalue rank test, so every feature
#: that test accepts keeps all its columns
RANK_TOL = 1e-10
_KEPT, _ZERO, _DEPENDENT = 0, 1, 2


@dataclass(frozen=True)
class MixedModelResult:
    """Per-feature random-intercept fits.

    Attributes
    ----------
    coefficients : pandas.DataFrame
        One row per fitted feature and fixed-effect term: ``feature_id, term,
        estimate, se, z, df, p, ci_low, ci_high`` (``z`` = estimate / se; ``df``
        infinite for the Wald z test, as statsmodels).
    fits : pandas.DataFrame
        One row per feature: ``feature_id, status`` ("ok", "boundary",
        "not_converged", "failed"), ``n_obs, n_groups, n_repeated_groups,
        gamma, group_var, group_var_se, scale, llf, note, fitted_terms,
        dropped_terms, dropped_reasons`` (the last three ";"-joined design
        column names / reasons, "" when nothing was dropped).
    """

    coefficients: pd.DataFrame
    fits: pd.DataFrame


def build_design(data: pd.DataFrame, rhs: str) -> pd.DataFrame:
    """Fixed-effects design matrix from a patsy right-hand side.

    Categorical columns should be ``pandas.Categorical`` whose first category
    is the reference level. Column names are patsy's with the ``T.`` of
    treatment coding removed, e.g. ``timepoint[post]`` and
    ``timepoint[post]:response[responder]``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation; no missing values in the columns used.
    rhs : str
        Right-hand side, e.g. ``"timepoint * response + cohort"``.

    Returns
    -------
    pandas.DataFrame
        Observations x terms, same index as ``data``; ``attrs["terms"]`` maps
        each formula term (``"timepoint:response"``) to its columns, for
        :func:`fitted_formula`.
    """
    design = patsy.dmatrix(rhs, data, return_type="dataframe", NA_action="raise")
    names = [c.replace("[T.", "[") for c in design.columns]
    slices = design.design_info.term_name_slices
    design.columns = names
    design.attrs["terms"] = {term: names[sl] for term, sl in slices.items()}
    return design


def _sorted_by_group(groups):
    codes, labels = pd.factorize(pd.Series(groups).astype(str), sort=True)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    return order, starts, labels


def _sufficient_statistics(Y: np.ndarray, X: np.ndarray, starts: np.ndarray):
    """Sums of the REML ingredients by subject-size class for a chunk of features.

    ``Y`` (S x F) and ``X`` (S x p) are sorted by subject; ``starts`` are the
    first rows of each subject. Returns a dict of arrays indexed by feature
    and by group size k = 1..K.
    """
    S, F = Y.shape
    p = X.shape[1]
    present = ~np.isnan(Y)
    Y0 = np.where(present, Y, 0.0)
    mask = present.astype(float)
    complete = bool(present.all())
    n_obs = present.sum(axis=0)
    XtX = (mask.T @ (X[:, :, None] * X[:, None, :]).reshape(S, p * p)).reshape(F, p, p)
    Xty = Y0.T @ X
    yty = np.einsum("sf,sf->f", Y0, Y0)
    ysum = Y0.sum(axis=0)
    group_y = np.add.reduceat(Y0, starts, axis=0)  # (G, F)
    if complete:
        sizes = np.diff(np.r_[starts, S])
        group_x = np.add.reduceat(X, starts, axis=0)  # (G, p), shared
        size_matrix = np.broadcast_to(sizes[:, None], (starts.size, F))
    else:
        size_matrix = np.add.reduceat(present.astype(np.int64), starts, axis=0)  # (G, F)
        group_x = np.add.reduceat(mask[:, :, None] * X[:, None, :], starts, axis=0)  # (G, F, p)
    K = int(size_matrix.max()) if size_matrix.size else 0
    Sss = np.empty((F, K, p, p))
    Sst = np.empty((F, K, p))
    Stt = np.empty((F, K))
    cnt = np.empty((F, K))
    for k in range(1, K + 1):
        in_k = (size_matrix == k).astype(float)  # (G, F)
        if complete:
            sel = in_k[:, 0]
            gx = group_x * sel[:, None]
            Sss[:, k - 1] = gx.T @ group_x
            Sst[:, k - 1] = (group_y * sel[:, None]).T @ group_x
        else:
            gx = group_x * in_k[:, :, None]  # (G, F, p)
            Sss[:, k - 1] = np.matmul(gx.transpose(1, 2, 0), group_x.transpose(1, 0, 2))
            Sst[:, k - 1] = np.einsum("gfp,gf->fp", gx, group_y)
        Stt[:, k - 1] = np.einsum("gf,gf->f", in_k, group_y * group_y)
        cnt[:, k - 1] = in_k.sum(axis=0)
    n_groups = (size_matrix > 0).sum(axis=0)
    n_repeated = (size_matrix > 1).sum(axis=0)
    return dict(n_obs=n_obs, XtX=XtX, Xty=Xty, yty=yty, ysum=ysum, Sss=Sss, Sst=Sst, Stt=Stt,
                cnt=cnt, K=K, n_groups=n_groups, n_repeated=n_repeated)


def _take(stats: dict, rows: np.ndarray) -> dict:
    return {key: (val[rows] if isinstance(val, np.ndarray) else val)
            for key, val in stats.items()}


def _profile(gamma: np.ndarray, st: dict, p: int, hessian: bool = False) -> dict:
    """REML profile log-likelihood, its derivative in gamma, and the GLS fit."""
    k = np.arange(1, st["K"] + 1, dtype=float)
    w = 1.0 / (1.0 + gamma[:, None] * k)  # V_i^{-1} 1 = w 1 for a subject of size k
    c = gamma[:, None] * w  # V_i^{-1} = I - c J
    A = st["XtX"] - np.einsum("fk,fkpq->fpq", c, st["Sss"])
    b = st["Xty"] - np.einsum("fk,fkp->fp", c, st["Sst"])
    Ainv = np.linalg.inv(A)
    beta = np.einsum("fpq,fq->fp", Ainv, b)
    qf = st["yty"] - np.einsum("fk,fk->f", c, st["Stt"]) - np.einsum("fp,fp->f", b, beta)
    fac = st["n_obs"] - p
    sign, logdet_A = np.linalg.slogdet(A)
    logdet_V = np.einsum("fk,fk->f", st["cnt"], np.log1p(gamma[:, None] * k))
    with np.errstate(invalid="ignore", divide="ignore"):
        llf = (-0.5 * logdet_V - 0.5 * fac * np.log(qf) - 0.5 * logdet_A
               - 0.5 * fac * np.log(2 * np.pi) + 0.5 * fac * np.log(fac) - 0.5 * fac)
    llf = np.where((sign > 0) & (qf > 0), llf, -np.inf)
    # Sums over subjects of size k of t_i^2 and t_i X_i'1, t_i = 1'(y_i - X_i beta).
    T2 = (st["Stt"] - 2 * np.einsum("fkp,fp->fk", st["Sst"], beta)
          + np.einsum("fp,fkpq,fq->fk", beta, st["Sss"], beta))
    w2 = w * w
    Wm = np.einsum("fk,fkpq->fpq", w2, st["Sss"])  # -dA/dgamma
    B = np.einsum("fk,fk->f", w2, T2)  # -d(qf)/dgamma
    AiW = np.einsum("fpq,fqr->fpr", Ainv, Wm)
    grad = (-0.5 * np.einsum("fk,fk->f", st["cnt"] * k, w) + 0.5 * fac * B / qf
            + 0.5 * np.einsum("fpp->f", AiW))
    out = dict(llf=llf, grad=grad, beta=beta, qf=qf, A=A)
    if hessian:
        # statsmodels MixedLM.hessian (REML) in (beta, gamma), scale profiled out.
        TS = st["Sst"] - np.einsum("fkpq,fq->fkp", st["Sss"], beta)
        w3 = w2 * w
        D = 2 * np.einsum("fk,fk->f", k * w3, T2)  # d2Q/dgamma2 at fixed beta, Q = r'V^-1 r
        Fm = 2 * np.einsum("fk,fkpq->fpq", k * w3, st["Sss"])
        u = np.einsum("fk,fkp->fp", w2, TS)  # half of d2Q/(dbeta dgamma)
        # d2(log|V| + log|A|)/dgamma2
        logdet_curvature = (-np.einsum("fk,fk->f", st["cnt"] * k * k, w2)
                            - np.einsum("fpq,fqp->f", AiW, AiW) + np.einsum("fpq,fqp->f", Ainv, Fm))
        h_fe = -fac[:, None, None] * A / qf[:, None, None]
        h_fere = -fac[:, None] * u / qf[:, None]
        h_re = -0.5 * logdet_curvature - 0.5 * fac * (D / qf - B * B / qf ** 2)
        F = gamma.size
        H = np.empty((F, p + 1, p + 1))
        H[:, :p, :p] = h_fe
        H[:, :p, p] = h_fere
        H[:, p, :p] = h_fere
        H[:, p, p] = h_re
        out["hessian"] = H
        # the pieces lmerTest's Satterthwaite df needs (_lmertest_inference)
        out.update(Ainv=Ainv, Wm=Wm, B=B, D=D, u=u, logdet_curvature=logdet_curvature)
    return out


def _optimise_gamma(st: dict, p: int):
    """REML estimate of gamma for every feature: grid, then derivative bisection."""
    F = st["n_obs"].size
    grid_llf = np.empty((F, GAMMA_GRID.size))
    for j, g in enumerate(GAMMA_GRID):
        grid_llf[:, j] = _profile(np.full(F, g), st, p)["llf"]
    best = np.argmax(grid_llf, axis=1)
    gamma = GAMMA_GRID[best].copy()
    at_top = best == GAMMA_GRID.size - 1
    grad0 = _profile(np.zeros(F), st, p)["grad"]
    boundary = (best == 0) & (grad0 <= 0)
    refine = ~boundary & ~at_top
    lo = np.where(best > 0, GAMMA_GRID[np.maximum(best - 1, 0)], 0.0)
    hi = GAMMA_GRID[np.minimum(best + 1, GAMMA_GRID.size - 1)]
    idx = np.flatnonzero(refine)
    if idx.size:
        sub = _take(st, idx)
        a, b = lo[idx].copy(), hi[idx].copy()
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (a + b)
            rising = _profile(mid, sub, p)["grad"] > 0
            a = np.where(rising, mid, a)
            b = np.where(rising, b, mid)
        candidate = 0.5 * (a + b)
        cand_llf = _profile(candidate, sub, p)["llf"]
        better = cand_llf >= grid_llf[idx, best[idx]]
        gamma[idx] = np.where(better, candidate, gamma[idx])
    return gamma, boundary, at_top


def _unfittable(st: dict, p: int, no_groups: str = "no subject with two or more observations"):
    """Features that cannot be fitted, each with the first reason that applies.

    ``st["n_repeated"] < 1`` fails a feature with the reason ``no_groups``.
    """
    F = st["n_obs"].size
    note = np.full(F, "", dtype=object)
    diag = np.einsum("fpp->fp", st["XtX"])
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = st["XtX"] / np.sqrt(diag[:, :, None] * diag[:, None, :])
        centred_ss = st["yty"] - st["ysum"] ** 2 / st["n_obs"]
    min_eig = np.linalg.eigvalsh(np.where(np.isfinite(scaled), scaled, 0.0))[:, 0]
    failed = np.zeros(F, dtype=bool)
    for cond, why in [
        (st["n_obs"] < p + 1, "fewer non-missing observations than model terms + 1"),
        ((diag <= 0).any(axis=1) | (min_eig < 1e-10),
         "design not of full rank after dropping missing values"),
        (st["n_repeated"] < 1, no_groups),
    ]:
        new = cond & ~failed
        note[new] = why
        failed |= new
    ok_idx = np.flatnonzero(~failed)
    if ok_idx.size:
        sub = _take(st, ok_idx)
        rss = _profile(np.zeros(ok_idx.size), sub, p)["qf"]  # OLS residual sum of squares
        css = centred_ss[ok_idx]
        flat = (css <= 1e-24 * np.maximum(sub["yty"], 1e-300)) | (rss <= 1e-12 * css)
        note[ok_idx[flat]] = "zero residual variance (feature constant or fitted exactly)"
        failed[ok_idx[flat]] = True
    return failed, note


def between_within_df(X: np.ndarray, groups, n_obs, n_groups, within=None) -> np.ndarray:
    r"""Between-within denominator degrees of freedom of each fixed effect, per feature.

    A column of ``X`` that is constant within every group (the intercept,
    response, cohort) is a between-subject term with
    :math:`\nu = G - p_b`; any other column (timepoint and its interactions)
    is a within-subject term with :math:`\nu = N - G - p_w`, where :math:`N`
    and :math:`G` are the feature's observations and groups and :math:`p_b`,
    :math:`p_w` count the between and within columns. In a complete paired
    design the within-subject t test of a random-intercept model then equals
    the paired t test (time) and the two-sample t test of the changes
    (time x group), which the Wald z test only approaches as :math:`G` grows.

    Parameters
    ----------
    X : ndarray, shape (n_obs_total, p)
        Fixed-effects design, rows in the order of ``groups``.
    groups : array_like
        Group (subject) of each row.
    n_obs, n_groups : ndarray, shape (n_features,)
        Non-missing observations and groups of each feature.
    within : ndarray of bool, shape (n_features, p), optional
        Which columns vary within a group on each feature's observed rows
        (:func:`_within_columns`); default: decided once on all rows of ``X``.
        A column that varies within subjects only on visits a feature does not
        observe is a between-subject column for that feature.

    Returns
    -------
    ndarray, shape (n_features, p)
        Degrees of freedom, at least 1.

    References
    ----------
    Schluchter MD, Elashoff JD (1990) Small-sample adjustments to tests with
    unbalanced repeated measures assuming several covariance structures. J Stat
    Comput Simul 37:69-87 (SAS PROC MIXED ``DDFM=BETWITHIN``).
    """
    X = np.asarray(X, dtype=float)
    if within is None:
        codes = pd.factorize(pd.Series(groups).astype(str))[0]
        n_g = codes.max() + 1
        counts = np.bincount(codes, minlength=n_g)[:, None]
        sums = np.zeros((n_g, X.shape[1]))
        np.add.at(sums, codes, X)
        deviation = np.abs(X - (sums / counts)[codes]).max(axis=0)
        within = (deviation > 1e-12 * np.maximum(1.0, np.abs(X).max(axis=0)))[None, :]
    within = np.asarray(within, dtype=bool)
    p_w = within.sum(axis=1, keepdims=True)
    p_b = X.shape[1] - p_w
    n_obs = np.asarray(n_obs, dtype=float)[:, None]
    n_groups = np.asarray(n_groups, dtype=float)[:, None]
    df = np.where(within, n_obs - n_groups - p_w, n_groups - p_b)
    return np.maximum(df, 1.0)


def _within_columns(st: dict, tol: float = 1e-10) -> np.ndarray:
    r"""Columns that vary within a group on each feature's observed rows.

    The within-group sum of squares of column *j* over the observed rows is
    :math:`\sum_s x_{sj}^2 - \sum_g (\sum_{s \in g} x_{sj})^2 / n_g`, i.e. the
    diagonal of ``XtX`` minus :math:`\sum_k \mathrm{diag}(S_k)/k` of the
    group-size-class statistics; the column is within-group when this exceeds
    ``tol`` times :math:`\sum_s x_{sj}^2` (scale free).

    Returns
    -------
    ndarray of bool, shape (n_features, p)
    """
    k = np.arange(1, st["K"] + 1, dtype=float)
    total = np.einsum("fpp->fp", st["XtX"])
    between = np.einsum("fkpp,k->fp", st["Sss"], 1.0 / k)
    return total - between > tol * total


def estimable_columns(XtX: np.ndarray, intercept=None, tol: float = RANK_TOL):
    r"""Fixed-effect columns estimable on each feature's observed rows.

    With :math:`M = X_{obs}'X_{obs}` (the cross-products over the rows a feature
    observes) scaled to unit diagonal, :math:`C = D^{-1/2} M D^{-1/2}`, the
    columns are visited in order (intercept columns first) and column *j* is
    kept when its squared residual on the columns kept before it,

    .. math:: d_j = C_{jj} - C_{jK} C_{KK}^{-1} C_{Kj} = 1 - R^2_{j \mid K},

    is at least ``tol``; this is a Cholesky factorisation of :math:`C`
    that skips the columns it drops, so of a dependent set the later column
    is dropped and the intercept never. A column that is zero on every
    observed row (:math:`M_{jj} = 0`) is dropped first. Because
    :math:`d_j \ge \lambda_{\min}(C)`, a feature whose :math:`C` has smallest
    eigenvalue at least ``tol`` (the full-rank test of this module) keeps all
    columns. Vectorised over features: a loop over the p columns only.

    Parameters
    ----------
    XtX : ndarray, shape (n_features, p, p)
        Cross-products of the design over each feature's observed rows.
    intercept : array_like of bool, shape (p,), optional
        Columns never dropped (default: none).
    tol : float
        Threshold on :math:`1 - R^2` (scale free).

    Returns
    -------
    keep : ndarray of bool, shape (n_features, p)
    why : ndarray of int, shape (n_features, p)
        0 kept, 1 zero on the observed rows, 2 linearly dependent on the
        earlier kept columns.

    References
    ----------
    Golub GH, Van Loan CF (2013) Matrix Computations, 4th ed., sections 4.2
    (Cholesky) and 5.4.1 (rank-revealing factorisations).
    """
    XtX = np.asarray(XtX, dtype=float)
    F, p = XtX.shape[:2]
    intercept = np.zeros(p, dtype=bool) if intercept is None else np.asarray(intercept, bool)
    diag = np.einsum("fpp->fp", XtX)
    nonzero = diag > 0
    safe = np.where(nonzero, diag, 1.0)
    C = XtX / np.sqrt(safe[:, :, None] * safe[:, None, :])
    order = np.r_[np.flatnonzero(intercept), np.flatnonzero(~intercept)]
    L = np.zeros((F, p, p))  # lower-triangular factor, in visiting order
    kept = np.zeros((F, p), dtype=bool)  # in visiting order
    why = np.full((F, p), _KEPT)
    for a, j in enumerate(order):
        for b in range(a):
            s = C[:, j, order[b]] - np.einsum("fm,fm->f", L[:, a, :b], L[:, b, :b])
            L[:, a, b] = np.where(kept[:, b], s / np.where(kept[:, b], L[:, b, b], 1.0), 0.0)
        d = C[:, j, j] - np.einsum("fm,fm->f", L[:, a, :a], L[:, a, :a])
        ok = nonzero[:, j] & (d >= tol)
        kept[:, a] = ok | intercept[j]
        L[:, a, a] = np.where(ok, np.sqrt(np.where(ok, d, 1.0)), np.where(intercept[j], 1.0, 0.0))
        why[:, j] = np.where(kept[:, a], _KEPT, np.where(nonzero[:, j], _DEPENDENT, _ZERO))
    keep = np.empty_like(kept)
    keep[:, order] = kept
    return keep, why


def _dependence(XtX: np.ndarray, cols: np.ndarray, j: int, intercept: np.ndarray) -> np.ndarray:
    """Which kept columns visited before ``j`` a dropped column ``j`` is a combination of.

    Solves :math:`C_{KK} a = C_{Kj}` on the unit-diagonal scale; returns a
    boolean (features, len(K)) array (|a| > 1e-6) and the columns K.
    """
    visit = np.r_[np.flatnonzero(intercept), np.flatnonzero(~intercept)]
    rank = np.empty_like(visit)
    rank[visit] = np.arange(visit.size)
    before = cols[rank[cols] < rank[j]]
    diag = np.einsum("fpp->fp", XtX)
    sub = XtX[:, before][:, :, before] / np.sqrt(diag[:, before, None] * diag[:, None, before])
    rhs = XtX[:, before, j] / np.sqrt(diag[:, before] * diag[:, j:j + 1])
    coef = np.linalg.solve(sub, rhs[:, :, None])[:, :, 0]
    return np.abs(coef) > 1e-6, before


def _reduce(st: dict, rows: np.ndarray, cols: np.ndarray) -> dict:
    """Sufficient statistics of ``rows`` (features) for the design columns ``cols``."""
    out = _take(st, rows)
    if cols.size == st["XtX"].shape[1]:
        return out
    # C-contiguous like the full statistics: einsum's summation order follows the memory
    # layout, and a feature's numbers must not depend on how it was grouped
    out["XtX"] = np.ascontiguousarray(out["XtX"][:, cols][:, :, cols])
    out["Xty"] = np.ascontiguousarray(out["Xty"][:, cols])
    out["Sss"] = np.ascontiguousarray(out["Sss"][:, :, cols][:, :, :, cols])
    out["Sst"] = np.ascontiguousarray(out["Sst"][:, :, cols])
    return out


def _fit_group(st: dict, X: np.ndarray, groups, confidence: float, df_method: str) -> dict:
    """Fit every feature of ``st`` with the design columns ``X`` (same for all).

    Returns per-feature arrays (status, note, gamma, scale, llf, gv_se) and
    (features, p) arrays of estimates and tests, NaN for failed features.
    """
    p = X.shape[1]
    F = st["n_obs"].size
    failed, note = _unfittable(st, p)
    ok_idx = np.flatnonzero(~failed)
    out = dict(failed=failed, note=note, status=np.where(failed, "failed", "ok").astype(object),
               gamma=np.full(F, np.nan), scale=np.full(F, np.nan), llf=np.full(F, np.nan),
               gv_se=np.full(F, np.nan))
    for key in ("estimate", "se", "z", "df", "p", "ci_low", "ci_high"):
        out[key] = np.full((F, p), np.nan)
    if not ok_idx.size:
        return out
    sub = _take(st, ok_idx)
    g, boundary, at_top = _optimise_gamma(sub, p)
    fit = _profile(g, sub, p, hessian=True)
    with np.errstate(invalid="ignore"):
        cov = np.linalg.inv(-fit["hessian"])
        se = np.sqrt(np.einsum("fpp->fp", cov)[:, :p])
        sc = fit["qf"] / (sub["n_obs"] - p)
        out["gamma"][ok_idx] = g
        out["scale"][ok_idx] = sc
        out["llf"][ok_idx] = fit["llf"]
        out["gv_se"][ok_idx] = np.sqrt(sc * cov[:, p, p])
    status = out["status"]
    status[ok_idx[boundary]] = "boundary"
    note[ok_idx[boundary]] = "random-intercept variance estimated as 0 (boundary)"
    hess_bad = (np.einsum("fpp->fp", fit["hessian"]) >= 0).any(axis=1) & ~boundary
    note[ok_idx[hess_bad]] = ("Hessian not negative definite at the estimate "
                              "(statsmodels warns too); standard errors unreliable")
    status[ok_idx[at_top]] = "not_converged"
    note[ok_idx[at_top]] = (f"variance ratio reached the grid maximum "
                            f"{GAMMA_GRID[-1]:g} (residual variance -> 0)")
    beta = fit["beta"]
    if df_method == "satterthwaite":
        se, df_satt = _lmertest_inference(sc, boundary, fit, sub, p)
    if df_method == "satterthwaite":
        df = df_satt
    elif df_method == "z":
        df = None
    else:
        df = between_within_df(X, groups, st["n_obs"][ok_idx], st["n_groups"][ok_idx],
                               within=_within_columns(sub))
    for key, val in _wald(beta, se, df, confidence).items():
        out[key][ok_idx] = val
    return out


def _wald(beta: np.ndarray, se: np.ndarray, df, confidence: float) -> dict:
    """t (``df`` given) or z (``df is None``) tests and intervals of the fixed effects."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = beta / se
    if df is None:
        df = np.full(beta.shape, np.inf)
        p_value = 2 * special.ndtr(-np.abs(z))
        crit = np.full(beta.shape, special.ndtri(0.5 + confidence / 2))
    else:
        p_value = 2 * special.stdtr(df, -np.abs(z))
        crit = special.stdtrit(df, 0.5 + confidence / 2)
    return dict(estimate=beta, se=se, z=z, df=df, p=p_value,
                ci_low=beta - crit * se, ci_high=beta + crit * se)


def _lmertest_inference(scale, boundary, fit: dict, st: dict, p: int):
    r"""Standard errors and Satterthwaite degrees of freedom as lme4 / lmerTest.

    With :math:`A(\gamma) = X'V^{-1}X` the covariance of the fixed effects is
    :math:`C = \sigma^2 A^{-1}` (lme4's ``vcov``: the variance parameters held at
    their estimates, no fixed/random cross term), so :math:`SE_j = \sqrt{C_{jj}}`.
    The Satterthwaite degrees of freedom of coefficient *j* are

    .. math:: \nu_j = \frac{2\,C_{jj}^2}{g_j' \, \Sigma \, g_j},\quad
       g_j = \Big(\frac{\partial C_{jj}}{\partial \sigma^2},
       \frac{\partial C_{jj}}{\partial \gamma}\Big)
       = \big([A^{-1}]_{jj},\ \sigma^2 [A^{-1} W A^{-1}]_{jj}\big),

    :math:`W = -dA/d\gamma`, and :math:`\Sigma` the inverse of the observed
    information of the REML log-likelihood in :math:`(\sigma^2, \gamma)` at the
    estimate (analytic here; lmerTest differentiates numerically in
    :math:`(\theta, \sigma)`, :math:`\theta = \sigma_u/\sigma`: the same
    :math:`\nu` at an interior optimum, where the gradient vanishes, since both
    :math:`g` and :math:`\Sigma` transform with the Jacobian). At the boundary
    :math:`\hat\gamma = 0` the derivative of :math:`C` in :math:`\theta` is 0,
    so only :math:`\sigma^2` varies and :math:`\nu_j = N - p`, as lmerTest gives.

    References
    ----------
    Satterthwaite FE (1946) Biometrics Bull 2:110-114; Kuznetsova A, Brockhoff PB,
    Christensen RHB (2017) lmerTest package: tests in linear mixed effects models.
    J Stat Softw 82(13).
    """
    Ainv = fit["Ainv"]
    a = np.einsum("fpp->fp", Ainv)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(scale[:, None] * a)
    fac = st["n_obs"] - p
    B = fit["B"]  # -dQ/dgamma
    # total d2Q/dgamma2: beta follows gamma (GLS), so the beta-gamma cross term is profiled out
    q2 = fit["D"] - 2 * np.einsum("fp,fpq,fq->f", fit["u"], Ainv, fit["u"])
    logdet2 = fit["logdet_curvature"]
    s2 = scale
    info_ss = fac / (2 * s2 ** 2)
    info_sg = B / (2 * s2 ** 2)  # -d2l/(dsigma2 dgamma) = -Q'/(2 sigma^4), Q' = -B
    info_gg = 0.5 * logdet2 + q2 / (2 * s2)
    det = info_ss * info_gg - info_sg ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        cov_ss, cov_sg, cov_gg = info_gg / det, -info_sg / det, info_ss / det
        g_s = a
        g_g = s2[:, None] * np.einsum("fpq,fqr,frp->fp", Ainv, fit["Wm"], Ainv)
        var = s2[:, None] * a
        denominator = (g_s ** 2 * cov_ss[:, None] + 2 * g_s * g_g * cov_sg[:, None]
                       + g_g ** 2 * cov_gg[:, None])
        df = 2 * var ** 2 / denominator
    df = np.where(boundary[:, None], fac[:, None].astype(float), df)
    return se, df


def _drop_reasons(st: dict, keep: np.ndarray, why: np.ndarray, terms: np.ndarray,
                  intercept: np.ndarray):
    """";"-joined dropped column names and reasons per feature (vectorised over features)."""
    F, p = keep.shape
    dropped = np.full(F, "", dtype=object)
    reasons = np.full(F, "", dtype=object)
    patterns, inverse = np.unique(keep, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for j in range(p):
        lost = ~keep[:, j]
        if not lost.any():
            continue
        text = np.where(why[:, j] == _ZERO, "zero on every observed row", "").astype(object)
        for g, pattern in enumerate(patterns):
            members = np.flatnonzero((inverse == g) & (why[:, j] == _DEPENDENT))
            if not members.size:
                continue
            involved, before = _dependence(st["XtX"][members], np.flatnonzero(pattern), j,
                                           intercept)
            names = np.full(members.size, "", dtype=object)
            for m, col in enumerate(before):
                names = np.where(involved[:, m],
                                 names + np.where(names == "", "", ", ") + terms[col], names)
            text[members] = "a linear combination of " + names + " on the observed rows"
        sep = np.where(dropped == "", "", ";")
        dropped = np.where(lost, dropped + sep + terms[j], dropped)
        reasons = np.where(lost, reasons + sep + text, reasons)
    return dropped, reasons


def fitted_formula(requested: str, term_columns: dict, fitted_terms, lhs: str = "feature",
                   random: str = "(1 | subject_id)") -> np.ndarray:
    """Formula actually fitted per feature, from its ``fitted_terms``.

    A feature that kept every column gets ``requested`` unchanged. Otherwise
    each formula term whose columns were all kept is written by its name
    (``timepoint``), a term that lost some columns by its kept column names
    (``timepoint[post]:response[responder]``), and a term that lost all of
    them is left out; e.g. ``feature ~ timepoint + response +
    timepoint[post]:response[responder] + cohort + (1 | subject_id)``.

    Parameters
    ----------
    requested : str
        The formula of the full design.
    term_columns : dict
        Formula term -> design columns (``build_design(...).attrs["terms"]``).
    fitted_terms : array_like of str
        ";"-joined fitted columns per feature (column of the fits table).
    """
    fitted_terms = pd.Series(np.asarray(fitted_terms, dtype=object))
    all_columns = ";".join(c for cols in term_columns.values() for c in cols)
    out = {}
    for key in fitted_terms.unique():
        if key == all_columns:
            out[key] = requested
            continue
        kept = set(key.split(";")) if key else set()
        parts = []
        for term, cols in term_columns.items():
            have = [c for c in cols if c in kept]
            if term == "Intercept":
                continue
            parts += [term] if len(have) == len(cols) else have
        if "Intercept" in term_columns and "Intercept" not in kept:
            parts.insert(0, "0")
        out[key] = f"{lhs} ~ " + " + ".join(parts or ["1"]) + f" + {random}"
    return fitted_terms.map(out).to_numpy(dtype=object)


def _arrays(values, exog):
    """Responses, feature ids, design and term names from DataFrames or arrays."""
    if isinstance(values, pd.DataFrame):
        feature_ids = values.columns.astype(str)
        Y_all = values.to_numpy(dtype=float)
    else:
        Y_all = np.asarray(values, dtype=float)
        feature_ids = pd.Index([str(i) for i in range(Y_all.shape[1])])
    if isinstance(exog, pd.DataFrame):
        terms = list(exog.columns)
        X = exog.to_numpy(dtype=float)
    else:
        X = np.asarray(exog, dtype=float)
        terms = [f"x{i}" for i in range(X.shape[1])]
    return Y_all, feature_ids, X, np.asarray(terms, dtype=object)


def fit_random_intercept(values, exog, groups, confidence: float = 0.95,
                         chunk_size: int = 2000, df_method: str = "z",
                         drop_inestimable: bool = True) -> MixedModelResult:
    """Fit ``y ~ X + (1 | group)`` by REML for every column of ``values``.

    Parameters
    ----------
    values : pandas.DataFrame or array_like, shape (n_obs, n_features)
        Responses (transformed scale); NaN drops that observation for that
        feature only.
    exog : pandas.DataFrame or array_like, shape (n_obs, p)
        Fixed-effects design, shared by all features (e.g. from
        :func:`build_design`), including the intercept column.
    groups : array_like, shape (n_obs,)
        Subject of each observation (random intercept).
    confidence : float
        Level of the Wald confidence intervals.
    chunk_size : int
        Features processed together (bounds memory to about
        ``chunk_size * n_subjects * p`` floats).
    df_method : {"z", "between_within", "satterthwaite"}
        Reference distribution of the tests and intervals: ``satterthwaite`` -
        inference as lme4/lmerTest: SEs from sigma^2 (X'V^-1 X)^-1 and
        Student t with Satterthwaite degrees of freedom from the rows the feature
        observes (:func:`_lmertest_inference`); ``z`` - standard
        normal (Wald, as statsmodels); ``between_within`` - Student t with the
        between-within degrees of freedom of :func:`between_within_df`, which
        keeps the false-positive rate at its level with a few dozen subjects.
        The df of a feature count its observed rows and groups and the
        columns of its reduced design; whether a column is within-subject is
        decided on the rows the feature observes (:func:`_within_columns`).
    drop_inestimable : bool
        Per feature, drop the columns not estimable on its observed rows
        (:func:`estimable_columns`; never an all-ones intercept column) and fit
        the rest; ``False`` fits the full design or fails the feature.

    Returns
    -------
    MixedModelResult
        Features that cannot be fitted (fewer observations than p + 1, design
        not of full rank after dropping missing values, no subject with two
        observations, zero residual variance) have ``status == "failed"`` and
        no coefficients; a variance ratio at the top of the grid (residual
        variance -> 0) is ``"not_converged"``; ``gamma == 0`` is
        ``"boundary"`` (statsmodels warns "MLE may be on the boundary").
        Dropped columns have no coefficient row; ``fits`` lists them
        (``dropped_terms``, ``dropped_reasons``) and the columns fitted
        (``fitted_terms``). Features are fitted in groups that share a set of
        kept columns, one vectorised fit per group, so a feature's numbers do
        not depend on the other features.

    References
    ----------
    Statsmodels MixedLM documentation (REML, profile likelihood), and the
    module docstring.
    """
    Y_all, feature_ids, X, term_array = _arrays(values, exog)
    p = X.shape[1]
    if df_method not in DF_METHODS:
        raise ValueError(f"df_method must be one of {DF_METHODS}, not {df_method!r}")
    intercept = (X == 1.0).all(axis=0)
    X_original = X
    order, starts, _ = _sorted_by_group(groups)
    X = X[order]
    coef_parts, fit_parts = [], []
    for begin in range(0, Y_all.shape[1], chunk_size):
        ids = feature_ids[begin:begin + chunk_size]
        Y = Y_all[order, begin:begin + chunk_size]
        st = _sufficient_statistics(Y, X, starts)
        F = Y.shape[1]
        if drop_inestimable:
            keep, why = estimable_columns(st["XtX"], intercept)
        else:
            keep, why = np.ones((F, p), dtype=bool), np.full((F, p), _KEPT)
        patterns, inverse = np.unique(keep, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        res = {key: np.full((F, p), np.nan)
               for key in ("estimate", "se", "z", "df", "p", "ci_low", "ci_high")}
        status = np.empty(F, dtype=object)
        note = np.empty(F, dtype=object)
        failed = np.zeros(F, dtype=bool)
        per_feature = {key: np.full(F, np.nan) for key in ("gamma", "scale", "llf", "gv_se")}
        for g, pattern in enumerate(patterns):
            members = np.flatnonzero(inverse == g)
            cols = np.flatnonzero(pattern)
            whole = members.size == F and cols.size == p
            sub = st if whole else _reduce(st, members, cols)
            part = _fit_group(sub, X_original if cols.size == p else X_original[:, cols],
                              groups, confidence, df_method)
            for key in res:
                res[key][np.ix_(members, cols)] = part[key]
            for key in per_feature:
                per_feature[key][members] = part[key]
            status[members] = part["status"]
            note[members] = part["note"]
            failed[members] = part["failed"]
        coef_parts.append(_coefficient_rows(ids, keep & ~failed[:, None], res, term_array))
        dropped, reasons = _drop_reasons(st, keep, why, term_array, intercept)
        fitted_names = _fitted_names(patterns, inverse, term_array)
        gamma, scale = per_feature["gamma"], per_feature["scale"]
        fit_parts.append(pd.DataFrame({
            "feature_id": ids, "status": status, "n_obs": st["n_obs"],
            "n_groups": st["n_groups"], "n_repeated_groups": st["n_repeated"],
            "gamma": gamma, "group_var": scale * gamma, "group_var_se": per_feature["gv_se"],
            "scale": scale, "llf": per_feature["llf"], "note": note,
            "fitted_terms": fitted_names, "dropped_terms": dropped,
            "dropped_reasons": reasons}))
    return _result(coef_parts, fit_parts)


_COEF_COLUMNS = ["feature_id", "term", "estimate", "se", "z", "df", "p", "ci_low", "ci_high"]


def _coefficient_rows(ids, fitted: np.ndarray, res: dict, term_array: np.ndarray):
    """Long table of the fitted (feature, term) cells of the (features, p) result arrays."""
    f_idx, t_idx = np.nonzero(fitted)
    if not f_idx.size:
        return None
    return pd.DataFrame({"feature_id": ids.to_numpy()[f_idx], "term": term_array[t_idx],
                         **{key: res[key][f_idx, t_idx] for key in res}})


def _fitted_names(patterns: np.ndarray, inverse: np.ndarray, term_array: np.ndarray):
    return np.array([";".join(term_array[pattern]) for pattern in patterns],
                    dtype=object)[inverse]


def _result(coef_parts: list, fit_parts: list) -> MixedModelResult:
    coef_parts = [part for part in coef_parts if part is not None]
    coefficients = (pd.concat(coef_parts, ignore_index=True) if coef_parts
                    else pd.DataFrame(columns=_COEF_COLUMNS))
    fits = pd.concat(fit_parts, ignore_index=True) if fit_parts else pd.DataFrame()
    return MixedModelResult(coefficients, fits)


# --------------------------------------------------------------------------------------
# Several random intercepts (crossed or nested grouping factors)
# --------------------------------------------------------------------------------------

#: starting values of each theta_k = sigma_k / sigma (the 1e-3 stands for 0: the REML
#: deviance is even in theta_k, so Newton from exactly 0 could not leave it)
THETA_GRID = np.array([1e-3, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 5.0, 8.0, 15.0])
_NEWTON_STEPS = 100
_LINE_SEARCH_STEPS = 40
#: a theta below this after Newton is tried at 0 (lme4's ``boundary.tol``)
_BOUNDARY_TOL = 1e-5
#: theta above this (residual variance -> 0) is reported as not converged
_THETA_MAX = 1e4
#: eigenvalues of the deviance Hessian kept in its generalised inverse (lmerTest's ``tol``)
_HESSIAN_TOL = 1e-8


@dataclass(frozen=True)
class _Factors:
    """Grouping factors of :func:`fit_mixed`, the absorbed one first.

    ``names`` are the factors in the order of the absorbed-first parameter
    vector theta; ``blocks[j]`` are the columns of W = [X, Z_2, ...] holding
    the indicators of factor ``names[j + 1]``; ``codes`` the level code of
    every (sorted) row per factor; ``order``/``starts`` sort the rows by the
    absorbed factor.
    """

    names: list
    blocks: list
    Z: np.ndarray
    order: np.ndarray
    starts: np.ndarray
    user_order: list


def _factors(groups: pd.DataFrame) -> _Factors:
    """Indicator columns of the grouping factors; the one with most levels is absorbed."""
    if groups.isna().any().any():
        raise ValueError("grouping factors must not have missing values")
    codes = {}
    for name in groups.columns:
        codes[name] = pd.factorize(groups[name].astype(str), sort=True)[0]
    n_levels = [codes[name].max() + 1 for name in groups.columns]
    absorbed = list(groups.columns)[int(np.argmax(n_levels))]
    order, starts, _ = _sorted_by_group(groups[absorbed].to_numpy())
    names = [absorbed] + [c for c in groups.columns if c != absorbed]
    blocks, columns, width = [], [], 0
    for name in names[1:]:
        levels = codes[name].max() + 1
        columns.append(np.eye(levels)[codes[name][order]])
        blocks.append(np.arange(width, width + levels))
        width += levels
    Z = np.hstack(columns) if columns else np.zeros((order.size, 0))
    return _Factors(names, blocks, Z, order, starts, list(groups.columns))


def _absorb(gamma: np.ndarray, st: dict):
    r"""Cross-products weighted by :math:`V_1^{-1}` and their derivatives in :math:`\gamma_1`.

    For the absorbed factor :math:`V_1 = I + \gamma_1 Z_1Z_1'` is block diagonal with
    :math:`V_{1i}^{-1} = I - c_i J`, :math:`c_i = \gamma_1/(1+n_i\gamma_1)`, so
    :math:`A = W'V_1^{-1}W`, :math:`b = W'V_1^{-1}y`, :math:`y'V_1^{-1}y` and
    :math:`\log|V_1| = \sum_i \log(1+n_i\gamma_1)` are sums over group-size classes
    of the statistics of :func:`_sufficient_statistics` (computed on W). Since
    :math:`dc_i/d\gamma_1 = w_i^2`, :math:`w_i = 1/(1+n_i\gamma_1)`, each derivative
    is the same sum with weights :math:`-w_i^2` (and :math:`n_i w_i` for the log
    determinant).
    """
    F, m = st["XtX"].shape[:2]
    k = np.arange(1, st["K"] + 1, dtype=float)
    w = 1.0 / (1.0 + gamma[:, None] * k)
    c = (gamma[:, None] * w)[:, None, :]
    w2 = (w * w)[:, None, :]
    Sss = st["Sss"].reshape(F, -1, m * m)
    return dict(
        A=st["XtX"] - np.matmul(c, Sss).reshape(F, m, m),
        b=st["Xty"] - np.matmul(c, st["Sst"])[:, 0],
        yy=st["yty"] - np.matmul(c, st["Stt"][:, :, None])[:, 0, 0],
        logdet=np.einsum("fk,fk->f", st["cnt"], np.log1p(gamma[:, None] * k)),
        dA=-np.matmul(w2, Sss).reshape(F, m, m),
        db=-np.matmul(w2, st["Sst"])[:, 0],
        dyy=-np.matmul(w2, st["Stt"][:, :, None])[:, 0, 0],
        dlogdet=np.einsum("fk,fk->f", st["cnt"] * k, w))


def _reml_multi(theta: np.ndarray, st: dict, p: int, blocks: list, gradient: bool = True):
    r"""Profiled REML deviance of several random intercepts and its gradient in theta.

    With :math:`\Lambda = \mathrm{diag}(1_p, \theta_2 1_{q_2}, \ldots)` and
    :math:`A, b` from :func:`_absorb`,

    .. math:: M = \Lambda A \Lambda + \mathrm{diag}(0_p, I_q),\quad
       c = \Lambda b,\quad P = y'V_1^{-1}y - c'M^{-1}c,

    :math:`\log|V| + \log|X'V^{-1}X| = \log|V_1| + \log|M|` and :math:`P` is the
    penalised weighted residual sum of squares :math:`r'V^{-1}r` at the GLS
    estimate, the first p entries of :math:`M^{-1}c`; the deviance is lme4's REML
    criterion :math:`\log|V_1| + \log|M| + (N-p)\,[1 + \log(2\pi P/(N-p))]`.
    Derivatives: :math:`d\log|M| = \mathrm{tr}(M^{-1}dM)`,
    :math:`dP = d(y'V_1^{-1}y) - 2\,dc'u + u'\,dM\,u` with :math:`u = M^{-1}c`; for
    :math:`\theta_k` (k >= 2) :math:`dM = E_kA\Lambda + \Lambda AE_k`,
    :math:`dc = E_kb`; for :math:`\theta_1` (absorbed, :math:`\gamma_1=\theta_1^2`)
    :math:`dM = 2\theta_1\Lambda A_\gamma\Lambda`, :math:`dc = 2\theta_1\Lambda b_\gamma`.

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S (2015) Fitting linear mixed-effects models
    using lme4. J Stat Softw 67(1), sections 3.2-3.4 (eqs. 34, 42).
    """
    F, m = st["XtX"].shape[:2]
    ab = _absorb(theta[:, 0] ** 2, st)
    lam = np.ones((F, m))
    for j, cols in enumerate(blocks, start=1):
        lam[:, p + cols] = theta[:, j:j + 1]
    LA = lam[:, :, None] * ab["A"]
    M = LA * lam[:, None, :]
    diag = np.arange(p, m)
    M[:, diag, diag] += 1.0
    c = lam * ab["b"]
    sign, logdet_M = np.linalg.slogdet(M)
    with np.errstate(invalid="ignore", divide="ignore"):
        Minv = np.linalg.inv(np.where((sign > 0)[:, None, None], M, np.eye(m)))
        u = np.matmul(Minv, c[:, :, None])[:, :, 0]
        P = ab["yy"] - np.einsum("fi,fi->f", c, u)
        fac = (st["n_obs"] - p).astype(float)
        dev = ab["logdet"] + logdet_M + fac * (1.0 + np.log(2 * np.pi * P / fac))
    dev = np.where((sign > 0) & (P > 0), dev, np.inf)
    out = dict(dev=dev, P=P, Minv=Minv, u=u, A=ab["A"], lam=lam, fac=fac)
    if not gradient:
        return out
    dL = np.empty_like(theta)
    dP = np.empty_like(theta)
    G1 = lam[:, :, None] * ab["dA"] * lam[:, None, :]  # dM/dgamma_1
    two_t = 2 * theta[:, 0]
    dL[:, 0] = two_t * (ab["dlogdet"] + np.einsum("fij,fij->f", Minv, G1))
    dP[:, 0] = two_t * (ab["dyy"] - 2 * np.einsum("fi,fi->f", lam * ab["db"], u)
                        + np.einsum("fi,fij,fj->f", u, G1, u))
    N_diag = np.einsum("fij,fji->fi", Minv, LA)  # diag(M^-1 Lambda A)
    ALu = np.matmul(ab["A"], (lam * u)[:, :, None])[:, :, 0]
    for j, cols in enumerate(blocks, start=1):
        cols = p + cols
        dL[:, j] = 2 * N_diag[:, cols].sum(axis=1)
        dP[:, j] = 2 * (u[:, cols] * (ALu[:, cols] - ab["b"][:, cols])).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        grad = dL + fac[:, None] * dP / P[:, None]
    out.update(dL=dL, dP=dP, grad=grad, G1=G1)
    return out


def _central_jacobian(fn, theta: np.ndarray, active: np.ndarray, rel: float) -> np.ndarray:
    """Central-difference Jacobian (features, r, r) of a vector function of theta.

    Column l perturbs theta_l by ``rel * max(theta_l, 0.01)``; inactive
    parameters are not perturbed (their column stays 0).
    """
    F, r = theta.shape
    J = np.zeros((F, r, r))
    for col in range(r):
        if not active[:, col].any():
            continue
        h = np.where(active[:, col], rel * np.maximum(np.abs(theta[:, col]), 1e-2), 0.0)
        up, down = theta.copy(), theta.copy()
        up[:, col] += h
        down[:, col] -= h
        with np.errstate(invalid="ignore", divide="ignore"):
            J[:, :, col] = np.where(active[:, col:col + 1],
                                    (fn(up) - fn(down)) / np.where(h > 0, 2 * h, 1.0)[:, None], 0.0)
    return J


def _grid_start(st: dict, p: int, blocks: list, frozen: np.ndarray) -> np.ndarray:
    """Best theta of a product grid (13 values per factor for two factors, fewer for more)."""
    F, r = frozen.shape
    per = {1: 13, 2: 13, 3: 7}.get(r, 4)
    values = THETA_GRID[np.round(np.linspace(0, THETA_GRID.size - 1, per)).astype(int)]
    best = np.full(F, np.inf)
    theta = np.ones((F, r))
    for point in np.array(np.meshgrid(*[values] * r, indexing="ij")).reshape(r, -1).T:
        trial = np.where(frozen, 0.0, point[None, :])
        dev = _reml_multi(trial, st, p, blocks, gradient=False)["dev"]
        better = dev < best
        best = np.where(better, dev, best)
        theta[better] = trial[better]
    return theta


def _newton_step(cur: dict, H: np.ndarray, frozen: np.ndarray) -> np.ndarray:
    """Newton direction with the Hessian's eigenvalues replaced by their absolute values."""
    r = H.shape[1]
    fixed = frozen[:, :, None] | frozen[:, None, :]
    H = np.where(fixed, np.eye(r), 0.5 * (H + H.transpose(0, 2, 1)))
    H = np.where(np.isfinite(H), H, np.eye(r))
    vals, vecs = np.linalg.eigh(H)
    floor = 1e-8 * np.abs(vals).max(axis=1, keepdims=True) + 1e-12
    vals = np.maximum(np.abs(vals), floor)
    g = np.where(frozen | ~np.isfinite(cur["grad"]), 0.0, cur["grad"])
    step = -np.einsum("fij,fj->fi", vecs, np.einsum("fji,fj->fi", vecs, g) / vals)
    return np.where(frozen, 0.0, step)


def _optimise_theta(st: dict, p: int, blocks: list, frozen: np.ndarray):
    r"""REML estimates of theta for every feature: grid start, then damped Newton.

    The deviance is even in every :math:`\theta_k`, so the search runs over
    :math:`\mathbb{R}^r` and reports :math:`|\theta|`; Newton uses the analytic
    gradient of :func:`_reml_multi`, a central-difference Hessian of it made
    positive definite (absolute eigenvalues) and a backtracking line search. A
    :math:`\theta_k` below ``_BOUNDARY_TOL`` is set to 0 when that does not raise
    the deviance (as lme4 does). Returns theta and a not-converged flag.
    """
    theta = _grid_start(st, p, blocks, frozen)
    F = theta.shape[0]
    done = np.zeros(F, dtype=bool)
    for _ in range(_NEWTON_STEPS):
        idx = np.flatnonzero(~done)
        if not idx.size:
            break
        sub, th, fr = _take(st, idx), theta[idx], frozen[idx]
        cur = _reml_multi(th, sub, p, blocks)
        H = _central_jacobian(lambda t: _reml_multi(t, sub, p, blocks)["grad"], th, ~fr, 1e-5)
        step = _newton_step(cur, H, fr)
        slope = np.einsum("fi,fi->f", np.where(fr, 0.0, cur["grad"]), step)
        t = np.ones(idx.size)
        moved = np.zeros(idx.size, dtype=bool)
        new = th.copy()
        for _ in range(_LINE_SEARCH_STEPS):
            trial = th + t[:, None] * step
            dev = _reml_multi(trial, sub, p, blocks, gradient=False)["dev"]
            ok = ~moved & (dev <= cur["dev"] + 1e-4 * t * slope + 1e-13 * np.abs(cur["dev"]))
            new[ok] = trial[ok]
            moved |= ok
            if moved.all():
                break
            t = np.where(moved, t, 0.5 * t)
        size = np.abs(new - th).max(axis=1)
        done[idx] = ~moved | (size <= 1e-11 * (1.0 + np.abs(th).max(axis=1)))
        theta[idx] = new
    not_converged = ~done | (np.abs(theta) > _THETA_MAX).any(axis=1)
    theta = np.abs(theta)
    near = (theta < _BOUNDARY_TOL) & (theta > 0)
    rows = np.flatnonzero(near.any(axis=1))
    if rows.size:
        sub = _take(st, rows)
        snapped = np.where(near[rows], 0.0, theta[rows])
        keep = (_reml_multi(snapped, sub, p, blocks, gradient=False)["dev"]
                <= _reml_multi(theta[rows], sub, p, blocks, gradient=False)["dev"] + 1e-10)
        theta[rows[keep]] = snapped[keep]
    return theta, not_converged


def _lmertest_multi(theta: np.ndarray, fit: dict, st: dict, p: int, blocks: list):
    r"""Standard errors and Satterthwaite df as lmerTest, for several variance parameters.

    :math:`C = \sigma^2 (X'V^{-1}X)^{-1} = \sigma^2 [M^{-1}]_{XX}` (lme4's
    ``vcov``). With the variance parameters :math:`\varphi = (\theta, \sigma)`
    and the REML deviance not profiled over :math:`\sigma`,

    .. math:: d(\theta, \sigma) = \log|V_1| + \log|M| + P/\sigma^2 + (N-p)\log(2\pi\sigma^2),

    the asymptotic covariance of :math:`\hat\varphi` is :math:`2H^{+}`, :math:`H`
    the Hessian of :math:`d` (the generalised inverse over eigenvalues above
    ``_HESSIAN_TOL``, as lmerTest), and the df of coefficient *j* are

    .. math:: \nu_j = \frac{2\,C_{jj}^2}{g_j'\,(2H^{+})\,g_j},\quad
       g_j = \partial C_{jj}/\partial\varphi .

    :math:`H_{\sigma\sigma} = 6P/\sigma^4 - 2(N-p)/\sigma^2`,
    :math:`H_{\theta_k\sigma} = -2P_k/\sigma^3` and the analytic
    :math:`\partial C/\partial\theta_k = -\sigma^2 [M^{-1}(dM/d\theta_k)M^{-1}]_{XX}`,
    :math:`\partial C/\partial\sigma = 2\sigma[M^{-1}]_{XX}`; :math:`H_{\theta\theta}`
    is a Richardson-extrapolated central difference of the analytic gradient
    (lmerTest differentiates both numerically). A parameter at 0 drops out: the
    deviance and C are even in it, so its gradient entries and its Hessian cross
    terms vanish, as they do in lmerTest's numerical derivatives.

    References
    ----------
    Kuznetsova A, Brockhoff PB, Christensen RHB (2017) lmerTest package: tests in
    linear mixed effects models. J Stat Softw 82(13), section 3 and appendix A.
    """
    F, r = theta.shape
    P, fac, Minv = fit["P"], fit["fac"], fit["Minv"]
    s2 = P / fac
    s = np.sqrt(s2)
    a = np.einsum("fjj->fj", Minv[:, :p, :p])
    se = np.sqrt(s2[:, None] * a)
    active = theta > 0

    def curvature(t):
        part = _reml_multi(t, st, p, blocks)
        return part["dL"] + part["dP"] / s2[:, None]

    coarse = _central_jacobian(curvature, theta, active, 2e-3)
    fine = _central_jacobian(curvature, theta, active, 1e-3)
    H = np.zeros((F, r + 1, r + 1))
    H[:, :r, :r] = (4 * fine - coarse) / 3
    H[:, :r, :r] = 0.5 * (H[:, :r, :r] + H[:, :r, :r].transpose(0, 2, 1))
    H[:, :r, r] = H[:, r, :r] = np.where(active, -2 * fit["dP"] / (s * s2)[:, None], 0.0)
    H[:, r, r] = 6 * P / s2 ** 2 - 2 * fac / s2
    off = ~np.r_["1", active, np.ones((F, 1), bool)]
    H = np.where(off[:, :, None] | off[:, None, :], np.eye(r + 1), H)
    vals, vecs = np.linalg.eigh(H)
    keep = vals > _HESSIAN_TOL
    inv_vals = np.where(keep, 1.0 / np.where(keep, vals, 1.0), 0.0)
    cov_par = 2 * np.einsum("fik,fk,fjk->fij", vecs, inv_vals, vecs)
    g = np.zeros((F, p, r + 1))
    MX = Minv[:, :, :p]
    for k in range(r):
        if k == 0:
            dM = 2 * theta[:, :1, None] * fit["G1"]
        else:
            ind = np.zeros((F, Minv.shape[1]))  # E_k: dM = E_k A Lambda + Lambda A E_k
            ind[:, p + blocks[k - 1]] = 1.0
            lam = fit["lam"]
            dM = fit["A"] * (ind[:, :, None] * lam[:, None, :] + lam[:, :, None] * ind[:, None, :])
        g[:, :, k] = np.where(active[:, k:k + 1],
                              -s2[:, None] * np.einsum("fij,fik,fkj->fj", MX, dM, MX), 0.0)
    g[:, :, r] = 2 * s[:, None] * a
    denominator = np.einsum("fjk,fkl,fjl->fj", g, cov_par, g)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = 2 * (s2[:, None] * a) ** 2 / denominator
    return se, df, cov_par


def _factor_support(st: dict, p: int, fac: _Factors):
    """Levels and repeated levels of each factor on each feature's observed rows.

    A factor with fewer than two observed levels, or whose every observed level
    has one observation, has its variance fixed at 0 (``frozen``): its REML
    deviance is flat in that variance (lme4 refuses such a factor). Returns
    ``levels``, ``repeated`` (features, r), ``frozen`` and a note per feature.
    """
    F = st["n_obs"].size
    counts = np.einsum("fpp->fp", st["XtX"])[:, p:]
    levels = [st["n_groups"]] + [(counts[:, cols] > 0).sum(axis=1) for cols in fac.blocks]
    repeated = [st["n_repeated"]] + [(counts[:, cols] > 1).sum(axis=1) for cols in fac.blocks]
    levels, repeated = np.column_stack(levels), np.column_stack(repeated)
    frozen = (levels < 2) | (repeated < 1)
    note = np.full(F, "", dtype=object)
    for k, name in enumerate(fac.names):
        why = np.where(levels[:, k] < 2, "one level on the observed rows",
                       "no level with two or more observations")
        text = f"var_{name} fixed at 0 (" + why.astype(object) + ")"
        note = np.where(frozen[:, k], note + np.where(note == "", "", "; ") + text, note)
    return levels, repeated, frozen, note


def _fit_multi_group(st: dict, p: int, fac: _Factors, frozen: np.ndarray, confidence: float,
                     df_method: str) -> dict:
    """Fit every feature of ``st`` (columns: the kept fixed effects, then the indicators)."""
    F, r = frozen.shape
    x_only = _reduce(st, np.arange(F), np.arange(p))
    x_only["n_repeated"] = (~frozen).sum(axis=1)
    failed, note = _unfittable(x_only, p, no_groups="no grouping factor with two or more "
                               "levels and a level observed twice")
    ok = np.flatnonzero(~failed)
    out = dict(failed=failed, note=note, status=np.where(failed, "failed", "ok").astype(object),
               theta=np.full((F, r), np.nan), gv_se=np.full((F, r), np.nan),
               scale=np.full(F, np.nan), llf=np.full(F, np.nan))
    for key in ("estimate", "se", "z", "df", "p", "ci_low", "ci_high"):
        out[key] = np.full((F, p), np.nan)
    if not ok.size:
        return out
    sub, fr = _take(st, ok), frozen[ok]
    theta, not_converged = _optimise_theta(sub, p, fac.blocks, fr)
    fit = _reml_multi(theta, sub, p, fac.blocks)
    se, df, cov_par = _lmertest_multi(theta, fit, sub, p, fac.blocks)
    s2 = fit["P"] / fit["fac"]
    # delta method: var_k = sigma^2 theta_k^2,
    # d var_k / d(theta_k, sigma) = (2 sigma^2 theta_k, 2 sigma theta_k^2)
    for k in range(r):
        grad = np.column_stack([2 * s2 * theta[:, k], 2 * np.sqrt(s2) * theta[:, k] ** 2])
        sub_cov = cov_par[:, [k, r]][:, :, [k, r]]
        out["gv_se"][ok, k] = np.sqrt(np.einsum("fi,fij,fj->f", grad, sub_cov, grad))
    out["theta"][ok], out["scale"][ok], out["llf"][ok] = theta, s2, -0.5 * fit["dev"]
    tests = _wald(fit["u"][:, :p], se, df if df_method == "satterthwaite" else None, confidence)
    for key, val in tests.items():
        out[key][ok] = val
    at_zero = (theta == 0) & ~fr
    for k, name in enumerate(fac.names):
        sep = np.where(note[ok] == "", "", "; ")
        note[ok] = np.where(at_zero[:, k], note[ok] + sep + f"var_{name} estimated as 0 (boundary)",
                            note[ok])
    status = np.where((theta == 0).any(axis=1), "boundary", "ok").astype(object)
    status[not_converged] = "not_converged"
    note[ok[not_converged]] = (f"variance parameters not converged after {_NEWTON_STEPS} Newton "
                               f"steps or theta above {_THETA_MAX:g} (residual variance -> 0)")
    out["status"][ok] = status
    return out


def fit_mixed(values, exog, groups, confidence: float = 0.95, chunk_size: int = 1000,
              df_method: str = "satterthwaite", drop_inestimable: bool = True) -> MixedModelResult:
    r"""Fit ``y ~ X + (1 | g_1) + ... + (1 | g_r)`` by REML for every column of ``values``.

    The model of every feature is

    .. math:: y = X\beta + \sum_{k=1}^r Z_k u_k + e,\quad
       u_k \sim N(0, \sigma^2\gamma_k I),\quad e \sim N(0, \sigma^2 I),

    with crossed or nested grouping factors (e.g. subject within site, or
    subject x sequencing batch), parametrised as lme4 by
    :math:`\theta_k = \sqrt{\gamma_k}` (:math:`\Lambda = \mathrm{diag}(\theta_k I)`).
    The factor with most levels is absorbed analytically (block-diagonal
    :math:`V_1`, :func:`_absorb`); the others enter as indicator columns, so the
    REML deviance, :func:`_reml_multi`, costs a few (features, p + q, p + q)
    array operations, q the number of their levels. :math:`\theta` is found for
    all features together (grid start, damped Newton, :func:`_optimise_theta`),
    the fixed effects are the GLS estimates at :math:`\hat\theta` and inference
    is lme4/lmerTest's (:func:`_lmertest_multi`).

    Parameters
    ----------
    values : pandas.DataFrame or array_like, shape (n_obs, n_features)
        Responses; NaN drops that observation for that feature only.
    exog : pandas.DataFrame or array_like, shape (n_obs, p)
        Fixed-effects design shared by all features, with the intercept.
    groups : array_like, shape (n_obs,), or pandas.DataFrame
        One grouping factor (1-D: :func:`fit_random_intercept` is called and its
        result returned unchanged) or one column per factor, rows aligned with
        ``values``, e.g. columns ``["subject_id", "site"]``.
    confidence : float
        Level of the confidence intervals.
    chunk_size : int
        Features fitted together (memory about ``chunk_size * n_max * (p + q)**2``
        floats, ``n_max`` the largest group of the absorbed factor, ``q`` the
        levels of the other factors).
    df_method : {"satterthwaite", "z"}
        Student t with lmerTest's Satterthwaite df, or the Wald z test. With
        several factors ``"between_within"`` is not defined and raises.
    drop_inestimable : bool
        Per feature, drop fixed-effect columns not estimable on its observed
        rows (:func:`estimable_columns`).

    Returns
    -------
    MixedModelResult
        ``coefficients`` as :func:`fit_random_intercept`. ``fits`` has the same
        columns, ``gamma``, ``group_var``, ``group_var_se``, ``n_groups`` and
        ``n_repeated_groups`` being those of the first column of ``groups``,
        plus ``var_<factor>`` (variance estimate :math:`\sigma^2\gamma_k`) per
        factor. ``group_var_se`` is the delta-method SE from lmerTest's
        covariance of :math:`(\theta, \sigma)`. ``status`` is "boundary" when any
        variance is 0, and ``note`` names the factor: estimated as 0, or fixed at
        0 because the factor has one level, or no level observed twice, on the
        feature's rows.

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S (2015) Fitting linear mixed-effects
    models using lme4. J Stat Softw 67(1). Kuznetsova A, Brockhoff PB,
    Christensen RHB (2017) lmerTest package: tests in linear mixed effects models.
    J Stat Softw 82(13).
    """
    if not isinstance(groups, pd.DataFrame) or groups.shape[1] == 1:
        one = groups.iloc[:, 0] if isinstance(groups, pd.DataFrame) else groups
        res = fit_random_intercept(values, exog, np.asarray(one), confidence, chunk_size,
                                   df_method, drop_inestimable)
        if isinstance(groups, pd.DataFrame):
            res.fits[f"var_{groups.columns[0]}"] = res.fits["group_var"]
        return res
    if df_method not in ("satterthwaite", "z"):
        raise ValueError("with several grouping factors df_method must be 'satterthwaite' or "
                         f"'z', not {df_method!r}")
    Y_all, feature_ids, X, term_array = _arrays(values, exog)
    fac = _factors(groups.reset_index(drop=True))
    p = X.shape[1]
    intercept = (X == 1.0).all(axis=0)
    W = np.hstack([X[fac.order], fac.Z])
    coef_parts, fit_parts = [], []
    for begin in range(0, Y_all.shape[1], chunk_size):
        ids = feature_ids[begin:begin + chunk_size]
        st = _sufficient_statistics(Y_all[fac.order, begin:begin + chunk_size], W, fac.starts)
        part, keep, why, patterns, inverse = _fit_multi_chunk(st, p, fac, intercept, confidence,
                                                              df_method, drop_inestimable)
        coef_parts.append(_coefficient_rows(ids, keep & ~part["failed"][:, None], part["res"],
                                            term_array))
        dropped, reasons = _drop_reasons(_reduce(st, np.arange(ids.size), np.arange(p)), keep,
                                         why, term_array, intercept)
        fit_parts.append(_multi_fits_table(ids, st, part, fac, _fitted_names(
            patterns, inverse, term_array), dropped, reasons))
    return _result(coef_parts, fit_parts)


def _fit_multi_chunk(st: dict, p: int, fac: _Factors, intercept: np.ndarray, confidence: float,
                     df_method: str, drop_inestimable: bool):
    """Fit a chunk of features, one vectorised fit per set of kept fixed-effect columns."""
    F = st["n_obs"].size
    r = len(fac.names)
    if drop_inestimable:
        keep, why = estimable_columns(st["XtX"][:, :p, :p], intercept)
    else:
        keep, why = np.ones((F, p), dtype=bool), np.full((F, p), _KEPT)
    levels, repeated, frozen, factor_note = _factor_support(st, p, fac)
    patterns, inverse = np.unique(keep, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    q = st["XtX"].shape[1] - p
    res = {key: np.full((F, p), np.nan)
           for key in ("estimate", "se", "z", "df", "p", "ci_low", "ci_high")}
    part = dict(res=res, failed=np.zeros(F, dtype=bool), status=np.empty(F, dtype=object),
                note=np.empty(F, dtype=object), theta=np.full((F, r), np.nan),
                gv_se=np.full((F, r), np.nan), scale=np.full(F, np.nan),
                llf=np.full(F, np.nan), levels=levels, repeated=repeated)
    for g, pattern in enumerate(patterns):
        members = np.flatnonzero(inverse == g)
        cols = np.flatnonzero(pattern)
        sub = _reduce(st, members, np.r_[cols, p + np.arange(q)])
        one = _fit_multi_group(sub, cols.size, fac, frozen[members], confidence, df_method)
        for key in res:
            res[key][np.ix_(members, cols)] = one[key]
        for key in ("failed", "status", "theta", "gv_se", "scale", "llf"):
            part[key][members] = one[key]
        part["note"][members] = one["note"]
    sep = np.where((factor_note != "") & (part["note"] != ""), "; ", "")
    part["note"] = np.where(part["failed"], part["note"], factor_note + sep + part["note"])
    return part, keep, why, patterns, inverse


def _multi_fits_table(ids, st: dict, part: dict, fac: _Factors, fitted_names, dropped,
                      reasons) -> pd.DataFrame:
    """The fits table of :func:`fit_mixed` for a chunk (first user factor in gamma/group_var)."""
    first = fac.names.index(fac.user_order[0])
    gamma = part["theta"] ** 2
    variances = part["scale"][:, None] * gamma
    table = pd.DataFrame({
        "feature_id": ids, "status": part["status"], "n_obs": st["n_obs"],
        "n_groups": part["levels"][:, first], "n_repeated_groups": part["repeated"][:, first],
        "gamma": gamma[:, first], "group_var": variances[:, first],
        "group_var_se": part["gv_se"][:, first], "scale": part["scale"], "llf": part["llf"],
        "note": part["note"], "fitted_terms": fitted_names, "dropped_terms": dropped,
        "dropped_reasons": reasons})
    for name in fac.user_order:
        table[f"var_{name}"] = variances[:, fac.names.index(name)]
    return table
