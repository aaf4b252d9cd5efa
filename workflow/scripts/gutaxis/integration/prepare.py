"""Put one modality's analysis table on the scale the integration module correlates.

Compositions (taxonomy, function) are prevalence-filtered, closed again and
CLR-transformed with a per-sample pseudocount; metabolome and immune tables get the
transform their modality declares (logit of proportions, log2 of counts, none for
processed log2 metabolomics). Every dropped feature or sample is listed with its
reason, and the transform actually applied is written as notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gutaxis.io.errors import InputError, Problem
from gutaxis.diversity.filtering import filter_features
from gutaxis.differential.transforms import transform_table

__all__ = [
    "COMPOSITIONAL_KINDS",
    "PreparedTable",
    "clr_sample_pseudocount",
    "feature_labels",
    "prepare_for_integration",
]

#: kinds whose tables are compositions (fractions closed to 1 per sample)
COMPOSITIONAL_KINDS = ("taxonomy", "function")
#: immune units that are proportions of a parent population, and their scale
PROPORTION_UNITS = {"percent_of_parent": True, "percent": True, "fraction": False}
DROPPED_COLUMNS = ["kind", "id", "reason"]


@dataclass(frozen=True)
class PreparedTable:
    """A modality ready for integration.

    Attributes
    ----------
    values : DataFrame
        Samples x kept features on the transformed scale (index ``sample_id``).
    features : DataFrame
        ``feature_id, label`` for the kept features (label: annotation name, or
        the id), in column order.
    dropped : DataFrame
        ``kind`` (feature/sample), ``id``, ``reason``.
    notes : DataFrame
        ``key, value``: transform, its description, pseudocount rule, filter
        thresholds, counts before and after.
    """

    values: pd.DataFrame
    features: pd.DataFrame
    dropped: pd.DataFrame
    notes: pd.DataFrame


def clr_sample_pseudocount(table: pd.DataFrame, fraction: float = 0.5,
                           source: str = "feature table") -> tuple[pd.DataFrame, np.ndarray]:
    r"""Centred log-ratio with a pseudocount proportional to each sample's smallest non-zero value.

    .. math:: \mathrm{clr}(x_s)_j = \ln(x_{sj} + c_s) - \frac{1}{D}\sum_k \ln(x_{sk} + c_s),
       \quad c_s = f \cdot \min\{x_{sk} : x_{sk} > 0\}

    A per-sample pseudocount keeps the added mass below every observed abundance of
    that sample whatever its sequencing depth or closure (Aitchison 1986; f = 0.5 is
    the common "half the minimum" rule). CLR is scale invariant, so the value is
    computed as :func:`gutaxis.differential.transforms.clr_transform` of ``x_s / c_s`` with a
    pseudocount of 1, which equals ``clr(x_s + c_s)``.

    Parameters
    ----------
    table : DataFrame
        Samples x features, non-negative, every sample with a non-zero value.
    fraction : float in (0, 1]
        ``f`` above.
    source : str
        Table name for error messages.

    Returns
    -------
    values : DataFrame
        CLR values, same shape and labels.
    pseudocounts : ndarray
        ``c_s`` per sample.

    References
    ----------
    Aitchison J (1986) The Statistical Analysis of Compositional Data. Chapman & Hall.
    """
    if not 0 < fraction <= 1:
        raise InputError(Problem("config", "key 'clr_pseudocount_fraction'",
                                 f"value {fraction!r} is not in (0, 1]", "use e.g. 0.5"))
    x = table.to_numpy(dtype=float)
    positive = np.where(x > 0, x, np.inf)
    smallest = positive.min(axis=1)
    empty = ~np.isfinite(smallest)
    if empty.any():
        raise InputError(Problem(source, "samples " + ", ".join(map(str, table.index[empty][:10])),
                                 "no non-zero abundance, so CLR is undefined",
                                 "drop failed samples before integration (the import step lists them)"))
    pseudocounts = fraction * smallest
    scaled = table.div(pseudocounts, axis=0)
    values = transform_table(scaled, "clr", file=source, pseudocount=1.0).values
    return values, pseudocounts


def feature_labels(ids, annotations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Display labels: the annotation ``name`` (underscores as spaces), else the id.

    Labels that would repeat (two features with one name) get the id appended, so
    every label names one feature.

    Parameters
    ----------
    ids : sequence of str
        Feature ids, in the order wanted.
    annotations : DataFrame, optional
        Indexed by feature id, with an optional ``name`` column.

    Returns
    -------
    DataFrame
        ``feature_id, label``.
    """
    ids = pd.Index([str(i) for i in ids])
    names = pd.Series("", index=ids, dtype=object)
    if annotations is not None and "name" in annotations.columns:
        ann = annotations.set_axis(annotations.index.astype(str), axis=0)
        found = ann["name"].reindex(ids)
        names = found.where(found.notna(), "").astype(str).str.strip().str.replace("_", " ")
    label = names.where(names != "", pd.Series(ids, index=ids))
    repeated = label.duplicated(keep=False) & (label != pd.Series(ids, index=ids))
    label = label.where(~repeated, label + " (" + pd.Series(ids, index=ids) + ")")
    return pd.DataFrame({"feature_id": ids, "label": label.to_numpy()})


