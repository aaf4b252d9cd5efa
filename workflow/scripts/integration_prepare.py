"""Integration step 1: one modality's analysis table filtered and transformed for correlation and MOFA."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import logging

from gutaxis.integration.prepare import prepare_for_integration
from gutaxis.runner import run
from gutaxis.io.tables import read_feature_table, read_sheet, read_tsv, write_feature_table, write_tsv

log = logging.getLogger("gutaxis.integration")


def main(smk):
    table = read_feature_table(smk.input.table)
    annotations = read_tsv(smk.input.features, dtype={"feature_id": str}).set_index("feature_id")
    import_notes = read_sheet(smk.input.notes).set_index("key")["value"]
    units = import_notes.get("units") if smk.params.kind == "immune" else None
    prepared = prepare_for_integration(
        table,
        kind=smk.params.kind,
        transform=smk.params.transform,
        annotations=annotations,
        units=units,
        clr_pseudocount_fraction=smk.params.clr_pseudocount_fraction,
        min_prevalence=smk.params.min_prevalence,
        detection_limit=smk.params.detection_limit,
        source=smk.params.label,
    )
    log.info("%s: %d samples x %d features prepared (%d dropped); %s", smk.wildcards.modality,
             *prepared.values.shape, len(prepared.dropped), prepared.notes.set_index("key")["value"]["description"])
    write_feature_table(prepared.values, smk.output.table)
    write_tsv(prepared.features, smk.output.features)
    write_tsv(prepared.dropped, smk.output.dropped)
    write_tsv(prepared.notes, smk.output.notes)


run(snakemake, main)
