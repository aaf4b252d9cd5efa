"""Nested cross-validation of responder models, its performance, a label-permutation test
and feature stability across folds.

The outer loop repeats a stratified K-fold split (grouped by subject when a subject
has several rows; leave-one-out allowed); inside each outer training fold the whole
learner of :func:`gutaxis.models.pipeline.build_estimator` (per-sample transforms,
prevalence/variance filters, univariate selection, scaling, hyperparameter search on
inner folds, the classifier) is fitted, and the held-out rows are predicted once. The
out-of-fold probabilities of each repeat give AUROC, AUPRC, balanced accuracy and the
Brier score; their spread over repeats is the split-to-split variability, and
DeLong's interval of the repeat-averaged probabilities adds the sampling uncertainty.

The permutation test re-runs the entire nested procedure on responder labels permuted
across subjects (Ojala & Garriga 2010, test 1): :math:`p = (1 + \\#\\{T^*_b \\ge T\\})
/ (B + 1)`, the smallest attainable p being :math:`1/(B+1)`. Its statistic ``T`` is the
mean AUROC over the first ``permutation_repeats`` outer repeats, computed identically
for the observed and the permuted labels (so the test is exact for that statistic).

Every random choice (fold splits, label permutations, forests, solvers) takes a seed
derived from the config seed and the repeat/fold/permutation number, and results are
gathered in task order, so the tables are byte-identical whatever ``n_jobs``.

References
----------
Varma S, Simon R (2006) BMC Bioinformatics 7:91 (nested CV).
Ojala M, Garriga GC (2010) Permutation tests for studying classifier performance.
JMLR 11:1833-1863.
Meinshausen N, Buehlmann P (2010) Stability selection. JRSS B 72:417-473 (selection
frequency across resamples).
Breiman L (2001) Random forests. Machine Learning 45:5-32 (permutation importance).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import (LeaveOneGroupOut, LeaveOneOut, StratifiedGroupKFold,
                                     StratifiedKFold)
from sklearn import config_context
from threadpoolctl import threadpool_limits

# the config helpers live apart so that parsing the workflow does not import scikit-learn
from gutaxis.models.config import (DEFAULT_SET, MODEL_KINDS, config_problems,  # noqa: F401
                                  feature_sets_from_config, label_column, set_estimators)
from gutaxis.metabolome.structure import without_unmeasured
from gutaxis.models.features import (ModelData, ModelDataSettings, NON_RESPONDER, RESPONDER, build_model_data,
                                     view_timepoints)
from gutaxis.models.metrics import (REPEAT_METRICS, auroc, delong_interval, repeat_metrics,
                                   summarise_repeats)
from gutaxis.models.pipeline import (InnerSearchCV, PipelineOptions, build_estimator,
                                    column_features, output_features)

PREDICTION_COLUMNS = ["feature_set", "model", "repeat", "fold", "subject_id", "cohort", "timepoint",
                      "validation_group", "label", "probability"]
FOLD_FEATURE_COLUMNS = ["repeat", "fold", "block", "feature", "coef", "selected", "impurity",
                        "importance"]
FEATURE_COLUMNS = [
    "feature_set", "model", "block", "feature", "n_fits", "filter_frequency", "selection_frequency",
    "n_positive", "n_negative", "sign_stability", "direction", "mean_coef", "mean_coef_selected",
    "importance_mean", "importance_sd", "impurity_mean", "rank",
]
PERFORMANCE_COLUMNS = [
    "feature_set", "model", "view", "blocks", "combine", "n_subjects", "n_rows", "n_responders",
    "n_non_responders", "n_excluded", "n_features", "outer_folds", "outer_repeats", "inner_folds",
    "auroc_mean", "auroc_sd", "auroc_low", "auroc_high", "auroc_pooled", "auroc_se",
    "auroc_delong_low", "auroc_delong_high", "auprc_mean", "auprc_low", "auprc_high",
    "auprc_baseline", "balanced_accuracy_mean", "balanced_accuracy_low", "balanced_accuracy_high",
    "brier_mean", "brier_low", "brier_high", "brier_baseline", "perm_statistic", "perm_repeats",
    "n_permutations", "perm_null_mean", "perm_p_value", "perm_min_p", "best_params",
    "validation", "n_groups", "auroc_group_mean", "auroc_group_sd", "on_treatment",
    "landmark_months", "n_before_landmark",
]
GROUP_COLUMNS = ["feature_set", "model", "validation", "group", "n_subjects", "n_responders",
                 "n_non_responders", "auroc", "auroc_se", "auroc_low", "auroc_high", "note"]
PERMUTATION_COLUMNS = ["feature_set", "model", "permutation", "auroc"]
FOLD_COLUMNS = ["feature_set", "model", "repeat", "fold", "best_params"]

log = logging.getLogger("gutaxis.models")


@dataclass(frozen=True)
class CVSettings:
    """Cross-validation settings (the config's ``models`` section).

    ``outer_folds`` is an integer >= 2 or ``"loo"`` (leave one subject out; one
    repeat). ``importance_repeats`` is the number of column permutations of the
    forest's permutation importance on each outer test fold.
    """

    outer_folds: int | str = 5
    outer_repeats: int = 10
    inner_folds: int = 3
    seed: int = 0
    importance_repeats: int = 5
    conf_level: float = 0.95
    n_jobs: int = 1
    #: stratified (repeated K-fold), leave_one_group_out or external (models.validation)
    validation: str = "stratified"
    #: external validation: the group values trained on, and tested on (empty = the rest)
    train_groups: tuple = ()
    test_groups: tuple = ()

    @property
    def loo(self) -> bool:
        return str(self.outer_folds).lower() == "loo"

    @property
    def repeats(self) -> int:
        """Outer repeats: one for leave-one-out and for the fixed grouped / external splits."""
        return 1 if self.loo or self.validation != "stratified" else int(self.outer_repeats)


def derive_seed(*keys: int) -> int:
    """A seed in [0, 2**31) determined by the integers ``keys`` (NumPy SeedSequence)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0] % (2 ** 31))


