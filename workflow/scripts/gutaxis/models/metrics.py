"""Performance of out-of-fold predicted probabilities: AUROC (with DeLong CI), AUPRC,
balanced accuracy, Brier score, ROC curves on a common grid and calibration bins.

All functions take the true labels as 0/1 (1 = responder) and predicted
probabilities of class 1; they are vectorised where a permutation test needs it
(:func:`auroc` scores many columns at once).

References
----------
Hanley JA, McNeil BJ (1982) The meaning and use of the area under a receiver operating
characteristic (ROC) curve. Radiology 143:29-36.
DeLong ER, DeLong DM, Clarke-Pearson DL (1988) Comparing the areas under two or more
correlated receiver operating characteristic curves: a nonparametric approach.
Biometrics 44:837-845.
Sun X, Xu W (2014) Fast implementation of DeLong's algorithm. IEEE Signal Process Lett
21:1389-1393.
Brier GW (1950) Verification of forecasts expressed in terms of probability. Mon Weather
Rev 78:1-3.
Wilson EB (1927) Probable inference. JASA 22:209-212.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import average_precision_score, roc_curve

REPEAT_METRICS = ("auroc", "auprc", "balanced_accuracy", "brier")


def _labels(y) -> np.ndarray:
    y = np.asarray(y).ravel()
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 (non-responder) or 1 (responder)")
    return y.astype(int)


def _midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-D array with ties given their average rank (as scipy's rankdata)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]


def auroc(y, score) -> float | np.ndarray:
    r"""Area under the ROC curve as the Mann-Whitney probability.

    .. math::

        \mathrm{AUROC} = \frac{\sum_{i: y_i = 1} R_i - n_1 (n_1 + 1)/2}{n_1 n_0}
        = P(S_1 > S_0) + \tfrac12 P(S_1 = S_0)

    with :math:`R_i` the mid-rank of score :math:`i` among all scores.

    Parameters
    ----------
    y : array_like of {0, 1}, shape (n,)
    score : array_like, shape (n,) or (n, m)
        Scores; each column of a 2-D array is scored separately.

    Returns
    -------
    float or ndarray of shape (m,)
        NaN when a class is absent.
    """
    y = _labels(y)
    score = np.asarray(score, dtype=float)
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return np.nan if score.ndim == 1 else np.full(score.shape[1], np.nan)
    # the 1-D case is the inner search's hot path: skip scipy's generic machinery
    ranks = _midranks(score) if score.ndim == 1 else stats.rankdata(score, axis=0)
    positive = ranks[y == 1].sum(axis=0)
    return (positive - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def delong_interval(y, score, conf_level: float = 0.95) -> tuple[float, float, float, float]:
    r"""AUROC with DeLong's standard error and a Wald interval, clipped to [0, 1].

    With placement values :math:`V_{10}(x_i) = \frac1{n_0}\sum_j \psi(x_i, y_j)` of the
    positives and :math:`V_{01}(y_j) = \frac1{n_1}\sum_i \psi(x_i, y_j)` of the
    negatives (:math:`\psi` = 1, 1/2, 0 for >, =, <),
    :math:`\widehat{Var} = s^2_{10}/n_1 + s^2_{01}/n_0` (DeLong et al. 1988),
    computed from mid-ranks (Sun & Xu 2014).

    Returns
    -------
    (auroc, se, ci_low, ci_high)
    """
    y = _labels(y)
    score = np.asarray(score, dtype=float).ravel()
    pos, neg = score[y == 1], score[y == 0]
    n1, n0 = pos.size, neg.size
    if n1 < 2 or n0 < 2:
        return float(auroc(y, score)), np.nan, np.nan, np.nan
    all_ranks = stats.rankdata(np.concatenate([pos, neg]))
    v10 = (all_ranks[:n1] - stats.rankdata(pos)) / n0
    v01 = 1.0 - (all_ranks[n1:] - stats.rankdata(neg)) / n1
    area = float(v10.mean())
    se = float(np.sqrt(v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0))
    z = stats.norm.ppf(0.5 + conf_level / 2)
    return area, se, float(max(0.0, area - z * se)), float(min(1.0, area + z * se))


def balanced_accuracy(y, probability, threshold: float = 0.5) -> float:
    """Mean of sensitivity and specificity of the call ``probability >= threshold``."""
    y = _labels(y)
    call = np.asarray(probability, dtype=float) >= threshold
    if y.all() or not y.any():
        return np.nan
    return float(0.5 * (call[y == 1].mean() + (~call[y == 0]).mean()))


def brier_score(y, probability) -> float:
    r"""Mean squared error of the probabilities, :math:`\frac1n\sum (p_i - y_i)^2` (Brier 1950)."""
    y = _labels(y)
    return float(np.mean((np.asarray(probability, dtype=float) - y) ** 2))


def repeat_metrics(y, probability) -> dict:
    """AUROC, AUPRC (average precision), balanced accuracy and Brier score of one repeat."""
    y = _labels(y)
    probability = np.asarray(probability, dtype=float)
    two_classes = 0 < y.sum() < y.size
    return {
        "auroc": float(auroc(y, probability)),
        "auprc": float(average_precision_score(y, probability)) if two_classes else np.nan,
        "balanced_accuracy": balanced_accuracy(y, probability),
        "brier": brier_score(y, probability),
    }


def summarise_repeats(values, conf_level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, SD and the central ``conf_level`` percentile interval of per-repeat values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan, np.nan, np.nan, np.nan
    tail = 100 * (1 - conf_level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    sd = float(values.std(ddof=1)) if values.size > 1 else np.nan
    return float(values.mean()), sd, float(low), float(high)


def roc_band(y_by_repeat, probability_by_repeat, grid_size: int = 101,
             conf_level: float = 0.95) -> pd.DataFrame:
    """ROC curves of several CV repeats on a common false-positive-rate grid.

    Each repeat's curve (all thresholds) is interpolated linearly at the grid;
    the table gives the mean true-positive rate and its central ``conf_level``
    percentile band across repeats (the variability due to the random fold split).

    Returns
    -------
    pandas.DataFrame
        ``fpr, tpr_mean, tpr_low, tpr_high, n_repeats``.
    """
    grid = np.linspace(0.0, 1.0, grid_size)
    curves = []
    for y, probability in zip(y_by_repeat, probability_by_repeat):
        y = _labels(y)
        if y.all() or not y.any():
            continue
        fpr, tpr, _ = roc_curve(y, probability)
        curve = np.interp(grid, fpr, tpr)
        curve[0] = 0.0
        curves.append(curve)
    if not curves:
        return pd.DataFrame({"fpr": grid, "tpr_mean": np.nan, "tpr_low": np.nan, "tpr_high": np.nan,
                             "n_repeats": 0})
    curves = np.vstack(curves)
    tail = 100 * (1 - conf_level) / 2
    low, high = np.percentile(curves, [tail, 100 - tail], axis=0)
    return pd.DataFrame({"fpr": grid, "tpr_mean": curves.mean(axis=0), "tpr_low": low,
                         "tpr_high": high, "n_repeats": len(curves)})


def wilson_interval(successes, n, conf_level: float = 0.95):
    """Wilson score interval of a binomial proportion (vectorised)."""
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = stats.norm.ppf(0.5 + conf_level / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def calibration_bins(y, probability, n_bins: int = 5, conf_level: float = 0.95) -> pd.DataFrame:
    """Observed responder fraction against the mean predicted probability in equal-count bins.

    Subjects are sorted by probability and cut into ``n_bins`` groups of (nearly)
    equal size; each bin reports its mean prediction, the observed fraction of
    responders and its Wilson interval.

    Returns
    -------
    pandas.DataFrame
        ``bin, n, mean_predicted, observed, observed_low, observed_high``.
    """
    y = _labels(y)
    probability = np.asarray(probability, dtype=float)
    order = np.argsort(probability, kind="stable")
    n_bins = max(1, min(int(n_bins), y.size))
    bin_of = np.empty(y.size, dtype=int)
    bin_of[order] = np.arange(y.size) * n_bins // max(y.size, 1)
    n = np.bincount(bin_of, minlength=n_bins)
    hits = np.bincount(bin_of, weights=y, minlength=n_bins)
    mean_p = np.bincount(bin_of, weights=probability, minlength=n_bins) / np.maximum(n, 1)
    low, high = wilson_interval(hits, n, conf_level)
    return pd.DataFrame({"bin": np.arange(1, n_bins + 1), "n": n, "mean_predicted": mean_p,
                         "observed": hits / np.maximum(n, 1), "observed_low": low,
                         "observed_high": high})
