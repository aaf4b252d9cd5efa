"""Feature sets for responder models: one row per subject (or per sample), blocks of raw values.

A feature set (one entry of the config's ``models.feature_sets``) names omics blocks
(modality keys), a view and optional clinical covariates:

* ``view: <timepoint>`` (e.g. ``baseline``): each block's values at that timepoint,
  one row per subject with a sample in every block;
* ``view: change``: each block's values before and after treatment side by side
  (the contrast's ``pre`` and ``post``); the pipeline turns them into the
  within-subject change on the modality's transformed scale, post - pre;
* ``view: samples``: one row per sample at each of ``timepoints``; a subject then
  has several rows and the cross-validation keeps them in one fold.

The values stay on the scale of the analysis tables (fractions, log2 intensities,
percentages): the per-sample transforms and every filter run inside the CV folds
(:mod:`gutaxis.models.pipeline`). Subjects left out (not evaluable, no sample, no
label) are listed with the reason; too few subjects per class stops with an
:class:`~gutaxis.io.errors.InputError` naming the file, the column and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gutaxis.clinical.checks import NON_RESPONDER, RESPONDER
from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.settings import with_overrides
from gutaxis.io.tables import as_numbers
from gutaxis.models.landmark import Landmark, sample_months, set_landmark
from gutaxis.models.pipeline import NAME_SEPARATOR, Block

if TYPE_CHECKING:  # fit imports this module
    from gutaxis.models.fit import CVSettings

CLINICAL_BLOCK = "clinical"
VIEWS_SPECIAL = ("change", "samples")
EXCLUSION_COLUMNS = ["feature_set", "subject_id", "reason"]
#: modality units whose logit divides by 100
PERCENT_UNITS = ("percent_of_parent", "percent")


@dataclass
class ModelData:
    """One feature set ready for cross-validation.

    Attributes
    ----------
    name : str
    X : ndarray, shape (n_rows, n_columns)
        Raw block values side by side (see :class:`~gutaxis.models.pipeline.Block`).
    y : ndarray of int
        1 = responder, 0 = non-responder (empty for unlabelled data).
    rows : DataFrame
        ``subject_id, cohort, timepoint, label`` per row (``timepoint`` is the view's
        timepoint, or the contrast ``pre->post`` for change rows).
    blocks : list of Block
    combine : {"concatenate", "stack"}
    view : str
    excluded : DataFrame
        ``feature_set, subject_id, reason`` of every subject not modelled.
    landmark : Landmark or None
        The landmark of an on-treatment feature set (None for pre-treatment sets).
    validation_groups : ndarray or None
        The ``models.validation.group`` value of each row (grouped or external
        validation), None for stratified cross-validation.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    rows: pd.DataFrame
    blocks: list
    combine: str
    view: str
    excluded: pd.DataFrame
    landmark: Landmark | None = None
    validation_groups: np.ndarray | None = None

    @property
    def on_treatment(self) -> bool:
        return self.landmark is not None

    @property
    def view_label(self) -> str:
        """The view as outputs name it; an on-treatment view carries its landmark."""
        if self.landmark is None:
            return self.view
        return f"{self.view} (on-treatment; {self.landmark.label()})"

    @property
    def groups(self) -> np.ndarray:
        return self.rows["subject_id"].to_numpy()

    @property
    def grouped(self) -> bool:
        """True when some subject has more than one row (folds must keep them together)."""
        return bool(self.rows["subject_id"].duplicated().any())

    @property
    def n_features(self) -> int:
        return int(sum(len(b.features) for b in self.blocks))


# --------------------------------------------------------------------------- labels


