"""Time-to-event endpoints: Kaplan-Meier curves, medians, landmark survival, log-rank test, Cox PH.

Conventions (and how they relate to R's ``survival`` package, which the tests cross-check):

* **Kaplan-Meier** :math:`\\hat S(t) = \\prod_{t_i \\le t} (1 - d_i / n_i)` over the distinct
  event times, with :math:`n_i` the number at risk just before :math:`t_i` (subjects with
  time :math:`\\ge t_i`; censoring tied with an event is at risk at the event, as in R).
* **Greenwood variance** :math:`\\widehat{Var}[\\log \\hat S(t)] = \\sum_{t_i \\le t}
  d_i / (n_i (n_i - d_i))`.
* **Pointwise CI of S(t)** -- default ``conf_type="log-log"``:
  :math:`\\hat S^{\\exp(\\pm z\\, \\sigma / \\log \\hat S)}`, with :math:`\\sigma` the Greenwood
  SE of :math:`\\log \\hat S` (Kalbfleisch & Prentice 1980; Borgan & Liestol 1990). We chose
  log-log because it stays inside (0, 1), has better coverage than the log interval in
  small samples such as 48-patient trials, and is the default of SAS PROC LIFETEST that most
  oncology reports quote. **R's survfit default is conf.type="log"**
  (:math:`\\hat S \\exp(\\pm z \\sigma)`, upper limit cut at 1); pass ``conf_type="log"`` to
  reproduce it, ``"plain"`` for :math:`\\hat S \\pm z \\hat S \\sigma`. Both are tested against R.
  The limits are undefined (NaN) where :math:`\\hat S = 0`; where :math:`\\hat S = 1` they are
  (1, 1) (R leaves them NA under log-log).
* **Median and its CI** as R's survfit table (``print(fit)``, ``summary(fit)$table``): the
  median is the first time the curve reaches 0.5 or less (the midpoint up to the next drop
  when the curve sits exactly at 0.5); its CI (Brookmeyer & Crowley 1982, in the
  curve-inversion form R uses) runs from the first time the *lower* pointwise limit
  reaches 0.5 to the first time the *upper* limit does. A limit the data never reach is NaN
  ("not reached"). (R's ``quantile.survfit`` differs only for a curve that *ends* exactly
  at 0.5, where it averages with the last follow-up time.)
* **Landmark survival** :math:`\\hat S(t)` with its pointwise CI; NaN beyond the last
  follow-up time unless the curve already reached 0. **Number at risk** at time t is
  #{time >= t}.
* **Log-rank test** for k groups: :math:`U = O - E`, hypergeometric covariance,
  :math:`\\chi^2 = U^\\top V^{-} U` on (number of groups with E > 0) - 1 df, as R's ``survdiff``
  (Mantel 1966; Peto & Peto 1972).
* **Cox PH** through statsmodels ``PHReg`` (Efron ties by default, as R's ``coxph``; PHReg's
  own default would be Breslow) with the proportional-hazards tests of R's ``cox.zph``
  (survival >= 3.0): score tests of :math:`\beta_j(t) = \beta_j + \theta_j g(t)` per
  covariate and GLOBAL, with the fit's tie method, ``g`` = km (default), rank or identity,
  and the scaled Schoenfeld residuals (Grambsch & Therneau 1994); see :func:`cox_zph`.

References
----------
Kaplan EL, Meier P (1958) JASA 53:457-481.
Greenwood M (1926) The natural duration of cancer. Rep Public Health Med Subj 33:1-26.
Kalbfleisch JD, Prentice RL (1980) The Statistical Analysis of Failure Time Data. Wiley.
Borgan O, Liestol K (1990) Scand J Stat 17:35-41.
Brookmeyer R, Crowley J (1982) A confidence interval for the median survival time.
Biometrics 38:29-41.
Mantel N (1966) Cancer Chemother Rep 50:163-170.
Grambsch PM, Therneau TM (1994) Biometrika 81:515-526.
Therneau TM, Grambsch PM (2000) Modeling Survival Data: Extending the Cox Model. Springer.
Therneau T (2024) A Package for Survival Analysis in R (``survival``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from gutaxis.clinical.checks import DEFAULT_SUBJECTS_FILE, SURVIVAL_ENDPOINTS, require_valid_subjects
from gutaxis.clinical.response import OVERALL, group_order, subject_groups

CONF_TYPES: tuple[str, ...] = ("log-log", "log", "plain")
KM_COLUMNS = ["time", "n_risk", "n_event", "n_censor", "survival", "std_err", "ci_low", "ci_high"]
SUMMARY_COLUMNS = ["quantity", "time", "estimate", "ci_low", "ci_high"]
SURVIVAL_TABLE_COLUMNS = [
    "endpoint", "group_var", "group", "quantity", "time", "estimate", "ci_low", "ci_high",
    "df", "p_value", "conf_type", "conf_level",
]
_TOL = float(np.sqrt(np.finfo(float).eps))  # R's tolerance in survmean


# --------------------------------------------------------------------------- input


def _as_time_event(time, event) -> tuple[np.ndarray, np.ndarray]:
    time = np.asarray(time, dtype=float).ravel()
    event = np.asarray(event, dtype=float).ravel()
    if time.shape != event.shape:
        raise ValueError(f"time and event differ in length ({time.size} vs {event.size})")
    if not np.all(np.isfinite(time)) or np.any(time < 0):
        raise ValueError("times must be finite and >= 0; validate the subjects table first")
    if not np.all(np.isin(event, (0.0, 1.0))):
        raise ValueError("event flags must be 0 (censored) or 1 (event); validate the subjects table first")
    return time, event.astype(int)


def _z(conf_level: float) -> float:
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must lie in (0, 1), got {conf_level}")
    return float(stats.norm.ppf(1 - (1 - conf_level) / 2))


# --------------------------------------------------------------------------- Kaplan-Meier


def _km_steps(time: np.ndarray, event: np.ndarray):
    """Distinct times with risk set, events, censorings, S and Greenwood sum (no time-0 row)."""
    times, inverse = np.unique(time, return_inverse=True)
    n_event = np.bincount(inverse, weights=event, minlength=times.size).astype(int)
    n_all = np.bincount(inverse, minlength=times.size)
    n_risk = time.size - np.concatenate([[0], np.cumsum(n_all)[:-1]])
    n_censor = n_all - n_event
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - n_event / n_risk)
        # terms with d = n make S = 0 and the variance infinite
        greenwood = np.cumsum(np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0))
    return times, n_risk, n_event, n_censor, surv, greenwood


def _confidence_band(surv: np.ndarray, greenwood: np.ndarray, z: float, conf_type: str):
    """Pointwise limits of S(t) as R's survfit_confint (see the module docstring)."""
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")
    se_log = np.sqrt(greenwood)  # SE of log S
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = z * se_log * surv
            low, high = np.maximum(surv - half, 0.0), np.minimum(surv + half, 1.0)
        elif conf_type == "log":
            low, high = surv * np.exp(-z * se_log), np.minimum(surv * np.exp(z * se_log), 1.0)
        else:
            log_s = np.log(surv)
            shift = z * se_log / log_s
            low = np.exp(-np.exp(np.log(-log_s) - shift))
            high = np.exp(-np.exp(np.log(-log_s) + shift))
    undefined = (surv <= 0) | ~np.isfinite(greenwood)
    low[undefined] = np.nan
    high[undefined] = np.nan
    one = surv >= 1
    low[one] = 1.0
    high[one] = 1.0
    return low, high