# stream identifiers mixed into derive_seed, so splits, fits and permutations never share seeds
_SPLIT, _FIT, _PERMUTE, _IMPORTANCE = 1, 2, 3, 4


VALIDATION_DESIGNS = ("stratified", "leave_one_group_out", "external")


def outer_splits(y, groups, settings: CVSettings, repeat: int, grouped: bool,
                 validation_groups=None) -> list:
    """Train/test index pairs of one outer repeat.

    ``stratified``: stratified K-fold (grouped by subject when a subject has several
    rows) or leave-one-out. ``leave_one_group_out``: one split per value of
    ``validation_groups`` (a cohort, a study), tested on that group after training on
    the others, in sorted order. ``external``: one split, trained on the rows whose group
    is in ``settings.train_groups`` and tested on those in ``settings.test_groups`` (all
    other rows when empty).
    """
    y = np.asarray(y)
    placeholder = np.zeros((y.size, 1))
    if settings.validation == "leave_one_group_out":
        values = np.asarray(validation_groups, dtype=str)
        return [(np.flatnonzero(values != g), np.flatnonzero(values == g)) for g in np.unique(values)]
    if settings.validation == "external":
        values = np.asarray(validation_groups, dtype=str)
        train = np.isin(values, [str(g) for g in settings.train_groups])
        test = (np.isin(values, [str(g) for g in settings.test_groups]) if settings.test_groups
                else ~train)
        return [(np.flatnonzero(train), np.flatnonzero(test))]
    if settings.loo:
        if grouped:
            return list(LeaveOneGroupOut().split(placeholder, y, groups))
        return list(LeaveOneOut().split(placeholder, y))
    seed = derive_seed(settings.seed, _SPLIT, repeat)
    if grouped:
        splitter = StratifiedGroupKFold(int(settings.outer_folds), shuffle=True, random_state=seed)
    else:
        splitter = StratifiedKFold(int(settings.outer_folds), shuffle=True, random_state=seed)
    return list(splitter.split(placeholder, y, *([groups] if grouped else [])))


def permuted_labels(y, groups, seed: int, index: int, strata=None) -> np.ndarray:
    """Responder labels permuted across subjects (rows of one subject keep one label).

    With ``strata`` (the validation group of each row: cohort, study) labels are permuted
    within each stratum only, so every group keeps its own response rate and the null
    is that of a classifier without signal *within* groups.
    """
    y = np.asarray(y)
    subjects, first, inverse = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    rng = np.random.default_rng(derive_seed(seed, _PERMUTE, index))
    if strata is None:
        return y[first][rng.permutation(subjects.size)][inverse]
    labels = y[first].copy()
    subject_strata = np.asarray(strata, dtype=str)[first]
    order = np.arange(subjects.size)
    for value in np.unique(subject_strata):
        members = np.flatnonzero(subject_strata == value)
        order[members] = members[rng.permutation(members.size)]
    return labels[order][inverse]


# --------------------------------------------------------------------------- one outer fold


