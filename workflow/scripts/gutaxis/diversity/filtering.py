"""Prevalence and mean-abundance filtering of a feature table, with per-sample renormalisation recorded."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from gutaxis.diversity.design import abundance_values, count_input
from gutaxis.io.errors import InputError, Problem, ProblemCollector

log = logging.getLogger("gutaxis.diversity")

DROPPED_FEATURE_COLUMNS = ["feature_id", "prevalence", "mean_abundance", "reason"]
DROPPED_SAMPLE_COLUMNS = ["sample_id", "reason"]
RENORMALISATION_COLUMNS = ["sample_id", "total_before", "retained_fraction", "renormalised"]


@dataclass(frozen=True)
class FilterResult:
    """A filtered feature table and what the filter did.

    Attributes
    ----------
    table : DataFrame
        Samples x kept features (input column order); rows sum to 1 when renormalised.
    dropped_features : DataFrame
        ``feature_id, prevalence, mean_abundance, reason``, sorted by feature id.
    dropped_samples : DataFrame
        ``sample_id, reason``: samples with no abundance left (they cannot be
        renormalised), sorted by sample id.
    renormalisation : DataFrame
        ``sample_id, total_before, retained_fraction, renormalised``: for each kept
        sample, its total before filtering and the fraction of it the kept features
        hold (the divisor of the renormalisation).
    parameters : dict
        The thresholds used.
    """

    table: pd.DataFrame
    dropped_features: pd.DataFrame
    dropped_samples: pd.DataFrame
    renormalisation: pd.DataFrame
    parameters: dict = field(default_factory=dict)

    def parameter_table(self) -> pd.DataFrame:
        """The parameters as ``parameter, value`` (text), in their order."""
        return pd.DataFrame({"parameter": list(self.parameters),
                             "value": [str(v) for v in self.parameters.values()]})


def _check(table, min_prevalence, min_mean_abundance, detection_limit, source):
    problems = ProblemCollector()
    for name, value, low, high in (("min_prevalence", min_prevalence, 0.0, 1.0),
                                   ("min_mean_abundance", min_mean_abundance, 0.0, np.inf),
                                   ("detection_limit", detection_limit, 0.0, np.inf)):
        if not (isinstance(value, (int, float)) and low <= value <= high):
            problems.add("config", f"key '{name}'", f"value {value!r} is outside [{low}, {high}]",
                         f"set {name} to a number in that range")
    x = abundance_values(table, source, problems)
    if table.shape[0] == 0 or table.shape[1] == 0:
        problems.add(source, "whole table", f"the table is empty ({table.shape[0]} samples x "
                     f"{table.shape[1]} features)", "check the import step")
    for axis, labels, what in ((0, table.index, "sample ids"), (1, table.columns, "feature ids")):
        if labels.duplicated().any():
            problems.add(source, what + " " + ", ".join(map(str, labels[labels.duplicated()][:8])),
                         f"{what} are duplicated", "give every sample/feature one row/column")
    problems.raise_if_any()
    return x


def filter_features(
    table: pd.DataFrame,
    min_prevalence: float = 0.1,
    min_mean_abundance: float = 0.0,
    detection_limit: float = 0.0,
    renormalise: bool = True,
    source: str = "feature table",
) -> FilterResult:
    """Keep features present in enough samples and abundant enough on average.

    With :math:`r_{sf} = x_{sf} / \\sum_{f'} x_{sf'}` the relative abundance of
    feature f in sample s (n samples):

    .. math::

        \\text{prevalence}_f = \\frac1n \\#\\{s : x_{sf} > \\text{detection\\_limit}\\},\\qquad
        \\text{mean\\_abundance}_f = \\frac1n \\sum_s r_{sf}

    A feature is kept when prevalence >= `min_prevalence` and mean_abundance >=
    `min_mean_abundance` (both computed on all samples before filtering). With
    `renormalise`, each sample is then divided by what its kept features hold
    (closure), and that fraction is recorded. Samples left with nothing are dropped
    and listed.

    Parameters
    ----------
    table : DataFrame
        Samples x features (index ``sample_id``), relative abundances or counts.
    min_prevalence : float in [0, 1]
    min_mean_abundance : float >= 0
        On the relative scale (0.0001 = 0.01 %).
    detection_limit : float >= 0
        A feature counts as present when strictly above this value.
    renormalise : bool
        Close each sample to 1 after filtering (turns counts into proportions).
    source : str
        Name of the table in error messages.

    Returns
    -------
    FilterResult

    References
    ----------
    Cao, Q. et al. (2021). Effects of rare microbiome taxa filtering on statistical
    analysis. Front. Microbiol. 11, 607325.
    """
    x = _check(table, min_prevalence, min_mean_abundance, detection_limit, source)
    totals = x.sum(axis=1)
    empty_before = totals <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(totals[:, None] > 0, x / totals[:, None], 0.0)
    prevalence = (x > detection_limit).mean(axis=0)
    mean_abundance = relative.mean(axis=0)
    low_prevalence = prevalence < min_prevalence
    low_abundance = mean_abundance < min_mean_abundance
    keep = ~(low_prevalence | low_abundance)

    reasons = []
    for f in np.flatnonzero(~keep):
        why = []
        if low_prevalence[f]:
            why.append(f"prevalence {prevalence[f]:.6g} < {min_prevalence:g}")
        if low_abundance[f]:
            why.append(f"mean abundance {mean_abundance[f]:.6g} < {min_mean_abundance:g}")
        reasons.append([str(table.columns[f]), float(prevalence[f]), float(mean_abundance[f]), "; ".join(why)])
    dropped_features = pd.DataFrame(reasons, columns=DROPPED_FEATURE_COLUMNS).sort_values(
        "feature_id", kind="stable").reset_index(drop=True)

    kept = x[:, keep]
    kept_totals = kept.sum(axis=1)
    empty_after = (kept_totals <= 0) & ~empty_before
    sample_ids = np.asarray(table.index.astype(str))
    dropped_samples = pd.DataFrame(
        [[s, "sample has no abundance (all zero)"] for s in sample_ids[empty_before]]
        + [[s, "no abundance left after feature filtering"] for s in sample_ids[empty_after]],
        columns=DROPPED_SAMPLE_COLUMNS).sort_values("sample_id", kind="stable").reset_index(drop=True)
    rows = ~(empty_before | empty_after)
    values = kept[rows]
    if renormalise:
        values = values / kept_totals[rows, None]
    out = pd.DataFrame(values, index=pd.Index(sample_ids[rows], name="sample_id"),
                       columns=pd.Index(table.columns[keep].astype(str), name="feature_id"))
    renormalisation = pd.DataFrame({
        "sample_id": sample_ids[rows],
        "total_before": totals[rows],
        "retained_fraction": kept_totals[rows] / totals[rows],
        "renormalised": renormalise,
    }, columns=RENORMALISATION_COLUMNS)
    if out.shape[1] == 0:
        raise InputError(Problem("config", "keys 'min_prevalence'/'min_mean_abundance'",
                                 f"no feature of {source} passes the filter",
                                 "lower the thresholds"))
    params = {"min_prevalence": min_prevalence, "min_mean_abundance": min_mean_abundance,
              "detection_limit": detection_limit, "renormalise": renormalise,
              "n_features_in": int(table.shape[1]), "n_features_kept": int(keep.sum()),
              "n_samples_in": int(table.shape[0]), "n_samples_kept": int(rows.sum())}
    return FilterResult(out, dropped_features, dropped_samples, renormalisation, params)


def filter_taxonomy(table: pd.DataFrame, notes: pd.DataFrame, thresholds: Mapping,
                    source: str = "feature table") -> FilterResult:
    """The diversity module's filter of one imported taxonomy table.

    Counts stay counts (Chao1 and rarefied richness need them; see
    :func:`gutaxis.diversity.design.count_input`); compositions are closed again
    after :func:`filter_features`. The parameters gain ``units`` and
    ``count_metrics`` (``computed``, or why the count metrics are not).

    Parameters
    ----------
    table : DataFrame
        ``results/import/<modality>.tsv``.
    notes : DataFrame
        The importer's notes (``key, value``).
    thresholds : mapping
        ``min_prevalence``, ``min_mean_abundance``, ``detection_limit`` (the config's
        ``diversity`` section).
    source : str
        Name of the table in messages.

    Returns
    -------
    FilterResult
    """
    counts, why_not_counts = count_input(notes, table)
    result = filter_features(table, min_prevalence=thresholds["min_prevalence"],
                             min_mean_abundance=thresholds["min_mean_abundance"],
                             detection_limit=thresholds["detection_limit"], renormalise=not counts, source=source)
    parameters = result.parameters
    log.info("kept %d of %d features and %d of %d samples", parameters["n_features_kept"],
             parameters["n_features_in"], parameters["n_samples_kept"], parameters["n_samples_in"])
    return replace(result, parameters={**parameters, "units": "counts" if counts else "relative abundance",
                                       "count_metrics": "computed" if counts else why_not_counts})