def responder_codes(responders: pd.DataFrame, label: str, *,
                    file: str = "results/clinical/responders.tsv") -> pd.Series:
    """0/1 label per subject (NaN = not evaluable) from the responders table.

    Raises
    ------
    InputError
        The column is absent or holds values other than responder / non_responder / empty.
    """
    if label not in responders.columns:
        choices = [c for c in responders.columns if c not in ("subject_id", "cohort")]
        raise InputError(Problem(file, f"column '{label}'", "no such responder definition",
                                 f"set models.label to one of {', '.join(choices)}"))
    values = responders[label].fillna("").astype(str).str.strip()
    bad = sorted(set(values) - {RESPONDER, NON_RESPONDER, ""})
    if bad:
        raise InputError(Problem(file, f"column '{label}'", f"unexpected value(s) {bad}",
                                 "rerun the clinical_responders rule; values must be responder, "
                                 "non_responder or empty"))
    codes = values.map({RESPONDER: 1.0, NON_RESPONDER: 0.0, "": np.nan})
    return pd.Series(codes.to_numpy(), index=responders["subject_id"].astype(str), name=label)


# --------------------------------------------------------------------------- sample lookup


def _sample_grid(samples: pd.DataFrame, table: pd.DataFrame, modality: str) -> pd.DataFrame:
    """subject x timepoint -> sample id for the samples of one table."""
    sheet = samples[["sample_id", "subject_id", "timepoint"]].astype(str)
    sheet = sheet[sheet["sample_id"].isin(table.index.astype(str)) & (sheet["subject_id"] != "")]
    clash = sheet[sheet.duplicated(["subject_id", "timepoint"], keep=False)]
    if len(clash):
        first = clash.iloc[0]
        raise InputError(Problem(modality, f"subject {first['subject_id']}, timepoint {first['timepoint']}",
                                 f"{int((clash['subject_id'] == first['subject_id']).sum())} samples at one "
                                 "subject and timepoint",
                                 "resolve duplicates (design.duplicates) before modelling"))
    return sheet.pivot(index="subject_id", columns="timepoint", values="sample_id")


def _logit_scale(modality_config: dict) -> float:
    units = str(modality_config.get("options", {}).get("units", "fraction"))
    return 100.0 if units in PERCENT_UNITS else 1.0


def _model_transform(modality_config: dict) -> str:
    transform = str(modality_config.get("transform", "none"))
    # models need complete data: rclr's zeros-as-missing becomes the clr of a sub-composition
    return "clr" if transform == "rclr" else transform


def _clinical_columns(subjects: pd.DataFrame, columns, cohorts, feature_set: str):
    """Numeric covariates as they are, categorical ones one-hot (missing = all zero)."""
    problems = ProblemCollector()
    missing = [c for c in columns if c not in subjects.columns]
    for column in missing:
        problems.add("config", f"key 'models.feature_sets.{feature_set}.clinical'",
                     f"column '{column}' is not in the subjects table",
                     f"use columns of subjects.tsv ({', '.join(subjects.columns[:12])} ...)")
    problems.raise_if_any()
    out = {}
    for column in columns:
        raw = subjects[column].fillna("").astype(str).str.strip()
        numbers = as_numbers(raw)
        if numbers is not None:
            out[column] = numbers.to_numpy(dtype=float)
            continue
        present = sorted(set(raw) - {""})
        levels = ([c for c in cohorts if c in present] + [c for c in present if c not in cohorts]
                  if column == "cohort" else present)
        for level in levels:
            out[f"{column}={level}"] = (raw == level).to_numpy(dtype=float)
    return pd.DataFrame(out, index=subjects["subject_id"].astype(str).to_numpy())


def view_timepoints(spec: dict, baseline: str, contrasts: list) -> list[str]:
    """The timepoints a feature set's rows are taken from: the view's timepoint, the listed
    ``timepoints`` of a ``samples`` view, or the pre and post of a ``change`` view's contrast."""
    view = str(spec.get("view", "baseline"))
    if view == "baseline":
        return [baseline]
    if view == "samples":
        return [str(t) for t in (spec.get("timepoints") or [baseline])]
    if view == "change":
        chosen = spec.get("contrast") or (contrasts[0]["name"] if contrasts else "")
        return [str(t) for c in contrasts if c["name"] == chosen for t in (c["pre"], c["post"])]
    return [view]


