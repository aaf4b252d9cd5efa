"""ORR and DCR with exact CIs per grouping, and the abscopal-effect incidence."""

import logging
import sys

import pandas as pd

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.clinical.checks import column_recorded, require_valid_subjects
from gutaxis.clinical.tables import blank_to_missing, response_criteria, usable_groupings
from gutaxis.clinical.response import ABSCOPAL_COLUMNS, abscopal_incidence, response_table
from gutaxis.runner import run
from gutaxis.io.tables import read_sheet, write_tsv

log = logging.getLogger("gutaxis.clinical")


def main(smk):
    label = smk.params.subjects_label
    subjects = blank_to_missing(read_sheet(smk.input.subjects))
    criteria = response_criteria(subjects, smk.params.definitions)
    groupings, skipped = usable_groupings(subjects, smk.params.groupings)
    for row in skipped.itertuples():
        log.warning("grouping %s (%s) skipped: %s", row.grouping, row.columns, row.reason)
    # every clinical column of the table is checked before anything is computed
    require_valid_subjects(subjects, label, criteria=criteria, check_recorded=True,
                           group_columns=[c for columns in groupings.values() for c in columns])
    alpha = 1 - smk.params.conf_level
    handling = smk.params.not_evaluable
    rates = response_table(subjects, {"overall": None, **groupings}, criteria, handling, alpha, file=label)
    write_tsv(rates, smk.output.response)
    if column_recorded(subjects, "abscopal"):
        pieces = [abscopal_incidence(subjects, by, handling, alpha, file=label)
                  for by in [None, *groupings.values()]]
        abscopal = pd.concat(pieces, ignore_index=True)
    else:
        log.warning("no abscopal column in %s: abscopal.tsv has no rows", label)
        abscopal = pd.DataFrame(columns=ABSCOPAL_COLUMNS)
    write_tsv(abscopal, smk.output.abscopal)
    log.info("criteria %s, groupings %s, not-evaluable handling %s", criteria, list(groupings), handling)


run(snakemake, main)