def permutation_importance_auroc(model, X, y, repeats: int, rng, max_rows: int = 200_000):
    """Drop in test-fold AUROC when one feature's column is permuted (mean and SD over repeats).

    All permuted copies are scored in a few large ``predict_proba`` calls (chunked
    over features to bound memory) instead of one call per feature.

    Returns
    -------
    (mean, sd) : ndarrays of shape (n_features,); NaN when the fold lacks a class.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    n, p = X.shape
    if p == 0 or y.all() or not y.any() or repeats < 1:
        return np.full(p, np.nan), np.full(p, np.nan)
    base = auroc(y, model.predict_proba(X)[:, 1])
    orders = np.vstack([rng.permutation(n) for _ in range(repeats)])  # (R, n)
    shuffled = X[orders]  # (R, n, p): each repeat's row order applied to every column
    drops = np.empty((p, repeats))
    step = max(1, max_rows // (repeats * n))
    for begin in range(0, p, step):
        cols = np.arange(begin, min(p, begin + step))
        big = np.broadcast_to(X, (cols.size, repeats, n, p)).copy()
        big[np.arange(cols.size), :, :, cols] = shuffled[:, :, cols].transpose(2, 0, 1)
        proba = model.predict_proba(big.reshape(-1, p))[:, 1].reshape(cols.size * repeats, n)
        drops[cols] = (base - auroc(y, proba.T)).reshape(cols.size, repeats)
    sd = drops.std(axis=1, ddof=1) if repeats > 1 else np.full(p, np.nan)
    return drops.mean(axis=1), sd


def _describe_search(search: InnerSearchCV, lookup, X_test, y_test, importance_repeats, rng, prefix=""):
    pipe = search.best_estimator_
    names = pipe[:-1].get_feature_names_out()
    final = pipe[-1]
    pairs = output_features(names, lookup)
    blocks, features = zip(*pairs) if pairs else ((), ())
    frame = pd.DataFrame({"block": list(blocks), "feature": list(features)})
    if hasattr(final, "coef_"):
        coef = final.coef_[0]
        frame["coef"] = coef
        frame["selected"] = coef != 0
        frame["impurity"] = np.nan
        frame["importance"] = np.nan
    else:
        frame["coef"] = np.nan
        frame["impurity"] = final.feature_importances_
        frame["selected"] = final.feature_importances_ > 0
        if X_test is not None:
            mean, _ = permutation_importance_auroc(final, pipe[:-1].transform(X_test), y_test,
                                                   importance_repeats, rng)
            frame["importance"] = mean
        else:
            frame["importance"] = np.nan
    params = ",".join(f"{prefix}{k.split('__', 1)[-1]}={v}" for k, v in sorted(search.best_params_.items()))
    return frame, params


def describe_fit(estimator, blocks, X_test, y_test, importance_repeats: int, seed: int):
    """Per-feature coefficients / importances of one fitted outer-fold learner, and its params."""
    rng = np.random.default_rng(seed)
    lookup = column_features(blocks)
    if isinstance(estimator, InnerSearchCV):
        return _describe_search(estimator, lookup, X_test, y_test, importance_repeats, rng)
    frames, params = [], []
    for name, base in estimator.searches_:
        frame, text = _describe_search(base, lookup, None, None, 0, rng, prefix=f"{name}:")
        frames.append(frame)
        params.append(text)
    weights = estimator.meta_.coef_[0]
    frames.append(pd.DataFrame({"block": "stack", "feature": [name for name, _ in estimator.searches_],
                                "coef": weights, "selected": weights != 0, "impurity": np.nan,
                                "importance": np.nan}))
    return pd.concat(frames, ignore_index=True), ";".join(params)


@dataclass(frozen=True, eq=False)
class FitProblem:
    """One estimator on one feature set: what every outer fit and permutation task needs.

    Attributes
    ----------
    X, y, groups : ndarray
        Raw block values, 0/1 labels and the subject of each row.
    blocks : list of Block
        The column blocks of ``X``.
    combine : {"concatenate", "stack"}
        How the blocks enter the model.
    grouped : bool
        Some subject has several rows (folds keep them together).
    validation_groups : ndarray or None
        Each row's validation group (grouped or external validation).
    model : str
        The estimator.
    options : PipelineOptions
        Filters, selection size and hyperparameter grids.
    settings : CVSettings
        Folds, repeats, seed.
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    blocks: list
    combine: str
    grouped: bool
    validation_groups: np.ndarray | None
    model: str
    options: PipelineOptions
    settings: CVSettings

    @classmethod
    def from_data(cls, data: ModelData, model: str, options: PipelineOptions, settings: CVSettings) -> FitProblem:
        """The problem of ``model`` on the feature set ``data``."""
        return cls(data.X, data.y, data.groups, data.blocks, data.combine, data.grouped,
                   data.validation_groups, model, options, settings)

    def splits(self, y, repeat: int) -> list:
        """The outer train/test splits of ``repeat`` for the labels ``y``."""
        return outer_splits(y, self.groups, self.settings, repeat, self.grouped, self.validation_groups)