def on_treatment_timepoints(spec: dict, baseline: str, contrasts: list) -> list[str]:
    """The timepoints of a feature set after treatment start (all but the baseline)."""
    return [t for t in view_timepoints(spec, baseline, contrasts) if t != baseline]


def feature_set_landmark(spec: dict, tables: dict, samples: pd.DataFrame, subjects: pd.DataFrame,
                         rows: pd.DataFrame, *, baseline: str, contrasts: list,
                         settings: dict | None) -> Landmark | None:
    """The landmark of an on-treatment feature set (None for a pre-treatment set or without
    ``settings``): from the on-treatment samples of its rows (every block's), checked
    against ``settings["time"]`` / ``settings["event"]`` (:func:`gutaxis.models.landmark.set_landmark`).
    """
    later = on_treatment_timepoints(spec, baseline, contrasts)
    if not later or settings is None:
        return None
    wanted = rows["subject_id"].astype(str).unique()
    sheet = samples[["sample_id", "subject_id", "timepoint"]].astype(str)
    in_blocks = set().union(*(set(tables[m].index.astype(str)) for m in spec.get("blocks", [])
                              if m in tables)) if spec.get("blocks") else set(sheet["sample_id"])
    used = sheet[sheet["subject_id"].isin(wanted) & sheet["timepoint"].isin(later)
                 & sheet["sample_id"].isin(in_blocks)]
    missing = [c for c in (settings["time"], settings["event"]) if c not in subjects.columns]
    if missing:
        return Landmark(np.nan, "", pd.DataFrame(columns=["subject_id", "reason"]))
    return set_landmark(sample_months(samples, subjects), used, subjects, time_column=settings["time"],
                        event_column=settings["event"], months=settings.get("months", "auto"))


