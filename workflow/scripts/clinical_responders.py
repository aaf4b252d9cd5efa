"""Responder label of every subject under each configured definition."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.clinical.checks import blank_to_missing, require_valid_subjects
from gutaxis.clinical.response import responder_labels
from gutaxis.runner import run
from gutaxis.io.tables import read_sheet, write_tsv


def main(smk):
    label = smk.params.subjects_label
    subjects = blank_to_missing(read_sheet(smk.input.subjects))
    definitions = smk.params.definitions
    criteria = sorted({str(d["criterion"]).lower() for d in definitions.values() if "criterion" in d})
    require_valid_subjects(subjects, label, criteria=criteria, group_columns=["cohort"], check_recorded=True)
    write_tsv(responder_labels(subjects, definitions, file=label), smk.output.responders)


run(snakemake, main)
