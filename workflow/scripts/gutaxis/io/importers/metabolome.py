"""Read metabolomics peak tables (features x samples or samples x features) with annotations."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable, Sequence

import numpy as np
import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.importers._common import (
    ImportResult, check_choices, check_file, check_nonempty_ids, check_unique, coerce_numeric, concat_dropped,
    dropped_frame, finish_features, finish_table, guess_separator, leading_lines, list_ids,
    norm_key, read_id_table, reader_signature,
)
from gutaxis.io.settings import with_overrides

#: Canonical annotation column -> normalised header names tools use for it.
ANNOTATION_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "metabolite", "metabolitename", "compound", "compoundname", "label",
             "biochemical", "chemicalname", "identity", "analyte"),
    "mz": ("mz", "mzmed", "mzmean", "averagemz", "precursormz", "rowmz", "mass"),
    "rt": ("rt", "rtmed", "rtmean", "retentiontime", "averagertmin", "rtmin",
           "retentiontimemin", "rowretentiontime"),
    "hmdb": ("hmdb", "hmdbid"),
    "kegg": ("kegg", "keggid"),
    # the unit a file states per feature; ``unit`` itself is the ``units`` option
    "unit_reported": ("unit", "units"),
}
ALIAS_TO_CANONICAL = {a: c for c, aliases in ANNOTATION_ALIASES.items() for a in aliases}
#: Other annotation headers (normalised) of peak tables that hold numbers, so that the
#: mostly-text rule misses them: peak-group bounds and counts (XCMS, MS-DIAL), limits of
#: quantification, QC summaries and database ids.  Kept under their own names.
NUMERIC_ANNOTATION_KEYS = ("mzmin", "mzmax", "rtmax", "npeaks", "pcgroup", "charge", "ppm",
                           "masserror", "lod", "loq", "lloq", "uloq", "qcrsd", "rsd", "cv",
                           "percmissing", "fillpercent", "pubchem", "pubchemcid", "chebi",
                           "compid", "chemicalid")
#: Names of the built-in patterns of feature ids (``how`` of :func:`id_annotations`).
ID_PATTERNS: dict[str, str] = {
    # the id is the m/z itself (direct-infusion tables such as MTBLS79)
    "mz": r"(?P<mz>\d+(?:\.\d+)?)",
    # m/z and RT joined by @, __ or / (e.g. 123.4567@5.67, MetaboAnalyst's 200.1__2926)
    "mz_rt": r"(?P<mz>\d+\.\d+)(?:@|__|/)(?P<rt>\d+(?:\.\d+)?)",
    # XCMS group names: M<m/z>T<RT in seconds>, with _1, _2 for clashes (M147T63, M147.08T63.2_1)
    "xcms": r"M(?P<mz>\d+(?:\.\d+)?)T(?P<rt>\d+(?:\.\d+)?)(?:_\d+)?",
    # Progenesis QI: <RT>_<m/z>m/z (0.53_130.0651m/z); <RT>_<mass>n ids are neutral masses
    "progenesis": r"(?P<rt>\d+\.\d+)_(?P<mz>\d+\.\d+)m/z",
    # a KEGG compound id before the name, '-' when there is none (MMCD: C00024_Acetyl CoA)
    "kegg_name": r"(?:(?P<kegg>C\d{5})|-)_(?P<name>.+)",
}
#: Built-in patterns tried by ``how="auto"``, in order; the first that every
#: id matches is used (``kegg_name``: at least half of the ids, the others get nothing).
AUTO_ID_PATTERNS = ("mz_rt", "xcms", "progenesis", "kegg_name")
#: Smallest m/z taken from bare-number ids whose header does not say m/z: chemical
#: shifts of binned NMR spectra (0-15 ppm) are numbers too.
MIN_BARE_MZ = 20.0
ID_GROUPS = ("mz", "rt", "name", "hmdb", "kegg")
#: Header names of the sample-id column in a samples-as-rows table (normalised).
SAMPLE_ID_KEYS = ("sampleid", "sample", "samplename", "sampleidentifier", "sample_id")
#: Non-feature columns often found beside sample ids (normalised).
METADATA_KEYS = ("", "idx", "index", "unnamed0", "sampletype", "class", "group", "batch",
                 "order", "injectionorder", "runorder", "subject", "subjectid", "timepoint",
                 "type")
ORIENTATIONS = ("auto", "features_as_rows", "samples_as_rows")
DECIMAL_COMMA_SUB = r"^(-?\d+),(\d+)$"
LAYOUTS = ("wide", "long")
#: Header names of the metabolite column of a long table (normalised).
LONG_FEATURE_KEYS = ("analyte", "metabolite", "compound", "compoundname", "metabolitename",
                     "feature", "featureid", "biochemical", "name")
#: Header names of the value column of a long table (normalised).
LONG_VALUE_KEYS = ("value", "values", "result", "results", "concentration", "amount", "intensity")


def _long_to_wide(frame: pd.DataFrame, keys: dict, file: str, sample_column, feature_column,
                  value_column) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """A long table (one row per sample and metabolite) as samples x metabolites (text cells).

    Returns the wide table, the per-metabolite annotations and the metabolite column.
    The annotations are the other columns whose value (missing included) is the same
    in every row of each metabolite, e.g. the unit and the LLOQ/ULOQ of a
    targeted-assay report; columns that vary within a metabolite (sample tube ids,
    per-cell comments such as BLOQ) describe cells, not metabolites, and are left out.
    """
    def pick(given, candidates, what, option):
        if given is not None:
            if given not in frame.columns:
                raise InputError(Problem(file, f"option '{option}'", f"column '{given}' not found",
                                         f"use one of {list_ids(list(frame.columns), 20)}"))
            return given
        hit = next((c for c in frame.columns if keys[c] in candidates), None)
        if hit is None:
            raise InputError(Problem(file, "columns", f"no {what} column found for the long layout",
                                     f"set options.{option} to one of {list_ids(list(frame.columns), 20)}"))
        return hit

    sid = pick(sample_column, SAMPLE_ID_KEYS, "sample id", "sample_column")
    fid = pick(feature_column, LONG_FEATURE_KEYS, "metabolite", "feature_column")
    vid = pick(value_column, LONG_VALUE_KEYS, "value", "value_column")
    long = frame[[sid, fid, vid]].copy()
    long[sid] = long[sid].astype(str).str.strip()
    long[fid] = long[fid].astype(str).str.strip()
    dup = long.duplicated([sid, fid], keep=False)
    if dup.any():
        pairs = long.loc[dup, [sid, fid]].drop_duplicates().agg(" / ".join, axis=1)
        raise InputError(Problem(file, f"rows {list_ids([i + 2 for i in long.index[dup]])} (line numbers)",
                                 f"the same sample and metabolite appear more than once: "
                                 f"{list_ids(list(pairs))}",
                                 "keep one measurement per sample and metabolite (or set "
                                 "options.sample_column to the column that tells them apart)"))
    wide = long.pivot(index=sid, columns=fid, values=vid)
    wide = wide.reindex(index=long[sid].drop_duplicates(), columns=long[fid].drop_duplicates())
    wide.index.name = "sample_id"
    wide.columns.name = None
    return wide.reset_index(), _per_feature_columns(frame, long[fid], [sid, fid, vid]), fid


def _per_feature_columns(frame: pd.DataFrame, feature: pd.Series, exclude: Sequence[str]) -> pd.DataFrame:
    """Columns of a long table constant within every feature, one row per feature (first seen)."""
    rest = [c for c in frame.columns if c not in exclude]
    if not rest:
        return pd.DataFrame(index=pd.Index(feature.drop_duplicates()))
    cells = frame[rest].astype(object).where(frame[rest].notna(), "\x00missing")
    per_feature = cells.groupby(feature.to_numpy(), sort=False).nunique()
    constant = [c for c in rest if int(per_feature[c].max()) <= 1]
    first = frame[constant].groupby(feature.to_numpy(), sort=False).first()
    return first.reindex(pd.Index(feature.drop_duplicates()))


def _refuse_long(frame: pd.DataFrame, keys: dict, file: str, value_column) -> None:
    """Raise when a table read as wide is plainly long (a metabolite column repeats)."""
    value = value_column if value_column in frame.columns else next(
        (c for c in frame.columns if keys[c] in LONG_VALUE_KEYS), None)
    feature = next((c for c in frame.columns if keys[c] in LONG_FEATURE_KEYS and keys[c] != "name"),
                   None)
    if value is None or feature is None or len(frame) < 4:
        return
    repeated = frame[feature].astype(str).duplicated().mean()
    if repeated > 0.5:
        raise InputError(Problem(file, f"column '{feature}'", "the table is long (one row per sample "
                                 f"and metabolite: '{feature}' repeats), but it is read as wide",
                                 f"set options.layout: long, options.value_column: '{value}', "
                                 f"options.feature_column: '{feature}' and options.sample_column"))


def _mostly_text(col: pd.Series) -> bool:
    """True when fewer than half of the non-empty cells parse as numbers."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return False
    present = col.dropna()
    if present.empty:
        return False
    text = present.astype(str).str.strip()
    # '12,5' is a number with a decimal comma, not text: coerce_numeric says so
    parsed = pd.to_numeric(text.str.replace(DECIMAL_COMMA_SUB, r"\1.\2", regex=True), errors="coerce")
    return bool(parsed.notna().mean() < 0.5)