def assemble_rows(name: str, spec: dict, tables: dict, samples: pd.DataFrame, subjects: pd.DataFrame,
                  modalities: dict, *, baseline: str, contrasts: list, cohorts=(),
                  subject_ids=None) -> tuple[np.ndarray, pd.DataFrame, list, pd.DataFrame]:
    """Rows and raw block columns of one feature set, independent of any label.

    Parameters
    ----------
    name : str
        Feature-set name (for messages).
    spec : dict
        ``blocks`` (modality keys), ``view``, ``timepoints`` (for ``samples``),
        ``contrast`` (for ``change``; "" = the first of ``contrasts``), ``clinical``
        (subjects-table columns).
    tables : dict
        Modality -> samples x features table (the analysis table).
    samples, subjects : DataFrame
        The checked sample sheet and subjects table.
    modalities : dict
        The config's ``modalities`` (transform and units of each block).
    baseline : str
        ``design.baseline`` (the view ``baseline`` means this timepoint).
    contrasts : list of dict
        ``design.contrasts`` (name, pre, post).
    cohorts : sequence of str
        Cohort order for the one-hot columns.
    subject_ids : iterable of str, optional
        Candidate subjects (default: every subject of the subjects table).

    Returns
    -------
    X, rows, blocks, excluded
    """
    blocks_wanted = list(spec.get("blocks", []))
    clinical = list(spec.get("clinical", []))
    view = str(spec.get("view", "baseline"))
    problems = ProblemCollector()
    where = f"key 'models.feature_sets.{name}'"
    if not blocks_wanted and not clinical:
        problems.add("config", where, "the feature set has neither blocks nor clinical covariates",
                     "list modalities under blocks and/or subjects-table columns under clinical")
    for modality in blocks_wanted:
        if modality not in tables:
            problems.add("config", where + ".blocks", f"'{modality}' is not a configured modality",
                         f"use one of {', '.join(sorted(modalities))}")
        elif NAME_SEPARATOR in modality:
            problems.add("config", f"key 'modalities.{modality}'", f"a modality used in models may not "
                         f"contain '{NAME_SEPARATOR}'", "rename the modality")
    if view == "change":
        chosen = spec.get("contrast") or (contrasts[0]["name"] if contrasts else "")
        match = [c for c in contrasts if c["name"] == chosen]
        if not match:
            problems.add("config", where + ".contrast", f"no contrast named '{chosen}'",
                         "name one of design.contrasts")
        else:
            pre, post = match[0]["pre"], match[0]["post"]
    problems.raise_if_any()

    timepoint = baseline if view == "baseline" else view
    candidates = sorted(set(subjects["subject_id"].astype(str)) if subject_ids is None
                        else {str(s) for s in subject_ids})
    grids = {m: _sample_grid(samples, tables[m], m) for m in blocks_wanted}
    if view == "samples":
        timepoints = list(spec.get("timepoints") or [baseline])
        units = [(s, tp) for s in candidates for tp in timepoints]
    elif view == "change":
        units = [(s, f"{pre}->{post}") for s in candidates]
    else:
        units = [(s, timepoint) for s in candidates]

    def sample_at(modality, subject, tp):
        grid = grids[modality]
        if subject in grid.index and tp in grid.columns and isinstance(grid.at[subject, tp], str):
            return grid.at[subject, tp]
        return None

    kept, missing_reason = [], {}
    for subject, tp in units:
        reasons = []
        for modality in blocks_wanted:
            needed = (pre, post) if view == "change" else (tp,)
            for t in needed:
                if sample_at(modality, subject, t) is None:
                    reasons.append(f"no {modality} sample at {t}")
        if reasons:
            missing_reason.setdefault(subject, []).extend(reasons)
        else:
            kept.append((subject, tp))
    kept_subjects = {s for s, _ in kept}
    excluded = pd.DataFrame(
        [(name, s, "; ".join(r)) for s, r in sorted(missing_reason.items()) if s not in kept_subjects],
        columns=EXCLUSION_COLUMNS)

    rows = pd.DataFrame(kept, columns=["subject_id", "timepoint"])
    cohort_of = subjects.set_index(subjects["subject_id"].astype(str))["cohort"].astype(str)
    rows.insert(1, "cohort", cohort_of.reindex(rows["subject_id"]).to_numpy())
    pieces, blocks, start = [], [], 0
    for modality in blocks_wanted:
        table = tables[modality]
        features = tuple(str(c) for c in table.columns)
        config = modalities[modality]
        transform = _model_transform(config)
        scale = _logit_scale(config)
        if view == "change":
            ids_pre = [sample_at(modality, s, pre) for s in rows["subject_id"]]
            ids_post = [sample_at(modality, s, post) for s in rows["subject_id"]]
            values = np.hstack([table.loc[ids_pre].to_numpy(dtype=float),
                                table.loc[ids_post].to_numpy(dtype=float)])
            layout = "change"
        else:
            ids = [sample_at(modality, s, tp) for s, tp in zip(rows["subject_id"], rows["timepoint"])]
            values = table.loc[ids].to_numpy(dtype=float).reshape(len(ids), len(features))
            layout = "level"
        if transform == "logit" and np.nanmax(values, initial=0.0) > scale:
            raise InputError(Problem(modality, "values", f"values above {scale:g} cannot be proportions",
                                     f"set modalities.{modality}.options.units to match the table"))
        blocks.append(Block(modality, modality, "omics", tuple(range(start, start + values.shape[1])),
                            features, transform, layout, scale))
        pieces.append(values)
        start += values.shape[1]
    if clinical:
        covariates = _clinical_columns(subjects, clinical, cohorts, name)
        values = covariates.reindex(rows["subject_id"]).to_numpy(dtype=float)
        blocks.append(Block(CLINICAL_BLOCK, CLINICAL_BLOCK, "clinical",
                            tuple(range(start, start + values.shape[1])), tuple(covariates.columns)))
        pieces.append(values)
    X = np.hstack(pieces) if pieces else np.empty((len(rows), 0))
    return X, rows, blocks, excluded


