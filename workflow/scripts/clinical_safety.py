"""Adverse-event incidence by term and worst grade per patient, overall and per grouping."""

import logging
import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.clinical.checks import blank_to_missing, checked_groupings, require_valid_adverse_events
from gutaxis.clinical.tables import stack_groupings
from gutaxis.runner import run
from gutaxis.clinical.safety import ae_incidence, ae_worst_grade
from gutaxis.io.tables import read_sheet, write_tsv

log = logging.getLogger("gutaxis.clinical")


def main(smk):
    subjects_label, ae_label = smk.params.subjects_label, smk.params.ae_label
    subjects = blank_to_missing(read_sheet(smk.input.subjects))
    events = blank_to_missing(read_sheet(smk.input.adverse_events))
    groupings = checked_groupings(subjects, smk.params.groupings, subjects_label)
    require_valid_adverse_events(events, subjects, ae_label)
    if events.empty:
        log.warning("no adverse events: the table %s is empty or not configured", ae_label)
    common = dict(related_attributions=smk.params.related, ae_file=ae_label, subjects_file=subjects_label)
    write_tsv(stack_groupings(ae_incidence, groupings, adverse_events=events, subjects=subjects, **common),
              smk.output.incidence)
    write_tsv(stack_groupings(ae_worst_grade, groupings, adverse_events=events, subjects=subjects, **common),
              smk.output.worst_grade)


run(snakemake, main)