def kaplan_meier(time, event, conf_level: float = 0.95, conf_type: str = "log-log") -> pd.DataFrame:
    """Kaplan-Meier curve with Greenwood standard errors and pointwise confidence limits.

    .. math::

        \\hat S(t) = \\prod_{t_i \\le t} \\Big(1 - \\frac{d_i}{n_i}\\Big), \\qquad
        \\widehat{SE}[\\hat S(t)] = \\hat S(t) \\sqrt{\\sum_{t_i \\le t} \\frac{d_i}{n_i (n_i - d_i)}}

    Parameters
    ----------
    time : array_like of float
        Follow-up times (>= 0).
    event : array_like of {0, 1}
        1 = event observed, 0 = censored.
    conf_level : float
        Confidence level of the pointwise limits.
    conf_type : {"log-log", "log", "plain"}
        Transformation of the limits (module docstring; R's default is "log").

    Returns
    -------
    pandas.DataFrame
        Columns :data:`KM_COLUMNS`: one row per distinct time (events and censorings, for
        censor marks), preceded by a time-0 row (``survival = 1``) unless a subject has time 0.
        ``std_err`` is the Greenwood SE of S(t).

    References
    ----------
    Kaplan EL, Meier P (1958) JASA 53:457-481; Greenwood M (1926).
    """
    time, event = _as_time_event(time, event)
    if time.size == 0:
        return pd.DataFrame(columns=KM_COLUMNS)
    times, n_risk, n_event, n_censor, surv, greenwood = _km_steps(time, event)
    low, high = _confidence_band(surv, greenwood, _z(conf_level), conf_type)
    with np.errstate(invalid="ignore"):
        std_err = np.where(np.isfinite(greenwood), surv * np.sqrt(greenwood), np.nan)
    curve = pd.DataFrame({"time": times, "n_risk": n_risk, "n_event": n_event, "n_censor": n_censor,
                          "survival": surv, "std_err": std_err, "ci_low": low, "ci_high": high})
    if times[0] > 0:
        start = pd.DataFrame({"time": [0.0], "n_risk": [time.size], "n_event": [0], "n_censor": [0],
                              "survival": [1.0], "std_err": [0.0], "ci_low": [1.0], "ci_high": [1.0]})
        curve = pd.concat([start, curve], ignore_index=True)
    return curve[KM_COLUMNS]


