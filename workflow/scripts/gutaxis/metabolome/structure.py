"""Structural missingness of a metabolomics table: features not measured in a group of samples.

A platform that was not run at a visit (or in a batch) leaves its features missing in
every sample of that group.  Such a value is *not measured*, not *below detection*:
imputing it invents a level, and any contrast that uses the group then tests the
imputation.  The functions here find those (feature, group) cells from the missing
fraction per group, name the platform of each feature, and compare the missingness of
the two sides of a contrast, so that :func:`gutaxis.metabolome.process.process_metabolome`
leaves the cells missing and the differential, integration and model modules exclude
the feature wherever the group is used.

A feature is *not measured* in group g of column c when both it and its platform P
are missing there:

    f_{jg} >= min_missing   and   mean_{k in P} f_{kg} >= min_missing,

f_{jg} = #{i in g : x_ij missing} / #{i in g}, computed over the injections of the
group (study samples for sample-sheet columns such as the timepoint; study samples
and QC pools for the batch).  The platform condition keeps a metabolite that falls
below detection after treatment (its platform still measured the visit) apart from
one whose platform was not run: only the latter is a gap.  A *sample* is not measured
on a platform of at least three features when every one of them is missing in it
(that sample was not run on the platform).  The platform is the text before the
first separator of the id (``NMR_Lactate`` -> ``NMR``) when at least two features
share it, else ``all``; or an annotation column.

References
----------
Broadhurst D. et al. (2018) Metabolomics 14:72 (missing data and platform coverage);
Wei R. et al. (2018) Sci Rep 8:663 (imputation assumes values missing below detection,
not unmeasured).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: columns of the per feature x group missingness table
STRUCTURE_COLUMNS = ["feature_id", "platform", "column", "group", "n_samples", "n_missing",
                     "fraction_missing", "platform_fraction_missing", "status"]
#: columns of the table of samples not run on a platform
SAMPLE_GAP_COLUMNS = ["sample_id", "platform", "n_features"]
#: smallest platform whose complete absence from a sample counts as "not run on it"
MIN_PLATFORM_FEATURES = 3
#: columns of the per platform x group summary
PLATFORM_COLUMNS = ["platform", "column", "group", "n_features", "n_samples", "fraction_missing",
                    "n_not_measured", "status"]
#: columns of the contrast missingness comparison
CONTRAST_COLUMNS = ["feature_id", "platform", "contrast", "pre", "post", "missing_pre",
                    "missing_post", "difference", "status"]
NOT_MEASURED = "not measured"
MEASURED = "measured"


def feature_platforms(features: pd.Index, annotations: pd.DataFrame | None = None,
                      source: str = "prefix", separator: str = "_") -> pd.Series:
    """Platform of every feature: its id prefix, an annotation column, or one platform.

    Parameters
    ----------
    features : pandas.Index
        Feature ids.
    annotations : pandas.DataFrame, optional
        Indexed by feature id; read when ``source`` names one of its columns.
    source : str
        ``"prefix"``: the text before the first ``separator`` when at least two
        features share it, else ``"all"`` (ids such as ``FT0001`` or ``mz78.02``
        name no platform); ``"none"``: every feature on platform ``"all"``;
        otherwise an annotation column (empty cells become ``"unassigned"``).
    separator : str
        Separator of the id prefix.

    Returns
    -------
    pandas.Series
        Platform per feature id, named ``platform``.
    """
    ids = pd.Index(features).astype(str)
    if source == "none":
        values = np.full(len(ids), "all", dtype=object)
    elif source == "prefix":
        prefix = pd.Series(ids.str.split(separator, n=1).str[0], index=ids)
        has_separator = ids.str.contains(separator, regex=False)
        shared = prefix.map(prefix[has_separator].value_counts()).fillna(0).to_numpy() >= 2
        values = np.where(has_separator & shared, prefix.to_numpy(), "all").astype(object)
    else:
        if annotations is None or source not in annotations.columns:
            raise ValueError(f"no annotation column {source!r} to read the platform from")
        column = annotations[source].reindex(ids)
        values = column.where(column.notna() & (column.astype(str).str.strip() != ""),
                              "unassigned").astype(str).to_numpy(dtype=object)
    return pd.Series(values, index=ids, name="platform")


def group_missingness(missing: pd.DataFrame, groups: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Missing fraction of every feature in every group.

    Parameters
    ----------
    missing : pandas.DataFrame of bool
        Samples x features, True where the value is missing.
    groups : pandas.Series
        Group label per row of ``missing`` (rows labelled NaN are left out).

    Returns
    -------
    fractions : pandas.DataFrame
        Groups (sorted) x features, f_jg.
    sizes : pandas.Series
        Number of samples per group.
    """
    g = pd.Series(groups).reindex(missing.index)
    rows = g.notna().to_numpy()
    labels = g[rows].astype(str).to_numpy()
    fractions = missing.loc[rows].astype(float).groupby(labels, sort=True).mean()
    sizes = pd.Series(labels).value_counts().reindex(fractions.index)
    return fractions, sizes


