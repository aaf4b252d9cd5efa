"""In-fold preprocessing of omics blocks: per-sample transforms, feature filters, univariate
selection and standardisation, as scikit-learn transformers.

:func:`transform_rows` transforms each sample with its own values only (CLR with a
per-sample pseudocount, log2, logit), so a test sample's transform never depends on
other samples. Everything that learns from rows -- which features are prevalent and
non-constant, the medians used to impute, the features with the largest two-class F,
the means and SDs of the standardisation -- is learnt in ``fit`` from the training
rows of a fold and only applied in ``transform``.

:class:`BlockPreprocessor` does all of it for one block in plain NumPy (a Pipeline of
separate scikit-learn steps costs several times more per call at a few dozen rows,
which the permutation test multiplies by thousands); :class:`BlockUnion` puts the
blocks of a feature set side by side.

References
----------
Aitchison J (1986) The Statistical Analysis of Compositional Data. Chapman & Hall.
Ambroise C, McLachlan GJ (2002) Selection bias in gene extraction on the basis of
microarray gene-expression data. PNAS 99:6562-6566.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_selection import SelectorMixin

BLOCK_TRANSFORMS = ("clr", "log2", "log2p1", "logit", "none")
BLOCK_LAYOUTS = ("level", "change")
#: transforms of each value on its own (no row statistics): columns can be taken before or after
ELEMENTWISE_TRANSFORMS = ("none", "logit", "log2p1")
#: separator between block name and feature id in pipeline feature names
NAME_SEPARATOR = "__"


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
    * ``log2p1``: :math:`\log_2(x + 1)` (counts or densities with zeros, e.g. tumour
      cells/mm^2; the fixed pseudocount of :func:`gutaxis.differential.transforms.log2p1_transform`);
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
        return values  # callers never write into the result; a copy of a large block costs
    if transform == "clr":
        present = np.where(np.isfinite(values), values, 0.0)
        logged = np.log(present + _row_pseudocount(present, pseudocount_fraction)[:, None])
        return logged - logged.mean(axis=1, keepdims=True)
    if transform == "log2":
        floor = _row_pseudocount(np.where(np.isfinite(values), values, 0.0), pseudocount_fraction)
        with np.errstate(invalid="ignore"):
            return np.log2(np.where(values > 0, values, np.where(np.isnan(values), np.nan, floor[:, None])))
    if transform == "log2p1":
        return np.log2(values + 1.0)
    if transform == "logit":
        p = np.clip(values / scale, epsilon, 1.0 - epsilon)
        return np.log(p) - np.log1p(-p)
    raise ValueError(f"unknown transform {transform!r}; use one of {BLOCK_TRANSFORMS}")


class _FitsThroughTransform:
    """What the block transformers share: ``fit`` is ``fit_transform`` (which computes the
    transform once), and output names start from the input names (``x<i>`` when none are given)."""

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def _input_names(self, input_features) -> np.ndarray:
        if input_features is None:
            input_features = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray(input_features, dtype=object)


class BlockTransformer(_FitsThroughTransform, TransformerMixin, BaseEstimator):
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

    def _values(self, X, columns):
        """The transform of the input features ``columns`` (boolean mask or positions)."""
        pre, post = self._halves(X)
        options = dict(pseudocount_fraction=self.pseudocount_fraction, scale=self.scale,
                       epsilon=self.epsilon)
        # no copy of a block whose features all pass, when the transform is elementwise (a
        # row-wise one sums over a strided view in another order: last-bit differences)
        every = (self.method in ELEMENTWISE_TRANSFORMS and columns.dtype == bool and bool(columns.all()))
        out = transform_rows(post if every else post[:, columns], self.method, **options)
        if pre is not None:
            out = out - transform_rows(pre if every else pre[:, columns], self.method, **options)
        return out

    @staticmethod
    def _impute(values, medians):
        """In-fold median imputation of values missing in the table (never of the test rows' own)."""
        missing = ~np.isfinite(values)
        return np.where(missing, medians[None, :], values) if missing.any() else values

    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return its transform (computed once, not twice as fit + transform)."""
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
        if not varying.all():
            values, finite = values[:, varying], finite[:, varying]
        complete = bool(finite.all())
        self.medians_ = (np.nanmedian(np.where(finite, values, np.nan), axis=0)
                         if values.size and not complete else np.zeros(values.shape[1]))
        return values if complete else np.where(finite, values, self.medians_[None, :])

    def transform(self, X):
        values = self._values(X, self.prevalent_)
        if not self._varying.all():
            values = values[:, self._varying]
        return self._impute(values, self.medians_)

    def transform_subset(self, X, keep: np.ndarray):
        """``transform(X)[:, keep]``, computing only the kept columns when the transform allows.

        ``none`` and ``logit`` transform each value on its own, so the kept columns need
        nothing else; ``clr`` and ``log2`` use whole-row statistics and go through
        :meth:`transform`. Used on test rows after univariate selection: at 5,000 features
        and 50 kept, it skips 99 % of the work.
        """
        if self.method not in ELEMENTWISE_TRANSFORMS:
            return self.transform(X)[:, keep]
        columns = np.flatnonzero(self.prevalent_)[self._varying][keep]
        return self._impute(self._values(X, columns), self.medians_[keep])

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: those of the input (post-treatment half for ``change``)."""
        names = self._input_names(input_features)
        if self.layout == "change":
            names = names[names.size // 2:]
        return names[self.support_]


def anova_f(X, y) -> np.ndarray:
    r"""One-way ANOVA F of every column between the classes of ``y`` (vectorised).

    .. math::

        F_j = \frac{\sum_g n_g (\bar x_{gj} - \bar x_j)^2 / (G - 1)}
                   {\sum_g \sum_{i \in g} (x_{ij} - \bar x_{gj})^2 / (n - G)}

    For two classes :math:`F = t^2` of the pooled two-sample t test (as
    :func:`sklearn.feature_selection.f_classif`). A constant column gives NaN.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    classes, codes = np.unique(y, return_inverse=True)
    n, groups = X.shape[0], classes.size
    if groups < 2 or n <= groups:
        return np.full(X.shape[1], np.nan)
    counts = np.bincount(codes, minlength=groups).astype(float)
    onehot = np.zeros((n, groups))
    onehot[np.arange(n), codes] = 1.0
    sums = onehot.T @ X
    means = sums / counts[:, None]
    grand = X.mean(axis=0)
    between = (counts[:, None] * (means - grand) ** 2).sum(axis=0) / (groups - 1)
    within = ((X - means[codes]) ** 2).sum(axis=0) / (n - groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(within > 0, between / within, np.nan)


def top_k_mask(f_stat: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest F (undefined F last, ties by column order); all when k is 0 or >= n."""
    mask = np.ones(f_stat.size, dtype=bool)
    if k and k < f_stat.size:
        order = np.argsort(-np.nan_to_num(f_stat, nan=-1.0, posinf=np.finfo(float).max), kind="stable")
        mask[:] = False
        mask[order[:k]] = True
    return mask


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
        self.mask_ = top_k_mask(anova_f(X, y), self.k)
        return self

    def _get_support_mask(self):
        return self.mask_


class BlockPreprocessor(_FitsThroughTransform, TransformerMixin, BaseEstimator):
    """All in-fold preprocessing of one block, fitted on the training rows.

    Omics block: :class:`BlockTransformer` (per-sample transform, prevalence and
    constant filters, median imputation), then the ``k`` features with the largest
    two-class F (:func:`anova_f`), then standardisation to the training mean and SD
    (population SD, as :class:`sklearn.preprocessing.StandardScaler`; a constant
    column is only centred). Clinical block (``clinical=True``): training-median
    imputation and standardisation, no selection.

    Parameters
    ----------
    method, layout, min_prevalence, pseudocount_fraction, scale, epsilon
        Passed to :class:`BlockTransformer`.
    k : int
        Features kept by the univariate filter (0 = all).
    clinical : bool
        Covariates as given (numeric, one-hot): impute and standardise only.
    """

    def __init__(self, method="none", layout="level", min_prevalence=0.0, pseudocount_fraction=0.5,
                 scale=1.0, epsilon=1e-4, k=50, clinical=False):
        # the transform's parameters are stored as BlockTransformer stores them (sklearn's
        # get_params reads them back by the names of this signature)
        BlockTransformer.__init__(self, method, layout, min_prevalence, pseudocount_fraction, scale, epsilon)
        self.k = k
        self.clinical = clinical

    def _values(self, X):
        if self.clinical:
            values = np.asarray(X, dtype=float)
            missing = np.isnan(values)
            return np.where(missing, self.medians_[None, :], values) if missing.any() else values
        return self.transformer_.transform(X)

    def fit_transform(self, X, y=None):
        X = np.asarray(X, dtype=float)
        self.n_features_in_ = X.shape[1]
        if self.clinical:
            with np.errstate(all="ignore"):
                medians = np.nanmedian(X, axis=0) if np.isnan(X).any() else np.median(X, axis=0)
            self.medians_ = np.where(np.isnan(medians), 0.0, medians)
        else:
            self.transformer_ = BlockTransformer(self.method, self.layout, self.min_prevalence,
                                                 self.pseudocount_fraction, self.scale,
                                                 self.epsilon)
        values = self._values(X) if self.clinical else self.transformer_.fit_transform(X)
        keep_all = self.clinical or y is None
        self.selected_ = top_k_mask(anova_f(values, y), 0 if keep_all else self.k)
        values = values[:, self.selected_]
        self.mean_ = values.mean(axis=0)
        sd = values.std(axis=0)
        self.scale_ = np.where(sd > 10 * np.finfo(float).eps * np.abs(self.mean_).clip(min=1), sd, 1.0)
        return (values - self.mean_) / self.scale_

    def transform(self, X):
        if self.clinical:
            values = self._values(X)[:, self.selected_]
        else:
            values = self.transformer_.transform_subset(X, self.selected_)
        return (values - self.mean_) / self.scale_

    def get_feature_names_out(self, input_features=None):
        names = (self._input_names(input_features) if self.clinical
                 else self.transformer_.get_feature_names_out(input_features))
        return names[self.selected_]


class BlockUnion(_FitsThroughTransform, TransformerMixin, BaseEstimator):
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

    @staticmethod
    def _take(X, columns):
        """``X[:, columns]``; a view when the columns are a contiguous ascending run."""
        columns = np.asarray(columns)
        if columns.dtype.kind in "iu" and columns.size and \
                columns[-1] - columns[0] == columns.size - 1 and np.all(np.diff(columns) == 1):
            return X[:, int(columns[0]):int(columns[-1]) + 1]
        return X[:, columns]

    def fit_transform(self, X, y=None):
        X = np.asarray(X, dtype=float)
        self.n_features_in_ = X.shape[1]
        self.fitted_ = []
        outputs = []
        for name, transformer, columns in self.transformers:
            # fitted in place: the enclosing pipeline is a fresh clone in every fold, and a
            # second clone per block per fit would cost more than the block's own fit
            outputs.append(transformer.fit_transform(self._take(X, columns), y))
            self.fitted_.append((name, transformer, columns))
        return np.hstack(outputs) if outputs else np.empty((X.shape[0], 0))

    def transform(self, X):
        X = np.asarray(X, dtype=float)
        outputs = [fitted.transform(self._take(X, columns)) for _, fitted, columns in self.fitted_]
        return np.hstack(outputs) if outputs else np.empty((X.shape[0], 0))

    def get_feature_names_out(self, input_features=None):
        names = []
        for name, fitted, columns in self.fitted_:
            inner = fitted.get_feature_names_out([f"x{c}" for c in columns])
            names.extend(f"{name}{NAME_SEPARATOR}{n}" for n in inner)
        return np.asarray(names, dtype=object)