def _median_time(times: np.ndarray, curve: np.ndarray, tol: float = _TOL) -> float:
    """First time ``curve`` is at or below 0.5, as R's survfit table (``survival:::survmean``).

    ``times`` are all distinct follow-up times and ``curve`` is S(t) or one of its limits
    (NaN where undefined, ignored). When the curve sits exactly at 0.5 and drops later, the
    midpoint of the two times is returned. (``quantile.survfit`` differs only when a curve
    ends exactly at 0.5: it then returns the midpoint with the last follow-up time.)
    """
    keep = ~np.isnan(curve) & (curve < 0.5 + tol)
    if not keep.any():
        return np.nan
    x, y = times[keep], curve[keep]
    lower = np.flatnonzero(y < y[0])
    if abs(y[0] - 0.5) < tol and lower.size:
        return float((x[0] + x[lower[0]]) / 2)
    return float(x[0])


def km_summary(
    time,
    event,
    landmarks: Iterable[float] = (),
    conf_level: float = 0.95,
    conf_type: str = "log-log",
) -> pd.DataFrame:
    """Median survival with CI, survival and number at risk at landmark times.

    Parameters
    ----------
    time, event, conf_level, conf_type
        As in :func:`kaplan_meier`.
    landmarks : iterable of float
        Times (same unit as ``time``, e.g. months) at which to report S(t) and the number
        at risk.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS`, rows in this order: ``n``, ``n_events``,
        ``median`` (CI per Brookmeyer-Crowley as R's survfit; NaN = not reached), then for
        each landmark ``survival`` (time = landmark, with CI) and ``n_at_risk``.
    """
    time, event = _as_time_event(time, event)
    z = _z(conf_level)
    rows = [("n", np.nan, float(time.size), np.nan, np.nan),
            ("n_events", np.nan, float(event.sum()), np.nan, np.nan)]
    if time.size == 0:
        rows.append(("median", np.nan, np.nan, np.nan, np.nan))
        for landmark in landmarks:
            rows += [("survival", float(landmark), np.nan, np.nan, np.nan),
                     ("n_at_risk", float(landmark), 0.0, np.nan, np.nan)]
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    times, _, _, _, surv, greenwood = _km_steps(time, event)
    low, high = _confidence_band(surv, greenwood, z, conf_type)
    rows.append(("median", np.nan, _median_time(times, surv), _median_time(times, low),
                 _median_time(times, high)))
    for landmark in landmarks:
        landmark = float(landmark)
        i = np.searchsorted(times, landmark, side="right") - 1
        if i < 0:
            estimate, ci = 1.0, (1.0, 1.0)
        elif landmark > times[-1] and surv[-1] > 0:
            estimate, ci = np.nan, (np.nan, np.nan)  # beyond follow-up: not estimable
        else:
            estimate, ci = float(surv[i]), (float(low[i]), float(high[i]))
        rows.append(("survival", landmark, estimate, *ci))
        rows.append(("n_at_risk", landmark, float(np.sum(time >= landmark)), np.nan, np.nan))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# --------------------------------------------------------------------------- log-rank


class LogrankResult(NamedTuple):
    """Result of :func:`logrank_test`."""

    statistic: float
    df: int
    p_value: float
    table: pd.DataFrame  # group, n, observed, expected


