"""Assemble the clinical-endpoint result tables of the workflow from the checked sheets.

The statistics live in :mod:`gutaxis.clinical.response`, :mod:`gutaxis.clinical.survival` and
:mod:`gutaxis.clinical.safety`; each computes one grouping at a time. This module runs them over
the configured groupings (overall first, then e.g. cohort and dose group), stacks the
results with the whole-study rows once, and builds the table the Kaplan-Meier figure
reads: the curve steps (with their censorings, for the censor marks) and the number at
risk at the plotted time ticks, so the plot rule draws and computes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from gutaxis.clinical.response import OVERALL
from gutaxis.clinical.survival import KM_COLUMNS, survival_curves

#: columns of the Kaplan-Meier plot table (``results/clinical/km_curves.tsv``)
KM_PLOT_COLUMNS = ["endpoint", "group_var", "group", "record", *KM_COLUMNS]
#: candidate spacings of the at-risk ticks, in months
NICE_STEPS = (1, 2, 3, 4, 6, 12, 24, 36, 48, 60, 120)


def stack_groupings(
    table_of: Callable[..., pd.DataFrame],
    groupings: Mapping[str, Sequence[str]],
    order_by: str | None = None,
    **kwargs,
) -> pd.DataFrame:
    """Run ``table_of(by=columns, **kwargs)`` per grouping and keep the overall rows once.

    ``table_of`` is one of the per-grouping functions whose result always starts with
    the whole-study rows (``group_var = "overall"``): :func:`gutaxis.clinical.survival.survival_table`,
    :func:`gutaxis.clinical.survival.survival_curves`, :func:`gutaxis.clinical.safety.ae_incidence`,
    :func:`gutaxis.clinical.safety.ae_worst_grade`.

    Parameters
    ----------
    order_by : str, optional
        Column whose first-appearance order is restored after stacking (e.g.
        ``"endpoint"``, so that all PFS2 rows precede all OS rows).
    """
    if not groupings:
        return table_of(by=None, **kwargs)
    pieces = []
    for i, columns in enumerate(groupings.values()):
        table = table_of(by=list(columns), **kwargs)
        pieces.append(table if i == 0 else table[table["group_var"] != OVERALL[0]])
    stacked = pd.concat(pieces, ignore_index=True)
    if order_by is not None:
        rank = {value: i for i, value in enumerate(dict.fromkeys(stacked[order_by]))}
        stacked = stacked.iloc[np.argsort(stacked[order_by].map(rank).to_numpy(), kind="stable")]
    return stacked.reset_index(drop=True)


def tick_step(max_time: float, max_intervals: int = 8) -> float:
    """Smallest "nice" spacing (months) that covers ``[0, max_time]`` in at most ``max_intervals`` steps.

    Candidates are :data:`NICE_STEPS` (1, 2, 3, 4, 6, 12, ... months); beyond them the
    spacing is a multiple of 120 months.
    """
    if not np.isfinite(max_time) or max_time <= 0:
        return 1.0
    for step in NICE_STEPS:
        if max_time / step <= max_intervals:
            return float(step)
    return float(120 * np.ceil(max_time / (120 * max_intervals)))


def time_ticks(max_time: float, step: float = 0.0, max_intervals: int = 8) -> np.ndarray:
    """Ticks ``0, step, 2 step, ...`` up to the first tick at or beyond ``max_time``.

    ``step = 0`` chooses the spacing with :func:`tick_step`.
    """
    step = float(step) if step and step > 0 else tick_step(max_time, max_intervals)
    n = int(np.ceil(max(max_time, 0.0) / step - 1e-9))
    return step * np.arange(max(n, 1) + 1)


def at_risk_rows(curve: pd.DataFrame, ticks) -> pd.DataFrame:
    """Number at risk and survival of one Kaplan-Meier curve at given times.

    With the curve of :func:`gutaxis.clinical.survival.kaplan_meier` (one row per distinct time,
    ``n_risk`` = subjects with time :math:`\\ge t`),

    .. math::

        n_{risk}(\\tau) = \\#\\{i : t_i \\ge \\tau\\}, \\qquad \\hat S(\\tau) = \\hat S(t_{(k)}),
        \\; t_{(k)} = \\max\\{t_j \\le \\tau\\}

    i.e. the risk set of the first curve time at or after :math:`\\tau` (0 beyond the last
    follow-up) and the curve value in force at :math:`\\tau` (NaN beyond the last
    follow-up unless the curve reached 0), as in the numbers-at-risk table under a
    published Kaplan-Meier plot.

    Parameters
    ----------
    curve : pandas.DataFrame
        Columns :data:`gutaxis.clinical.survival.KM_COLUMNS`, sorted by time, starting at time 0.
    ticks : array_like of float

    Returns
    -------
    pandas.DataFrame
        Columns :data:`gutaxis.clinical.survival.KM_COLUMNS`: ``time`` = tick, ``n_risk``,
        ``survival``, ``std_err``, ``ci_low``, ``ci_high``; ``n_event`` and ``n_censor``
        are NaN (they count what happens *at* a curve time and have no meaning at a tick).

    References
    ----------
    Pocock SJ, Clayton TC, Altman DG (2002) Survival plots of time-to-event outcomes in
    clinical trials: good practice and pitfalls. Lancet 359:1686-1689.
    """
    ticks = np.asarray(ticks, dtype=float)
    times = curve["time"].to_numpy(dtype=float)
    n_risk = curve["n_risk"].to_numpy(dtype=float)
    after = np.searchsorted(times, ticks, side="left")
    risk = np.where(after < times.size, n_risk[np.minimum(after, times.size - 1)], 0.0)
    at = np.searchsorted(times, ticks, side="right") - 1
    out = {"time": ticks, "n_risk": risk.astype(int), "n_event": np.nan, "n_censor": np.nan}
    beyond = ticks > times[-1]
    ended_at_zero = curve["survival"].iloc[-1] <= 0
    for column in ("survival", "std_err", "ci_low", "ci_high"):
        values = curve[column].to_numpy(dtype=float)[np.maximum(at, 0)]
        if not ended_at_zero:
            values = np.where(beyond, np.nan, values)
        out[column] = values
    return pd.DataFrame(out)[KM_COLUMNS]


def km_plot_table(
    subjects: pd.DataFrame,
    endpoints: Mapping[str, tuple[str, str]],
    groupings: Mapping[str, Sequence[str]],
    conf_level: float = 0.95,
    conf_type: str = "log-log",
    tick_every: float = 0.0,
    *,
    file: str = "subjects.tsv",
) -> pd.DataFrame:
    """Kaplan-Meier curves and numbers at risk, overall and per group, for the KM figure.

    Parameters
    ----------
    subjects : pandas.DataFrame
        Subjects table (NaN for blank cells).
    endpoints : mapping
        ``name -> (time column, event column)``.
    groupings : mapping
        ``name -> grouping columns``; overall is always included.
    conf_level, conf_type
        As in :func:`gutaxis.clinical.survival.kaplan_meier`.
    tick_every : float
        Spacing of the at-risk ticks in months; 0 chooses one per endpoint with
        :func:`tick_step` from the longest follow-up.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`KM_PLOT_COLUMNS`. ``record = "step"`` rows are the curve (one row
        per distinct time; ``n_censor > 0`` marks a censoring, drawn as a tick);
        ``record = "at_risk"`` rows give, at each plotted tick, the number at risk and the
        survival in force (:func:`at_risk_rows`). Per endpoint and group, steps come
        before ticks; endpoints and groups in the order of the inputs.
    """
    curves = stack_groupings(survival_curves, groupings, order_by="endpoint", subjects=subjects, endpoints=endpoints,
                             conf_level=conf_level, conf_type=conf_type, file=file)
    pieces = []
    for endpoint, (time_column, _) in endpoints.items():
        ticks = time_ticks(float(pd.to_numeric(subjects[time_column]).max()), tick_every)
        of_endpoint = curves[curves["endpoint"] == endpoint]
        for (group_var, group), curve in of_endpoint.groupby(["group_var", "group"], sort=False):
            steps = curve.assign(record="step")
            ticks_rows = at_risk_rows(curve[KM_COLUMNS].reset_index(drop=True), ticks)
            ticks_rows.insert(0, "record", "at_risk")
            for column, value in (("group", group), ("group_var", group_var), ("endpoint", endpoint)):
                ticks_rows.insert(0, column, value)
            pieces += [steps, ticks_rows]
    return pd.concat(pieces, ignore_index=True)[KM_PLOT_COLUMNS]


__all__ = [
    "KM_PLOT_COLUMNS",
    "at_risk_rows",
    "km_plot_table",
    "stack_groupings",
    "tick_step",
    "time_ticks",
]
