"""The feature table of the responder models: every feature's stability with its name and its links
to the differential and integration results of the same features (``results/models/features.tsv``).

The links are looked up, never recomputed: the differential result of the feature's modality in the
contrast of its feature set, and its cross-omics partners in the integration view that matches the
feature set (its timepoint, or the change).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from gutaxis.models.fit import FEATURE_COLUMNS

LINK_COLUMNS = [
    "differential_contrast", "diff_baseline_effect", "diff_baseline_q", "diff_change_effect",
    "diff_change_q", "diff_interaction_q", "integration_view", "integration_links",
    "integration_top_partner", "integration_top_rho", "integration_top_q",
]
#: preferred method for each differential term (first present wins)
DIFF_TERMS = {
    "baseline": ("response[responder]", ("ols", "mann_whitney", "lmm")),
    "change": ("timepoint[{post}]", ("paired_t", "wilcoxon", "lmm")),
    "interaction": ("timepoint[{post}]:response[responder]", ("lmm",)),
}


def feature_annotations(annotations: Mapping[str, pd.DataFrame], blocks, features) -> list[str]:
    """The ``name`` of each (block, feature) in its modality's annotation table ("" when it has none).

    Parameters
    ----------
    annotations : mapping of str -> DataFrame
        Modality -> feature annotations (``feature_id`` and, where known, ``name``).
    blocks, features : sequences of str
        The block (modality) and feature id of each row.
    """
    names = {modality: table.set_index("feature_id")["name"] for modality, table in annotations.items()
             if "name" in table.columns}
    return [names[b].get(f, "") if b in names else "" for b, f in zip(blocks, features)]


def differential_links(features: pd.DataFrame, differential: dict, post: str) -> pd.DataFrame:
    """Effect and q of each feature in the differential results of its modality.

    Parameters
    ----------
    features : DataFrame
        ``block`` (= modality) and ``feature`` columns.
    differential : dict
        Modality -> differential result table (``feature, term, method, effect, q``).
    post : str
        The contrast's post timepoint (names the change term ``timepoint[<post>]``).

    Returns
    -------
    DataFrame aligned with ``features``: ``diff_baseline_effect, diff_baseline_q,
    diff_change_effect, diff_change_q, diff_interaction_q``.
    """
    out = pd.DataFrame(index=features.index, columns=["diff_baseline_effect", "diff_baseline_q",
                                                      "diff_change_effect", "diff_change_q",
                                                      "diff_interaction_q"], dtype=float)
    for modality, table in differential.items():
        if table is None or table.empty or not {"feature", "term", "method", "q"} <= set(table.columns):
            continue
        mine = features["block"] == modality
        if not mine.any():
            continue
        for key, (term, methods) in DIFF_TERMS.items():
            term = term.format(post=post)
            part = table[table["term"] == term]
            for method in methods:
                chosen = part[part["method"] == method]
                if not chosen.empty:
                    break
            else:
                continue
            chosen = chosen.drop_duplicates("feature").set_index("feature")
            keys = features.loc[mine, "feature"]
            out.loc[mine, f"diff_{key}_q"] = chosen["q"].reindex(keys).to_numpy(dtype=float)
            if f"diff_{key}_effect" in out.columns and "effect" in chosen.columns:
                out.loc[mine, f"diff_{key}_effect"] = chosen["effect"].reindex(keys).to_numpy(dtype=float)
    return out


def integration_links(features: pd.DataFrame, associations, max_q: float = 0.05) -> pd.DataFrame:
    """Cross-omics partners of each feature in the integration association tables.

    Parameters
    ----------
    features : DataFrame
        ``block``, ``feature`` and ``integration_view`` (the association view that
        matches the feature set: baseline timepoint or ``change``).
    associations : list of (modality_a, modality_b, view, DataFrame)
        Tables with ``feature_a, feature_b, rho, q``.
    max_q : float
        A partner counts when its q is at most this.

    Returns
    -------
    DataFrame aligned with ``features``: ``integration_links`` (number of partners
    with q <= max_q), ``integration_top_partner`` (``modality:feature`` of the
    smallest q), ``integration_top_rho``, ``integration_top_q``.
    """
    pieces = []
    for modality_a, modality_b, view, table in associations:
        if table is None or table.empty:
            continue
        for own, other, col_own, col_other in ((modality_a, modality_b, "feature_a", "feature_b"),
                                               (modality_b, modality_a, "feature_b", "feature_a")):
            pieces.append(pd.DataFrame({
                "block": own, "feature": table[col_own].astype(str).to_numpy(), "integration_view": view,
                "partner": other + ":" + table[col_other].astype(str).to_numpy(),
                "rho": table["rho"].to_numpy(dtype=float), "q": table["q"].to_numpy(dtype=float)}))
    columns = ["integration_links", "integration_top_partner", "integration_top_rho", "integration_top_q"]
    if not pieces:
        return pd.DataFrame(index=features.index, columns=columns)
    long = pd.concat(pieces, ignore_index=True)
    long = long.sort_values(["q", "partner"], kind="mergesort")
    keys = ["block", "feature", "integration_view"]
    top = long.drop_duplicates(keys).set_index(keys)
    counts = long[long["q"] <= max_q].groupby(keys).size()
    index = pd.MultiIndex.from_frame(features[keys].astype(str))
    out = pd.DataFrame({
        "integration_links": counts.reindex(index).fillna(0).astype(int).to_numpy(),
        "integration_top_partner": top["partner"].reindex(index).to_numpy(),
        "integration_top_rho": top["rho"].reindex(index).to_numpy(),
        "integration_top_q": top["q"].reindex(index).to_numpy(),
    }, index=features.index)
    return out


# --------------------------------------------------------------------------- the workflow step
def feature_table(stability: Sequence[pd.DataFrame], annotations: Mapping[str, pd.DataFrame],
                  differential: Sequence[tuple], associations: Sequence[tuple], *, feature_sets: Mapping,
                  first_contrast: str, contrast_post: Mapping[str, str], baseline: str,
                  link_max_q: float = 0.05) -> pd.DataFrame:
    """Feature stability of every feature set and estimator, named and linked.

    Parameters
    ----------
    stability : sequence of DataFrame
        The ``features.tsv`` of each feature set (:func:`gutaxis.models.fit.feature_stability`).
    annotations : mapping of str -> DataFrame
        Modality -> feature annotations (:func:`feature_annotations`).
    differential : sequence of (modality, contrast, DataFrame)
        Differential result tables (``feature, term, method, effect, q``).
    associations : sequence of (modality_a, modality_b, view, DataFrame)
        Integration association tables (``feature_a, feature_b, rho, q``).
    feature_sets : mapping
        ``models.feature_sets`` (each set's ``view`` and ``contrast``).
    first_contrast : str
        The contrast of a feature set that names none.
    contrast_post : mapping of str -> str
        Contrast name -> its post timepoint.
    baseline : str
        ``design.baseline`` (the integration view of baseline feature sets).
    link_max_q : float
        An integration partner counts when its q is at most this.

    Returns
    -------
    DataFrame
        :data:`~gutaxis.models.fit.FEATURE_COLUMNS` with ``annotation`` after ``feature``,
        the :data:`LINK_COLUMNS` and ``link_note`` (why link columns are empty).
    """
    features = pd.concat([f for f in stability if not f.empty] or [pd.DataFrame(columns=FEATURE_COLUMNS)],
                         ignore_index=True)
    features.insert(features.columns.get_loc("feature") + 1, "annotation",
                    feature_annotations(annotations, features["block"], features["feature"]))
    contrast_of = {name: (spec.get("contrast") or first_contrast) for name, spec in feature_sets.items()}
    features["differential_contrast"] = features["feature_set"].map(contrast_of).fillna("")
    links = pd.DataFrame(index=features.index, columns=LINK_COLUMNS[1:], dtype=object)
    by_contrast = {}
    for modality, contrast, table in differential:
        by_contrast.setdefault(contrast, {})[modality] = table
    for contrast, tables in by_contrast.items():
        mine = features["differential_contrast"] == contrast
        if mine.any():
            diff = differential_links(features[mine], tables, contrast_post[contrast])
            links.loc[mine, diff.columns] = diff
    # the integration view that matches the feature set: its timepoint, or change
    view_of = {name: spec.get("view", "baseline") for name, spec in feature_sets.items()}
    features["integration_view"] = [
        {"baseline": baseline, "samples": baseline}.get(view_of.get(s, "baseline"), view_of.get(s, ""))
        for s in features["feature_set"]]
    integ = integration_links(features, associations, link_max_q)
    if not associations:
        integ["integration_links"] = np.nan
    for column in integ.columns:
        links[column] = integ[column]
    for column in LINK_COLUMNS:
        if column not in ("differential_contrast", "integration_view"):
            features[column] = links[column].to_numpy()
    note = []
    if not by_contrast:
        features["differential_contrast"] = ""
        note.append("no differential results in this workflow: diff_* columns empty")
    if not associations:
        note.append("no integration associations in this workflow: integration_* columns empty")
    features["link_note"] = "; ".join(note)
    return features
