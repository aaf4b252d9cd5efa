"""Parameters of metabolomics processing: the documented defaults and their validation.

``DEFAULT_PARAMS`` mirrors the ``metabolome`` section of the config.  A user's dict is
merged over it key by key (:func:`resolve_params`); unknown keys and bad values are
reported together as one :class:`~gutaxis.io.errors.InputError`.
"""

from __future__ import annotations

import copy
from numbers import Real

from gutaxis.io.errors import ProblemCollector

#: Defaults for :func:`gutaxis.metabolome.process.process_metabolome`.  Every key:
#:
#: ``blank_filter.enabled`` (bool)
#:     Run the blank filter when blank injections exist (skipped, with a log note, when none).
#: ``blank_filter.fold`` (float >= 0)
#:     Keep a feature when its median over study samples is > fold x its median over blanks.
#: ``structural_missingness.enabled`` (bool)
#:     Find the features not measured in a group (a platform not run at a visit or in a batch): those
#:     cells are never imputed, never normalised from, and the feature is left out of every analysis
#:     that uses the group.
#: ``structural_missingness.min_missing`` (float in (0, 1])
#:     Missing fraction in a group at or above which the feature counts as not measured there.
#: ``structural_missingness.group_columns`` (list of str)
#:     Sample-sheet columns whose groups are checked (absent columns are skipped with a log note).
#: ``structural_missingness.platform`` (str)
#:     ``prefix`` (the feature id up to its first ``_``: NMR_, BA_ ...), ``none``, or an annotation
#:     column naming each feature's platform; used to summarise the gaps per platform.
#: ``structural_missingness.max_difference`` (float in (0, 1])
#:     Warn when a feature's missing fraction differs by at least this much between the two
#:     timepoints of a contrast.
#: ``missingness.enabled`` (bool)
#:     Run the missingness filter (over study samples only; QC pools are judged by RSD).
#: ``missingness.max_missing`` (float in [0, 1])
#:     Largest allowed fraction of missing values; 0.2 is the 80% rule.
#: ``missingness.rule`` ("per_group" | "overall")
#:     ``per_group``: kept when the rule holds in at least one group; ``overall``: over all study samples.
#: ``missingness.group_column`` (str)
#:     Sample-sheet column defining the groups for ``per_group`` (e.g. timepoint, or a response column).
#: ``missingness.strict`` (bool)
#:     Require missing fraction < max_missing instead of <= max_missing.
#: ``qc_rsd.enabled`` (bool)
#:     Run the QC-pool RSD filter when >= 2 QC injections exist (skipped, with a log note, otherwise).
#: ``qc_rsd.max_rsd`` (float > 0)
#:     Keep a feature when RSD = sd(ddof=1)/mean over its observed raw QC values is < max_rsd (0.3 = 30%).
#: ``impute.method`` ("half_minimum" | "lod_fraction" | "knn")
#:     Missing values (treated as below detection) become half the feature minimum, a fraction of the
#:     detection limit, or the KNN estimate (scikit-learn KNNImputer over samples).
#: ``impute.lod_fraction`` (float in (0, 1])
#:     Fraction of the detection limit for ``lod_fraction``.
#: ``impute.lod_column`` (str)
#:     Annotation column holding a per-feature detection limit; when absent the feature minimum is used.
#: ``impute.knn_k`` (int >= 1)
#:     Number of neighbouring samples for ``knn``.
#: ``normalise.method`` ("pqn" | "total_signal" | "median" | "none")
#:     Sample normalisation applied after imputation.
#: ``normalise.reference`` ("qc" | "median")
#:     PQN reference spectrum: median of the QC pools (falls back to ``median`` with a log note when
#:     there are no QC injections) or median of the study samples.
#: ``log2`` (bool)
#:     log2-transform after normalisation.
#: ``scale`` ("none" | "pareto" | "auto")
#:     Per-feature scaling of the final table; mean and sd from study samples.
#: ``batch_correction.enabled`` (bool)
#:     Correct batch effects (and, with ``qc_rlsc``, signal drift) on the log scale.
#: ``batch_correction.method`` ("median" | "qc_rlsc")
#:     ``median``: per-batch median centring (needs >= 2 batches); ``qc_rlsc``: per feature and batch
#:     a LOESS of the QC values on injection order (span by leave-one-QC-out cross-validation, the
#:     batch median competing as "no drift"), removed from every injection, batches aligned on the
#:     QC median (Dunn et al. 2011).
#: ``batch_correction.order_column`` (str)
#:     Sample-sheet column with the injection order (``qc_rlsc``).
#: ``batch_correction.spans`` (list of float > 0)
#:     LOESS spans the cross-validation chooses from (``qc_rlsc``).
#: ``batch_correction.min_qc`` (int >= 3)
#:     Fewest observed QC values in a batch for a drift fit; fewer: the feature is aligned by its
#:     batch median only, with a note in drift_fits.tsv.
#: ``batch_correction.reference`` ("qc" | "all")
#:     Estimate each batch's median from its QC pools (every batch needs one) or from all its injections.
#: ``batch_correction.batch_column`` (str)
#:     Sample-sheet column naming the batch.
DEFAULT_PARAMS: dict = {
    "blank_filter": {"enabled": True, "fold": 3.0},
    "structural_missingness": {
        "enabled": True,
        "min_missing": 0.95,
        "group_columns": ["timepoint", "batch"],
        "platform": "prefix",
        "max_difference": 0.3,
    },
    "missingness": {
        "enabled": True,
        "max_missing": 0.2,
        "rule": "per_group",
        "group_column": "timepoint",
        "strict": False,
    },
    "qc_rsd": {"enabled": True, "max_rsd": 0.3},
    "impute": {"method": "half_minimum", "lod_fraction": 0.2, "lod_column": "lod", "knn_k": 5},
    "normalise": {"method": "pqn", "reference": "qc"},
    "log2": True,
    "scale": "none",
    "batch_correction": {"enabled": False, "method": "median", "reference": "qc", "batch_column": "batch",
                         "order_column": "injection_order", "spans": [0.25, 0.35, 0.5, 0.65, 0.8, 1.0],
                         "min_qc": 5},
}

