"""Import one omics table into the canonical samples x features table."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import logging

import pandas as pd

from gutaxis.runner import run
from gutaxis.io.study import import_modality, path_label
from gutaxis.io.tables import read_sheet, write_feature_table, write_tsv

log = logging.getLogger("gutaxis.import")


def main(smk):
    spec = smk.params.modality
    excluded = read_sheet(smk.input.excluded)["sample_id"]
    imported = import_modality(
        spec, read_sheet(smk.input.samples), smk.params.samples_label, smk.params.duplicates, excluded
    )
    log.info("%s: kept %d samples x %d features", path_label(spec["path"]), *imported.table.shape)
    write_feature_table(imported.table, smk.output.table)
    write_tsv(imported.features, smk.output.features, index=True)
    write_tsv(imported.dropped, smk.output.dropped)
    notes = pd.DataFrame({"key": list(imported.notes), "value": [str(v) for v in imported.notes.values()]})
    write_tsv(notes, smk.output.notes)


run(snakemake, main)
