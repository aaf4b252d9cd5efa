#!/usr/bin/env python
"""Sample sheet and subjects table of the CHIKV CyTOF study (Michlmayr et al. 2018).

The 86 PBMC samples (43 children, acute and convalescent chikungunya infection)
are the sample columns of ``assigment_subset_frequencies.csv`` (sic), named
``<date>_<batch>_<patient>_1_patients_<acute|conv>``. This script reads those
names and the FlowRepository annotations (age, sex, days after symptom onset; a
latin-1 file with upper-case FCS names) and writes, without changing any data value:

* ``samples.tsv`` - ``sample_id`` = the column name, ``subject_id`` = the patient
  number, ``timepoint`` acute / convalescent, ``sample_type`` blood, ``batch`` =
  the acquisition date and batch, ``days_post_onset`` from the annotations;
* ``subjects.tsv`` - one row per patient, ``cohort`` chikv (one cohort), ``age``,
  ``sex`` (F/M; empty where the annotations say Unknown).

Usage (from the repository root)::

    python config/examples/michlmayr_chikv_cytof_pbmc/make_sheets.py \
        --data ../shared/data/michlmayr_chikv_cytof_pbmc
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from sheet_cli import make_sheets  # noqa: E402  (the examples' shared command line)
TABLE = "assigment_subset_frequencies.csv"
ANNOTATIONS = "Flowrepository_annotations_2.csv"
NAME = re.compile(r"^(?P<date>\d+)_(?P<batch>[a-z0-9]+)_(?P<patient>\d+)_1_patients_(?P<state>acute|conv)$")
TIMEPOINTS = {"acute": "acute", "conv": "convalescent"}


def build(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    header = pd.read_csv(data / TABLE, nrows=0).columns
    columns = [c for c in header if NAME.match(c)]
    odd = [c for c in header[2:] if not NAME.match(c)]
    if odd:
        sys.exit(f"{data / TABLE}: sample column(s) {odd[:3]} do not look like "
                 "<date>_<batch>_<patient>_1_patients_<acute|conv>")
    parts = pd.DataFrame([NAME.match(c).groupdict() for c in columns], index=columns)

    notes = pd.read_csv(data / ANNOTATIONS, encoding="latin-1", dtype=str)
    notes.index = notes["FCS File"].str.lower().str.replace(".fcs.astrolabe.fcs", "", regex=False)
    notes = notes.reindex(columns)  # the one annotation row without a sample column is left out
    days = notes["Sample Description"].str.extract(r"(\d+) Days", expand=False).fillna("")

    samples = pd.DataFrame({
        "sample_id": columns,
        "subject_id": "P" + parts["patient"].to_numpy(),
        "timepoint": parts["state"].map(TIMEPOINTS).to_numpy(),
        "sample_type": "blood",
        "batch": (parts["date"] + "_" + parts["batch"]).to_numpy(),
        "days_post_onset": days.to_numpy(),
    })
    sex = notes["Gender"].map({"Male": "M", "Female": "F"}).fillna("")
    age = notes["Age"].where(notes["Age Unit"] == "Years", "").fillna("")
    people = pd.DataFrame({"subject_id": samples["subject_id"].to_numpy(), "sex": sex.to_numpy(),
                           "age": age.to_numpy()})
    # one row per patient: the first non-empty value of its two samples
    people = people.replace("", pd.NA).groupby("subject_id", sort=True).first().fillna("").reset_index()
    subjects = pd.DataFrame({"subject_id": people["subject_id"], "cohort": "chikv",
                             "age": people["age"], "sex": people["sex"]})
    return samples.sort_values(["subject_id", "timepoint"]).reset_index(drop=True), subjects


def main(argv=None) -> None:
    make_sheets(__doc__, "michlmayr_chikv_cytof_pbmc", [TABLE, ANNOTATIONS], build, HERE, argv)


if __name__ == "__main__":
    main()
