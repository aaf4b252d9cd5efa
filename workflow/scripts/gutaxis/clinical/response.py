"""Objective response and disease control rates with exact confidence intervals, and responder labels.

Best overall response comes from the subjects table (``best_response`` for RECIST 1.1,
``best_response_irecist`` for iRECIST). The endpoints are

* ORR, objective response rate: CR + PR (iRECIST: iCR + iPR);
* DCR, disease control rate: CR + PR + SD (iRECIST: iCR + iPR + iSD);

each over a denominator that either includes the not-evaluable (NE) subjects, who then
count as non-responders (intention to treat, the default), or excludes them. The choice
is written in every row. The 95% interval is the exact Clopper-Pearson interval.

References
----------
Clopper CJ, Pearson ES (1934) The use of confidence or fiducial limits illustrated in
the case of the binomial. Biometrika 26:404-413.
Eisenhauer EA et al. (2009) Eur J Cancer 45:228-247 (RECIST 1.1).
Seymour L et al. (2017) Lancet Oncol 18:e143-e152 (iRECIST).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from gutaxis.clinical.checks import (
    ABSCOPAL_CODES,
    DEFAULT_SUBJECTS_FILE,
    NOT_EVALUABLE,
    RESPONSE_COLUMNS,
    RESPONSE_VOCABULARIES,
    blank_to_missing,
    canonical_codes,
    checked_groupings,
    column_recorded,
    require_valid_subjects,
    response_criteria,
)
from gutaxis.io.errors import InputError, Problem

log = logging.getLogger("gutaxis.clinical")

#: response codes that count as a responder, by (criterion, endpoint)
RESPONDER_CODES: dict[tuple[str, str], tuple[str, ...]] = {
    ("recist", "ORR"): ("CR", "PR"),
    ("recist", "DCR"): ("CR", "PR", "SD"),
    ("irecist", "ORR"): ("iCR", "iPR"),
    ("irecist", "DCR"): ("iCR", "iPR", "iSD"),
}
ENDPOINTS: tuple[str, ...] = ("ORR", "DCR")
NOT_EVALUABLE_CHOICES: tuple[str, ...] = ("include", "exclude")
CI_METHOD = "Clopper-Pearson exact"
OVERALL = ("overall", "all")  # (group_var, group) of the whole-study rows

RATE_COLUMNS = [
    "group_var", "group", "criterion", "endpoint", "n_responders", "n_evaluable",
    "n_not_evaluable", "n_total", "n_denominator", "not_evaluable_handling",
    "rate", "ci_low", "ci_high", "ci_method",
]
ABSCOPAL_COLUMNS = [
    "group_var", "group", "endpoint", "n_yes", "n_evaluable", "n_not_evaluable", "n_total",
    "n_denominator", "not_evaluable_handling", "rate", "ci_low", "ci_high", "ci_method",
]


# --------------------------------------------------------------------------- building blocks


def clopper_pearson(successes, trials, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) two-sided confidence interval of a binomial proportion.

    .. math::

        p_L = B^{-1}(\\alpha/2;\\, x,\\, n - x + 1), \\qquad
        p_U = B^{-1}(1 - \\alpha/2;\\, x + 1,\\, n - x)

    with :math:`B^{-1}` the beta quantile, :math:`p_L = 0` when :math:`x = 0` and
    :math:`p_U = 1` when :math:`x = n`. Computed by statsmodels
    ``proportion_confint(method="beta")``.

    Parameters
    ----------
    successes, trials : array_like of int
        Number of successes :math:`x` and of trials :math:`n` (broadcast together).
    alpha : float
        1 - confidence level.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Lower and upper limits; NaN where ``trials == 0``.

    References
    ----------
    Clopper CJ, Pearson ES (1934) Biometrika 26:404-413.
    """
    x, n = np.broadcast_arrays(np.asarray(successes, dtype=float), np.asarray(trials, dtype=float))
    if np.any(x < 0) or np.any(x > n):
        raise ValueError("successes must lie between 0 and trials")
    low = np.full(x.shape, np.nan)
    high = np.full(x.shape, np.nan)
    ok = n > 0
    if ok.any():
        low[ok], high[ok] = proportion_confint(x[ok], n[ok], alpha=alpha, method="beta")
    return low, high