def logrank_test(time, event, group) -> LogrankResult:
    """k-sample log-rank (Mantel-Haenszel) test.

    At each distinct event time :math:`t` with :math:`n_t` at risk (:math:`n_{jt}` in group
    j) and :math:`d_t` events,

    .. math::

        E_j = \\sum_t d_t \\frac{n_{jt}}{n_t}, \\qquad
        V_{jl} = \\sum_t \\frac{d_t (n_t - d_t)}{n_t - 1} \\frac{n_{jt}}{n_t}
                 \\Big(\\delta_{jl} - \\frac{n_{lt}}{n_t}\\Big), \\qquad
        \\chi^2 = (O - E)_{-1}^\\top V_{-1,-1}^{-1} (O - E)_{-1}

    over the groups with :math:`E_j > 0`, dropping one of them (R's ``survdiff``), on
    (that number - 1) degrees of freedom.

    Parameters
    ----------
    time, event : array_like
        As in :func:`kaplan_meier`.
    group : array_like
        Group label of each subject.

    Returns
    -------
    LogrankResult
        ``statistic``, ``df``, ``p_value`` (NaN with df 0 when fewer than two groups have
        expected events) and ``table`` (group, n, observed, expected; groups sorted).

    References
    ----------
    Mantel N (1966) Cancer Chemother Rep 50:163-170; Peto R, Peto J (1972) JRSS A 135:185-207.
    """
    time, event = _as_time_event(time, event)
    group = np.asarray(group, dtype=object).ravel()
    if group.size != time.size:
        raise ValueError("group differs in length from time")
    labels, codes = np.unique(group.astype(str), return_inverse=True)
    event_times = np.unique(time[event == 1])
    k = labels.size
    # n_risk[t, j]: subjects of group j with time >= t; deaths[t, j] likewise for events at t
    n_risk = np.empty((event_times.size, k))
    deaths = np.zeros((event_times.size, k))
    for j in range(k):
        times_j = np.sort(time[codes == j])
        n_risk[:, j] = times_j.size - np.searchsorted(times_j, event_times, side="left")
        event_times_j = time[(codes == j) & (event == 1)]
        deaths[:, j] = np.bincount(np.searchsorted(event_times, event_times_j), minlength=event_times.size)
    n_t = n_risk.sum(axis=1)
    d_t = deaths.sum(axis=1)
    share = n_risk / n_t[:, None]
    observed = deaths.sum(axis=0)
    expected = (d_t[:, None] * share).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(n_t > 1, d_t * (n_t - d_t) / (n_t - 1), 0.0)
    variance = np.diag((factor[:, None] * share).sum(axis=0)) - (factor[:, None] * share).T @ share
    table = pd.DataFrame({"group": labels, "n": np.bincount(codes, minlength=k),
                          "observed": observed, "expected": expected})
    used = np.flatnonzero(expected > 0)
    if used.size < 2:
        return LogrankResult(np.nan, 0, np.nan, table)
    diff = (observed - expected)[used][1:]
    sub = variance[np.ix_(used, used)][1:, 1:]
    statistic = float(diff @ np.linalg.solve(sub, diff))
    df = int(used.size - 1)
    return LogrankResult(statistic, df, float(stats.chi2.sf(statistic, df)), table)


# --------------------------------------------------------------------------- tables from subjects


def _endpoint_frames(subjects, endpoints, by, file):
    endpoints = dict(SURVIVAL_ENDPOINTS if endpoints is None else endpoints)
    by_columns = [] if by is None else ([by] if isinstance(by, str) else list(by))
    require_valid_subjects(subjects, file, endpoints=endpoints, group_columns=by_columns, check_recorded=False)
    groupings = [(OVERALL[0], pd.Series(OVERALL[1], index=subjects.index), [OVERALL[1]])]
    if by_columns:
        group_var, labels = subject_groups(subjects, by_columns)
        groupings.append((group_var, labels, group_order(subjects, by_columns, labels)))
    return endpoints, groupings


def _endpoint_groupings(subjects, endpoints, groupings):
    """(endpoint, times, events, group_var, labels, order) of every endpoint and grouping."""
    for name, (time_column, event_column) in endpoints.items():
        time = pd.to_numeric(subjects[time_column]).to_numpy(dtype=float)
        event = pd.to_numeric(subjects[event_column]).to_numpy(dtype=float)
        for group_var, labels, order in groupings:
            yield name, time, event, group_var, labels, order


def _by_group(table_of, time, event, labels, order, endpoint, group_var) -> list[pd.DataFrame]:
    """``table_of(times, events)`` of each group's subjects, headed by endpoint, group_var and group."""
    pieces = []
    for group in order:
        mask = (labels == group).to_numpy()
        piece = table_of(time[mask], event[mask])
        piece.insert(0, "group", group)
        piece.insert(0, "group_var", group_var)
        piece.insert(0, "endpoint", endpoint)
        pieces.append(piece)
    return pieces