def _fit_predict(problem: FitProblem, y, train, test, fit_seed: int):
    """The learner fitted on the ``train`` rows (labels ``y``) and its probabilities on ``test``."""
    estimator = build_estimator(problem.blocks, problem.model, problem.options, fit_seed,
                                problem.settings.inner_folds, problem.combine, problem.grouped)
    estimator.fit(problem.X[train], y[train], groups=problem.groups[train] if problem.grouped else None)
    return estimator, estimator.predict_proba(problem.X[test])[:, 1]


def _quiet_fast():
    """One BLAS thread (same floating-point sums whatever n_jobs); no re-validation of the
    parameters this module built itself nor of finiteness (the block transformers impute every
    missing value before an estimator sees the data): at a few dozen rows these checks are a
    large share of each fit's cost."""
    stack = ExitStack()
    stack.enter_context(threadpool_limits(limits=1))
    stack.enter_context(config_context(skip_parameter_validation=True, assume_finite=True))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore", ConvergenceWarning)
    return stack


def _outer_fold_task(problem: FitProblem, train, test, repeat: int, fold: int):
    settings = problem.settings
    with _quiet_fast():
        fit_seed = derive_seed(settings.seed, _FIT, repeat, fold)
        estimator, proba = _fit_predict(problem, problem.y, train, test, fit_seed)
        frame, params = describe_fit(estimator, problem.blocks, problem.X[test], problem.y[test],
                                     settings.importance_repeats,
                                     derive_seed(settings.seed, _IMPORTANCE, repeat, fold))
    frame.insert(0, "fold", fold)
    frame.insert(0, "repeat", repeat)
    return proba, frame, params


def _subject_scores(y, groups, proba):
    """Average the probabilities of each subject's rows (one score per subject)."""
    frame = pd.DataFrame({"g": groups, "y": y, "p": proba})
    mean = frame.groupby("g", sort=True).agg(y=("y", "first"), p=("p", "mean"))
    return mean["y"].to_numpy(), mean["p"].to_numpy()


def _permutation_task(problem: FitProblem, index: int, repeats: int) -> float:
    """The permutation statistic of label permutation ``index``: the whole nested CV re-run."""
    seed, groups = problem.settings.seed, problem.groups
    y_perm = permuted_labels(problem.y, groups, seed, index, strata=problem.validation_groups)
    values = []
    with _quiet_fast():
        for repeat in range(repeats):
            proba = np.full(y_perm.size, np.nan)
            for fold, (train, test) in enumerate(problem.splits(y_perm, repeat)):
                _, proba[test] = _fit_predict(problem, y_perm, train, test, derive_seed(seed, _FIT, repeat, fold))
            tested = ~np.isnan(proba)  # external validation predicts the test rows only
            values.append(auroc(*_subject_scores(y_perm[tested], groups[tested], proba[tested])))
    return float(np.mean(values))


# --------------------------------------------------------------------------- nested CV


@dataclass
class NestedCVResult:
    """Everything one (feature set, model) nested CV produced.

    Attributes
    ----------
    predictions : DataFrame
        :data:`PREDICTION_COLUMNS`, one row per repeat and data row (out-of-fold).
    repeats : DataFrame
        ``repeat`` + :data:`~gutaxis.models.metrics.REPEAT_METRICS` (subject level).
    fold_features : DataFrame
        :data:`FOLD_FEATURE_COLUMNS`: every feature reaching the classifier in each
        outer fit (passed the in-fold filters) with its coefficient / importance.
    params : DataFrame
        ``repeat, fold, best_params``.
    """

    data: ModelData
    model: str
    settings: CVSettings
    predictions: pd.DataFrame
    repeats: pd.DataFrame
    fold_features: pd.DataFrame
    params: pd.DataFrame

    @property
    def n_fits(self) -> int:
        return len(self.params)


