#!/usr/bin/env python
"""Sample sheet and subjects table of the 11-cohort ICI responder set (Kanaeva & Olekhnovich).

Every cohort folder ``per_cohort/<Cohort>/`` of the data set holds the OGU table
(``ogu_relabund_percent.tsv.gz``) and its own ``metadata.tsv`` (sampleid, response
R/NR, dataset, cancer_type). Those per-cohort metadata are used, not
``sample_metadata_624.tsv``: they are the ones that match the tables (the 624-sample
file lists Gopalakrishnan_2018 samples that have no table and lacks the 25
Gopalakrishnan_2019 samples that have one). Labels agree on the 602 shared samples.

Every sample is a baseline (pre-treatment) stool sample of a different patient, so:

* ``samples.tsv`` - ``sample_id`` = ``subject_id`` = the run accession, ``timepoint``
  baseline, ``sample_type`` stool;
* ``subjects.tsv`` - ``subject_id``, ``cohort`` = the dataset (Frankel_2017 ...),
  ``response`` R / NR (the responder definition of the config reads it),
  ``cancer_type`` as recorded.

Usage (from the repository root)::

    python config/examples/ici_responders_ogu_11cohorts/make_sheets.py \
        --data ../shared/data/ici_responders_ogu_11cohorts
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from sheet_cli import make_sheets  # noqa: E402  (the examples' shared command line)


def cohort_folders(data: Path) -> list[Path]:
    """The cohort folders that hold both an OGU table and its metadata, by name."""
    return sorted(p for p in (data / "per_cohort").iterdir()
                  if (p / "metadata.tsv").is_file() and (p / "ogu_relabund_percent.tsv.gz").is_file())


def build(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = []
    for folder in cohort_folders(data):
        meta = pd.read_csv(folder / "metadata.tsv", sep="\t", dtype=str, keep_default_na=False)
        table_ids = pd.read_csv(folder / "ogu_relabund_percent.tsv.gz", sep="\t", nrows=0).columns[1:]
        missing = sorted(set(table_ids) - set(meta["sampleid"]))
        if missing:
            sys.exit(f"{folder / 'metadata.tsv'}: no row for table sample(s) {missing[:5]}")
        frames.append(meta[meta["sampleid"].isin(table_ids)])
    meta = pd.concat(frames, ignore_index=True)
    if meta["sampleid"].duplicated().any():
        sys.exit(f"{data}: sample(s) {sorted(meta.loc[meta['sampleid'].duplicated(), 'sampleid'])[:5]} "
                 "are in more than one cohort")
    samples = pd.DataFrame({"sample_id": meta["sampleid"], "subject_id": meta["sampleid"],
                            "timepoint": "baseline", "sample_type": "stool"})
    subjects = pd.DataFrame({"subject_id": meta["sampleid"], "cohort": meta["dataset"],
                             "response": meta["response"], "cancer_type": meta["cancer_type"]})
    return samples, subjects


def main(argv=None) -> None:
    samples, subjects = make_sheets(__doc__, "ici_responders_ogu_11cohorts", ["per_cohort"], build, HERE, argv)
    print(f"{subjects['cohort'].nunique()} cohorts")
    print(subjects.groupby("cohort")["response"].value_counts().unstack(fill_value=0).to_string())


if __name__ == "__main__":
    main()