def survival_table(
    subjects: pd.DataFrame,
    endpoints: Mapping[str, tuple[str, str]] | None = None,
    by: Sequence[str] | str | None = "cohort",
    landmarks: Iterable[float] = (6, 12),
    conf_level: float = 0.95,
    conf_type: str = "log-log",
    *,
    file: str = DEFAULT_SUBJECTS_FILE,
) -> pd.DataFrame:
    """Kaplan-Meier summaries per endpoint, overall and per group, plus a log-rank row.

    Parameters
    ----------
    subjects : pandas.DataFrame
        Subjects table with ``subject_id``, the grouping columns and, per endpoint, a time
        and an event column.
    endpoints : mapping, optional
        ``name -> (time column, event column)``; default ``{"PFS2": ("pfs2_months",
        "pfs2_event"), "OS": ("os_months", "os_event")}``.
    by : str, sequence of str or None
        Grouping for the per-group rows and the log-rank test (``None``: overall only).
    landmarks : iterable of float
        Landmark times (months) for S(t) and the number at risk.
    conf_level, conf_type
        As in :func:`kaplan_meier`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SURVIVAL_TABLE_COLUMNS`. Per endpoint: the :func:`km_summary` rows of
        the overall group (``group_var = "overall"``, ``group = "all"``), then of each group,
        then one ``quantity = "logrank_chisq"`` row (``group = "all"``, ``estimate`` = the
        chi-square, ``df``, ``p_value``) followed by ``expected_events`` rows per group.

    Raises
    ------
    gutaxis.io.errors.InputError
        Negative or missing times, event flags other than 0/1, missing columns.
    """
    landmarks = [float(x) for x in landmarks]
    endpoints, groupings = _endpoint_frames(subjects, endpoints, by, file)
    pieces = []
    for name, time, event, group_var, labels, order in _endpoint_groupings(subjects, endpoints, groupings):
        pieces += _by_group(lambda t, e: km_summary(t, e, landmarks, conf_level, conf_type), time, event, labels,
                            order, name, group_var)
        if group_var == OVERALL[0]:
            continue
        test = logrank_test(time, event, labels.to_numpy())
        expected = test.table.set_index("group").reindex(order)["expected"]
        pieces.append(pd.DataFrame({
            "endpoint": name, "group_var": group_var,
            "group": [OVERALL[1], *order],
            "quantity": ["logrank_chisq"] + ["expected_events"] * len(order),
            "time": np.nan,
            "estimate": [test.statistic, *expected.to_numpy()],
            "df": [test.df] + [np.nan] * len(order),
            "p_value": [test.p_value] + [np.nan] * len(order),
        }))
    table = pd.concat(pieces, ignore_index=True)
    table["conf_type"] = conf_type
    table["conf_level"] = conf_level
    return table.reindex(columns=SURVIVAL_TABLE_COLUMNS)


def survival_curves(
    subjects: pd.DataFrame,
    endpoints: Mapping[str, tuple[str, str]] | None = None,
    by: Sequence[str] | str | None = "cohort",
    conf_level: float = 0.95,
    conf_type: str = "log-log",
    *,
    file: str = DEFAULT_SUBJECTS_FILE,
) -> pd.DataFrame:
    """Kaplan-Meier curve tables for plotting, overall and per group, stacked.

    Returns
    -------
    pandas.DataFrame
        Columns ``endpoint, group_var, group`` + :data:`KM_COLUMNS`.
    """
    endpoints, groupings = _endpoint_frames(subjects, endpoints, by, file)
    pieces = []
    for name, time, event, group_var, labels, order in _endpoint_groupings(subjects, endpoints, groupings):
        pieces += _by_group(lambda t, e: kaplan_meier(t, e, conf_level, conf_type), time, event, labels, order,
                            name, group_var)
    return pd.concat(pieces, ignore_index=True)


# --------------------------------------------------------------------------- Cox PH


COX_COLUMNS = [
    "term", "coef", "se", "hr", "hr_ci_low", "hr_ci_high", "p_value", "n", "n_events", "ties",
    "ph_rho", "ph_chisq", "ph_p_value", "ph_global_chisq", "ph_global_df", "ph_global_p",
    "ph_time_transform",
]
COX_TIES: tuple[str, ...] = ("efron", "breslow")
PH_TIME_TRANSFORMS: tuple[str, ...] = ("km", "rank", "identity")


def _time_transform(time: np.ndarray, event: np.ndarray, how: str) -> np.ndarray:
    """g(t) of every subject, as cox.zph: identity, rank (mid-ranks over all times) or km."""
    if how == "identity":
        return time.astype(float)
    if how == "rank":
        return stats.rankdata(time)
    if how == "km":
        # 1 - S(t-), the left-continuous pooled KM curve, as cox.zph's "km" transform
        times, _, _, _, surv, _ = _km_steps(time, event)
        before = np.concatenate([[1.0], surv[:-1]])
        return 1.0 - before[np.searchsorted(times, time)]
    raise ValueError(f"ph_time_transform must be one of {PH_TIME_TRANSFORMS}, got {how!r}")


