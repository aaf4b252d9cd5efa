"""Leakage-free scikit-learn pipelines for responder models, their fast inner search and
block-wise stacking.

Every step that learns anything from data (which features are prevalent, which are
informative, medians, means and scales, the hyperparameters) lives inside one
:class:`sklearn.pipeline.Pipeline`, so cross-validation fits it on the training
rows of each fold only::

    Pipeline([("prep", BlockUnion([(block, BlockPreprocessor(...), columns), ...])),
              ("model", LogisticRegression(L1 | elastic net) | RandomForestClassifier)])

(:mod:`gutaxis.models.transformers`). :class:`InnerSearchCV` is a grid search over
the final step's hyperparameters that fits the preprocessing once per inner split and
reuses it for every candidate: the scores equal those of
:class:`sklearn.model_selection.GridSearchCV` on the same splits (the preprocessing
does not depend on the final step's parameters) at a fraction of the cost, which the
permutation test needs. :class:`BlockStackingClassifier` combines one tuned pipeline
per block.

References
----------
Varma S, Simon R (2006) Bias in error estimation when using cross-validation for
model selection. BMC Bioinformatics 7:91.
Ambroise C, McLachlan GJ (2002) Selection bias in gene extraction on the basis of
microarray gene-expression data. PNAS 99:6562-6566.
Wolpert DH (1992) Stacked generalization. Neural Networks 5:241-259.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from gutaxis.models.metrics import auroc
from gutaxis.models.transformers import (BLOCK_LAYOUTS, BLOCK_TRANSFORMS, NAME_SEPARATOR,  # noqa: F401
                                        BlockPreprocessor, BlockTransformer, BlockUnion,
                                        UnivariateSelector, anova_f, transform_rows)

#: estimators a feature set can use, in report order
MODEL_NAMES = ("l1_logistic", "elastic_net", "random_forest")


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


def block_pipeline(block: Block, options: PipelineOptions) -> BlockPreprocessor:
    """The preprocessing of one block, fitted inside each training fold."""
    if block.kind == "clinical":
        return BlockPreprocessor(clinical=True)
    return BlockPreprocessor(block.transform, block.layout, options.min_prevalence,
                             options.pseudocount_fraction, block.scale, options.logit_epsilon,
                             options.max_features_per_block)


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
    are ordered from the strongest regularisation. The preprocessing
    (``pipeline[:-1]``) is fitted once per inner split and shared by the candidates;
    the best candidate is refitted on all rows.

    Parameters
    ----------
    estimator : Pipeline
        Preprocessing steps followed by the classifier.
    param_grid : dict
        ``"<final step>__<parameter>" -> list``.
    cv : splitter
        Inner splitter (``split(X, y, groups)``).
    oof : bool
        Keep the inner out-of-fold probabilities of every candidate (``oof_``), even
        for a one-candidate grid (block-wise stacking feeds them to its meta-model).

    Attributes
    ----------
    best_params_ : dict
    best_index_ : int
    best_estimator_ : Pipeline
    cv_scores_ : ndarray, shape (n_splits, n_candidates)
    oof_ : ndarray, shape (n_rows, n_candidates), only with ``oof=True``
    """

    def __init__(self, estimator, param_grid, cv, oof=False):
        self.estimator = estimator
        self.param_grid = param_grid
        self.cv = cv
        self.oof = oof

    def fit(self, X, y, groups=None):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        candidates = list(ParameterGrid(self.param_grid)) if self.param_grid else [{}]
        final_name = self.estimator.steps[-1][0]
        prefix = final_name + "__"
        if any(not key.startswith(prefix) for c in candidates for key in c):
            raise ValueError("InnerSearchCV searches parameters of the final step only")
        valid_names = set(self.estimator.steps[-1][1].get_params(deep=False))
        unknown = {k[len(prefix):] for c in candidates for k in c} - valid_names
        if unknown:
            raise ValueError(f"unknown parameters of the final step: {sorted(unknown)}")
        balanced = getattr(self.estimator.steps[-1][1], "class_weight", None) == "balanced"
        if len(candidates) > 1 or self.oof:
            scores = []
            oof = np.full((y.size, len(candidates)), np.nan)
            for train, valid in self.cv.split(X, y, *([groups] if groups is not None else [])):
                prep = clone(self.estimator[:-1])
                x_train = prep.fit_transform(X[train], y[train])
                x_valid = prep.transform(X[valid])
                final = clone(self.estimator.steps[-1][1])
                if balanced:
                    final.class_weight = balanced_weights(y[train])
                row = []
                for index, candidate in enumerate(candidates):
                    # names checked above; setattr is what set_params does, without
                    # re-inspecting the signature for every candidate
                    for key, value in candidate.items():
                        setattr(final, key[len(prefix):], value)
                    final.fit(x_train, y[train])
                    oof[valid, index] = final.predict_proba(x_valid)[:, 1]
                    row.append(auroc(y[valid], oof[valid, index]))
                scores.append(row)
            self.cv_scores_ = np.asarray(scores, dtype=float)
            mean = np.nanmean(self.cv_scores_, axis=0)
            # ties (common: AUROC on a dozen rows takes few values) go to the first candidate,
            # whatever the last bit of the floating-point mean says
            best = int(np.flatnonzero(mean >= np.nanmax(mean) - 1e-12)[0])
            if self.oof:
                self.oof_ = oof
        else:
            self.cv_scores_ = np.full((0, 1), np.nan)
            best = 0
        self.best_index_ = best
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


