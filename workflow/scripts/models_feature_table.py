"""Feature stability of every feature set and estimator, with names and links to the
differential and integration results of the same features."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.io.tables import read_tsv, write_tsv
from gutaxis.models.feature_table import feature_table
from gutaxis.runner import run

STABILITY_TYPES = {"feature_set": str, "model": str, "block": str, "feature": str, "direction": str}
DIFFERENTIAL_COLUMNS = ("feature", "term", "method", "effect", "q")


def main(smk):
    p = smk.params
    stability = [read_tsv(path, dtype=STABILITY_TYPES) for path in smk.input.features]
    annotations = {m: read_tsv(path, dtype=str) for m, path in zip(p.annotation_modalities, smk.input.annotations)}
    differential = [(modality, contrast, read_tsv(path, dtype={"feature": str, "term": str, "method": str},
                                                  usecols=lambda c: c in DIFFERENTIAL_COLUMNS))
                    for modality, contrast, path in zip(p.differential_modalities, p.differential_contrasts,
                                                        smk.input.differential)]
    associations = [(a, b, view, read_tsv(path, dtype={"feature_a": str, "feature_b": str}))
                    for (a, b, view), path in zip(p.integration_keys, smk.input.integration)]
    table = feature_table(stability, annotations, differential, associations, feature_sets=p.feature_sets,
                          first_contrast=p.first_contrast, contrast_post=p.contrast_post, baseline=p.baseline,
                          link_max_q=p.link_max_q)
    write_tsv(table, smk.output.features)


run(snakemake, main)
