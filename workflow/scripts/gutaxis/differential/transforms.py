"""Per-modality transforms applied before differential testing.

Each modality declares one transform in the config:

==========  ======================================  ===========================
name        for                                     a difference of 1 means
==========  ======================================  ===========================
``clr``     compositions (taxa, pathways)           ratio to the sample's geometric
                                                    mean changes by a factor e
``rclr``    sparse compositions                     as ``clr``, over non-zero parts
``log2``    intensities (metabolites, cells/uL)     the value doubles
``log2p1``  counts or densities with zeros          ``x + 1`` doubles (the value
            (tumour tissue, cells/mm^2)             doubles, for x >> 1)
``logit``   proportions (immune % of parent)        the odds change by a factor e
``none``    already on an additive scale            (no fold change)
==========  ======================================  ===========================

Every transform returns a :class:`TransformResult` whose ``description`` states
the pseudocount or clipping actually used, so result tables can say how the
numbers were made; ``log_base`` is the base in which a difference on the
transformed scale becomes a multiplicative fold change on the original scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from skbio.stats.composition import clr as _skbio_clr
from skbio.stats.composition import rclr as _skbio_rclr

from gutaxis.io.errors import InputError, Problem, ProblemCollector

TRANSFORMS = ("clr", "rclr", "log2", "log2p1", "logit", "none")

# Base in which a difference on the transformed scale is a log fold change.
_LOG_BASE = {"clr": np.e, "rclr": np.e, "log2": 2.0, "log2p1": 2.0, "logit": np.e, "none": None}
_FOLD_CHANGE_KIND = {
    "clr": "ratio relative to the sample geometric mean",
    "rclr": "ratio relative to the geometric mean of non-zero parts",
    "log2": "ratio",
    "log2p1": "ratio of (value + 1)",
    "logit": "odds ratio",
    "none": "",
}


@dataclass(frozen=True)
class TransformResult:
    """A transformed feature table and how it was made.

    Attributes
    ----------
    values : pandas.DataFrame
        Samples x features on the transformed scale (NaN where undefined:
        zeros under ``rclr``, missing input under ``log2``/``logit``/``none``).
    name : str
        One of :data:`TRANSFORMS`.
    description : str
        One sentence naming the transform and its pseudocount / clipping.
    log_base : float or None
        ``fold_change = log_base ** difference``; None when no fold change exists.
    fold_change_kind : str
        What that fold change is (ratio, odds ratio, ...).
    parameters : dict
        The numbers used (``pseudocount``, ``epsilon``, ``n_clipped``...).
    """

    values: pd.DataFrame
    name: str
    description: str
    log_base: float | None
    fold_change_kind: str
    parameters: dict = field(default_factory=dict)


def _check_table(table: pd.DataFrame, file: str, allow_nan: bool, bounds=None) -> np.ndarray:
    """Validate a samples x features table at the edge; return its float values."""
    problems = ProblemCollector()
    try:
        values = table.to_numpy(dtype=float)
    except (TypeError, ValueError):
        bad = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
        problems.add(file, f"columns {bad[:5]}", "values are not numeric",
                     "write plain numbers (no units or text) in the feature table")
        problems.raise_if_any()
    if not allow_nan:
        nan_cols = table.columns[np.isnan(values).any(axis=0)]
        if len(nan_cols):
            problems.add(file, f"features {list(nan_cols[:5])}",
                         f"{len(nan_cols)} feature(s) have missing values",
                         "fill missing abundances with 0 for compositions, or use "
                         "transform 'rclr'")
    if np.isinf(values).any():
        inf_cols = table.columns[np.isinf(values).any(axis=0)]
        problems.add(file, f"features {list(inf_cols[:5])}", "values are infinite",
                     "replace infinite values before testing")
    if bounds is not None:
        lo, hi, what = bounds
        with np.errstate(invalid="ignore"):
            outside = (values < lo) | (values > hi)
        if outside.any():
            cols = table.columns[outside.any(axis=0)]
            problems.add(file, f"features {list(cols[:5])}",
                         f"{int(outside.sum())} value(s) outside [{lo}, {hi}]", what)
    problems.raise_if_any()
    return values


def _half_min_positive(values: np.ndarray) -> float:
    positive = values[np.isfinite(values) & (values > 0)]
    return 0.5 * float(positive.min()) if positive.size else 1.0


def clr_transform(table: pd.DataFrame, pseudocount: float | str = "half_min",
                  file: str = "feature table") -> TransformResult:
    r"""Centred log-ratio of compositions after adding a pseudocount.

    .. math:: \mathrm{clr}(x)_j = \ln(x_j + c) - \frac{1}{D}\sum_{k=1}^{D}\ln(x_k + c)

    Parameters
    ----------
    table : pandas.DataFrame
        Samples x features, non-negative, no missing values (fractions or counts;
        CLR is scale invariant so closure is not needed).
    pseudocount : float or "half_min"
        ``c`` above. ``"half_min"`` (default) uses half the smallest non-zero
        value of the whole table, a common choice that keeps the pseudocount
        below every observed abundance.
    file : str
        Name used in error messages.

    Returns
    -------
    TransformResult

    References
    ----------
    Aitchison, J. (1986). The Statistical Analysis of Compositional Data.
    Chapman & Hall. Computed with :func:`skbio.stats.composition.clr`.
    """
    values = _check_table(table, file, allow_nan=False,
                          bounds=(0, np.inf, "abundances must be non-negative"))
    c = _half_min_positive(values) if pseudocount == "half_min" else float(pseudocount)
    if not c > 0:
        raise InputError(Problem("config", "transform pseudocount", f"pseudocount {c} is not > 0",
                                 "set a positive pseudocount or 'half_min'"))
    out = _skbio_clr(values + c, axis=1, validate=False)
    how = "half the smallest non-zero value" if pseudocount == "half_min" else "set in the config"
    return TransformResult(
        pd.DataFrame(out, index=table.index, columns=table.columns), "clr",
        f"CLR (natural log) after adding pseudocount {c:.6g} ({how}) to every value",
        _LOG_BASE["clr"], _FOLD_CHANGE_KIND["clr"], {"pseudocount": c})


def rclr_transform(table: pd.DataFrame, file: str = "feature table") -> TransformResult:
    r"""Robust CLR: log-ratio to the geometric mean of the non-zero parts.

    .. math:: \mathrm{rclr}(x)_j = \ln x_j - \frac{1}{|S|}\sum_{k\in S}\ln x_k,
       \quad S = \{k: x_k > 0\}

    Zeros become NaN (missing), so later tests use only the samples where the
    feature was observed.

    References
    ----------
    Martino, C. et al. (2019). A novel sparse compositional technique reveals
    microbial perturbations. mSystems 4, e00016-19. Computed with
    :func:`skbio.stats.composition.rclr`.
    """
    values = _check_table(table, file, allow_nan=True,
                          bounds=(0, np.inf, "abundances must be non-negative"))
    out = _skbio_rclr(values, axis=1, validate=False)
    n_zero = int((values == 0).sum())
    return TransformResult(
        pd.DataFrame(out, index=table.index, columns=table.columns), "rclr",
        f"robust CLR (natural log over non-zero parts, no pseudocount; {n_zero} zeros "
        "treated as missing)", _LOG_BASE["rclr"], _FOLD_CHANGE_KIND["rclr"], {"n_zero": n_zero})


def log2_transform(table: pd.DataFrame, pseudocount: float = 0.0,
                   file: str = "feature table") -> TransformResult:
    r"""Base-2 logarithm of intensities, :math:`\log_2(x + c)`.

    Missing values stay missing. With ``pseudocount == 0`` every present value
    must be positive (impute zeros first, e.g. half-minimum in the metabolomics
    step).

    References
    ----------
    van den Berg, R. A. et al. (2006). Centering, scaling, and transformations:
    improving the biological information content of metabolomics data.
    BMC Genomics 7, 142.
    """
    values = _check_table(table, file, allow_nan=True,
                          bounds=(0, np.inf, "intensities must be non-negative"))
    c = float(pseudocount)
    if c <= 0:
        with np.errstate(invalid="ignore"):
            zero_cols = table.columns[(values == 0).any(axis=0)]
        if len(zero_cols):
            raise InputError(Problem(
                file, f"features {list(zero_cols[:5])}",
                f"{len(zero_cols)} feature(s) contain zeros, whose log2 is undefined",
                "impute zeros before testing or set a positive log2 pseudocount"))
    out = np.log2(values + c)
    text = "log2" + (f" after adding pseudocount {c:.6g}" if c > 0 else " (no pseudocount)")
    return TransformResult(pd.DataFrame(out, index=table.index, columns=table.columns),
                           "log2", text, _LOG_BASE["log2"], _FOLD_CHANGE_KIND["log2"],
                           {"pseudocount": c})


def log2p1_transform(table: pd.DataFrame, file: str = "feature table") -> TransformResult:
    r"""Base-2 logarithm after adding one unit, :math:`\log_2(x + 1)`.

    For non-negative counts or densities that contain exact zeros, such as cell densities
    of tumour biopsies (cells/mm^2): a marker absent from the counted area is a zero,
    not a missing value. The pseudocount is fixed at one unit of the table (1 cell/mm^2),
    not estimated from the data, so every module transforms a sample the same way
    whatever the other samples are (the integration and model modules transform each
    sample on its own). One cell per mm^2 lies near the detection floor of a biopsy
    (one cell in a counted area of a few mm^2 is 0.2-1 cell/mm^2), so zeros land just below
    the sparsest observed densities instead of far below them, as half the smallest
    positive value would put them. A difference ``d`` on this scale is a fold change
    :math:`2^d` of ``x + 1``, which equals the fold change of ``x`` to within 1 % for
    ``x`` above 100 and 10 % for ``x`` above 10. Missing values stay missing.

    Examples
    --------
    Densities 0, 1, 3 and 255 cells/mm^2 become 0, 1, 2 and 8.

    References
    ----------
    Bartlett, M. S. (1947). The use of transformations. Biometrics 3, 39-52 (log(x + 1)
    for counts with zeros). Galon, J. et al. (2006). Type, density, and location of immune
    cells within human colorectal tumors predict clinical outcome. Science 313, 1960-1964
    (cell densities per mm^2 of tumour, compared on the log scale).
    """
    values = _check_table(table, file, allow_nan=True,
                          bounds=(0, np.inf, "counts and densities must be non-negative"))
    out = np.log2(values + 1.0)
    return TransformResult(pd.DataFrame(out, index=table.index, columns=table.columns),
                           "log2p1", "log2(x + 1): log2 after adding 1 (one unit of the table, "
                           "e.g. 1 cell/mm^2) to every value", _LOG_BASE["log2p1"],
                           _FOLD_CHANGE_KIND["log2p1"], {"pseudocount": 1.0})


def logit_transform(table: pd.DataFrame, percent: bool = False,
                    epsilon: float | str = "half_min",
                    file: str = "feature table") -> TransformResult:
    r"""Logit of proportions after clipping to :math:`[\epsilon, 1-\epsilon]`.

    .. math:: \mathrm{logit}(p) = \ln\frac{p'}{1-p'},\quad
       p' = \min(\max(p, \epsilon), 1-\epsilon)

    Parameters
    ----------
    table : pandas.DataFrame
        Proportions of a parent population, in [0, 1] (or [0, 100] with
        ``percent=True``). Missing values stay missing.
    percent : bool
        Divide by 100 first (flow-cytometry "% of parent").
    epsilon : float or "half_min"
        Clipping bound. ``"half_min"`` (default) uses half the smallest value of
        ``p`` and ``1 - p`` that is strictly positive, so only exact 0 and 1
        are clipped and they land just beyond the most extreme observed value.
        The number of clipped values is reported in ``parameters``.

    References
    ----------
    Warton, D. I. & Hui, F. K. C. (2011). The arcsine is asinine: the analysis
    of proportions in ecology. Ecology 92, 3-10.
    """
    scale = 100.0 if percent else 1.0
    values = _check_table(table, file, allow_nan=True, bounds=(
        0, scale, f"proportions must lie in [0, {scale:g}]; set 'percent' to match the units"))
    p = values / scale
    if epsilon == "half_min":
        finite = p[np.isfinite(p)]
        candidates = np.concatenate([finite[finite > 0], 1 - finite[finite < 1]])
        eps = 0.5 * float(candidates.min()) if candidates.size else 0.5
    else:
        eps = float(epsilon)
    if not 0 < eps < 0.5:
        raise InputError(Problem("config", "logit epsilon", f"epsilon {eps} not in (0, 0.5)",
                                 "set epsilon between 0 and 0.5, e.g. 1e-4"))
    with np.errstate(invalid="ignore"):
        n_clipped = int(((p < eps) | (p > 1 - eps)).sum())
    clipped = np.clip(p, eps, 1 - eps)
    out = np.log(clipped) - np.log1p(-clipped)
    how = "half the smallest non-zero p or 1-p" if epsilon == "half_min" else "set in the config"
    return TransformResult(
        pd.DataFrame(out, index=table.index, columns=table.columns), "logit",
        f"logit (natural log odds) of proportions clipped to [{eps:.6g}, 1-{eps:.6g}] "
        f"({how}); {n_clipped} value(s) clipped", _LOG_BASE["logit"],
        _FOLD_CHANGE_KIND["logit"], {"epsilon": eps, "n_clipped": n_clipped, "percent": percent})


def identity_transform(table: pd.DataFrame, file: str = "feature table") -> TransformResult:
    """No transform: values are tested as given (missing values stay missing)."""
    values = _check_table(table, file, allow_nan=True)
    return TransformResult(pd.DataFrame(values, index=table.index, columns=table.columns),
                           "none", "no transform", None, "", {})


def as_processed_log2(result: TransformResult) -> TransformResult:
    """The untransformed values of a processed metabolome table, which are log2 intensities
    already (``metabolome.log2``): a difference d is a fold change of ``2 ** d``.

    Only the labels change (``name`` ``log2 (processed)``, ``log_base`` 2), so that result
    tables give ``fold_change`` on the original intensity scale and say which scale the
    effect is on.
    """
    return replace(result, name="log2 (processed)",
                   description="none: the processed metabolome values are log2 intensities "
                               "(metabolome.log2); fold change = 2^effect",
                   log_base=2.0, fold_change_kind="ratio")


def transform_table(table: pd.DataFrame, method: str, file: str = "feature table",
                    **options) -> TransformResult:
    """Apply the transform named in the config.

    Parameters
    ----------
    table : pandas.DataFrame
        Samples x features on the original scale.
    method : {"clr", "rclr", "log2", "log2p1", "logit", "none"}
    file : str
        Name used in error messages.
    **options
        Passed on: ``pseudocount`` (clr, log2), ``percent`` and ``epsilon`` (logit).

    Returns
    -------
    TransformResult
    """
    functions = {"clr": clr_transform, "rclr": rclr_transform, "log2": log2_transform,
                 "log2p1": log2p1_transform, "logit": logit_transform, "none": identity_transform}
    if method not in functions:
        raise InputError(Problem("config", "transform", f"unknown transform {method!r}",
                                 f"use one of {', '.join(TRANSFORMS)}"))
    return functions[method](table, file=file, **options)


def arcsine_sqrt_transform(table: pd.DataFrame, file: str = "feature table") -> TransformResult:
    r"""Arcsine square root of proportions, :math:`\operatorname{sign}(x)\arcsin\sqrt{|x|}`.

    The variance-stabilising transform of a binomial proportion, MaAsLin 2's ``AST``
    (used with TSS-normalised relative abundances). Values must lie in [0, 1];
    missing values stay missing. A difference is in radians: there is no fold change.

    References
    ----------
    Mallick H, Rahnavard A, McIver LJ et al. (2021) Multivariable association discovery in
    population-scale meta-omics studies. PLoS Comput Biol 17:e1009442 (MaAsLin 2).
    """
    values = _check_table(table, file, allow_nan=True,
                          bounds=(0, 1, "the arcsine square root needs proportions in [0, 1]: "
                                        "normalise by total sum (TSS) first"))
    out = np.arcsin(np.sqrt(values))
    return TransformResult(pd.DataFrame(out, index=table.index, columns=table.columns),
                           "ast", "arcsine square root of the proportions (MaAsLin 2 AST)",
                           None, "", {})


def log2_half_minimum_transform(table: pd.DataFrame, file: str = "feature table") -> TransformResult:
    r"""Base-2 logarithm with each feature's zeros replaced by half its smallest non-zero value.

    .. math:: y_{ij} = \log_2 x_{ij}\ (x_{ij} > 0),\qquad
       y_{ij} = \log_2\big(\tfrac12 \min_{k: x_{kj} > 0} x_{kj}\big)\ (x_{ij} = 0),

    MaAsLin 2's ``LOG``. A feature with no positive value stays missing. Missing
    values stay missing; a difference of 1 is a doubling.

    References
    ----------
    Mallick H et al. (2021) PLoS Comput Biol 17:e1009442 (MaAsLin 2).
    """
    values = _check_table(table, file, allow_nan=True,
                          bounds=(0, np.inf, "abundances must be non-negative"))
    with np.errstate(invalid="ignore"):
        positive = np.where(values > 0, values, np.nan)
    all_zero = np.isnan(positive).all(axis=0)
    half = 0.5 * np.nanmin(np.where(all_zero[None, :], 1.0, positive), axis=0)
    half = np.where(all_zero, np.nan, half)
    with np.errstate(invalid="ignore"):
        filled = np.where(values == 0, half[None, :], values)
    out = np.log2(filled)
    return TransformResult(pd.DataFrame(out, index=table.index, columns=table.columns),
                           "log2", "log2, zeros replaced by half the feature's smallest non-zero "
                                   "value (MaAsLin 2 LOG)", 2.0, "ratio",
                           {"n_zeros_replaced": int(np.nansum(values == 0))})