def _logit(p: np.ndarray, bound: float = 1e-6) -> np.ndarray:
    p = np.clip(p, bound, 1.0 - bound)
    return np.log(p) - np.log1p(-p)


class BlockStackingClassifier(ClassifierMixin, BaseEstimator):
    """Block-wise stacking: a tuned pipeline per block, a logistic meta-model on their logits.

    Each block's :class:`InnerSearchCV` chooses its hyperparameters on the inner folds;
    the inner out-of-fold probabilities of the chosen candidate are the level-one data
    (Wolpert 1992) on which an L2 logistic meta-model learns how much to trust each
    block; the blocks are then refitted on all rows. As in
    :class:`sklearn.ensemble.StackingClassifier` with ``cv`` = the inner folds, except
    that the inner folds also choose the base hyperparameters (one inner loop instead
    of one per stacking fold: a quarter of the cost, a slightly optimistic level-one
    set; the outer estimate stays honest because all of it happens inside the outer
    training fold). Works with grouped folds.

    Parameters
    ----------
    searches : list of (name, InnerSearchCV)
        One per block, with ``oof=True``.
    meta : classifier
        The meta-model (logistic regression on the base logits).

    References
    ----------
    Wolpert DH (1992) Stacked generalization. Neural Networks 5:241-259.
    """

    def __init__(self, searches, meta):
        self.searches = searches
        self.meta = meta

    def fit(self, X, y, groups=None):
        self.searches_ = []
        level_one = []
        for name, search in self.searches:
            fitted = clone(search).fit(X, y, groups)
            level_one.append(fitted.oof_[:, fitted.best_index_])
            self.searches_.append((name, fitted))
        self.meta_ = clone(self.meta).fit(_logit(np.column_stack(level_one)), y)
        self.classes_ = self.meta_.classes_
        return self

    def _level_one(self, X):
        return _logit(np.column_stack([s.predict_proba(X)[:, 1] for _, s in self.searches_]))

    def predict_proba(self, X):
        return self.meta_.predict_proba(self._level_one(X))

    def predict(self, X):
        return self.meta_.predict(self._level_one(X))


def build_estimator(blocks, model: str, options: PipelineOptions, seed: int, inner_folds: int,
                    combine: str = "concatenate", grouped: bool = False):
    """The full learner of one outer training fold.

    ``combine="concatenate"``: one pipeline over all blocks with an inner grid
    search (:class:`InnerSearchCV`). ``combine="stack"``: one tuned pipeline per
    block combined by :class:`BlockStackingClassifier`.
    """
    def tuned(block_list, block_seed, oof=False):
        pipe = Pipeline([("prep", preprocessor(block_list, options)),
                         ("model", classifier(model, options, block_seed))])
        return InnerSearchCV(pipe, search_grid(model, options),
                             inner_splitter(inner_folds, seed, grouped), oof=oof)

    if combine == "concatenate":
        return tuned(list(blocks), seed)
    if combine != "stack":
        raise ValueError(f"unknown combine {combine!r}; use concatenate or stack")
    # every block sees the same inner folds, so the level-one rows line up
    bases = [(b.name, tuned([b], (seed + i) % (2 ** 31), oof=True)) for i, b in enumerate(blocks)]
    meta = LogisticRegression(C=1.0, class_weight=options.class_weight, max_iter=1000)
    return BlockStackingClassifier(bases, meta)


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