def nested_cv(data: ModelData, model: str, options: PipelineOptions, settings: CVSettings
              ) -> NestedCVResult:
    """Repeated nested cross-validation of one model on one feature set.

    Parameters
    ----------
    data : ModelData
        From :func:`gutaxis.models.features.build_model_data`.
    model : {"l1_logistic", "elastic_net", "random_forest"}
    options : PipelineOptions
        Filters, selection size and hyperparameter grids.
    settings : CVSettings
        Folds, repeats, seed and ``n_jobs`` (outer folds run in parallel).

    Returns
    -------
    NestedCVResult
    """
    problem = FitProblem.from_data(data, model, options, settings)
    tasks = [(repeat, fold, train, test)
             for repeat in range(settings.repeats)
             for fold, (train, test) in enumerate(problem.splits(problem.y, repeat))]
    outputs = Parallel(n_jobs=settings.n_jobs, backend="loky")(
        delayed(_outer_fold_task)(problem, train, test, repeat, fold) for repeat, fold, train, test in tasks)
    predictions, frames, params = [], [], []
    for (repeat, fold, _, test), (proba, frame, text) in zip(tasks, outputs):
        part = data.rows.iloc[test][["subject_id", "cohort", "timepoint", "label"]].copy()
        part["validation_group"] = ("" if data.validation_groups is None
                                    else data.validation_groups[test])
        part.insert(0, "fold", fold)
        part.insert(0, "repeat", repeat)
        part["probability"] = proba
        predictions.append(part)
        frames.append(frame)
        params.append((repeat, fold, text))
    predictions = pd.concat(predictions, ignore_index=True)
    predictions.insert(0, "model", model)
    predictions.insert(0, "feature_set", data.name)
    predictions = predictions.sort_values(["repeat", "subject_id", "timepoint"], kind="stable",
                                          ignore_index=True)[PREDICTION_COLUMNS]
    per_repeat = []
    for repeat, part in predictions.groupby("repeat", sort=True):
        yy, pp = _subject_scores((part["label"] == RESPONDER).astype(int).to_numpy(),
                                 part["subject_id"].to_numpy(), part["probability"].to_numpy())
        per_repeat.append({"repeat": repeat, **repeat_metrics(yy, pp)})
    fold_features = pd.concat(frames, ignore_index=True)[FOLD_FEATURE_COLUMNS]
    return NestedCVResult(data, model, settings, predictions, pd.DataFrame(per_repeat), fold_features,
                          pd.DataFrame(params, columns=["repeat", "fold", "best_params"]))


def permutation_test(result: NestedCVResult, options: PipelineOptions, n_permutations: int,
                     repeats: int = 1) -> dict:
    """Label-permutation p value of the nested-CV AUROC (the whole procedure re-run per permutation).

    The statistic is the mean subject-level AUROC over the first ``repeats``
    outer repeats (same fold seeds for observed and permuted labels).

    Returns
    -------
    dict
        ``perm_statistic, perm_repeats, n_permutations, perm_null_mean,
        perm_p_value, perm_min_p`` and ``null`` (the permutation statistics).
    """
    data, settings = result.data, result.settings
    repeats = max(1, min(int(repeats), settings.repeats))
    observed = float(result.repeats.sort_values("repeat")["auroc"].iloc[:repeats].mean())
    empty = {"perm_statistic": observed, "perm_repeats": repeats, "n_permutations": 0,
             "perm_null_mean": np.nan, "perm_p_value": np.nan, "perm_min_p": np.nan,
             "null": np.empty(0)}
    if n_permutations < 1:
        return empty
    problem = FitProblem.from_data(data, result.model, options, settings)
    null = np.asarray(Parallel(n_jobs=settings.n_jobs, backend="loky")(
        delayed(_permutation_task)(problem, index, repeats) for index in range(n_permutations)), dtype=float)
    exceed = int(np.sum(null >= observed - 1e-12))
    return {"perm_statistic": observed, "perm_repeats": repeats, "n_permutations": int(n_permutations),
            "perm_null_mean": float(np.mean(null)),
            "perm_p_value": (1 + exceed) / (n_permutations + 1),
            "perm_min_p": 1.0 / (n_permutations + 1), "null": null}


# --------------------------------------------------------------------------- summaries


