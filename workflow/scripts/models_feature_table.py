"""Feature stability of every feature set and estimator, with names and links to the
differential and integration results of the same features."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import numpy as np
import pandas as pd

from gutaxis.models.summary import LINK_COLUMNS, differential_links, integration_links
from gutaxis.models.fit import FEATURE_COLUMNS
from gutaxis.runner import run
from gutaxis.io.tables import read_tsv, write_tsv


def main(smk):
    p = smk.params
    text = {"feature_set": str, "model": str, "block": str, "feature": str, "direction": str}
    frames = [read_tsv(path, dtype=text) for path in smk.input.features]
    features = pd.concat([f for f in frames if not f.empty] or [pd.DataFrame(columns=FEATURE_COLUMNS)],
                         ignore_index=True)
    names = {}
    for modality, path in zip(p.annotation_modalities, smk.input.annotations):
        table = read_tsv(path, dtype=str)
        if "name" in table.columns:
            names[modality] = table.set_index("feature_id")["name"]
    features.insert(features.columns.get_loc("feature") + 1, "annotation", [
        names[b].get(f, "") if b in names else "" for b, f in zip(features["block"], features["feature"])])
    view_of = {name: spec.get("view", "baseline") for name, spec in p.feature_sets.items()}
    contrast_of = {name: (spec.get("contrast") or p.first_contrast) for name, spec in p.feature_sets.items()}
    features["differential_contrast"] = features["feature_set"].map(contrast_of).fillna("")
    links = pd.DataFrame(index=features.index, columns=LINK_COLUMNS[1:], dtype=object)
    by_contrast = {}
    for modality, contrast, path in zip(p.differential_modalities, p.differential_contrasts,
                                        smk.input.differential):
        by_contrast.setdefault(contrast, {})[modality] = read_tsv(
            path, dtype={"feature": str, "term": str, "method": str},
            usecols=lambda c: c in ("feature", "term", "method", "effect", "q"))
    for contrast, tables in by_contrast.items():
        mine = features["differential_contrast"] == contrast
        if mine.any():
            diff = differential_links(features[mine], tables, p.contrast_post[contrast])
            links.loc[mine, diff.columns] = diff
    # the integration view that matches the feature set: its timepoint, or change
    features["integration_view"] = [
        {"baseline": p.baseline, "samples": p.baseline}.get(view_of.get(s, "baseline"), view_of.get(s, ""))
        for s in features["feature_set"]]
    associations = [(a, b, view, read_tsv(path, dtype={"feature_a": str, "feature_b": str}))
                    for (a, b, view), path in zip(p.integration_keys, smk.input.integration)]
    integ = integration_links(features, associations, p.link_max_q)
    if not associations:
        integ["integration_links"] = np.nan
    for column in integ.columns:
        links[column] = integ[column]
    for column in LINK_COLUMNS:
        if column not in ("differential_contrast", "integration_view"):
            features[column] = links[column].to_numpy()
    if not by_contrast:
        features["differential_contrast"] = ""
    note = []
    if not by_contrast:
        note.append("no differential results in this workflow: diff_* columns empty")
    if not associations:
        note.append("no integration associations in this workflow: integration_* columns empty")
    features["link_note"] = "; ".join(note)
    write_tsv(features, smk.output.features)


run(snakemake, main)