class CoxZphResult(NamedTuple):
    """Result of :func:`cox_zph` (p covariates, d events)."""

    chisq: np.ndarray  # (p,) score statistic per covariate, 1 df each
    p_value: np.ndarray  # (p,)
    global_chisq: float  # joint test of all p covariates
    global_df: int  # p
    global_p: float
    rho: np.ndarray  # (p,) Pearson correlation of g(t) with the scaled residuals
    time: np.ndarray  # (d,) event times, ascending (ties in input order)
    transformed: np.ndarray  # (d,) g(t) at the event times (uncentred), cox.zph's ``x``
    scaled_residuals: np.ndarray  # (d, p) cox.zph's ``y``: beta + d * I^{-1} r_k
    schoenfeld: np.ndarray  # (d, p) unscaled Schoenfeld residuals r_k
    transform: str
    ties: str


def cox_zph(time, event, covariates, coef, ties: str = "efron", transform: str = "km") -> CoxZphResult:
    """Test of proportional hazards of a fitted Cox model, as R's ``survival::cox.zph``.

    For each covariate the model :math:`\\beta_j(t) = \\beta_j + \\theta_j\\, g(t)` is tested
    against :math:`\\theta_j = 0` with the score test at :math:`(\\hat\\beta, \\theta = 0)`
    (Grambsch & Therneau 1994; cox.zph of survival >= 3.0). With the event rows
    :math:`k = 1..d` sorted by time, risk-set means :math:`\\bar x_k` and covariances
    :math:`V_k` (Breslow: over the risk set :math:`R(t_k)`; Efron: the death at tie position
    :math:`\\ell` of :math:`m` tied deaths weighs the tied deaths by :math:`\\ell / m`, and the
    Schoenfeld residual subtracts the average of the :math:`m` Efron means), the
    Schoenfeld residual :math:`r_k = x_k - \\bar x_k` and :math:`\\tilde g_k = g(t_k) -
    \\overline{g(t)}_{\\text{events}}`,

    .. math::

        U = \\sum_k \\tilde g_k r_k, \\qquad
        \\mathcal I = \\sum_k \\begin{pmatrix} V_k & \\tilde g_k V_k \\\\
                                            \\tilde g_k V_k & \\tilde g_k^2 V_k \\end{pmatrix}, \\qquad
        \\chi^2_j = (0, U_j) \\, \\mathcal I_{[1..p,\\, p+j]}^{-1} (0, U_j)^\\top \\sim \\chi^2_1,

    and the GLOBAL test :math:`(0, U)\\, \\mathcal I^{-1} (0, U)^\\top \\sim \\chi^2_p`. The
    score of :math:`\\beta` is 0 at the maximum, but its block of :math:`\\mathcal I`
    accounts for :math:`\\hat\\beta` being estimated. The scaled Schoenfeld residuals
    (what cox.zph plots against :math:`g(t)`) are

    .. math::

        r^*_k = \\hat\\beta + d\\, \\mathcal I_{\\beta\\beta}^{-1} r_k,
        \\qquad E[r^*_{kj}] \\approx \\beta_j(t_k),

    and ``rho`` is their Pearson correlation with :math:`g(t_k)` (the ``rho`` column of
    cox.zph before survival 3.0; a sign and size, not the test).

    Parameters
    ----------
    time, event : array_like
        As in :func:`kaplan_meier` (one stratum, unit case weights).
    covariates : array_like, shape (n, p)
        Covariates of the fit, one row per subject.
    coef : array_like, shape (p,)
        Fitted coefficients :math:`\\hat\\beta` (from a fit with the same ``ties``).
    ties : {"efron", "breslow"}
        Tie method of the fit; the residuals and information use the same one, as cox.zph
        uses ``fit$method``.
    transform : {"km", "rank", "identity"}
        :math:`g`: ``"km"`` (cox.zph's default) :math:`1 - \\hat S(t-)` of the pooled
        Kaplan-Meier curve; ``"rank"`` mid-ranks of all follow-up times; ``"identity"`` t.

    Returns
    -------
    CoxZphResult
        NaN statistics when the information is singular (e.g. all events at one time).

    References
    ----------
    Grambsch PM, Therneau TM (1994) Proportional hazards tests and diagnostics based on
    weighted residuals. Biometrika 81:515-526.
    Therneau TM, Grambsch PM (2000) Modeling Survival Data: Extending the Cox Model.
    Springer, section 6.2.
    Therneau T (2024) survival: R/cox.zph.R and src/zph1.c (the algorithm followed here).
    """
    time, event = _as_time_event(time, event)
    X = np.asarray(covariates, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    beta = np.asarray(coef, dtype=float).ravel()
    if X.shape != (time.size, beta.size):
        raise ValueError(f"covariates must be (n, p) = ({time.size}, {beta.size}), got {X.shape}")
    if ties not in COX_TIES:
        raise ValueError(f"ties must be one of {COX_TIES}, got {ties!r}")
    if event.sum() == 0:
        raise ValueError("the PH test needs at least one event")
    g_all = _time_transform(time, event, transform)
    p = beta.size
    X = X - X.mean(axis=0)  # centring: less round-off, same statistics
    eta = X @ beta
    risk = np.exp(eta - eta.mean())

    order = np.argsort(time, kind="stable")
    t_sorted, x_sorted, r_sorted = time[order], X[order], risk[order]
    # risk-set sums S0, S1, S2 over {time >= t}: reverse cumulative sums from each time's first row
    outer = x_sorted[:, :, None] * x_sorted[:, None, :]
    cum0 = np.cumsum(r_sorted[::-1])[::-1]
    cum1 = np.cumsum((r_sorted[:, None] * x_sorted)[::-1], axis=0)[::-1]
    cum2 = np.cumsum((r_sorted[:, None, None] * outer)[::-1], axis=0)[::-1]

    dead = order[event[order] == 1]  # event rows by time, ties in input order (as R's order())
    d = dead.size
    t_dead = time[dead]
    first = np.searchsorted(t_sorted, t_dead, side="left")  # first row of the risk set
    tie_times, tie_id, tie_size = np.unique(t_dead, return_inverse=True, return_counts=True)
    position = np.arange(d) - np.searchsorted(t_dead, t_dead, side="left")  # 0..m-1 within a tie
    xd, rd = X[dead], risk[dead]
    n_ties = tie_times.size
    D0 = np.bincount(tie_id, weights=rd, minlength=n_ties)
    D1 = np.zeros((n_ties, p))
    np.add.at(D1, tie_id, rd[:, None] * xd)
    D2 = np.zeros((n_ties, p, p))
    np.add.at(D2, tie_id, rd[:, None, None] * xd[:, :, None] * xd[:, None, :])
    # Efron: the l-th of m tied deaths keeps the tied deaths at weight l/m (l = m..1);
    # Breslow keeps them all (weight 1)
    frac = (position + 1) / tie_size[tie_id] if ties == "efron" else np.ones(d)
    S0 = cum0[first] - D0[tie_id] * (1 - frac)
    S1 = cum1[first] - D1[tie_id] * (1 - frac)[:, None]
    S2 = cum2[first] - D2[tie_id] * (1 - frac)[:, None, None]
    mean = S1 / S0[:, None]
    V = S2 / S0[:, None, None] - mean[:, :, None] * mean[:, None, :]
    tie_mean = np.zeros((n_ties, p))
    np.add.at(tie_mean, tie_id, mean)
    schoenfeld = xd - (tie_mean / tie_size[:, None])[tie_id]

    g = g_all[dead]
    gc = g - g.mean()
    I11 = V.sum(axis=0)
    I12 = np.einsum("k,kij->ij", gc, V)
    I22 = np.einsum("k,kij->ij", gc**2, V)
    U = gc @ schoenfeld
    # with score (0, U), u' I^{-1} u = U' S^{-1} U for the Schur complement S = I22 - I21 I11^{-1} I12;
    # per covariate the complement of the (p+1) x (p+1) block is the scalar diag(S)_j
    chisq = np.full(p, np.nan)
    global_chisq = np.nan
    scaled = np.full((d, p), np.nan)
    rho = np.full(p, np.nan)
    try:
        schur = I22 - I12.T @ np.linalg.solve(I11, I12)
        scaled = beta + d * np.linalg.solve(I11, schoenfeld.T).T
        if d > 1 and np.ptp(g) > 0:
            chisq = U**2 / np.diag(schur)
            global_chisq = float(U @ np.linalg.solve(schur, U))
    except np.linalg.LinAlgError:
        pass
    if d > 2 and np.ptp(g) > 0:
        sc = scaled - scaled.mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = (gc @ sc) / np.sqrt((gc @ gc) * (sc**2).sum(axis=0))
    return CoxZphResult(
        chisq=chisq, p_value=stats.chi2.sf(chisq, 1), global_chisq=global_chisq, global_df=p,
        global_p=float(stats.chi2.sf(global_chisq, p)), rho=rho, time=t_dead, transformed=g,
        scaled_residuals=scaled, schoenfeld=schoenfeld, transform=transform, ties=ties,
    )


def cox_ph(
    time,
    event,
    covariates: pd.DataFrame,
    ties: str = "efron",
    conf_level: float = 0.95,
    ph_time_transform: str = "km",
) -> pd.DataFrame:
    """Cox proportional-hazards model (statsmodels ``PHReg``) with cox.zph's PH tests.

    :math:`h(t \\mid x) = h_0(t) \\exp(\\beta^\\top x)`, fitted by partial likelihood;
    HR = :math:`e^{\\beta}` with the Wald interval :math:`e^{\\beta \\pm z\\, SE}` and Wald p.
    Proportional hazards are checked as R's ``survival::cox.zph(fit, transform)`` does
    (:func:`cox_zph`: score tests of :math:`\\beta_j(t) = \\beta_j + \\theta_j g(t)`, per
    covariate and GLOBAL); a small p says the hazard ratio changes over time.

    Parameters
    ----------
    time, event : array_like
        As in :func:`kaplan_meier`.
    covariates : pandas.DataFrame
        Numeric covariates, one row per subject in the order of ``time`` (encode factors
        as 0/1 columns first); no missing values.
    ties : {"efron", "breslow"}
        Tie handling of the fit **and** of the PH test. Our default is Efron, as R's
        ``coxph``; statsmodels ``PHReg`` on its own defaults to Breslow, so it is passed
        explicitly. ``"breslow"`` reproduces R's ``coxph(..., ties = "breslow")`` followed
        by ``cox.zph``.
    conf_level : float
    ph_time_transform : {"km", "rank", "identity"}
        :math:`g(t)` of the PH test; ``"km"`` is cox.zph's default.

    Returns
    -------
    pandas.DataFrame
        One row per covariate, columns :data:`COX_COLUMNS`. The PH columns:

        * ``ph_chisq``, ``ph_p_value`` -- cox.zph's score test of that covariate (1 df);
        * ``ph_global_chisq``, ``ph_global_df``, ``ph_global_p`` -- cox.zph's GLOBAL test
          of all covariates jointly (the same on every row);
        * ``ph_rho`` -- Pearson correlation of the covariate's scaled Schoenfeld residuals
          with :math:`g(t)` at the event times (the slope's sign and strength that
          ``plot(cox.zph(fit))`` shows; not a test);
        * ``ph_time_transform`` -- the :math:`g` used.

        Before this version ``ph_p_value`` was the p of a Pearson correlation of the
        *unscaled* residuals with the rank of time; it was not cox.zph's test.

    References
    ----------
    Cox DR (1972) JRSS B 34:187-220; Efron B (1977) JASA 72:557-565;
    Grambsch PM, Therneau TM (1994) Biometrika 81:515-526;
    Therneau TM, Grambsch PM (2000) Modeling Survival Data: Extending the Cox Model. Springer.
    """
    from statsmodels.duration.hazard_regression import PHReg

    time, event = _as_time_event(time, event)
    if ties not in COX_TIES:
        raise ValueError(f"ties must be one of {COX_TIES}, got {ties!r}")
    if ph_time_transform not in PH_TIME_TRANSFORMS:
        raise ValueError(f"ph_time_transform must be one of {PH_TIME_TRANSFORMS}, got {ph_time_transform!r}")
    covariates = pd.DataFrame(covariates)
    if len(covariates) != time.size:
        raise ValueError("covariates must have one row per subject")
    values = covariates.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError("covariates must be numeric without missing values")
    if event.sum() == 0:
        raise ValueError("a Cox model needs at least one event")
    fit = PHReg(time, values, status=event, ties=ties).fit()
    z = _z(conf_level)
    coef = np.asarray(fit.params)
    se = np.asarray(fit.bse)
    p_value = 2 * stats.norm.sf(np.abs(coef / se))
    zph = cox_zph(time, event, values, coef, ties=ties, transform=ph_time_transform)
    return pd.DataFrame({
        "term": [str(c) for c in covariates.columns], "coef": coef, "se": se, "hr": np.exp(coef),
        "hr_ci_low": np.exp(coef - z * se), "hr_ci_high": np.exp(coef + z * se), "p_value": p_value,
        "n": time.size, "n_events": int(event.sum()), "ties": ties,
        "ph_rho": zph.rho, "ph_chisq": zph.chisq, "ph_p_value": zph.p_value,
        "ph_global_chisq": zph.global_chisq, "ph_global_df": zph.global_df, "ph_global_p": zph.global_p,
        "ph_time_transform": ph_time_transform,
    })[COX_COLUMNS]


__all__ = [
    "CONF_TYPES",
    "COX_COLUMNS",
    "COX_TIES",
    "CoxZphResult",
    "KM_COLUMNS",
    "LogrankResult",
    "PH_TIME_TRANSFORMS",
    "SUMMARY_COLUMNS",
    "SURVIVAL_TABLE_COLUMNS",
    "cox_ph",
    "cox_zph",
    "kaplan_meier",
    "km_summary",
    "logrank_test",
    "survival_curves",
    "survival_table",
]
