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

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from gutaxis.clinical.survival import cox_ph, kaplan_meier, km_summary, logrank_test
from gutaxis.io.tables import read_feature_table
from gutaxis.models.features import assemble_rows, feature_set_landmark
from gutaxis.models.landmark import time_since_landmark
from gutaxis.models.feature_table import feature_annotations
from gutaxis.models.summary import best_feature_set, biomarker_values, top_biomarkers

SURVIVAL_COLUMNS = [
    "endpoint", "feature_set", "model", "rank", "block", "feature", "annotation", "n", "n_events",
    "covariates", "hr_per_sd", "hr_ci_low", "hr_ci_high", "p_value", "q_value", "ph_rho",
    "ph_p_value", "split_value", "n_low", "n_high", "events_low", "events_high", "median_low",
    "median_high", "logrank_chisq", "logrank_p", "landmark_months", "n_before_landmark", "note",
]
CURVE_COLUMNS = ["endpoint", "feature", "group", "time", "n_risk", "n_event", "n_censor", "survival",
                 "ci_low", "ci_high"]
LOW, HIGH = "low", "high"

log = logging.getLogger("gutaxis.models")


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


# --------------------------------------------------------------------------- the workflow step
@dataclass(frozen=True)
class BiomarkerSurvivalSettings:
    """What the survival step of the top biomarkers takes from the config.

    Attributes
    ----------
    endpoint, time, event : str
        The endpoint's name and its subjects-table columns (``models.survival``).
    covariates : tuple of str
        Subjects-table columns of the Cox models.
    top_k : int
        Biomarkers tested (0: none).
    landmark_months : "auto" or float
        The landmark of an on-treatment feature set (``models.landmark_months``).
    min_prevalence, logit_epsilon, pseudocount_fraction : float
        The per-sample transforms of the biomarker values, as in the models.
    conf_level : float
        Interval level.
    conf_type : str
        Kaplan-Meier interval type (``clinical.km_conf_type``).
    modalities : dict
        The config's ``modalities`` of the modelled blocks.
    baseline : str
        ``design.baseline``.
    contrasts : list of dict
        ``design.contrasts``.
    cohorts : sequence of str
        ``design.cohorts``.
    """

    endpoint: str
    time: str
    event: str
    covariates: tuple
    top_k: int
    landmark_months: object
    min_prevalence: float
    logit_epsilon: float
    pseudocount_fraction: float
    conf_level: float
    conf_type: str
    modalities: dict
    baseline: str
    contrasts: list
    cohorts: tuple = ()

    @classmethod
    def from_config(cls, models: Mapping, *, survival: Mapping, landmark_months, pseudocount_fraction: float,
                    conf_type: str, modalities: dict, baseline: str, contrasts: list,
                    cohorts=()) -> BiomarkerSurvivalSettings:
        """From the config's ``models`` section (``min_prevalence``, ``logit_epsilon``,
        ``conf_level``), its ``survival`` and ``landmark_months``, the CLR pseudocount
        fraction, ``clinical.km_conf_type`` and the design."""
        return cls(endpoint=survival["endpoint"], time=survival["time"], event=survival["event"],
                   covariates=survival["covariates"], top_k=survival["top_k"], landmark_months=landmark_months,
                   min_prevalence=models["min_prevalence"], logit_epsilon=models["logit_epsilon"],
                   pseudocount_fraction=pseudocount_fraction, conf_level=models["conf_level"],
                   conf_type=conf_type, modalities=modalities, baseline=baseline, contrasts=contrasts,
                   cohorts=cohorts)


def top_biomarker_survival(performance: pd.DataFrame, features: pd.DataFrame, feature_sets: Mapping,
                           table_paths: Mapping[str, str], samples: pd.DataFrame, subjects: pd.DataFrame,
                           annotations: Mapping[str, pd.DataFrame],
                           settings: BiomarkerSurvivalSettings) -> dict[str, pd.DataFrame]:
    """Cox models and Kaplan-Meier curves of the top biomarkers of the best omics feature set.

    The best (feature set, estimator) is :func:`~gutaxis.models.summary.best_feature_set`,
    its ``top_k`` most often selected omics features
    (:func:`~gutaxis.models.summary.top_biomarkers`) are tested by :func:`biomarker_survival`;
    an on-treatment set counts time from its landmark.

    Parameters
    ----------
    performance, features : DataFrame
        ``results/models/performance.tsv`` and the stability tables of every feature set.
    feature_sets : mapping
        ``models.feature_sets``.
    table_paths : mapping of str -> path
        Modality -> analysis table; only the best set's blocks are read.
    samples, subjects : DataFrame
        The checked sample sheet and subjects table.
    annotations : mapping of str -> DataFrame
        Modality -> feature annotations (:func:`~gutaxis.models.feature_table.feature_annotations`).
    settings : BiomarkerSurvivalSettings

    Returns
    -------
    dict of str -> DataFrame
        ``survival`` (:data:`SURVIVAL_COLUMNS`) and ``curves`` (:data:`CURVE_COLUMNS`).
    """
    best = best_feature_set(performance)
    if best is None or settings.top_k == 0:
        log.info("no omics feature set or top_k = 0: no biomarker tested")
        return {"survival": pd.DataFrame(columns=SURVIVAL_COLUMNS), "curves": pd.DataFrame(columns=CURVE_COLUMNS)}
    top = top_biomarkers(features, best["feature_set"], best["model"], settings.top_k)
    spec = feature_sets[best["feature_set"]]
    tables = {m: read_feature_table(path) for m, path in table_paths.items() if m in spec.get("blocks", [])}
    design = {"baseline": settings.baseline, "contrasts": settings.contrasts}
    X, rows, blocks, _ = assemble_rows(best["feature_set"], spec, tables, samples, subjects, settings.modalities,
                                       cohorts=settings.cohorts, **design)
    # an on-treatment set: time to event from its landmark, not from treatment start
    mark = feature_set_landmark(spec, tables, samples, subjects, rows, **design,
                                settings={"months": settings.landmark_months, "time": settings.time,
                                          "event": settings.event})
    if mark is not None:
        log.warning("%s is an on-treatment feature set: %s", best["feature_set"], mark.label())
    values = biomarker_values(X, rows, blocks, list(zip(top["block"], top["feature"])),
                              min_prevalence=settings.min_prevalence,
                              pseudocount_fraction=settings.pseudocount_fraction,
                              logit_epsilon=settings.logit_epsilon)
    table, curves = biomarker_survival(values, subjects, time_column=settings.time, event_column=settings.event,
                                       covariates=settings.covariates, endpoint=settings.endpoint,
                                       conf_level=settings.conf_level, conf_type=settings.conf_type,
                                       landmark_months=mark.months if mark is not None else float("nan"))
    # a top feature can fall below the prevalence filter over all subjects: say so, keep the row
    missing = [f for f in top["feature"] if f not in values.columns]
    if missing:
        table = pd.concat([table, pd.DataFrame({
            "endpoint": settings.endpoint, "feature": missing,
            "note": "below models.min_prevalence over all subjects: not tested"})], ignore_index=True)
    context = top.set_index("feature")[["rank", "block"]]
    table["feature_set"] = best["feature_set"]
    table["model"] = best["model"]
    table["rank"] = context["rank"].reindex(table["feature"]).to_numpy()
    table["block"] = context["block"].reindex(table["feature"]).to_numpy()
    table["annotation"] = feature_annotations(annotations, table["block"], table["feature"])
    return {"survival": table.sort_values("rank", kind="stable")[SURVIVAL_COLUMNS], "curves": curves}
