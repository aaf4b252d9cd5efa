"""Candidate biomarkers and time to event: Cox models with covariates and median-split Kaplan-Meier.

For each candidate biomarker (a feature the responder models selected most often),
the subject's value on the modality's transformed scale is standardised (z score),
and

* a Cox proportional-hazards model ``endpoint ~ z + covariates`` (statsmodels
  ``PHReg``, Efron ties) gives the hazard ratio per standard deviation with its Wald
  interval and p, and the proportional-hazards check of ``survival::cox.zph`` (score
  test of the scaled Schoenfeld residuals against the Kaplan-Meier transform of time;
  Grambsch & Therneau 1994; :func:`gutaxis.clinical.survival.cox_zph`);
* the subjects are split at the biomarker's median (``high``: above the median,
  ``low``: at or below) and compared with the log-rank test; the Kaplan-Meier
  curves of both halves are returned for the figure.

Benjamini-Hochberg q values are computed over the biomarkers tested. With a few
dozen patients and biomarkers chosen from the same data, these numbers are
exploratory: they describe, they do not validate.

References
----------
Cox DR (1972) Regression models and life-tables. JRSS B 34:187-220.
Grambsch PM, Therneau TM (1994) Biometrika 81:515-526.
Altman DG, Lausen B, Sauerbrei W, Schumacher M (1994) Dangers of using "optimal"
cutpoints in the evaluation of prognostic factors. JNCI 86:829-835 (why the median,
not an optimised cut-point).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from gutaxis.models.landmark import time_since_landmark
from gutaxis.clinical.survival import cox_ph, kaplan_meier, km_summary, logrank_test

SURVIVAL_COLUMNS = [
    "endpoint", "feature_set", "model", "rank", "block", "feature", "annotation", "n", "n_events",
    "covariates", "hr_per_sd", "hr_ci_low", "hr_ci_high", "p_value", "q_value", "ph_rho",
    "ph_p_value", "split_value", "n_low", "n_high", "events_low", "events_high", "median_low",
    "median_high", "logrank_chisq", "logrank_p", "landmark_months", "n_before_landmark", "note",
]
CURVE_COLUMNS = ["endpoint", "feature", "group", "time", "n_risk", "n_event", "n_censor", "survival",
                 "ci_low", "ci_high"]
LOW, HIGH = "low", "high"


def covariate_design(subjects: pd.DataFrame, covariates) -> pd.DataFrame:
    """Numeric covariates as they are; categorical ones as 0/1 columns, first level as reference.

    A covariate with a single observed level is left out (it cannot be estimated).
    """
    columns = {}
    for name in covariates:
        raw = subjects[name].fillna("").astype(str).str.strip()
        numeric = pd.to_numeric(raw.replace("", np.nan), errors="coerce")
        if numeric.notna().all():
            if numeric.nunique() > 1:
                columns[name] = numeric.to_numpy(dtype=float)
            continue
        levels = sorted(set(raw))
        for level in levels[1:]:
            columns[f"{name}[{level}]"] = (raw == level).to_numpy(dtype=float)
    return pd.DataFrame(columns, index=subjects.index)


def biomarker_survival(values: pd.DataFrame, subjects: pd.DataFrame, *, time_column: str,
                       event_column: str, covariates=("cohort",), endpoint: str = "PFS2",
                       conf_level: float = 0.95, conf_type: str = "log-log",
                       landmark_months: float = np.nan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cox model and median-split log-rank test of each biomarker column.

    Parameters
    ----------
    values : DataFrame
        Subjects (index ``subject_id``) x biomarkers, on the transformed scale.
    subjects : DataFrame
        Subjects table with ``subject_id``, the time and event columns and the covariates.
    time_column, event_column : str
        Time to event (months) and event flag (1 event, 0 censored).
    covariates : sequence of str
        Subjects-table columns adjusted for (e.g. cohort).
    endpoint : str
        Name written in the tables.
    conf_level, conf_type
        Interval level; Kaplan-Meier interval type (:func:`gutaxis.clinical.survival.kaplan_meier`).
    landmark_months : float
        On-treatment biomarkers: time is counted from this landmark (T - L) and subjects
        whose event or censoring came at or before it are left out (counted in
        ``n_before_landmark``); NaN = from treatment start.

    Returns
    -------
    table : DataFrame
        One row per biomarker: the :data:`SURVIVAL_COLUMNS` from ``n`` on
        (the caller adds feature-set context).
    curves : DataFrame
        :data:`CURVE_COLUMNS`: Kaplan-Meier curves of the low and high halves.
    """
    frame = subjects.copy()
    frame["subject_id"] = frame["subject_id"].astype(str)
    frame = frame.set_index("subject_id")
    time = pd.to_numeric(frame[time_column], errors="coerce")
    event = pd.to_numeric(frame[event_column], errors="coerce")
    n_before = np.nan
    if np.isfinite(landmark_months):
        before = time <= landmark_months
        n_before = int(before.sum())
        time = pd.Series(time_since_landmark(time.to_numpy(), landmark_months), index=time.index)
    rows, curves = [], []
    for feature in values.columns:
        x = values[feature].astype(float)
        usable = x.index[np.isfinite(x.to_numpy())]
        usable = [s for s in usable if s in frame.index and np.isfinite(time.get(s, np.nan))
                  and np.isfinite(event.get(s, np.nan))]
        row = {"feature": feature, "n": len(usable), "covariates": "+".join(covariates),
               "landmark_months": landmark_months, "n_before_landmark": n_before}
        if len(usable) < 4:
            rows.append({**row, "note": "fewer than 4 subjects with value and follow-up"})
            continue
        xs = x.loc[usable].to_numpy()
        t = time.loc[usable].to_numpy(dtype=float)
        e = event.loc[usable].to_numpy(dtype=float)
        row["n_events"] = int(e.sum())
        sd = xs.std(ddof=1)
        notes = []
        if sd > 0:
            design = pd.concat([pd.DataFrame({"biomarker": (xs - xs.mean()) / sd}, index=usable),
                                covariate_design(frame.loc[usable], covariates)], axis=1)
            try:
                fit = cox_ph(t, e, design, conf_level=conf_level)
                first = fit.iloc[0]
                row.update({"hr_per_sd": first["hr"], "hr_ci_low": first["hr_ci_low"],
                            "hr_ci_high": first["hr_ci_high"], "p_value": first["p_value"],
                            "ph_rho": first["ph_rho"], "ph_p_value": first["ph_p_value"]})
            except (ValueError, np.linalg.LinAlgError) as err:
                notes.append(f"Cox model not fitted: {err}")
        else:
            notes.append("constant biomarker")
        split = float(np.median(xs))
        group = np.where(xs > split, HIGH, LOW)
        row["split_value"] = split
        for name in (LOW, HIGH):
            mask = group == name
            row[f"n_{name}"] = int(mask.sum())
            row[f"events_{name}"] = int(e[mask].sum())
            if mask.any():
                summary = km_summary(t[mask], e[mask], conf_level=conf_level, conf_type=conf_type)
                row[f"median_{name}"] = float(summary.loc[summary["quantity"] == "median", "estimate"].iloc[0])
                curve = kaplan_meier(t[mask], e[mask], conf_level, conf_type)
                curve.insert(0, "group", name)
                curve.insert(0, "feature", feature)
                curves.append(curve)
        if (group == HIGH).any() and (group == LOW).any():
            test = logrank_test(t, e, group)
            row["logrank_chisq"], row["logrank_p"] = test.statistic, test.p_value
        else:
            notes.append("median split leaves one group empty")
        row["note"] = "; ".join(notes)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.insert(0, "endpoint", endpoint)
    if "p_value" in table and table["p_value"].notna().any():
        ok = table["p_value"].notna()
        table["q_value"] = np.nan
        table.loc[ok, "q_value"] = multipletests(table.loc[ok, "p_value"], method="fdr_bh")[1]
    curve_table = (pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS[1:]))
    curve_table.insert(0, "endpoint", endpoint)
    return table.reindex(columns=[c for c in SURVIVAL_COLUMNS if c not in
                                  ("feature_set", "model", "rank", "block", "annotation")]), \
        curve_table.reindex(columns=CURVE_COLUMNS)