def _bare_number_ids(ids: pd.Index, header: str | None) -> str | None:
    """Which annotation bare-number feature ids are: ``"mz"``, ``"rt"`` or None.

    Ids that all parse as numbers, some with decimals, are read as m/z when the id
    column's header is an m/z alias (``m/z``, ``mzmed``, ...), as RT when it is an RT
    alias, and otherwise (e.g. MTBLS79's ``name``, or the column names of a
    samples-as-rows table) as m/z only when every id is at least
    :data:`MIN_BARE_MZ` (binned NMR chemical shifts are 0-15 ppm).  Integer ids
    (1, 2, 3 ...) are row numbers, never m/z.
    """
    if len(ids) == 0:
        return None
    num = pd.to_numeric(pd.Series(ids, dtype=object).astype(str).str.strip(), errors="coerce")
    arr = num.to_numpy(dtype=float)
    if not np.isfinite(arr).all() or np.all(arr == np.round(arr)):
        return None
    canonical = ALIAS_TO_CANONICAL.get(norm_key(header)) if header is not None else None
    if canonical in ("mz", "rt"):
        return canonical
    return "mz" if float(arr.min()) >= MIN_BARE_MZ else None


def id_annotations(ids: Sequence[str], how: str = "auto", header: str | None = None,
                   file: str = "options") -> tuple[pd.DataFrame, str]:
    """Annotation columns (mz, rt, name, hmdb, kegg) read from the feature ids.

    Parameters
    ----------
    ids : sequence of str
        Feature ids.
    how : str
        ``"none"``: nothing.  A key of :data:`ID_PATTERNS` (``mz``, ``mz_rt``,
        ``xcms``, ``progenesis``, ``kegg_name``) or a regular expression with named
        groups among ``mz, rt, name, hmdb, kegg`` (e.g. ``M(?P<mz>\\d+)_(?P<rt>\\d+)``):
        each id that matches it in full gives its groups; the others give nothing.
        ``"auto"`` uses only readings without ambiguity: bare numbers as m/z (see
        :func:`_bare_number_ids`), else the first of :data:`AUTO_ID_PATTERNS` that
        every id matches (``kegg_name``: at least half of them).
    header : str, optional
        Header of the id column (features-as-rows tables), used for bare numbers.
    file : str
        Named in error messages.

    Returns
    -------
    (DataFrame, str)
        Indexed by the ids, one column per group found (mz and rt as floats, with
        NaN where an id did not match); the rule used (``""`` when none).

    Notes
    -----
    XCMS writes the RT of its group names in seconds and rounded (``M147T63``), so
    an RT column of the table itself, when there is one, is preferred to it by
    :func:`read_metabolome`.
    """
    index = pd.Index([str(i) for i in ids])
    empty = pd.DataFrame(index=index)
    if how == "none" or len(index) == 0:
        return empty, ""
    text = pd.Series(index, index=index).str.strip()
    if how == "auto":
        bare = _bare_number_ids(index, header)
        if bare is not None:
            out = pd.DataFrame({bare: pd.to_numeric(text, errors="coerce")}, index=index)
            return out, f"{bare} (ids are numbers)"
        for key in AUTO_ID_PATTERNS:
            hit = text.str.fullmatch(ID_PATTERNS[key])
            if hit.all() or (key == "kegg_name" and hit.mean() >= 0.5):
                return _match_groups(text, ID_PATTERNS[key]), key
        return empty, ""
    pattern = ID_PATTERNS.get(how, how)
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise InputError(Problem(file, "option 'id_annotation'",
                                 f"{how!r} is neither {', '.join(['auto', 'none', *ID_PATTERNS])} "
                                 f"nor a valid regular expression ({exc})",
                                 "give a regular expression with named groups such as "
                                 "(?P<mz>...) and (?P<rt>...)")) from None
    if not set(rx.groupindex) & set(ID_GROUPS):
        raise InputError(Problem(file, "option 'id_annotation'",
                                 f"the pattern {how!r} has no named group among {', '.join(ID_GROUPS)}",
                                 "name the groups, e.g. M(?P<mz>\\d+)_(?P<rt>\\d+)"))
    return _match_groups(text, pattern), how


