"""Kaplan-Meier summaries, log-rank tests and the curve table of the KM figure for PFS2 and OS."""

import logging
import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.clinical.checks import blank_to_missing, checked_groupings, subject_warnings
from gutaxis.clinical.tables import km_plot_table, stack_groupings
from gutaxis.runner import run
from gutaxis.clinical.survival import survival_table
from gutaxis.io.tables import read_sheet, write_tsv

log = logging.getLogger("gutaxis.clinical")


def main(smk):
    label = smk.params.subjects_label
    subjects = blank_to_missing(read_sheet(smk.input.subjects))
    endpoints = {name: (spec["time"], spec["event"]) for name, spec in smk.params.endpoints.items()}
    groupings = checked_groupings(subjects, smk.params.groupings, label, endpoints=endpoints)
    warnings = subject_warnings(subjects, label)
    for row in warnings.itertuples():
        log.warning("%s: subject %s, column %s: %s. %s", row.file, row.subject_id, row.column, row.what, row.fix)
    write_tsv(warnings, smk.output.warnings)
    table = stack_groupings(survival_table, groupings, order_by="endpoint", subjects=subjects, endpoints=endpoints,
                            landmarks=smk.params.landmarks, conf_level=smk.params.conf_level,
                            conf_type=smk.params.conf_type, file=label)
    write_tsv(table, smk.output.survival)
    curves = km_plot_table(subjects, endpoints, groupings, smk.params.conf_level, smk.params.conf_type,
                           smk.params.at_risk_every, file=label)
    write_tsv(curves, smk.output.curves)


run(snakemake, main)