def performance_row(result: NestedCVResult, permutation: dict | None = None,
                    groups: pd.DataFrame | None = None) -> dict:
    """One row of ``performance.tsv`` (columns :data:`PERFORMANCE_COLUMNS`)."""
    data, settings = result.data, result.settings
    subjects = data.rows.drop_duplicates("subject_id")
    n_resp = int((subjects["label"] == RESPONDER).sum())
    n_non = int((subjects["label"] == NON_RESPONDER).sum())
    row = {
        "feature_set": data.name, "model": result.model, "view": data.view,
        "blocks": "+".join(b.name for b in data.blocks), "combine": data.combine,
        "n_subjects": len(subjects), "n_rows": len(data.rows), "n_responders": n_resp,
        "n_non_responders": n_non, "n_excluded": data.excluded["subject_id"].nunique(),
        "n_features": data.n_features, "outer_folds": str(settings.outer_folds),
        "outer_repeats": settings.repeats, "inner_folds": settings.inner_folds,
    }
    for metric in REPEAT_METRICS:
        mean, sd, low, high = summarise_repeats(result.repeats[metric], settings.conf_level)
        row[f"{metric}_mean"], row[f"{metric}_low"], row[f"{metric}_high"] = mean, low, high
        if metric == "auroc":
            row["auroc_sd"] = sd
    averaged = result.predictions.groupby("subject_id", sort=True).agg(
        label=("label", "first"), probability=("probability", "mean"))
    area, se, low, high = delong_interval((averaged["label"] == RESPONDER).astype(int),
                                          averaged["probability"], settings.conf_level)
    row.update({"auroc_pooled": area, "auroc_se": se, "auroc_delong_low": low, "auroc_delong_high": high})
    prevalence = n_resp / max(1, n_resp + n_non)
    row["auprc_baseline"] = prevalence
    row["brier_baseline"] = prevalence * (1 - prevalence)
    permutation = permutation or {}
    for key in ("perm_statistic", "perm_repeats", "n_permutations", "perm_null_mean", "perm_p_value",
                "perm_min_p"):
        row[key] = permutation.get(key, np.nan)
    counts = result.params["best_params"].value_counts()
    row["best_params"] = "; ".join(f"{k} ({v}/{result.n_fits})" for k, v in
                                   sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
    row["validation"] = settings.validation
    groups = group_performance(result) if groups is None else groups
    scored = groups["auroc"].dropna()
    row["n_groups"] = len(groups) if settings.validation != "stratified" else np.nan
    row["auroc_group_mean"] = float(scored.mean()) if len(scored) else np.nan
    row["auroc_group_sd"] = float(scored.std(ddof=1)) if len(scored) > 1 else np.nan
    mark = data.landmark
    row["on_treatment"] = mark is not None
    row["view"] = data.view_label
    row["landmark_months"] = mark.months if mark is not None else np.nan
    row["n_before_landmark"] = (int(mark.excluded["reason"].str.contains("before the landmark").sum())
                                if mark is not None and mark.applied else np.nan)
    return row


def group_performance(result: NestedCVResult) -> pd.DataFrame:
    """AUROC with DeLong's interval in each validation group (cohort, study) held out.

    Leave-one-group-out and external validation only (empty for stratified CV): the
    subject-level out-of-fold probabilities of each group (averaged over a subject's rows)
    against its labels. A group with one class has no AUROC (``note`` says so).

    Returns
    -------
    DataFrame
        :data:`GROUP_COLUMNS`, one row per group in sorted order.
    """
    settings = result.settings
    predictions = result.predictions
    if settings.validation == "stratified" or predictions.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    rows = []
    for group, part in predictions.groupby("validation_group", sort=True):
        subjects = part.groupby("subject_id", sort=True).agg(label=("label", "first"),
                                                            probability=("probability", "mean"))
        y = (subjects["label"] == RESPONDER).astype(int).to_numpy()
        n_resp, n_non = int(y.sum()), int((1 - y).sum())
        row = {"feature_set": result.data.name, "model": result.model,
               "validation": settings.validation, "group": group, "n_subjects": len(y),
               "n_responders": n_resp, "n_non_responders": n_non, "note": ""}
        if n_resp and n_non:
            area, se, low, high = delong_interval(y, subjects["probability"].to_numpy(),
                                                  settings.conf_level)
            row.update(auroc=area, auroc_se=se, auroc_low=low, auroc_high=high)
        else:
            row["note"] = "one class only: no AUROC"
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=GROUP_COLUMNS)


def feature_stability(result: NestedCVResult) -> pd.DataFrame:
    """Selection frequency, sign stability and importance of each feature across outer fits.

    For the logistic models a feature is *selected* in a fit when its coefficient
    is non-zero; for the forest when it reached the forest (passed the in-fold
    filters) and was used in a split. ``filter_frequency`` counts the fits in which
    it passed the filters; ``sign_stability`` = max(n_positive, n_negative) /
    (n_positive + n_negative); ``mean_coef`` averages the standardised coefficient
    over all fits (zero when not selected); ``importance_*`` is the forest's
    permutation importance (AUROC drop on the outer test fold).

    Returns
    -------
    DataFrame
        :data:`FEATURE_COLUMNS`, sorted by ``rank`` (selection frequency, then
        |mean_coef| or mean importance).
    """
    frame = result.fold_features
    n_fits = result.n_fits
    if frame.empty:
        return pd.DataFrame(columns=FEATURE_COLUMNS)
    work = frame.assign(
        positive=(frame["coef"] > 0) & frame["selected"],
        negative=(frame["coef"] < 0) & frame["selected"],
        coef0=frame["coef"].where(frame["selected"], 0.0),
    )
    grouped = work.groupby(["block", "feature"], sort=True)
    table = grouped.agg(n_filtered=("selected", "size"), n_selected=("selected", "sum"),
                        n_positive=("positive", "sum"), n_negative=("negative", "sum"),
                        coef_sum=("coef0", "sum"), importance_mean=("importance", "mean"),
                        importance_sd=("importance", "std"), impurity_sum=("impurity", "sum"))
    table = table.reset_index()
    table["n_fits"] = n_fits
    table["filter_frequency"] = table["n_filtered"] / n_fits
    table["selection_frequency"] = table["n_selected"] / n_fits
    signed = table["n_positive"] + table["n_negative"]
    with np.errstate(invalid="ignore", divide="ignore"):
        table["sign_stability"] = np.where(signed > 0, np.maximum(table["n_positive"], table["n_negative"])
                                           / signed.clip(lower=1), np.nan)
        table["mean_coef_selected"] = np.where(table["n_selected"] > 0,
                                               table["coef_sum"] / table["n_selected"].clip(lower=1), np.nan)
    is_linear = frame["coef"].notna().any()
    table["mean_coef"] = table["coef_sum"] / n_fits if is_linear else np.nan
    if not is_linear:
        table["mean_coef_selected"] = np.nan
        table["sign_stability"] = np.nan
    table["impurity_mean"] = table["impurity_sum"] / n_fits if frame["impurity"].notna().any() else np.nan
    table["direction"] = np.select(
        [table["n_positive"] > table["n_negative"], table["n_negative"] > table["n_positive"]],
        ["higher_in_responders", "lower_in_responders"], default="")
    strength = table["mean_coef"].abs() if is_linear else table["importance_mean"].fillna(-np.inf)
    table = table.assign(_strength=strength).sort_values(
        ["selection_frequency", "_strength", "block", "feature"],
        ascending=[False, False, True, True], kind="mergesort", ignore_index=True)
    table["rank"] = np.arange(1, len(table) + 1)
    table.insert(0, "model", result.model)
    table.insert(0, "feature_set", result.data.name)
    return table[FEATURE_COLUMNS]