def prepare_for_integration(
    table: pd.DataFrame,
    *,
    kind: str,
    transform: str,
    annotations: pd.DataFrame | None = None,
    units: str | None = None,
    clr_pseudocount_fraction: float = 0.5,
    min_prevalence: float = 0.0,
    detection_limit: float = 0.0,
    source: str = "feature table",
) -> PreparedTable:
    """Filter and transform one modality's analysis table for correlation and MOFA.

    * compositions (``kind`` taxonomy or function): features present
      (``> detection_limit``) in fewer than ``min_prevalence`` of the samples are
      dropped (rare features are mostly zeros, whose ranks are ties and whose
      log-ratios are pseudocount artefacts), the samples are closed again, and the
      declared transform is applied; ``clr`` uses the per-sample pseudocount of
      :func:`clr_sample_pseudocount`, and so does ``rclr``: correlations and MOFA
      need complete data, and after the prevalence filter few zeros are left.
    * immune: ``logit`` of proportions (``units`` percent_of_parent/percent are
      divided by 100; fraction as is), or ``log2`` of counts (pseudocount half the
      smallest positive value when a zero is present, else none).
    * anything else (metabolome): the declared transform (``none`` for the
      processed log2 table).

    Parameters
    ----------
    table : DataFrame
        Samples x features (the module's analysis table).
    kind : str
        The modality's kind.
    transform : {"clr", "rclr", "log2", "logit", "none"}
        The modality's declared transform.
    annotations : DataFrame, optional
        Feature annotations (index feature id, optional ``name``), for labels.
    units : str, optional
        Immune units from the import notes.
    clr_pseudocount_fraction : float
        Fraction of each sample's smallest non-zero value added before CLR.
    min_prevalence, detection_limit : float
        Prevalence filter of compositions.
    source : str
        Table name for error messages.

    Returns
    -------
    PreparedTable
    """
    notes = {"kind": kind, "transform": transform,
             "n_samples_in": int(table.shape[0]), "n_features_in": int(table.shape[1])}
    dropped = [pd.DataFrame(columns=DROPPED_COLUMNS)]
    if kind in COMPOSITIONAL_KINDS:
        filtered = filter_features(table, min_prevalence=min_prevalence, min_mean_abundance=0.0,
                                   detection_limit=detection_limit, renormalise=True, source=source)
        dropped.append(pd.DataFrame({"kind": "feature", "id": filtered.dropped_features["feature_id"],
                                     "reason": filtered.dropped_features["reason"]}))
        dropped.append(pd.DataFrame({"kind": "sample", "id": filtered.dropped_samples["sample_id"],
                                     "reason": filtered.dropped_samples["reason"]}))
        notes.update({"min_prevalence": min_prevalence, "detection_limit": detection_limit,
                      "renormalised": True})
        table = filtered.table
    if kind in COMPOSITIONAL_KINDS and transform in ("clr", "rclr"):
        values, pseudocounts = clr_sample_pseudocount(table, clr_pseudocount_fraction, source)
        description = (f"CLR (natural log) after adding to each sample {clr_pseudocount_fraction:g} x "
                       f"its smallest non-zero value (pseudocounts {pseudocounts.min():.6g} to "
                       f"{pseudocounts.max():.6g})")
        if transform == "rclr":
            description += ("; the modality's rclr is replaced by this CLR here, because "
                            "correlations and MOFA need complete data")
        notes["clr_pseudocount_fraction"] = clr_pseudocount_fraction
    else:
        options = _transform_options(table, kind, transform, units, source)
        result = transform_table(table, transform, file=source, **options)
        values, description = result.values, result.description
        notes.update({k: v for k, v in result.parameters.items() if np.isscalar(v)})
    notes.update({"description": description, "n_samples_out": int(values.shape[0]),
                  "n_features_out": int(values.shape[1])})
    values.index.name = "sample_id"
    values.columns.name = "feature_id"
    dropped = pd.concat([d for d in dropped if len(d)] or dropped, ignore_index=True)[DROPPED_COLUMNS]
    return PreparedTable(
        values=values,
        features=feature_labels(values.columns, annotations),
        dropped=dropped.sort_values(["kind", "id"], kind="stable").reset_index(drop=True),
        notes=pd.DataFrame({"key": list(notes),
                            "value": [f"{v:.10g}" if isinstance(v, float) else str(v) for v in notes.values()]}),
    )


def _transform_options(table, kind, transform, units, source) -> dict:
    if transform == "logit":
        if kind == "immune" or units is not None:
            if units not in PROPORTION_UNITS:
                raise InputError(Problem(
                    source, f"units {units!r}",
                    "a logit needs proportions, but the immune units are not percent_of_parent, "
                    "percent or fraction",
                    "declare the modality's transform as log2 for counts (cells/uL), or fix the units"))
            return {"percent": PROPORTION_UNITS[units]}
        return {}
    if transform == "log2":
        x = table.to_numpy(dtype=float)
        if (x[np.isfinite(x)] == 0).any():
            positive = x[np.isfinite(x) & (x > 0)]
            return {"pseudocount": 0.5 * float(positive.min()) if positive.size else 1.0}
        return {}
    return {}