@dataclass(frozen=True)
class ModelDataSettings:
    """What :func:`build_model_data` takes from the config besides the feature set itself.

    Attributes
    ----------
    label : str
        Column of the responders table to predict (``models.label``).
    modalities, baseline, contrasts, cohorts
        The config's ``modalities`` and ``design``, as :func:`assemble_rows` takes them.
    min_per_class : int
        Fewest subjects of each class the feature set may have.
    min_folds : int
        Outer folds; each class needs at least this many subjects.
    responders_file : str
        How messages name the responders table.
    landmark : dict or None
        ``months`` ("auto" or a number), ``time``, ``event`` (the survival endpoint's
        columns): an on-treatment feature set keeps only the subjects event-free and under
        follow-up at its landmark (:func:`feature_set_landmark`); the others are excluded
        with the reason.
    validation_group : str
        Subjects-table column of grouped or external validation ("" = none): its value
        per row goes to ``validation_groups``; subjects without one are excluded.
    """

    label: str = ""
    modalities: dict = field(default_factory=dict)
    baseline: str = "baseline"
    contrasts: list = field(default_factory=list)
    cohorts: tuple = ()
    min_per_class: int = 8
    min_folds: int = 2
    responders_file: str = "results/clinical/responders.tsv"
    landmark: dict | None = None
    validation_group: str = ""

    @classmethod
    def from_config(cls, models: dict, cv: CVSettings, *, label: str, modalities: dict, baseline: str,
                    contrasts: list, cohorts=()) -> ModelDataSettings:
        """From the config's ``models`` section (``min_per_class``, ``landmark_months``,
        ``survival``, ``validation.group``), its outer cross-validation ``cv`` and the design.

        Each class needs as many subjects as there are stratified outer folds; leave-one-out
        and grouped or external validation (whose groups are ``validation.group``) set no such
        floor.
        """
        fixed_splits = cv.loo or cv.validation != "stratified"
        survival = models["survival"]
        return cls(label=label, modalities=modalities, baseline=baseline, contrasts=contrasts, cohorts=cohorts,
                   min_per_class=models["min_per_class"], min_folds=0 if fixed_splits else int(cv.outer_folds),
                   landmark={"months": models["landmark_months"], "time": survival["time"],
                             "event": survival["event"]},
                   validation_group=models["validation"]["group"] if cv.validation != "stratified" else "")