# --------------------------------------------------------------------------- config


def settings_from_config(models: dict, seed: int, n_jobs: int = 1, pseudocount_fraction: float = 0.5
                         ) -> tuple[PipelineOptions, CVSettings]:
    """Pipeline options and CV settings from the config's ``models`` section (and the CLR
    pseudocount fraction, ``clr_pseudocount_fraction``)."""
    grids = {name: dict(models.get(name, {})) for name in ("l1_logistic", "elastic_net", "random_forest")}
    weight = models.get("class_weight", "balanced")
    options = PipelineOptions(
        min_prevalence=float(models.get("min_prevalence", 0.1)),
        max_features_per_block=int(models.get("max_features_per_block", 50)),
        pseudocount_fraction=float(pseudocount_fraction),
        logit_epsilon=float(models.get("logit_epsilon", 1e-4)),
        class_weight=None if weight in (None, "none") else weight,
        grids=grids)
    validation = dict(models.get("validation") or {})
    settings = CVSettings(outer_folds=models.get("outer_folds", 5),
                          outer_repeats=int(models.get("outer_repeats", 10)),
                          inner_folds=int(models.get("inner_folds", 3)), seed=int(seed),
                          importance_repeats=int(models.get("importance_repeats", 5)),
                          conf_level=float(models.get("conf_level", 0.95)), n_jobs=int(n_jobs),
                          validation=str(validation.get("design", "stratified")),
                          train_groups=tuple(str(g) for g in validation.get("train", [])),
                          test_groups=tuple(str(g) for g in validation.get("test", [])))
    return options, settings


@dataclass(frozen=True)
class FeatureSetSettings:
    """Everything the fit of one feature set takes from the config.

    Attributes
    ----------
    options : PipelineOptions
        In-fold filters, selection size and hyperparameter grids.
    cv : CVSettings
        Outer and inner folds, repeats, seed, processes.
    data : ModelDataSettings
        Label, design, class sizes, landmark and validation group of the feature set.
    permutations : int
        Label permutations of the permutation test (0: none).
    permutation_repeats : int
        Outer repeats behind the permutation statistic.
    permutation_estimators : tuple of str
        The estimators that get the permutation test.
    """

    options: PipelineOptions
    cv: CVSettings
    data: ModelDataSettings
    permutations: int = 0
    permutation_repeats: int = 1
    permutation_estimators: tuple = ()

    @classmethod
    def from_config(cls, models: Mapping, *, seed: int, n_jobs: int = 1, pseudocount_fraction: float = 0.5,
                    label: str, modalities: dict, baseline: str, contrasts: list, cohorts=()) -> FeatureSetSettings:
        """From the config's ``models`` section, the run's seed and processes, the CLR
        pseudocount fraction (``clr_pseudocount_fraction``) and the design."""
        options, cv = settings_from_config(models, seed, n_jobs, pseudocount_fraction)
        data = ModelDataSettings.from_config(models, cv, label=label, modalities=modalities, baseline=baseline,
                                             contrasts=contrasts, cohorts=cohorts)
        return cls(options, cv, data, models["permutations"], models["permutation_repeats"],
                   tuple(models["permutation_estimators"]))


