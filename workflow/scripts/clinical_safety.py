"""Adverse-event incidence by term and worst grade per patient, overall and per grouping."""

import logging
import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.clinical.checks import require_valid_adverse_events, require_valid_subjects
from gutaxis.clinical.tables import blank_to_missing, stack_groupings, usable_groupings
from gutaxis.runner import run
from gutaxis.clinical.safety import ae_incidence, ae_worst_grade
from gutaxis.io.tables import read_sheet, write_tsv

log = logging.getLogger("gutaxis.clinical")


def main(smk):
    subjects_label, ae_label = smk.params.subjects_label, smk.params.ae_label
    subjects = blank_to_missing(read_sheet(smk.input.subjects))
    events = blank_to_missing(read_sheet(smk.input.adverse_events))
    groupings, skipped = usable_groupings(subjects, smk.params.groupings)
    for row in skipped.itertuples():
        log.warning("grouping %s (%s) skipped: %s", row.grouping, row.columns, row.reason)
    require_valid_subjects(subjects, subjects_label, check_recorded=True,
                           group_columns=[c for columns in groupings.values() for c in columns])
    require_valid_adverse_events(events, subjects, ae_label)
    if events.empty:
        log.warning("no adverse events: the table %s is empty or not configured", ae_label)
    common = dict(related_attributions=smk.params.related, ae_file=ae_label, subjects_file=subjects_label)
    write_tsv(stack_groupings(ae_incidence, groupings, adverse_events=events, subjects=subjects, **common),
              smk.output.incidence)
    write_tsv(stack_groupings(ae_worst_grade, groupings, adverse_events=events, subjects=subjects, **common),
              smk.output.worst_grade)


run(snakemake, main)
