"""Read plain abundance matrices (features x samples or samples x features)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.importers._common import (
    UNCLASSIFIED_FEATURE, UNCLASSIFIED_LABELS, UNIT_SCALE, ImportResult, check_choices, check_composition,
    check_file, check_nonempty_ids, check_unique, coerce_numeric, concat_dropped, detect_units,
    dropped_frame, finish_features, finish_table, guess_separator, leading_lines, norm_key,
    read_id_table, reader_signature, strip_sample_suffix, to_fractions,
)
from gutaxis.io.settings import with_overrides

#: Text columns of a features-as-rows table that annotate the feature (normalised names).
ANNOTATION_KEYS = {"taxonomy": "lineage", "lineage": "lineage", "name": "name",
                   "description": "name", "rank": "rank", "taxid": "taxid", "ncbitaxid": "taxid"}
ORIENTATIONS = ("features_as_rows", "samples_as_rows")


def header_and_skip(path: Path, sep: str | None):
    """Return (separator, header line or None, lines to skip) honouring '#' comments.

    A last ``#`` line with as many fields as the first data line is the header
    (QIIME's classic ``#OTU ID`` tables); other leading ``#`` lines are skipped.
    """
    head = leading_lines(path, 200)
    n_comment = 0
    while n_comment < len(head) and head[n_comment].startswith("#"):
        n_comment += 1
    first = head[n_comment] if n_comment < len(head) else ""
    sep = sep or guess_separator(path, first)
    if n_comment and first:
        last = head[n_comment - 1].lstrip("#").lstrip()
        if len(last.split(sep)) > 1 and len(last.split(sep)) == len(first.split(sep)):
            return sep, last, n_comment
    return sep, None, n_comment


@dataclass(frozen=True)
class PlainOptions:
    """The options of :func:`read_plain`: a modality's ``options`` of format ``plain``.

    Attributes
    ----------
    orientation : {"features_as_rows", "samples_as_rows"}
    units : {"auto", "fraction", "percent", "counts", "other"}
    value : {"fraction", "counts", "as_is"}
        ``counts`` requires count input; ``as_is`` keeps the numbers.
    unclassified : {"drop", "keep"}
        Rows named UNCLASSIFIED/unknown/unassigned/-1 (e.g. mOTUs' ``-1``).
    feature_id : {"as_is", "last"}
        ``last`` keeps the last element of ``;`` or ``|`` lineages and moves the
        lineage into the annotation.
    sample_suffix_strip : str, optional
    check_sums : bool
        Require fractions/percents to sum to 1/100 per sample (off by default: a
        plain table promises no composition).
    tolerance : float
    sep : str, optional
        Field separator (default: tab, or comma for .csv).
    """

    orientation: str = "features_as_rows"
    units: str = "auto"
    value: str = "fraction"
    unclassified: str = "drop"
    feature_id: str = "as_is"
    sample_suffix_strip: str | None = None
    check_sums: bool = False
    tolerance: float = 0.01
    sep: str | None = None

    #: the allowed values of the options that have a fixed set
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "orientation": ORIENTATIONS, "units": ("auto", "fraction", "percent", "counts", "other"),
        "value": ("fraction", "counts", "as_is"), "unclassified": ("drop", "keep"), "feature_id": ("as_is", "last")}

    @classmethod
    def from_config(cls, options: Mapping) -> PlainOptions:
        """The options of a modality's config entry (``modalities.<name>.options``)."""
        return cls(**options)


def read_plain(path: str | Path, settings: PlainOptions | None = None, **overrides) -> ImportResult:
    """Read a plain table: first column feature ids (or sample ids), then values.

    Units are detected with :func:`gutaxis.io.importers._common.detect_units` (percent,
    fraction or counts) unless given.  With ``value="fraction"`` the table is
    turned into fractions that sum to 1 per sample (percent / 100, counts / total,
    then renormalisation); the share before renormalisation is kept in
    ``sample_info['classified_fraction']`` (for fraction/percent input).

    Parameters
    ----------
    path : path
        TSV (or CSV by extension), plain or gzip; R ``write.table`` headers and
        QIIME ``#OTU ID`` headers are understood.
    settings : PlainOptions, optional
        The options (defaults when omitted).
    **overrides
        Single options replacing those of `settings`, e.g. ``units="counts"``.

    Returns
    -------
    ImportResult
        ``counts`` holds the counts when the input holds counts.

    References
    ----------
    Gloor GB, Macklaim JM, Pawlowsky-Glahn V, Egozcue JJ (2017) Microbiome datasets
    are compositional: and this is not optional. Front Microbiol 8:2224.
    """
    o = with_overrides(settings, PlainOptions, overrides)
    file = str(path)
    check_choices(vars(o), PlainOptions.CHOICES, file)
    p = check_file(path, "abundance table")
    sep, header_line, skip = header_and_skip(p, o.sep)
    by_rows = o.orientation == "features_as_rows"
    frame = read_id_table(p, sep, skip, header_line=header_line,
                          column_kind="sample" if by_rows else "feature")
    problems = ProblemCollector()
    annotation = pd.DataFrame(index=frame.index)
    if by_rows:
        for col in list(frame.columns):
            key = ANNOTATION_KEYS.get(norm_key(col))
            if key and not pd.api.types.is_numeric_dtype(frame[col]):
                annotation[key] = frame.pop(col)
        values = coerce_numeric(frame, file, problems, row_kind="feature", col_kind="sample").T
    else:
        values = coerce_numeric(frame, file, problems, row_kind="sample", col_kind="feature")
    values.index = strip_sample_suffix(values.index, o.sample_suffix_strip)
    check_nonempty_ids(values.index, "sample", file, problems)
    check_nonempty_ids(values.columns, "feature", file, problems)
    check_unique(values.index, "sample", file, problems)
    check_unique(values.columns, "feature", file, problems)
    problems.raise_if_any()
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise InputError(Problem(file, "columns", "no sample columns with values",
                                 "check the separator and orientation options"))

    unit = detect_units(values, o.tolerance) if o.units == "auto" else o.units
    ids = pd.Series(values.columns.astype(str), index=values.columns)
    is_unc = ids.str.strip().str.lower().isin(UNCLASSIFIED_LABELS)
    totals = values.sum(axis=1)
    if o.check_sums and unit in UNIT_SCALE:
        check_composition(totals, unit, o.tolerance, file, problems, what="the feature values",
                          fix="give the unfiltered table or set check_sums to false")
        problems.raise_if_any()
    dropped = []
    unc_total = values.loc[:, is_unc.to_numpy()].sum(axis=1)
    if is_unc.any():
        if o.unclassified == "drop":
            dropped.append(dropped_frame(feature_ids=list(ids[is_unc]),
                                         reason="unclassified share (unclassified='drop')"))
            values = values.loc[:, ~is_unc.to_numpy()]
        else:
            kept_unc = values.loc[:, is_unc.to_numpy()].sum(axis=1)
            values = values.loc[:, ~is_unc.to_numpy()]
            values[UNCLASSIFIED_FEATURE] = kept_unc

    features = annotation.reindex([c for c in values.columns]) if len(annotation.columns) else \
        pd.DataFrame(index=values.columns)
    looks_like_lineage = pd.Series(values.columns.astype(str)).str.contains(r"[|;]").any()
    if looks_like_lineage and "lineage" not in features.columns:
        features["lineage"] = [str(c) for c in values.columns]
    if o.feature_id == "last":
        orig = pd.Series(values.columns.astype(str), index=values.columns)
        last = orig.str.extract(r"([^|;]*)$", expand=False).str.strip()
        check_unique(last, "feature", file, problems,
                     fix="several lineages end in the same name (e.g. unnamed 'g__'); "
                         "use feature_id='as_is'")
        problems.raise_if_any()
        features = features.copy()
        features.index = last.to_numpy()
        values.columns = last.to_numpy()
        features["name"] = last.str.replace(r"^[a-z]__", "", regex=True).to_numpy()

    info = pd.DataFrame({"total": totals})
    if is_unc.any():
        info["unclassified_total"] = unc_total
    info.index.name = "sample_id"
    counts = values.copy() if unit == "counts" else None
    if o.value == "counts" and unit != "counts":
        raise InputError(Problem(file, "option 'value'", f"counts requested but the values look "
                                 f"like {unit}", "use value='fraction' or give units='counts' "
                                 "if the table holds read counts"))
    if o.value == "fraction":
        if unit not in ("fraction", "percent", "counts"):
            raise InputError(Problem(file, "values", "values are neither fractions, percents nor "
                                     "counts (sums above 100 with non-integer values), so they "
                                     "cannot be turned into fractions",
                                     "pass value='as_is', or units= when the detection is wrong"))
        values, dropped_samples, frac_info = to_fractions(values, unit, file)
        info["classified_fraction"] = frac_info["classified_fraction"]
        dropped.append(dropped_samples)
        if counts is not None:
            counts = counts.loc[values.index]
    table = finish_table(values)
    notes = {"format": "plain", "orientation": o.orientation, "units": unit,
             "units_source": "detected" if o.units == "auto" else "given",
             "output_units": {"fraction": "fraction", "counts": "counts"}.get(o.value, unit),
             "renormalised": o.value == "fraction", "unclassified": o.unclassified,
             "n_rows_read": int(frame.shape[0]), "n_samples_read": int(len(totals)),
             "n_features": int(table.shape[1]), "n_samples": int(table.shape[0]),
             "feature_id": o.feature_id, "separator": sep}
    return ImportResult(table=table, features=finish_features(features, table.columns),
                        dropped=concat_dropped(dropped), notes=notes, sample_info=info,
                        counts=finish_table(counts) if counts is not None else None)


read_plain.__signature__ = reader_signature(PlainOptions)
