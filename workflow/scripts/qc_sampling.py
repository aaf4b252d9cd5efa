"""QC tables: each sample's fate per modality, each subject's timepoints and pairs."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.runner import run
from gutaxis.io.sample_qc import pairing_table, sample_status
from gutaxis.io.tables import read_sheet, write_tsv


def main(smk):
    samples = read_sheet(smk.input.samples)
    subjects = read_sheet(smk.input.subjects)
    modalities = {}
    for name, table_path, dropped_path in zip(smk.params.modality_names, smk.input.tables, smk.input.dropped):
        spec = smk.params.modalities[name]
        with open(table_path) as handle:
            handle.readline()
            kept = [line.split("\t", 1)[0] for line in handle]
        dropped = read_sheet(dropped_path)
        dropped = dropped[dropped["kind"] == "sample"].rename(columns={"id": "sample_id"})
        modalities[name] = {
            "sample_type": spec["sample_type"],
            "kept": kept,
            "dropped": dropped[["sample_id", "reason"]],
            "technical": spec["kind"] == "metabolome",
        }
    status = sample_status(samples, modalities, read_sheet(smk.input.excluded))
    write_tsv(status, smk.output.samples)
    write_tsv(pairing_table(status, subjects, smk.params.timepoints, smk.params.contrasts), smk.output.pairing)


run(snakemake, main)