def _match_groups(text: pd.Series, pattern: str) -> pd.DataFrame:
    """The named groups of ``pattern`` (full match) per id; m/z and RT as floats."""
    found = text.str.extract(f"^(?:{pattern})$")
    found = found[[c for c in found.columns if c in ID_GROUPS]]
    for col in ("mz", "rt"):
        if col in found.columns:
            found[col] = pd.to_numeric(found[col], errors="coerce")
    return found.dropna(axis=1, how="all")


def _fill(features: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    """``features`` with the empty cells (and absent columns) filled from ``extra``.

    Both are indexed by feature id; values already in ``features`` win.
    """
    features = features.copy()
    extra = extra.reindex(features.index)
    for col in extra.columns:
        if col not in features.columns:
            features[col] = extra[col].to_numpy()
        else:
            gap = features[col].isna().to_numpy() & extra[col].notna().to_numpy()
            if gap.any():
                if features[col].dtype != extra[col].dtype:
                    features[col] = features[col].astype(object)
                features.loc[gap, col] = extra[col].to_numpy()[gap]
    return features


def _canonical_annotations(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Annotation columns renamed to ``name/mz/rt/hmdb/kegg`` where recognised."""
    out = pd.DataFrame(index=frame.index)
    for col in columns:
        target = ALIAS_TO_CANONICAL.get(norm_key(col), str(col))
        if target in out.columns:
            target = str(col)
        out[target] = frame[col].to_numpy()
    for num in ("mz", "rt"):
        if num in out.columns:
            out[num] = pd.to_numeric(out[num], errors="coerce")
    return out


def _read_annotation(annotation, feature_ids: pd.Index, id_column: str | None,
                     file: str) -> tuple[pd.DataFrame, str]:
    """The annotation table aligned to ``feature_ids``, and the name of its id column."""
    if isinstance(annotation, pd.DataFrame):
        # An id held in the index becomes a column like any other.
        ann = (annotation.copy() if isinstance(annotation.index, pd.RangeIndex)
               else annotation.reset_index())
        label = "annotation table"
    else:
        ap = check_file(annotation, "metabolite annotation table")
        head = leading_lines(ap, 1)
        ann = pd.read_csv(ap, sep=guess_separator(ap, head[0] if head else None), dtype=str,
                          keep_default_na=True)
        label = str(annotation)
    if id_column is None:
        overlap = {c: ann[c].astype(str).isin(feature_ids).sum() for c in ann.columns}
        id_column = max(overlap, key=overlap.get)
        if overlap[id_column] == 0:
            raise InputError(Problem(label, "id column", "no column of the annotation table matches "
                                     f"the feature ids of {file} (e.g. {list_ids(list(feature_ids[:3]))})",
                                     "set annotation_id_column to the column holding the feature ids"))
    elif id_column not in ann.columns:
        raise InputError(Problem(label, f"column '{id_column}'", "not in the annotation table",
                                 f"use one of {list_ids(list(ann.columns), 20)}"))
    ann = ann.drop_duplicates(subset=[id_column]).set_index(id_column)
    ann.index = ann.index.astype(str)
    return _canonical_annotations(ann, list(ann.columns)).reindex(feature_ids), str(id_column)


@dataclass(frozen=True)
class MetabolomeOptions:
    """The options of :func:`read_metabolome`: a modality's ``options`` of format ``metabolome``.

    Attributes
    ----------
    orientation : {"auto", "features_as_rows", "samples_as_rows"}
        Wide tables: ``auto``: with ``sample_ids``, the side where more of them
        appear; without, samples as rows when a column is called
        ``Sample``/``SampleID``, else features as rows (peak tables as XCMS, MS-DIAL
        and metaX write them).
    layout : {"wide", "long"}
        ``long`` = one row per sample and metabolite (as targeted-assay reports,
        e.g. a Metabolon SCFA sheet), with ``sample_column``, ``feature_column``
        and ``value_column``.
    value_column : str, optional
        Long tables: the column holding the values (e.g. ``Results``).
    feature_column : str, optional
        Features-as-rows: column of feature ids (default the first). Long tables:
        the column naming the metabolite (default a column named like
        analyte/metabolite/compound).
    sample_column : str, optional
        Samples-as-rows and long tables: column of sample ids (default
        ``SampleID``/``Sample`` or the first column).
    sample_ids : sequence of str, optional
        Sample ids of the sample sheet: only these become samples; other value
        columns (rows) go to ``dropped``.
    annotation_columns : sequence of str, optional
        Features-as-rows: annotation columns.  Default: any column named like
        name/metabolite/compound/label, m/z/mz/mzmed, RT/rtmed/retention time,
        HMDB, KEGG, unit (as ``unit_reported``), plus numeric annotations named in
        :data:`NUMERIC_ANNOTATION_KEYS` (mzmin, mzmax, npeaks, LOD, LLOQ, QC_RSD,
        ...) and any column that is mostly text.  Long tables: the columns
        constant within every metabolite (unit, LLOQ, ULOQ, ...) always are.
    metadata_columns : sequence of str, optional
        Samples-as-rows: non-feature columns (default: Idx, SampleType, Class,
        batch, order, ... and mostly-text columns).
    annotation : path or DataFrame, optional
        Separate annotation table (e.g. a peak sheet or an ``mtb.map``); its id
        column is ``annotation_id_column`` or the column matching most feature ids.
        It fills the annotation cells the table itself leaves empty.
    id_annotation : str
        How annotations are read from the feature ids (:func:`id_annotations`):
        ``auto`` (unambiguous codes only), ``none``, ``mz``, ``mz_rt``, ``xcms``,
        ``progenesis``, ``kegg_name`` or a regular expression with named groups.
    zeros : {"keep", "missing"}
    na_values : sequence of str
        Extra codes for "not measured" (e.g. ``["N/Q", "QNS"]``).
    allow_negative : bool
    units : str
        Recorded in notes and ``features['unit']``; a unit column of the file
        itself is kept as ``features['unit_reported']``.
    sep : str, optional
    """

    orientation: str = "auto"
    layout: str = "wide"
    value_column: str | None = None
    feature_column: str | None = None
    sample_column: str | None = None
    sample_ids: Sequence[str] | None = None
    annotation_columns: Sequence[str] | None = None
    metadata_columns: Sequence[str] | None = None
    annotation: object = None
    annotation_id_column: str | None = None
    id_annotation: str = "auto"
    zeros: str = "keep"
    na_values: Sequence[str] = ()
    allow_negative: bool = False
    units: str = "intensity"
    sep: str | None = None

    #: the allowed values of the options that have a fixed set
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"orientation": ORIENTATIONS, "layout": LAYOUTS,
                                                     "zeros": ("keep", "missing")}

    @classmethod
    def from_config(cls, options: Mapping) -> MetabolomeOptions:
        """The options of a modality's config entry (``modalities.<name>.options``)."""
        return cls(**options)


def read_metabolome(path: str | Path, settings: MetabolomeOptions | None = None, **overrides) -> ImportResult:
    """Read a metabolite peak/concentration table into samples x features.

    Missing values (empty, ``NA``, ``NaN`` and any ``na_values``) stay NaN for the
    imputation step; ``zeros="missing"`` also turns 0 (the "not detected" code of
    many tools) into NaN.

    Parameters
    ----------
    path : path
        TSV (or CSV by extension), plain or gzip.
    settings : MetabolomeOptions, optional
        The modality's options (:meth:`MetabolomeOptions.from_config`); the defaults if omitted.
    **overrides
        Options given one by one; they win over `settings`.

    Returns
    -------
    ImportResult
        ``features`` holds the recognised annotations (``name``, ``mz``, ``rt``,
        ``hmdb``, ``kegg``, ``unit``, ``unit_reported`` and other columns as
        named); ``notes`` counts missing and zero cells.

    Notes
    -----
    Each annotation cell comes from the first source that has it: the table's own
    annotation columns, then ``annotation``, then the feature ids as read by
    :func:`id_annotations` as ``id_annotation`` asks (``auto`` by default;
    ``notes['id_annotation']`` names the rule). In ``auto`` mode: bare-number ids are m/z (MTBLS79's ``name`` column); ids such as
    ``123.4567@5.67`` or ``123.4567__5.67`` give m/z and RT, XCMS ``M147T63`` gives
    m/z and RT in seconds, Progenesis ``0.53_130.0651m/z`` gives RT and m/z, MMCD's
    ``C00024_Acetyl CoA`` gives KEGG and name; an id column headed like a name
    (``Metabolite``, ``Analyte``) holding text gives the name.

    References
    ----------
    Broadhurst D et al. (2018) Guidelines and considerations for the use of system
    suitability and quality control samples in mass spectrometry assays applied in
    untargeted clinical metabolomic studies. Metabolomics 14:72.
    """
    o = with_overrides(settings, MetabolomeOptions, overrides)
    file = str(path)
    check_choices(vars(o), MetabolomeOptions.CHOICES, file)
    # a long table is read as samples as rows: these three follow the layout
    orientation, sample_column, metadata_columns = o.orientation, o.sample_column, o.metadata_columns
    p = check_file(path, "metabolome table")
    head = leading_lines(p, 2)
    sep = o.sep or guess_separator(p, head[0] if head else None)
    frame = read_id_table(p, sep, 0, column_kind="column", na_values=o.na_values)
    frame = frame.reset_index()
    frame.columns = [str(c) for c in frame.columns]
    keys = {c: norm_key(c) for c in frame.columns}
    sheet = None if o.sample_ids is None else pd.Index([str(s) for s in o.sample_ids])
    id_header = annotation_id_header = None
    if o.layout == "long":
        frame, long_annotation, id_header = _long_to_wide(frame, keys, file, sample_column,
                                                           o.feature_column, o.value_column)
        keys = {c: norm_key(c) for c in frame.columns}
        orientation, sample_column, metadata_columns = "samples_as_rows", "sample_id", []
    else:
        _refuse_long(frame, keys, file, o.value_column)

    if orientation == "auto":
        if sheet is not None:
            in_header = int(pd.Index(frame.columns).isin(sheet).sum())
            id_like = [c for i, c in enumerate(frame.columns) if i < 3 or keys[c] in SAMPLE_ID_KEYS]
            in_rows = max(int(frame[c].astype(str).isin(sheet).sum()) for c in id_like)
            if in_header == 0 and in_rows == 0:
                raise InputError(Problem(file, "sample ids", "none of the sample sheet's ids "
                                         f"(e.g. {list_ids(list(sheet[:3]))}) is a column name or "
                                         "a row id", "make the sample ids in the sheet match the "
                                         "table, or check the file"))
            orientation = "features_as_rows" if in_header >= in_rows else "samples_as_rows"
        elif sample_column is not None or any(k in SAMPLE_ID_KEYS for k in keys.values()):
            orientation = "samples_as_rows"
        else:
            orientation = "features_as_rows"

    problems = ProblemCollector()
    dropped = []
    notes: dict = {"format": "metabolome", "orientation": orientation, "units": o.units,
                   "separator": sep}
    if o.layout == "long":
        notes["layout"] = o.layout
    if orientation == "features_as_rows":
        id_col = o.feature_column or frame.columns[0]
        if id_col not in frame.columns:
            raise InputError(Problem(file, f"column '{id_col}'", "feature id column not found",
                                     f"use one of {list_ids(list(frame.columns), 20)}"))
        body = frame.set_index(id_col)
        body.index = body.index.astype(str)
        if o.annotation_columns is not None:
            missing = [c for c in o.annotation_columns if c not in body.columns]
            if missing:
                problems.add(file, f"columns {list_ids(missing)}", "annotation columns not found",
                             "fix annotation_columns")
            ann_cols = [c for c in o.annotation_columns if c in body.columns]
        else:
            ann_cols = [c for c in body.columns
                        if (norm_key(c) in ALIAS_TO_CANONICAL or norm_key(c) in NUMERIC_ANNOTATION_KEYS)
                        and (sheet is None or c not in sheet)]
        rest = [c for c in body.columns if c not in ann_cols]
        if sheet is not None:
            sample_cols = [c for c in rest if c in sheet]
            others = [c for c in rest if c not in sheet]
            text = [c for c in others if _mostly_text(body[c])]
            ann_cols += text
            not_in_sheet = [c for c in others if c not in text]
            dropped.append(dropped_frame(sample_ids=not_in_sheet,
                                         reason="value column not in the sample sheet"))
        else:
            text = [c for c in rest if o.annotation_columns is None and _mostly_text(body[c])]
            ann_cols += text
            sample_cols = [c for c in rest if c not in text]
        if not sample_cols:
            raise InputError(Problem(file, "columns", "no sample columns found"
                                     + (" matching the sample sheet" if sheet is not None else ""),
                                     "give one numeric column per sample (or the sample sheet ids)"))
        check_nonempty_ids(body.index, "feature", file, problems)
        check_unique(body.index, "feature", file, problems)
        raw = body[sample_cols]
        features = _canonical_annotations(body, ann_cols)
        values = coerce_numeric(raw, file, problems, row_kind="feature", col_kind="sample",
                                allow_missing=True, allow_negative=o.allow_negative,
                                na_option=True).T
        notes["feature_column"] = id_col
        id_header = id_col
    else:
        sid = sample_column
        if sid is None:
            sid = next((c for c in frame.columns if keys[c] in SAMPLE_ID_KEYS), frame.columns[0])
        if sid not in frame.columns:
            raise InputError(Problem(file, f"column '{sid}'", "sample id column not found",
                                     f"use one of {list_ids(list(frame.columns), 20)}"))
        body = frame.set_index(sid)
        body.index = body.index.astype(str)
        if metadata_columns is not None:
            meta = [c for c in metadata_columns if c in body.columns]
        else:
            meta = [c for c in body.columns if norm_key(c) in METADATA_KEYS or _mostly_text(body[c])]
        check_nonempty_ids(body.index, "sample", file, problems)
        check_unique(body.index, "sample", file, problems)
        problems.raise_if_any()
        if sheet is not None:
            outside = ~body.index.isin(sheet)
            dropped.append(dropped_frame(sample_ids=list(body.index[outside]),
                                         reason="row not in the sample sheet"))
            body = body[~outside]
            if body.empty:
                raise InputError(Problem(file, f"column '{sid}'", "no row matches the sample sheet",
                                         "make the sample ids in the sheet match the table"))
        raw = body.drop(columns=meta)
        if raw.shape[1] == 0:
            raise InputError(Problem(file, "columns", "no feature columns found",
                                     "give one numeric column per metabolite"))
        features = pd.DataFrame(index=pd.Index(raw.columns.astype(str)))
        values = coerce_numeric(raw, file, problems, row_kind="sample", col_kind="feature",
                                allow_missing=True, allow_negative=o.allow_negative,
                                na_option=True)
        notes.update({"sample_column": sid, "metadata_columns": meta})
        if o.layout == "long":
            features = _fill(features, _canonical_annotations(long_annotation,
                                                              list(long_annotation.columns)))
    problems.raise_if_any()

    n_missing = int(values.isna().to_numpy().sum())
    n_zero = int((values == 0).to_numpy().sum())
    if o.zeros == "missing":
        values = values.mask(values == 0)
    if o.annotation is not None:
        extra, annotation_id_header = _read_annotation(
            o.annotation, pd.Index(values.columns.astype(str)), o.annotation_id_column, file)
        features = _fill(features.reindex(values.columns.astype(str)), extra)
        notes["annotation_matched"] = int(extra.notna().any(axis=1).sum())
    feature_ids = pd.Index(values.columns.astype(str))
    from_ids, rule = id_annotations(feature_ids, o.id_annotation, id_header, file)
    name_header = next((h for h in (id_header, annotation_id_header)
                        if h is not None and ALIAS_TO_CANONICAL.get(norm_key(h)) == "name"), None)
    if not rule and name_header is not None and _mostly_text(pd.Series(feature_ids, dtype=object)):
        # the id column (of the table or of the annotation file, e.g. an mtb.map's
        # 'Compound') is headed like a name and holds text that is no m/z/RT code
        # (XCMS heads its M147T63 ids 'name'): the ids are the names
        from_ids["name"] = feature_ids
        rule = f"name (column '{name_header}')"
    features = _fill(features.reindex(feature_ids), from_ids)
    if rule:
        notes["id_annotation"] = rule
    if "unit_reported" in features.columns:
        notes["units_reported"] = sorted(features["unit_reported"].dropna().astype(str).unique())
    features["unit"] = o.units
    table = finish_table(values)
    notes.update({"n_rows_read": int(frame.shape[0]), "n_samples": int(table.shape[0]),
                  "n_features": int(table.shape[1]), "n_missing_cells": n_missing,
                  "n_zero_cells": n_zero, "zeros": o.zeros,
                  "missing_fraction": float(table.isna().to_numpy().mean()),
                  "annotation_columns": [c for c in features.columns if c != "unit"]})
    return ImportResult(table=table, features=finish_features(features, table.columns),
                        dropped=concat_dropped(dropped), notes=notes,
                        sample_info=pd.DataFrame(
                            {"n_missing": table.isna().sum(axis=1)}).rename_axis("sample_id"))


read_metabolome.__signature__ = reader_signature(MetabolomeOptions)