def _format_value(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "NA"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def subject_groups(subjects: pd.DataFrame, by: Sequence[str] | str | None) -> tuple[str, pd.Series]:
    """Group label of every subject.

    Parameters
    ----------
    subjects : pandas.DataFrame
        The subjects table.
    by : str, sequence of str or None
        Grouping columns; ``None`` (or empty) puts everybody in one group.

    Returns
    -------
    group_var : str
        ``"overall"`` or the columns joined by ``"+"`` (e.g. ``"study+dose_gy"``).
    groups : pandas.Series of str
        Label per subject (same index): ``"all"``, the value, or the values joined by
        ``" / "``. Integral numbers lose their ``.0`` (``2.0`` -> ``"2"``); a missing value
        becomes ``"NA"`` so that nobody silently leaves a grouping.
    """
    if by is None or (not isinstance(by, str) and len(by) == 0):
        return OVERALL[0], pd.Series(OVERALL[1], index=subjects.index, dtype=object)
    columns = [by] if isinstance(by, str) else list(by)
    parts = [subjects[c].map(_format_value) for c in columns]
    labels = parts[0]
    for part in parts[1:]:
        labels = labels + " / " + part
    return "+".join(columns), labels.astype(object)


def group_order(subjects: pd.DataFrame, by: Sequence[str] | str | None, labels: pd.Series) -> list[str]:
    """Deterministic order of group labels: by the grouping values (numbers numerically), NA last."""
    if by is None or (not isinstance(by, str) and len(by) == 0):
        return [OVERALL[1]]
    columns = [by] if isinstance(by, str) else list(by)
    keys = subjects[columns].copy()
    for c in columns:
        numeric = pd.to_numeric(keys[c], errors="coerce")
        if numeric.notna().sum() == keys[c].notna().sum():
            keys[c] = numeric
        else:
            keys[c] = keys[c].astype("string").str.strip()
    keys["_label"] = labels.to_numpy()
    ordered = keys.sort_values(columns, na_position="last", kind="stable")["_label"]
    return list(dict.fromkeys(ordered))


def _check_choice(not_evaluable: str) -> None:
    if not_evaluable not in NOT_EVALUABLE_CHOICES:
        raise ValueError(f"not_evaluable must be 'include' or 'exclude', not {not_evaluable!r}")


def _by_columns(by) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def _rate_rows(positive: pd.Series, evaluable: pd.Series, labels: pd.Series, order: list[str],
               not_evaluable: str, alpha: float) -> pd.DataFrame:
    """Counts, rate and CI per group from per-subject booleans."""
    frame = pd.DataFrame({"group": labels.to_numpy(), "positive": positive.to_numpy(dtype=bool),
                          "evaluable": evaluable.to_numpy(dtype=bool)})
    counts = frame.groupby("group", sort=False).agg(
        n_positive=("positive", "sum"), n_evaluable=("evaluable", "sum"), n_total=("positive", "size"))
    counts = counts.reindex(order).astype(int)
    counts["n_not_evaluable"] = counts["n_total"] - counts["n_evaluable"]
    counts["n_denominator"] = counts["n_total"] if not_evaluable == "include" else counts["n_evaluable"]
    denominator = counts["n_denominator"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        counts["rate"] = np.where(denominator > 0, counts["n_positive"] / np.maximum(denominator, 1), np.nan)
    counts["ci_low"], counts["ci_high"] = clopper_pearson(counts["n_positive"], denominator, alpha)
    counts["not_evaluable_handling"] = not_evaluable
    counts["ci_method"] = CI_METHOD
    return counts.rename_axis("group").reset_index()


# --------------------------------------------------------------------------- response rates


def response_rates(
    subjects: pd.DataFrame,
    by: Sequence[str] | str | None = None,
    criteria: Iterable[str] = ("recist", "irecist"),
    not_evaluable: str = "include",
    alpha: float = 0.05,
    *,
    file: str = DEFAULT_SUBJECTS_FILE,
) -> pd.DataFrame:
    """ORR and DCR with Clopper-Pearson CIs, per group.

    .. math::

        \\widehat{ORR} = \\frac{\\#\\{CR, PR\\}}{N}, \\qquad
        \\widehat{DCR} = \\frac{\\#\\{CR, PR, SD\\}}{N}

    (iRECIST: iCR, iPR, iSD), with :math:`N` all subjects of the group when
    ``not_evaluable="include"`` (NE subjects are non-responders; intention to treat) or the
    evaluable subjects only when ``"exclude"``. iUPD and iCPD are never responders.

    Parameters
    ----------
    subjects : pandas.DataFrame
        Subjects table with ``subject_id``, the grouping columns and the response column of
        each criterion (``best_response``, ``best_response_irecist``).
    by : str, sequence of str or None
        Grouping columns (``None``: whole study; ``"cohort"``; ``["study", "dose_gy"]``).
    criteria : iterable of {"recist", "irecist"}
    not_evaluable : {"include", "exclude"}
        Whether NE subjects stay in the denominator.
    alpha : float
        1 - confidence level of the interval.
    file : str
        Name of the subjects file, for error messages.

    Returns
    -------
    pandas.DataFrame
        One row per group x criterion x endpoint, columns :data:`RATE_COLUMNS`: counts
        (``n_responders``, ``n_evaluable``, ``n_not_evaluable``, ``n_total``,
        ``n_denominator``), ``not_evaluable_handling``, ``rate``, ``ci_low``, ``ci_high``,
        ``ci_method``. Rate and CI are NaN for a group with an empty denominator.

    Raises
    ------
    gutaxis.io.errors.InputError
        Unknown or missing response code, missing grouping column.
    """
    _check_choice(not_evaluable)
    criteria = tuple(criteria)
    by_columns = _by_columns(by)
    require_valid_subjects(subjects, file, criteria=criteria, group_columns=by_columns, check_recorded=False)
    group_var, labels = subject_groups(subjects, by_columns)
    order = group_order(subjects, by_columns, labels)
    pieces = []
    for criterion in criteria:
        codes = canonical_codes(subjects[RESPONSE_COLUMNS[criterion]], RESPONSE_VOCABULARIES[criterion])
        evaluable = codes != NOT_EVALUABLE
        for endpoint in ENDPOINTS:
            responder = codes.isin(RESPONDER_CODES[(criterion, endpoint)])
            rows = _rate_rows(responder, evaluable, labels, order, not_evaluable, alpha)
            rows.insert(0, "group_var", group_var)
            rows["criterion"] = criterion
            rows["endpoint"] = endpoint
            pieces.append(rows)
    table = pd.concat(pieces, ignore_index=True).rename(columns={"n_positive": "n_responders"})
    # rows grouped by group first, then criterion, then endpoint
    table["_g"] = table["group"].map({g: i for i, g in enumerate(order)})
    table = table.sort_values(["_g"], kind="stable").drop(columns="_g")
    return table[RATE_COLUMNS].reset_index(drop=True)


def default_groupings(subjects: pd.DataFrame) -> dict[str, list[str] | None]:
    """Overall, by cohort, and by dose group (``dose_gy`` within ``study``) when recorded."""
    groupings: dict[str, list[str] | None] = {"overall": None, "cohort": ["cohort"]}
    if "dose_gy" in subjects.columns and subjects["dose_gy"].notna().any():
        groupings["dose_group"] = ["study", "dose_gy"] if "study" in subjects.columns else ["dose_gy"]
    return groupings


def response_table(
    subjects: pd.DataFrame,
    groupings: Mapping[str, Sequence[str] | str | None] | None = None,
    criteria: Iterable[str] = ("recist", "irecist"),
    not_evaluable: str = "include",
    alpha: float = 0.05,
    *,
    file: str = DEFAULT_SUBJECTS_FILE,
) -> pd.DataFrame:
    """:func:`response_rates` for several groupings, stacked.

    Parameters
    ----------
    groupings : mapping name -> grouping columns, optional
        Default :func:`default_groupings` (overall, cohort, and study + dose_gy when
        ``dose_gy`` is recorded). Only the values are used; ``group_var`` names the columns.

    Returns
    -------
    pandas.DataFrame
        Rows of every grouping in the order given, columns :data:`RATE_COLUMNS`.
    """
    if groupings is None:
        groupings = default_groupings(subjects)
    criteria = tuple(criteria)
    tables = [response_rates(subjects, by, criteria, not_evaluable, alpha, file=file)
              for by in groupings.values()]
    return pd.concat(tables, ignore_index=True)


# --------------------------------------------------------------------------- responder labels


def label_column_responders(values: pd.Series, responder: Sequence[str],
                            non_responder: Sequence[str]) -> np.ndarray:
    """Responder labels from a label column (e.g. ``R``/``NR`` of a published cohort).

    Values in ``responder`` give ``"responder"``, values in ``non_responder`` give
    ``"non_responder"``; anything else, and an empty cell, is not evaluable (``""``).
    Values are compared after stripping surrounding spaces.
    """
    text = values.astype("string").fillna("").str.strip()
    label = np.full(len(text), "", dtype=object)
    label[text.isin([str(v).strip() for v in responder]).to_numpy(dtype=bool)] = "responder"
    label[text.isin([str(v).strip() for v in non_responder]).to_numpy(dtype=bool)] = "non_responder"
    return label


def responder_labels(
    subjects: pd.DataFrame,
    definitions: Mapping[str, Mapping],
    *,
    file: str = DEFAULT_SUBJECTS_FILE,
) -> pd.DataFrame:
    """Responder label of every subject under each configured definition.

    Parameters
    ----------
    subjects : pandas.DataFrame
        Subjects table with ``subject_id``, ``cohort`` and the needed response columns.
    definitions : mapping
        ``name -> {"endpoint": "DCR" | "ORR", "criterion": "recist" | "irecist"}`` (best
        overall response, e.g. ``{"dcr_recist": {"endpoint": "DCR", "criterion":
        "recist"}}``) or ``name -> {"column": ..., "responder": [...], "non_responder":
        [...]}`` (a label column, see :func:`label_column_responders`). Empty: the table
        holds ``subject_id`` and ``cohort`` only.

    Returns
    -------
    pandas.DataFrame
        Columns ``subject_id, cohort`` and one column per definition (in the given order)
        holding ``"responder"``, ``"non_responder"`` or ``""`` for a not-evaluable subject
        (NE is a non-responder in the ITT rates, but carries no label to learn from).
        Rows sorted by ``subject_id``.
    """
    parsed = {}
    for name, definition in definitions.items():
        if "column" in definition:
            if definition["column"] not in subjects.columns:
                raise InputError(Problem(file, f"column '{definition['column']}'",
                                         f"responder definition '{name}' reads this column, which is missing",
                                         "add the column or change response.definitions in the config"))
            parsed[name] = definition
            continue
        endpoint = str(definition.get("endpoint", "")).upper()
        criterion = str(definition.get("criterion", "")).lower()
        if (criterion, endpoint) not in RESPONDER_CODES:
            raise ValueError(
                f"responder definition {name!r}: endpoint must be DCR or ORR and criterion recist or "
                f"irecist, got {dict(definition)!r}")
        parsed[name] = (criterion, endpoint)
    criteria = sorted({d[0] for d in parsed.values() if isinstance(d, tuple)})
    require_valid_subjects(subjects, file, criteria=criteria, group_columns=["cohort"], check_recorded=False)
    table = pd.DataFrame({"subject_id": subjects["subject_id"].astype(str).str.strip().to_numpy(),
                          "cohort": subjects["cohort"].to_numpy()})
    for name, definition in parsed.items():
        if isinstance(definition, dict):
            table[name] = label_column_responders(subjects[definition["column"]], definition["responder"],
                                                  definition["non_responder"])
            continue
        criterion, endpoint = definition
        codes = canonical_codes(subjects[RESPONSE_COLUMNS[criterion]], RESPONSE_VOCABULARIES[criterion])
        label = np.where(codes.isin(RESPONDER_CODES[(criterion, endpoint)]), "responder", "non_responder")
        label[(codes == NOT_EVALUABLE).to_numpy()] = ""
        table[name] = label
    return table.sort_values("subject_id", kind="stable", ignore_index=True)


# --------------------------------------------------------------------------- abscopal effect


def abscopal_incidence(
    subjects: pd.DataFrame,
    by: Sequence[str] | str | None = None,
    not_evaluable: str = "include",
    alpha: float = 0.05,
    *,
    file: str = DEFAULT_SUBJECTS_FILE,
) -> pd.DataFrame:
    """Incidence of the abscopal effect with a Clopper-Pearson CI, per group.

    :math:`\\hat p = \\#\\{yes\\} / N`, with :math:`N` handled as in :func:`response_rates`
    (``NE`` in or out of the denominator).

    Parameters
    ----------
    subjects : pandas.DataFrame
        Subjects table with ``subject_id``, ``abscopal`` (yes / no / NE) and grouping columns.
    by, not_evaluable, alpha, file
        As in :func:`response_rates`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ABSCOPAL_COLUMNS`, one row per group, ``endpoint = "abscopal"``.
    """
    _check_choice(not_evaluable)
    by_columns = _by_columns(by)
    require_valid_subjects(subjects, file, require_abscopal=True, group_columns=by_columns, check_recorded=False)
    group_var, labels = subject_groups(subjects, by_columns)
    order = group_order(subjects, by_columns, labels)
    codes = canonical_codes(subjects["abscopal"], ABSCOPAL_CODES)
    rows = _rate_rows(codes == "yes", codes != NOT_EVALUABLE, labels, order, not_evaluable, alpha)
    rows.insert(0, "group_var", group_var)
    rows["endpoint"] = "abscopal"
    return rows.rename(columns={"n_positive": "n_yes"})[ABSCOPAL_COLUMNS]


# --------------------------------------------------------------------------- the workflow's response tables


@dataclass(frozen=True)
class ResponseTables:
    """``results/clinical/response.tsv`` and ``abscopal.tsv``.

    Attributes
    ----------
    response : DataFrame (:data:`RATE_COLUMNS`)
        ORR and DCR of every criterion, overall and per usable grouping.
    abscopal : DataFrame (:data:`ABSCOPAL_COLUMNS`)
        No rows when the subjects table records no abscopal effect.
    """

    response: pd.DataFrame
    abscopal: pd.DataFrame


def study_response(subjects: pd.DataFrame, definitions: Mapping, groupings: Mapping, *,
                   not_evaluable: str = "include", conf_level: float = 0.95,
                   file: str = DEFAULT_SUBJECTS_FILE) -> ResponseTables:
    """Response rates and abscopal incidence of a study, overall and per configured grouping.

    Every clinical column of the table is checked before anything is computed
    (:func:`gutaxis.clinical.checks.checked_groupings`); the criteria reported are those
    the responder definitions need plus any other recorded
    (:func:`gutaxis.clinical.checks.response_criteria`).

    Parameters
    ----------
    subjects : DataFrame
        The checked subjects sheet as text (empty cell = ``""``).
    definitions : mapping
        ``response.definitions`` of the config.
    groupings : mapping
        ``clinical.groupings`` (name -> columns).
    not_evaluable : {"include", "exclude"}
        NE in or out of the denominator.
    conf_level : float
        Of the Clopper-Pearson intervals.
    file : str
        The subjects sheet's name in messages.

    Returns
    -------
    ResponseTables
    """
    subjects = blank_to_missing(subjects)
    criteria = response_criteria(subjects, definitions)
    usable = checked_groupings(subjects, groupings, file, criteria=criteria)
    alpha = 1 - conf_level
    rates = response_table(subjects, {"overall": None, **usable}, criteria, not_evaluable, alpha, file=file)
    if column_recorded(subjects, "abscopal"):
        abscopal = pd.concat([abscopal_incidence(subjects, by, not_evaluable, alpha, file=file)
                              for by in [None, *usable.values()]], ignore_index=True)
    else:
        log.warning("no abscopal column in %s: abscopal.tsv has no rows", file)
        abscopal = pd.DataFrame(columns=ABSCOPAL_COLUMNS)
    log.info("criteria %s, groupings %s, not-evaluable handling %s", criteria, list(usable), not_evaluable)
    return ResponseTables(rates, abscopal)


__all__ = [
    "ABSCOPAL_COLUMNS",
    "CI_METHOD",
    "ENDPOINTS",
    "RATE_COLUMNS",
    "RESPONDER_CODES",
    "abscopal_incidence",
    "clopper_pearson",
    "default_groupings",
    "group_order",
    "response_rates",
    "response_table",
    "responder_labels",
    "study_response",
    "subject_groups",
]
