"""Leakage-free scikit-learn pipelines for responder models, and a fast inner search.

Every step that learns anything from data (which features are prevalent, which are
informative, their means and scales, the hyperparameters) lives inside one
:class:`sklearn.pipeline.Pipeline`, so cross-validation fits it on the training
rows of each fold only:

:class:`BlockUnion` over the blocks of a feature set, each block
``BlockTransformer (per-sample transform, filters, median imputation) -> UnivariateSelector(k)
-> StandardScaler``
(clinical covariates: ``SimpleImputer(median) -> StandardScaler``), then the
classifier (L1 or elastic-net logistic regression, random forest).

:class:`BlockTransformer` applies the modality's transform per sample (CLR with a
per-sample pseudocount, log2, logit, none), so the transform of a test sample never
depends on other samples; the features it keeps (prevalence, non-constant) are
learnt from the training rows. For a ``change`` block it receives the pre- and
post-treatment values side by side and returns ``transform(post) - transform(pre)``.

:class:`InnerSearchCV` is a grid search over the final step's hyperparameters that
fits the preprocessing once per inner split and reuses it for every candidate: the
scores equal those of :class:`sklearn.model_selection.GridSearchCV` on the same
splits (the preprocessing does not depend on the final step's parameters) at a
fraction of the cost, which the permutation test needs.

References
----------
Varma S, Simon R (2006) Bias in error estimation when using cross-validation for
model selection. BMC Bioinformatics 7:91.
Ambroise C, McLachlan GJ (2002) Selection bias in gene extraction on the basis of
microarray gene-expression data. PNAS 99:6562-6566.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.ensemble import RandomForestClassifier, StackingClassifier
from sklearn.feature_selection import SelectorMixin, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from gutaxis.model_metrics import auroc

#: estimators a feature set can use, in report order
MODEL_NAMES = ("l1_logistic", "elastic_net", "random_forest")
#: block transforms (the modality's ``transform``; rclr is modelled as clr)
BLOCK_TRANSFORMS = ("clr", "log2", "logit", "none")
BLOCK_LAYOUTS = ("level", "change")
#: separator between block name and feature id in pipeline feature names
NAME_SEPARATOR = "__"


# --------------------------------------------------------------------------- per-sample transforms


def _row_pseudocount(values: np.ndarray, fraction: float) -> np.ndarray:
    """``fraction`` x the smallest positive value of each row (1 for a row without one)."""
    positive = np.where(values > 0, values, np.inf)
    smallest = positive.min(axis=1, initial=np.inf)
    return np.where(np.isfinite(smallest), fraction * smallest, 1.0)


def transform_rows(values: np.ndarray, transform: str, pseudocount_fraction: float = 0.5,
                   scale: float = 1.0, epsilon: float = 1e-4) -> np.ndarray:
    r"""Transform each row (sample) using that row's values only.

    * ``clr``: :math:`\ln(x_j + c) - \frac1D \sum_k \ln(x_k + c)` with
      :math:`c` = ``pseudocount_fraction`` x the row's smallest positive value
      (missing values count as zero);
    * ``log2``: :math:`\log_2 x`, zeros replaced by ``pseudocount_fraction`` x the
      row's smallest positive value;
    * ``logit``: :math:`\ln(p / (1 - p))` of :math:`p = x /` ``scale`` clipped to
      [``epsilon``, 1 - ``epsilon``];
    * ``none``: unchanged.

    Because nothing is pooled across rows, the transform of a test sample cannot
    carry information from the training samples (or the reverse).

    References
    ----------
    Aitchison J (1986) The Statistical Analysis of Compositional Data. Chapman & Hall.
    Warton DI, Hui FKC (2011) The arcsine is asinine. Ecology 92:3-10.
    """
    values = np.asarray(values, dtype=float)
    if transform == "none":
        return values.copy()
    if transform == "clr":
        present = np.where(np.isfinite(values), values, 0.0)
        logged = np.log(present + _row_pseudocount(present, pseudocount_fraction)[:, None])
        return logged - logged.mean(axis=1, keepdims=True)
    if transform == "log2":
        floor = _row_pseudocount(np.where(np.isfinite(values), values, 0.0), pseudocount_fraction)
        with np.errstate(invalid="ignore"):
            return np.log2(np.where(values > 0, values, np.where(np.isnan(values), np.nan, floor[:, None])))
    if transform == "logit":
        p = np.clip(values / scale, epsilon, 1.0 - epsilon)
        return np.log(p) - np.log1p(-p)
    raise ValueError(f"unknown transform {transform!r}; use one of {BLOCK_TRANSFORMS}")


class BlockTransformer(TransformerMixin, BaseEstimator):
    """One omics block: per-sample transform plus feature filters learnt in the training fold.

    Parameters
    ----------
    method : {"clr", "log2", "logit", "none"}
        Per-sample transform (:func:`transform_rows`).
    layout : {"level", "change"}
        ``level``: the columns are the features at one timepoint. ``change``: the
        first half of the columns are the features before treatment, the second
        half the same features after; the output is the transformed difference
        post - pre.
    min_prevalence : float
        Keep a feature detected (> 0 for clr/log2, non-missing otherwise) in at
        least this fraction of the training samples (pre and post pooled for
        ``change``). CLR is then taken over the kept features (a sub-composition).
    pseudocount_fraction, scale, epsilon : float
        Passed to :func:`transform_rows`.

    Attributes
    ----------
    prevalent_ : ndarray of bool
        Features passing the prevalence filter (the CLR's parts).
    support_ : ndarray of bool
        Features output: prevalent and non-constant with a finite value in training.
    medians_ : ndarray
        Training medians of the output features; a missing value (e.g. an immune
        subset not measured in a sample) is replaced by it.
    """

    def __init__(self, method="none", layout="level", min_prevalence=0.0,
                 pseudocount_fraction=0.5, scale=1.0, epsilon=1e-4):
        self.method = method
        self.layout = layout
        self.min_prevalence = min_prevalence
        self.pseudocount_fraction = pseudocount_fraction
        self.scale = scale
        self.epsilon = epsilon

    def _halves(self, X):
        X = np.asarray(X, dtype=float)
        if self.layout == "change":
            if X.shape[1] % 2:
                raise ValueError("a change block needs pre and post columns side by side")
            half = X.shape[1] // 2
            return X[:, :half], X[:, half:]
        if self.layout != "level":
            raise ValueError(f"unknown layout {self.layout!r}; use one of {BLOCK_LAYOUTS}")
        return None, X

    def _values(self, X, prevalent):
        pre, post = self._halves(X)
        options = dict(pseudocount_fraction=self.pseudocount_fraction, scale=self.scale,
                       epsilon=self.epsilon)
        out = transform_rows(post[:, prevalent], self.method, **options)
        if pre is not None:
            out = out - transform_rows(pre[:, prevalent], self.method, **options)
        return out

    def fit(self, X, y=None):
        pre, post = self._halves(X)
        self.n_features_in_ = np.asarray(X).shape[1]
        pooled = post if pre is None else np.vstack([pre, post])
        detected = pooled > 0 if self.method in ("clr", "log2") else np.isfinite(pooled)
        prevalence = detected.mean(axis=0) if len(pooled) else np.zeros(pooled.shape[1])
        self.prevalent_ = prevalence >= self.min_prevalence
        if self.method == "clr" and self.prevalent_.sum() < 2:
            # a composition of one part has no log-ratio; keep the two most prevalent
            self.prevalent_ = np.zeros_like(self.prevalent_)
            self.prevalent_[np.argsort(-prevalence, kind="stable")[:2]] = True
        values = self._values(X, self.prevalent_)
        finite = np.isfinite(values)
        with np.errstate(invalid="ignore"):
            spread = np.max(np.where(finite, values, -np.inf), axis=0, initial=-np.inf) - \
                np.min(np.where(finite, values, np.inf), axis=0, initial=np.inf)
        varying = finite.any(axis=0) & (spread > 0)
        self.support_ = self.prevalent_.copy()
        self.support_[self.prevalent_] = varying
        self._varying = varying
        values = values[:, varying]
        self.medians_ = (np.nanmedian(np.where(np.isfinite(values), values, np.nan), axis=0)
                         if values.size and not np.isfinite(values).all() else
                         np.zeros(values.shape[1]))
        return self

    def transform(self, X):
        values = self._values(X, self.prevalent_)[:, self._varying]
        missing = ~np.isfinite(values)
        if missing.any():
            # in-fold median imputation of values missing in the table (never of the test rows' own)
            values = np.where(missing, self.medians_[None, :], values)
        return values

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: those of the input (post-treatment half for ``change``)."""
        if input_features is None:
            input_features = [f"x{i}" for i in range(self.n_features_in_)]
        names = np.asarray(input_features, dtype=object)
        if self.layout == "change":
            names = names[names.size // 2:]
        return names[self.support_]


class UnivariateSelector(SelectorMixin, BaseEstimator):
    """Keep the ``k`` features with the largest two-class ANOVA F (= pooled t squared).

    Ties and undefined F (constant features) are broken by column order, so the
    selection is deterministic. ``k`` of 0 or at least the number of features keeps
    every feature.
    """

    def __init__(self, k=50):
        self.k = k

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        self.n_features_in_ = X.shape[1]
        mask = np.ones(X.shape[1], dtype=bool)
        if self.k and self.k < X.shape[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                f_stat, _ = f_classif(X, y)
            f_stat = np.nan_to_num(f_stat, nan=-1.0, posinf=np.finfo(float).max)
            mask[:] = False
            mask[np.argsort(-f_stat, kind="stable")[: self.k]] = True
        self.mask_ = mask
        return self

    def _get_support_mask(self):
        return self.mask_


# --------------------------------------------------------------------------- pipeline construction


@dataclass(frozen=True)
class Block:
    """Columns of one block of a feature set.

    Attributes
    ----------
    name : str
        Unique within the feature set (e.g. ``taxa`` or ``taxa_change``); no ``__``.
    modality : str
        The modality key (or ``clinical``).
    kind : {"omics", "clinical"}
    columns : tuple of int
        Column positions in the feature-set matrix.
    features : tuple of str
        Feature ids (one per feature; a change block has two columns per feature).
    transform, layout : str
        As in :class:`BlockTransformer` (ignored for clinical blocks).
    scale : float
        Divisor of the logit transform (100 for percentages).
    """

    name: str
    modality: str
    kind: str
    columns: tuple
    features: tuple
    transform: str = "none"
    layout: str = "level"
    scale: float = 1.0


@dataclass(frozen=True)
class PipelineOptions:
    """Settings of every block pipeline (from the config's ``models`` section)."""

    min_prevalence: float = 0.1
    max_features_per_block: int = 50
    pseudocount_fraction: float = 0.5
    logit_epsilon: float = 1e-4
    class_weight: str | None = "balanced"
    grids: dict = field(default_factory=dict)


def block_pipeline(block: Block, options: PipelineOptions) -> Pipeline:
    """The preprocessing of one block, fitted inside each training fold."""
    if block.kind == "clinical":
        return Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    return Pipeline([
        ("transform", BlockTransformer(block.transform, block.layout, options.min_prevalence,
                                       options.pseudocount_fraction, block.scale,
                                       options.logit_epsilon)),
        ("select", UnivariateSelector(options.max_features_per_block)),
        ("scale", StandardScaler()),
    ])


class BlockUnion(TransformerMixin, BaseEstimator):
    """Fit one transformer per block of columns and put their outputs side by side.

    A lean :class:`sklearn.compose.ColumnTransformer` (no joblib dispatch and no
    cloning per call, which dominate the cost at a few dozen rows; clone the union,
    as cross-validation does, before fitting it again on other rows). Output names are
    ``<block>__x<column>`` with ``<column>`` the input column position, so every
    output traces back to one input column.

    Parameters
    ----------
    transformers : list of (name, transformer, columns)
    """

    def __init__(self, transformers):
        self.transformers = transformers

    def fit_transform(self, X, y=None):
        X = np.asarray(X, dtype=float)
        self.n_features_in_ = X.shape[1]
        self.fitted_ = []
        outputs = []
        for name, transformer, columns in self.transformers:
            # fitted in place: the enclosing pipeline is a fresh clone in every fold, and a
            # second clone per block per fit would cost more than the block's own fit
            outputs.append(transformer.fit_transform(X[:, columns], y))
            self.fitted_.append((name, transformer, columns))
        return np.hstack(outputs) if outputs else np.empty((X.shape[0], 0))

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=float)
        outputs = [fitted.transform(X[:, columns]) for _, fitted, columns in self.fitted_]
        return np.hstack(outputs) if outputs else np.empty((X.shape[0], 0))

    def get_feature_names_out(self, input_features=None):
        names = []
        for name, fitted, columns in self.fitted_:
            inner = fitted.get_feature_names_out([f"x{c}" for c in columns])
            names.extend(f"{name}{NAME_SEPARATOR}{n}" for n in inner)
        return np.asarray(names, dtype=object)


def preprocessor(blocks, options: PipelineOptions) -> BlockUnion:
    """All blocks side by side; output names are ``<block>__x<input column>``."""
    for block in blocks:
        if NAME_SEPARATOR in block.name:
            raise ValueError(f"block name {block.name!r} must not contain {NAME_SEPARATOR!r}")
    # column positions as arrays: sklearn's clone copies an array in one step, a list item by item
    return BlockUnion([(b.name, block_pipeline(b, options), np.asarray(b.columns, dtype=np.intp))
                       for b in blocks])


def classifier(model: str, options: PipelineOptions, seed: int):
    """An unfitted classifier with the fixed (non-searched) settings of ``model``."""
    grid = options.grids.get(model, {})
    weight = options.class_weight
    if model == "l1_logistic":
        return LogisticRegression(penalty="l1", solver="liblinear", class_weight=weight,
                                  max_iter=int(grid.get("max_iter", 1000)), random_state=seed)
    if model == "elastic_net":
        return LogisticRegression(penalty="elasticnet", solver="saga", class_weight=weight,
                                  l1_ratio=0.5, max_iter=int(grid.get("max_iter", 1000)),
                                  tol=float(grid.get("tol", 1e-3)), random_state=seed)
    if model == "random_forest":
        return RandomForestClassifier(n_estimators=int(grid.get("n_estimators", 200)),
                                      class_weight=weight, n_jobs=1, random_state=seed)
    raise ValueError(f"unknown model {model!r}; use one of {MODEL_NAMES}")


#: grid keys of each model that are searched (lists); the rest are fixed settings
SEARCHED = {
    "l1_logistic": ("C",),
    "elastic_net": ("C", "l1_ratio"),
    "random_forest": ("max_features", "min_samples_leaf"),
}


def search_grid(model: str, options: PipelineOptions, prefix: str = "model__") -> dict:
    """The hyperparameter grid of ``model`` with the final step's prefix."""
    grid = options.grids.get(model, {})
    out = {}
    for key in SEARCHED[model]:
        if key in grid:
            values = grid[key] if isinstance(grid[key], (list, tuple)) else [grid[key]]
            out[prefix + key] = list(values)
    return out


def inner_splitter(n_splits: int, seed: int, grouped: bool):
    """Stratified inner folds (grouped by subject when subjects have several rows)."""
    if grouped:
        return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def balanced_weights(y) -> dict:
    """``class_weight="balanced"`` as an explicit dict, :math:`w_c = n / (k n_c)`.

    The same numbers scikit-learn computes for "balanced", given once per fit
    instead of being recomputed (with label encoding) inside every candidate fit.
    """
    classes, counts = np.unique(y, return_counts=True)
    weights = len(y) / (len(classes) * counts.astype(np.float64))
    return {cls.item(): float(w) for cls, w in zip(classes, weights)}


class InnerSearchCV(ClassifierMixin, BaseEstimator):
    """Grid search of the final pipeline step by mean AUROC over inner folds.

    Gives the scores of ``GridSearchCV(pipeline, param_grid, cv=cv, scoring="roc_auc")``
    when every parameter belongs to the final step (which it checks). Candidates whose
    mean inner AUROC ties with the best (within 1e-12; GridSearchCV would let the last
    bit of the floating-point mean decide) resolve to the first in grid order, so grids
    are ordered from the strongest regularisation. The preprocessing (``pipeline[:-1]``) is fitted once per inner split
    and shared by the candidates; the best candidate is refitted on all rows.

    Parameters
    ----------
    estimator : Pipeline
        Preprocessing steps followed by the classifier.
    param_grid : dict
        ``"<final step>__<parameter>" -> list``.
    cv : splitter
        Inner splitter (``split(X, y, groups)``).

    Attributes
    ----------
    best_params_ : dict
    best_estimator_ : Pipeline
    cv_scores_ : ndarray, shape (n_splits, n_candidates)
    """

    def __init__(self, estimator, param_grid, cv):
        self.estimator = estimator
        self.param_grid = param_grid
        self.cv = cv

    def fit(self, X, y, groups=None):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        candidates = list(ParameterGrid(self.param_grid)) if self.param_grid else [{}]
        final_name = self.estimator.steps[-1][0]
        prefix = final_name + "__"
        if any(not key.startswith(prefix) for c in candidates for key in c):
            raise ValueError("InnerSearchCV searches parameters of the final step only")
        balanced = getattr(self.estimator.steps[-1][1], "class_weight", None) == "balanced"
        if len(candidates) > 1:
            scores = []
            for train, valid in self.cv.split(X, y, *([groups] if groups is not None else [])):
                prep = clone(self.estimator[:-1])
                x_train = prep.fit_transform(X[train], y[train])
                x_valid = prep.transform(X[valid])
                final = clone(self.estimator.steps[-1][1])
                if balanced:
                    final.set_params(class_weight=balanced_weights(y[train]))
                row = []
                for candidate in candidates:
                    final.set_params(**{k[len(prefix):]: v for k, v in candidate.items()})
                    final.fit(x_train, y[train])
                    row.append(auroc(y[valid], final.predict_proba(x_valid)[:, 1]))
                scores.append(row)
            self.cv_scores_ = np.asarray(scores, dtype=float)
            mean = np.nanmean(self.cv_scores_, axis=0)
            # ties (common: AUROC on a dozen rows takes few values) go to the first candidate,
            # whatever the last bit of the floating-point mean says
            best = int(np.flatnonzero(mean >= np.nanmax(mean) - 1e-12)[0])
        else:
            self.cv_scores_ = np.full((0, 1), np.nan)
            best = 0
        self.best_params_ = candidates[best]
        refit = clone(self.estimator).set_params(**self.best_params_)
        if balanced:
            refit.set_params(**{prefix + "class_weight": balanced_weights(y)})
        self.best_estimator_ = refit.fit(X, y)
        self.classes_ = self.best_estimator_.classes_
        return self

    def predict_proba(self, X):
        return self.best_estimator_.predict_proba(np.asarray(X, dtype=float))

    def predict(self, X):
        return self.best_estimator_.predict(np.asarray(X, dtype=float))


def build_estimator(blocks, model: str, options: PipelineOptions, seed: int, inner_folds: int,
                    combine: str = "concatenate", grouped: bool = False):
    """The full learner of one outer training fold.

    ``combine="concatenate"``: one pipeline over all blocks with an inner grid
    search. ``combine="stack"``: one tuned pipeline per block whose out-of-fold
    probabilities (inner folds) feed an L2 logistic meta-learner (block-wise
    stacking; Wolpert 1992), all refitted inside the outer training fold.

    References
    ----------
    Wolpert DH (1992) Stacked generalization. Neural Networks 5:241-259.
    """
    def tuned(block_list, block_seed):
        pipe = Pipeline([("prep", preprocessor(block_list, options)),
                         ("model", classifier(model, options, block_seed))])
        return InnerSearchCV(pipe, search_grid(model, options),
                             inner_splitter(inner_folds, block_seed, grouped))

    if combine == "concatenate":
        return tuned(list(blocks), seed)
    if combine != "stack":
        raise ValueError(f"unknown combine {combine!r}; use concatenate or stack")
    if grouped:
        raise ValueError("block-wise stacking needs one row per subject")
    bases = [(b.name, tuned([b], seed + i)) for i, b in enumerate(blocks)]
    meta = LogisticRegression(C=1.0, class_weight=options.class_weight, max_iter=1000)
    return StackingClassifier(bases, final_estimator=meta, stack_method="predict_proba",
                              cv=StratifiedKFold(inner_folds, shuffle=True, random_state=seed))


def column_features(blocks) -> dict:
    """Input column position -> (block name, feature id); a change block's post columns name it."""
    lookup = {}
    for block in blocks:
        columns = list(block.columns)
        if block.layout == "change" and block.kind != "clinical":
            columns = columns[len(columns) // 2:]
        for column, feature in zip(columns, block.features):
            lookup[column] = (block.name, feature)
    return lookup


def output_features(names, lookup: dict) -> list[tuple[str, str]]:
    """Pipeline output names ``<block>__x<column>`` -> (block, feature id)."""
    out = []
    for name in names:
        _, _, column = str(name).rpartition(NAME_SEPARATOR + "x")
        out.append(lookup[int(column)])
    return out