def fit_feature_set(name: str, spec: dict, tables: dict, samples: pd.DataFrame, subjects: pd.DataFrame,
                    responders: pd.DataFrame, *, estimators: Sequence[str], permutation_test: bool = True,
                    structures: Mapping[str, str] | None = None,
                    settings: FeatureSetSettings) -> dict[str, pd.DataFrame]:
    """Nested cross-validation of every estimator on one feature set, with the permutation test.

    Parameters
    ----------
    name, spec : str, dict
        The feature set (an entry of ``models.feature_sets``).
    tables : dict of str -> DataFrame
        Block modality -> analysis table.
    samples, subjects, responders : DataFrame
        The checked sample sheet and subjects table, and ``results/clinical/responders.tsv``.
    estimators : sequence of str
        The estimators fitted, in order.
    permutation_test : bool
        The feature set gets the permutation test (for ``settings.permutation_estimators``).
    structures : mapping of str -> path, optional
        ``missingness_structure.tsv`` of the metabolome blocks: metabolites not measured at a
        timepoint the set uses are left out (a warning names them).
    settings : FeatureSetSettings

    Returns
    -------
    dict of str -> DataFrame
        ``performance``, ``predictions``, ``features`` (stability), ``repeats``, ``folds``
        (best parameters per outer fit), ``permutations`` (the null statistics), ``excluded``
        (subjects) and ``groups`` (AUROC per held-out validation group).
    """
    timepoints = view_timepoints(spec, settings.data.baseline, settings.data.contrasts)
    tables, gaps = without_unmeasured(tables, structures or {}, timepoints)
    for modality, reasons in gaps.items():
        if len(reasons):
            log.warning("%s: %d %s feature(s) left out: %s", name, len(reasons), modality,
                        "; ".join(f"{f}: {why}" for f, why in reasons.items()))
    data = build_model_data(name, spec, tables, samples, subjects, responders, settings=settings.data)
    if data.landmark is not None:
        log.warning("%s: on-treatment feature set, %s; %d subject(s) left out before it", data.name,
                    data.landmark.label(), len(data.landmark.excluded))
    log.info("%s: %d rows, %d subjects (%d responders), %d input features, %d excluded",
             data.name, len(data.rows), data.rows["subject_id"].nunique(), int(data.y.sum()),
             data.n_features, data.excluded["subject_id"].nunique())
    fits = [_estimator_tables(data, model, settings,
                              permutation_test and model in settings.permutation_estimators)
            for model in estimators]
    stacked = {key: pd.concat([fit[key] for fit in fits], ignore_index=True)
               for key in ("predictions", "features", "repeats", "folds")}
    repeats = stacked["repeats"]
    nulls = [fit["permutations"] for fit in fits if "permutations" in fit]
    groups = [fit["groups"] for fit in fits if not fit["groups"].empty]
    return {
        **stacked,
        # one frame of the rows, so that each column's type is that of all its values
        "performance": pd.DataFrame([fit["performance"] for fit in fits]),
        "repeats": repeats[["feature_set", "model"]
                           + [c for c in repeats.columns if c not in ("feature_set", "model")]],
        "folds": stacked["folds"][FOLD_COLUMNS],
        "permutations": (pd.concat(nulls, ignore_index=True) if nulls
                         else pd.DataFrame(columns=PERMUTATION_COLUMNS)),
        "excluded": data.excluded,
        "groups": pd.concat(groups, ignore_index=True) if groups else pd.DataFrame(columns=GROUP_COLUMNS),
    }


def _estimator_tables(data: ModelData, model: str, settings: FeatureSetSettings, permute: bool) -> dict:
    """One estimator's nested CV on ``data``: its rows of every table of :func:`fit_feature_set`
    (``performance`` as the row's dict)."""
    start = time.perf_counter()
    result = nested_cv(data, model, settings.options, settings.cv)
    out = {}
    permutation = None
    if permute and settings.permutations > 0:
        permutation = permutation_test(result, settings.options, settings.permutations,
                                       settings.permutation_repeats)
        out["permutations"] = pd.DataFrame({"feature_set": data.name, "model": model,
                                            "permutation": np.arange(1, permutation["null"].size + 1),
                                            "auroc": permutation["null"]})
    out["groups"] = group_performance(result)
    out["performance"] = performance_row(result, permutation, out["groups"])
    out["predictions"] = result.predictions
    out["features"] = feature_stability(result)
    out["repeats"] = result.repeats.assign(feature_set=data.name, model=model)
    out["folds"] = result.params.assign(feature_set=data.name, model=model)
    log.info("%s / %s: AUROC %.3f in %.1f s", data.name, model, out["performance"]["auroc_mean"],
             time.perf_counter() - start)
    return out
