"""The within-subject pre→post shift of one β metric, compared by response and with between-subject distances.

Results ``results/diversity/<modality>/shift/<metric>.tsv`` (one row per subject and
contrast) and ``shift/<metric>.tests.tsv`` (the tests); the statistics are
:func:`gutaxis.diversity.beta.within_subject_shift`,
:func:`gutaxis.diversity.beta.shift_vs_between` and
:func:`gutaxis.diversity.beta.compare_shift_by_response`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gutaxis.clinical.checks import NON_RESPONDER, RESPONDER
from gutaxis.io.pairing import pair_samples
from gutaxis.diversity.beta import compare_shift_by_response, shift_vs_between, within_subject_shift
from gutaxis.diversity.design import call_by_metric_role, metric_roles, with_front

#: columns of ``results/diversity/<modality>/shift/<metric>.tsv``
SHIFT_TABLE_COLUMNS = ["contrast", "pre", "post", "metric", "subject_id", "cohort", "response", "pre_sample",
                       "post_sample", "distance", "median_between_distance", "difference"]
#: columns of ``results/diversity/<modality>/shift/<metric>.tests.tsv``
SHIFT_TEST_COLUMNS = [
    "test", "group_a", "group_b", "n_a", "n_b", "median_a", "median_b", "estimate", "ci_low", "ci_high",
    "conf_level", "statistic", "statistic_name", "p_value", "method", "note",
]


def shift_tests_table(by_response: pd.DataFrame | None, within_between: pd.DataFrame) -> pd.DataFrame:
    """The two tests of the within-subject shift in one tidy table.

    Parameters
    ----------
    by_response : DataFrame or None
        :func:`gutaxis.diversity.beta.compare_shift_by_response` output (one row); None in a
        study without response (the row is left out).
    within_between : DataFrame
        ``WithinBetween.test`` of :func:`gutaxis.diversity.beta.shift_vs_between` (one row).

    Returns
    -------
    DataFrame
        Columns :data:`SHIFT_TEST_COLUMNS`, rows ``responder_vs_non_responder``
        (only with `by_response`; Mann-Whitney U of the pre→post distance; estimate = Hodges-Lehmann shift,
        responders minus non-responders) and ``within_vs_between`` (Wilcoxon
        signed-rank of within-subject minus median between-subject baseline
        distance; estimate = Hodges-Lehmann with its CI).
    """
    w = within_between.iloc[0]
    rows = []
    if by_response is not None:
        r = by_response.iloc[0]
        rows.append(["responder_vs_non_responder", RESPONDER, NON_RESPONDER, int(r["n_responder"]),
                     int(r["n_non_responder"]), r["median_responder"], r["median_non_responder"],
                     r["hl_shift"], np.nan, np.nan, np.nan, r["u_statistic"], "U (responders)", r["p_value"],
                     r["method"], f"{int(r['n_not_evaluable'])} subjects without a response label left out"
                     if int(r["n_not_evaluable"]) else ""])
    rows += [
        ["within_vs_between", "within_subject", "between_subject_baseline_median", int(w["n_subjects"]),
         int(w["n_subjects"]), w["median_within"], w["median_between"], w["hl_estimate"], w["ci_low"],
         w["ci_high"], w["conf_level"], w["v_statistic"], "V (signed-rank)", w["p_value"], w["method"],
         "between-subject medians share samples: descriptive"],
    ]
    return pd.DataFrame(rows, columns=SHIFT_TEST_COLUMNS)


@dataclass(frozen=True)
class ShiftTables:
    """The two shift tables of one β metric.

    Attributes
    ----------
    shift : DataFrame (:data:`SHIFT_TABLE_COLUMNS`)
        Each subject's pre→post distance and its median between-subject baseline distance.
    tests : DataFrame
        ``contrast, pre, post, metric`` + :data:`SHIFT_TEST_COLUMNS` + ``significant, role, called``.
    """

    shift: pd.DataFrame
    tests: pd.DataFrame


def metric_shift(distances: pd.DataFrame, samples: pd.DataFrame, labels: pd.DataFrame, check: pd.DataFrame,
                 metric: str, contrasts: Sequence[dict], *, response: bool, conf_level: float = 0.95,
                 significance_level: float = 0.05, source: str = "samples.tsv") -> ShiftTables:
    """The within-subject shift of every contrast for one β metric, with its tests.

    A metric undefined for some sample pairs (``beta_metrics.tsv``) gets empty
    tables; only the primary metric makes a call
    (:func:`gutaxis.diversity.design.call_by_metric_role`).

    Parameters
    ----------
    distances, samples, labels, check, metric, contrasts
        As `distances, samples, subjects, check, metric, contrasts` of
        :func:`gutaxis.diversity.permanova.metric_beta_tests`.
    response : bool
        Does the study have a response (else no responder comparison)?
    conf_level, significance_level : float
    source : str
        The sample sheet's name in messages.

    Returns
    -------
    ShiftTables
    """
    primary, roles = metric_roles(check)
    shifts, tests = [], []
    if roles.get(metric) == "not computed":
        # undefined for some sample pairs (beta_metrics.tsv): nothing to measure
        shifts.append(pd.DataFrame(columns=SHIFT_TABLE_COLUMNS))
        tests.append(pd.DataFrame(columns=["contrast", "pre", "post", "metric"] + SHIFT_TEST_COLUMNS))
        contrasts = []
    else:
        samples = samples[samples["sample_id"].isin(distances.index)]
    info = labels.set_index("subject_id")
    for contrast in contrasts:
        pairs = pair_samples(samples, contrast["pre"], contrast["post"], source=source)
        shift = within_subject_shift(distances, pairs)
        between = shift_vs_between(distances, pairs, conf_level=conf_level)
        by_response = compare_shift_by_response(shift, labels, "response") if response else None
        per_subject = shift.merge(between.per_subject.drop(columns="within_distance"), on="subject_id")
        per_subject.insert(1, "cohort", per_subject["subject_id"].map(info["cohort"]).fillna(""))
        per_subject.insert(2, "response", per_subject["subject_id"].map(info["response"]).fillna(""))
        front = {"contrast": contrast["name"], "pre": contrast["pre"], "post": contrast["post"], "metric": metric}
        shifts.append(with_front(per_subject, front))
        tests.append(with_front(shift_tests_table(by_response, between.test), front))
    called = call_by_metric_role(pd.concat(tests, ignore_index=True), metric, primary, significance_level)
    return ShiftTables(pd.concat(shifts, ignore_index=True), called)