def build_model_data(name: str, spec: dict, tables: dict, samples: pd.DataFrame, subjects: pd.DataFrame,
                     responders: pd.DataFrame, label: str | None = None, modalities: dict | None = None,
                     settings: ModelDataSettings | None = None, **overrides) -> ModelData:
    """A labelled feature set: subjects with a responder label and every block's samples.

    Parameters
    ----------
    name, spec, tables, samples, subjects
        As in :func:`assemble_rows`.
    responders : DataFrame
        ``results/clinical/responders.tsv``.
    label, modalities : optional
        :attr:`ModelDataSettings.label` and :attr:`ModelDataSettings.modalities`, given
        here instead of in ``settings``.
    settings : ModelDataSettings, optional
        Label, design, class sizes, landmark and validation group.
    **overrides
        Fields of :class:`ModelDataSettings` replacing those of ``settings``
        (e.g. ``baseline="baseline", min_per_class=3``).

    Raises
    ------
    InputError
        No matched subject, or fewer than ``max(min_per_class, min_folds)``
        subjects in a class.
    """
    given = {key: value for key, value in (("label", label), ("modalities", modalities)) if value is not None}
    settings = with_overrides(settings, ModelDataSettings, given | overrides)
    label, responders_file, validation_group = settings.label, settings.responders_file, settings.validation_group
    codes = responder_codes(responders, label, file=responders_file)
    not_evaluable = sorted(codes.index[codes.isna()])
    labelled = codes.dropna()
    X, rows, blocks, excluded = assemble_rows(
        name, spec, tables, samples, subjects, settings.modalities, baseline=settings.baseline,
        contrasts=settings.contrasts, cohorts=settings.cohorts, subject_ids=labelled.index)
    unlabelled = sorted(set(subjects["subject_id"].astype(str)) - set(codes.index))
    extra = pd.DataFrame(
        [(name, s, "response not evaluable (no label)") for s in not_evaluable]
        + [(name, s, "not in the responders table") for s in unlabelled],
        columns=EXCLUSION_COLUMNS)
    excluded = pd.concat([extra, excluded], ignore_index=True).sort_values(
        ["subject_id", "reason"], kind="stable", ignore_index=True)
    where = f"column '{label}', feature set '{name}'"
    if rows.empty:
        raise InputError(Problem(responders_file, where,
                                 "no subject has a responder label and samples in every block "
                                 f"({', '.join(spec.get('blocks', [])) or 'clinical'})",
                                 "check the blocks and view of the feature set, or remove it from "
                                 "models.feature_sets"))
    mark = feature_set_landmark(spec, tables, samples, subjects, rows, baseline=settings.baseline,
                                contrasts=settings.contrasts, settings=settings.landmark)
    drop = pd.DataFrame(columns=["subject_id", "reason"])
    if mark is not None and mark.applied:
        drop = mark.excluded
    groups = None
    if validation_group:
        if validation_group not in subjects.columns:
            raise InputError(Problem("config", "key 'models.validation.group'",
                                     f"column '{validation_group}' is not in the subjects table",
                                     "name a subjects-table column (cohort, study ...)"))
        group_of = subjects.drop_duplicates("subject_id").set_index(
            subjects.drop_duplicates("subject_id")["subject_id"].astype(str))[validation_group].astype(str)
        no_group = rows.loc[group_of.reindex(rows["subject_id"]).fillna("").to_numpy() == "", "subject_id"]
        drop = pd.concat([drop, pd.DataFrame({"subject_id": no_group.unique(),
                                              "reason": f"no value in column '{validation_group}' "
                                                        "(models.validation.group)"})],
                         ignore_index=True)
    if len(drop):
        keep = ~rows["subject_id"].astype(str).isin(drop["subject_id"].astype(str)).to_numpy()
        X, rows = X[keep], rows[keep].reset_index(drop=True)
        excluded = pd.concat([excluded, drop.assign(feature_set=name)[EXCLUSION_COLUMNS]],
                             ignore_index=True).sort_values(["subject_id", "reason"], kind="stable",
                                                            ignore_index=True)
    if validation_group:
        groups = group_of.reindex(rows["subject_id"].astype(str)).to_numpy(dtype=object)
    y = labelled.reindex(rows["subject_id"]).to_numpy().astype(int)
    rows["label"] = np.where(y == 1, RESPONDER, NON_RESPONDER)
    per_subject = rows.drop_duplicates("subject_id")["label"].value_counts()
    min_per_class, min_folds = settings.min_per_class, settings.min_folds
    needed = max(int(min_per_class), int(min_folds))
    problems = ProblemCollector()
    for cls in (RESPONDER, NON_RESPONDER):
        n = int(per_subject.get(cls, 0))
        if n < needed:
            problems.add(responders_file, where,
                         f"only {n} {cls} subject(s) with samples in every block; at least {needed} "
                         f"are needed (models.min_per_class = {min_per_class}, outer folds = {min_folds})",
                         "lower models.min_per_class or models.outer_folds, choose another label "
                         "(models.label) or remove the feature set")
    problems.raise_if_any()
    return ModelData(name, X, y, rows, blocks, str(spec.get("combine", "concatenate")),
                     str(spec.get("view", "baseline")), excluded, mark, groups)