def structure_table(missing: pd.DataFrame, groupings: dict[str, pd.Series], platforms: pd.Series,
                    min_missing: float = 0.95) -> pd.DataFrame:
    """Per feature and group: missing fraction and whether the feature was measured there.

    Parameters
    ----------
    missing : pandas.DataFrame of bool
        Samples x features, True where missing (raw table, before imputation).
    groupings : dict of str to pandas.Series
        Column name -> group label per row of ``missing`` (NaN = not in any group).
    platforms : pandas.Series
        Platform per feature (:func:`feature_platforms`).
    min_missing : float
        Fraction at or above which the feature is *not measured* in the group.

    Returns
    -------
    pandas.DataFrame
        :data:`STRUCTURE_COLUMNS`, ordered by feature, then column (in ``groupings``
        order), then group.
    """
    if not 0.0 < min_missing <= 1.0:
        raise ValueError("min_missing must be in (0, 1]")
    parts = []
    features = missing.columns.astype(str)
    for order, (column, groups) in enumerate(groupings.items()):
        fractions, sizes = group_missingness(missing, groups)
        if fractions.empty:
            continue
        counts = fractions.mul(sizes, axis=0).round().astype(int)
        n_groups = len(fractions)
        platform_of = platforms.reindex(features).to_numpy()
        by_platform = fractions.T.groupby(platform_of, sort=False).transform("mean").T
        parts.append(pd.DataFrame({
            "feature_id": np.tile(features.to_numpy(), n_groups),
            "platform": np.tile(platforms.reindex(features).to_numpy(), n_groups),
            "column": column,
            "group": np.repeat(fractions.index.to_numpy(), len(features)),
            "n_samples": np.repeat(sizes.to_numpy(dtype=int), len(features)),
            "n_missing": counts.to_numpy().ravel(),
            "fraction_missing": fractions.to_numpy().ravel(),
            "platform_fraction_missing": by_platform.to_numpy().ravel(),
            "_column": order,
            "_feature": np.tile(np.arange(len(features)), n_groups),
        }))
    if not parts:
        return pd.DataFrame(columns=STRUCTURE_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    gap = (out["fraction_missing"] >= min_missing) & (out["platform_fraction_missing"] >= min_missing)
    out["status"] = np.where(gap, NOT_MEASURED, MEASURED)
    out = out.sort_values(["_feature", "_column", "group"], kind="stable")
    return out[STRUCTURE_COLUMNS].reset_index(drop=True)


def not_measured_mask(structure: pd.DataFrame, groupings: dict[str, pd.Series],
                      index: pd.Index, features: pd.Index) -> pd.DataFrame:
    """Cells (sample, feature) that lie in a group where the feature was not measured.

    Parameters
    ----------
    structure : pandas.DataFrame
        From :func:`structure_table`.
    groupings : dict of str to pandas.Series
        The groupings the structure was computed from.
    index, features : pandas.Index
        Rows and columns of the mask.

    Returns
    -------
    pandas.DataFrame of bool
        True where the cell is not measured.
    """
    mask = np.zeros((len(index), len(features)), dtype=bool)
    gaps = structure[structure["status"] == NOT_MEASURED]
    position = pd.Series(np.arange(len(features)), index=pd.Index(features).astype(str))
    for column, rows in gaps.groupby("column", sort=False):
        labels = pd.Series(groupings[column]).reindex(index)
        labels = labels.where(labels.isna(), labels.astype(str)).to_numpy(dtype=object)
        # one boolean matrix product: samples x groups membership times groups x features gaps
        group_ids = sorted(rows["group"].unique())
        member = np.stack([labels == g for g in group_ids], axis=1).astype(float)
        gap = np.zeros((len(group_ids), len(features)))
        gap[[group_ids.index(g) for g in rows["group"]], position[rows["feature_id"]].to_numpy()] = 1.0
        mask |= (member @ gap) > 0
    return pd.DataFrame(mask, index=index, columns=features)


def sample_platform_gaps(missing: pd.DataFrame, platforms: pd.Series,
                         min_features: int = MIN_PLATFORM_FEATURES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples not run on a platform: every feature of a platform of >= min_features missing.

    Parameters
    ----------
    missing : pandas.DataFrame of bool
        Samples x features, True where missing.
    platforms : pandas.Series
        Platform per feature.
    min_features : int
        Smaller platforms are not judged (two non-detects in one sample are ordinary).

    Returns
    -------
    gaps : pandas.DataFrame
        :data:`SAMPLE_GAP_COLUMNS`, one row per sample and platform not run.
    mask : pandas.DataFrame of bool
        Samples x features, True on the cells of those sample-platform pairs.
    """
    features = missing.columns.astype(str)
    platform_of = platforms.reindex(features).to_numpy()
    names, codes = np.unique(platform_of.astype(str), return_inverse=True)
    member = np.zeros((len(features), len(names)))
    member[np.arange(len(features)), codes] = 1.0
    size = member.sum(axis=0)
    n_missing = missing.to_numpy(dtype=float) @ member  # samples x platforms
    absent = (n_missing == size) & (size >= min_features)
    mask = (absent.astype(float) @ member.T) > 0
    rows, cols = np.nonzero(absent)
    gaps = pd.DataFrame({"sample_id": missing.index[rows].astype(str), "platform": names[cols],
                         "n_features": size[cols].astype(int)}, columns=SAMPLE_GAP_COLUMNS)
    return gaps, pd.DataFrame(mask, index=missing.index, columns=missing.columns)


def platform_summary(structure: pd.DataFrame, sample_gaps: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per platform and group: mean missing fraction and number of features not measured.

    A platform is *not measured* in a group when every one of its features is.  The
    injections not run on a platform (``sample_gaps``, :func:`sample_platform_gaps`)
    follow as rows of column ``sample`` (group = the sample id).

    Returns
    -------
    pandas.DataFrame
        :data:`PLATFORM_COLUMNS`.
    """
    samples = pd.DataFrame(columns=PLATFORM_COLUMNS)
    if sample_gaps is not None and len(sample_gaps):
        samples = pd.DataFrame({"platform": sample_gaps["platform"], "column": "sample",
                                "group": sample_gaps["sample_id"], "n_features": sample_gaps["n_features"],
                                "n_samples": 1, "fraction_missing": 1.0,
                                "n_not_measured": sample_gaps["n_features"], "status": NOT_MEASURED})
    if structure.empty:
        return samples.reset_index(drop=True)
    frame = structure.assign(_gap=(structure["status"] == NOT_MEASURED).astype(int))
    grouped = frame.groupby(["platform", "column", "group"], sort=False)
    out = grouped.agg(n_features=("feature_id", "size"), n_samples=("n_samples", "first"),
                      fraction_missing=("fraction_missing", "mean"),
                      n_not_measured=("_gap", "sum")).reset_index()
    out["status"] = np.where(out["n_not_measured"] == out["n_features"], NOT_MEASURED,
                             np.where(out["n_not_measured"] > 0, "partly measured", MEASURED))
    out = out.sort_values(["column", "platform", "group"], kind="stable")[PLATFORM_COLUMNS]
    if samples.empty:
        return out.reset_index(drop=True)
    return pd.concat([out, samples], ignore_index=True)


def contrast_missingness(missing: pd.DataFrame, timepoints: pd.Series, contrasts: list[dict],
                         platforms: pd.Series, not_measured: pd.DataFrame,
                         max_difference: float = 0.3) -> pd.DataFrame:
    """Compare each feature's missing fraction on the two sides of every contrast.

    status: ``not measured at <t>`` when the feature is not measured on a side
    (it is left out of the contrast); ``differs`` when
    |f_post - f_pre| >= max_difference among the measured (a non-detection that
    follows the timepoint: the imputed values carry part of the change, so read the
    feature's prevalence result with it); ``similar`` otherwise.

    Parameters
    ----------
    missing : pandas.DataFrame of bool
        Study samples x features, True where missing (before imputation).
    timepoints : pandas.Series
        Timepoint per row.
    contrasts : list of dict
        ``name``, ``pre``, ``post``.
    platforms : pandas.Series
        Platform per feature.
    not_measured : pandas.DataFrame of bool
        Same shape as ``missing`` (:func:`not_measured_mask`).
    max_difference : float
        Difference in missing fraction that gets a warning.

    Returns
    -------
    pandas.DataFrame
        :data:`CONTRAST_COLUMNS`, one row per contrast and feature.
    """
    tp = pd.Series(timepoints).reindex(missing.index).astype(str)
    features = missing.columns.astype(str)
    parts = []
    for contrast in contrasts:
        pre, post = str(contrast["pre"]), str(contrast["post"])
        side = {t: (tp == t).to_numpy() for t in (pre, post)}
        if not (side[pre].any() and side[post].any()):
            continue
        f = {t: missing.loc[side[t]].mean(axis=0).to_numpy(dtype=float) for t in side}
        gap = {t: not_measured.loc[side[t]].all(axis=0).to_numpy() for t in side}
        status = np.where(np.abs(f[post] - f[pre]) >= max_difference, "differs", "similar").astype(object)
        status[gap[post]] = f"{NOT_MEASURED} at {post}"
        status[gap[pre]] = f"{NOT_MEASURED} at {pre}"
        status[gap[pre] & gap[post]] = f"{NOT_MEASURED} at {pre} and {post}"
        parts.append(pd.DataFrame({
            "feature_id": features, "platform": platforms.reindex(features).to_numpy(),
            "contrast": contrast["name"], "pre": pre, "post": post, "missing_pre": f[pre],
            "missing_post": f[post], "difference": f[post] - f[pre], "status": status}))
    if not parts:
        return pd.DataFrame(columns=CONTRAST_COLUMNS)
    return pd.concat(parts, ignore_index=True)[CONTRAST_COLUMNS]


def not_measured_reasons(structure: pd.DataFrame, timepoints, column: str = "timepoint") -> pd.Series:
    """Why each feature is left out of an analysis that uses these timepoints.

    Parameters
    ----------
    structure : pandas.DataFrame
        The ``missingness_structure.tsv`` table (:func:`structure_table`).
    timepoints : iterable of str
        The groups of ``column`` the analysis uses (a contrast's pre and post, a
        view's timepoint, a model's feature-set timepoints).
    column : str
        Sample-sheet column of the groups.

    Returns
    -------
    pandas.Series
        Feature id -> reason, e.g. ``not measured at T6 (100% missing; platform
        Tryptophan)``; only the features not measured in at least one of the groups.
    """
    wanted = [str(t) for t in timepoints]
    if structure is None or structure.empty:
        return pd.Series(dtype=object, name="reason")
    rows = structure[(structure["column"] == column) & (structure["status"] == NOT_MEASURED)
                     & structure["group"].astype(str).isin(wanted)]
    if rows.empty:
        return pd.Series(dtype=object, name="reason")
    text = (rows["group"].astype(str) + " (" + (100 * rows["fraction_missing"].astype(float)).round().astype(int)
            .astype(str) + "% missing; platform " + rows["platform"].astype(str) + ")")
    reasons = text.groupby(rows["feature_id"].astype(str).to_numpy(), sort=False).agg(", ".join)
    return ("not measured at " + reasons).rename("reason")


def contrast_warnings(table: pd.DataFrame, source: str = "contrast_missingness.tsv") -> list[str]:
    """One line per contrast and kind of missingness difference of a :func:`contrast_missingness`
    table: the features left out as not measured at a side, and those detected much more often on
    one side (``differs``: their imputed values carry part of the change).  The processing log
    and the end-of-run summary both print these.
    """
    from gutaxis.metabolome.inputs import listed

    lines = []
    for contrast, rows in table.groupby("contrast", sort=False):
        gaps = rows[rows["status"].str.startswith(NOT_MEASURED)]
        for status, sub in gaps.groupby("status", sort=False):
            platforms = ", ".join(sorted(set(sub["platform"].astype(str))))
            lines.append(f"{len(sub)} feature(s) {status} (platform {platforms}): left out of {contrast} "
                         f"({source}): {listed(sub['feature_id'])}")
        differs = rows[rows["status"] == "differs"]
        if len(differs):
            lines.append(f"{len(differs)} feature(s) detected much more often on one side of {contrast}: their "
                         f"imputed values carry part of the change ({source}): {listed(differs['feature_id'])}")
    return lines


def missingness_run_summary(paths: dict) -> list[str]:
    """End-of-run lines (:func:`contrast_warnings`) of every metabolome modality, from `paths`
    (modality -> its ``contrast_missingness.tsv``; absent files are skipped)."""
    from gutaxis.io.tables import existing_tables

    return [f"metabolome {modality}: {line}" for modality, path, table in existing_tables(paths)
            for line in contrast_warnings(table, path)]


def not_measured_in(structure_file, timepoints, features) -> pd.Series:
    """Reasons of the ``features`` not measured at any of ``timepoints``, read from a
    ``missingness_structure.tsv`` (:func:`not_measured_reasons`): what the differential,
    integration and model steps leave out of an analysis that uses those timepoints."""
    from gutaxis.io.tables import read_tsv

    table = read_tsv(structure_file, dtype={"feature_id": str, "group": str})
    reasons = not_measured_reasons(table, timepoints)
    return reasons.reindex(pd.Index(features).astype(str)).dropna()


def without_unmeasured(tables: Mapping[str, pd.DataFrame], structures: Mapping[str, str],
                       timepoints: Sequence[str]) -> tuple[dict, dict]:
    """The tables without the metabolites their platform did not measure at ``timepoints``.

    Parameters
    ----------
    tables : mapping of str -> DataFrame
        Modality -> feature table (columns = feature ids).
    structures : mapping of str -> path
        Modality -> its ``missingness_structure.tsv`` (metabolome modalities only; the
        other tables pass unchanged).
    timepoints : sequence of str
        The timepoints the analysis uses.

    Returns
    -------
    tables : dict of str -> DataFrame
        The same tables, the unmeasured features dropped.
    reasons : dict of str -> Series
        Per modality with a structure: feature id -> why it was left out (possibly empty).
    """
    kept, reasons = dict(tables), {}
    for name in [name for name in tables if name in structures]:
        reasons[name] = not_measured_in(structures[name], timepoints, kept[name].columns)
        kept[name] = kept[name].drop(columns=reasons[name].index)
    return kept, reasons