_CHOICES = {
    "missingness.rule": ("per_group", "overall"),
    "impute.method": ("half_minimum", "lod_fraction", "knn"),
    "normalise.method": ("pqn", "total_signal", "median", "none"),
    "normalise.reference": ("qc", "median"),
    "scale": ("none", "pareto", "auto"),
    "batch_correction.reference": ("qc", "all"),
    "batch_correction.method": ("median", "qc_rlsc"),
}
_RANGES = {  # key: (low, high, low_inclusive)
    "blank_filter.fold": (0.0, float("inf"), True),
    "missingness.max_missing": (0.0, 1.0, True),
    "qc_rsd.max_rsd": (0.0, float("inf"), False),
    "impute.lod_fraction": (0.0, 1.0, False),
    "impute.knn_k": (1, float("inf"), True),
    "structural_missingness.min_missing": (0.0, 1.0, False),
    "structural_missingness.max_difference": (0.0, 1.0, False),
    "batch_correction.min_qc": (3, float("inf"), True),
}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def resolve_params(params: dict | None, source: str = "config", section: str = "metabolome") -> dict:
    """Merge ``params`` over :data:`DEFAULT_PARAMS` and validate every value.

    Parameters
    ----------
    params : dict or None
        Possibly partial, nested like :data:`DEFAULT_PARAMS`.
    source, section : str
        Named in error messages (``config: metabolome.qc_rsd.max_rsd: ...``).

    Returns
    -------
    dict
        A complete parameter dict (a new object; the defaults are not modified).

    Raises
    ------
    gutaxis.io.errors.InputError
        For unknown keys, wrong types and values out of range, all at once.
    """
    merged = copy.deepcopy(DEFAULT_PARAMS)
    problems = ProblemCollector()
    for key, value in (params or {}).items():
        if value is None and isinstance(merged.get(key), dict):
            continue  # an empty YAML section keeps its defaults
        if key not in merged:
            problems.add(source, f"{section}.{key}", "unknown key",
                         f"use one of {', '.join(sorted(DEFAULT_PARAMS))}")
        elif isinstance(merged[key], dict):
            if not isinstance(value, dict):
                problems.add(source, f"{section}.{key}", f"must be a mapping, got {value!r}",
                             f"give the keys {', '.join(DEFAULT_PARAMS[key])}")
                continue
            for sub, subvalue in value.items():
                if sub not in merged[key]:
                    problems.add(source, f"{section}.{key}.{sub}", "unknown key",
                                 f"use one of {', '.join(DEFAULT_PARAMS[key])}")
                else:
                    merged[key][sub] = subvalue
        else:
            merged[key] = value
    flat_default = _flatten(DEFAULT_PARAMS)
    for name, value in _flatten(merged).items():
        where, default = f"{section}.{name}", flat_default[name]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                problems.add(source, where, f"must be true or false, got {value!r}", "write true or false")
        elif name in _CHOICES:
            if value not in _CHOICES[name]:
                problems.add(source, where, f"unknown value {value!r}", f"use one of {', '.join(_CHOICES[name])}")
        elif name in _RANGES:
            low, high, low_inclusive = _RANGES[name]
            ok = isinstance(value, Real) and not isinstance(value, bool)
            ok = ok and (value >= low if low_inclusive else value > low) and value <= high
            if name in ("impute.knn_k", "batch_correction.min_qc"):
                ok = ok and float(value).is_integer()
            if not ok:
                bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and <= {high}" if high != float("inf") else "")
                problems.add(source, where, f"must be a number {bound}, got {value!r}", f"set a number {bound}")
        elif name == "batch_correction.spans":
            numbers = isinstance(value, list) and value and all(
                isinstance(v, Real) and not isinstance(v, bool) and v > 0 for v in value)
            if not numbers:
                problems.add(source, where, f"must be a list of positive numbers, got {value!r}",
                             "give spans such as [0.5, 0.75, 1.0]")
        elif isinstance(default, list):
            if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
                problems.add(source, where, f"must be a list of column names, got {value!r}",
                             "give a list such as [timepoint, batch]")
        elif isinstance(default, str) and not (isinstance(value, str) and value):
            problems.add(source, where, f"must be a column name, got {value!r}",
                         "give a sample-sheet or annotation column name")
    problems.raise_if_any()
    return merged
