#!/usr/bin/env python
"""Sample sheet and subjects table of the MARS IBS longitudinal cohort (Mars et al. 2020).

Reads the curated ``metadata.tsv`` of the data set (one row per stool sample:
Sample, Subject, Study.Group H/C/D, Timepoint 0-6 or Flare, age, gender, BMI,
antibiotics) and writes, without changing any data value:

* ``samples.tsv`` - ``sample_id`` = Sample (the row id of genera.counts.tsv.gz and
  mtb.tsv), ``subject_id`` = Subject, ``timepoint`` T0 ... T6, ``sample_type``
  stool, ``antibiotics`` (yes/no, as recorded). The 10 flare samples were taken
  between two scheduled visits (Flare_timepoint 1.5 ... 5.5) when symptoms flared;
  they have no place in the T0-T6 series, so they are excluded with that reason
  (they stay listed in results/qc/samples.tsv);
* ``subjects.tsv`` - one row per subject, ``cohort`` healthy / ibs_c / ibs_d
  (Study.Group H / C / D), ``age``, ``sex`` (F/M), ``bmi``.

Usage (from the repository root)::

    python config/examples/mmcd_mars_ibs/make_sheets.py --data ../shared/data/mmcd_mars_ibs
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from sheet_cli import make_sheets  # noqa: E402  (the examples' shared command line)
GROUPS = {"H": "healthy", "C": "ibs_c", "D": "ibs_d"}
SCHEDULED = [str(t) for t in range(7)]


def build(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    meta = pd.read_csv(data / "metadata.tsv", sep="\t", dtype=str, keep_default_na=False)
    unknown = sorted(set(meta["Timepoint"]) - set(SCHEDULED) - {"Flare"})
    if unknown:
        sys.exit(f"{data / 'metadata.tsv'}: unexpected Timepoint value(s) {unknown}")
    flare = meta["Timepoint"] == "Flare"
    when = meta["Flare_timepoint.y"].replace("NA", "")
    samples = pd.DataFrame({
        "sample_id": meta["Sample"],
        "subject_id": meta["Subject"],
        "timepoint": ("T" + meta["Timepoint"]).where(~flare, "flare"),
        "sample_type": "stool",
        "antibiotics": meta["Antibiotics"].replace("NA", ""),
        "exclude": flare.map({True: "yes", False: ""}),
        "exclude_reason": ("flare sample taken between scheduled visits (timepoint " + when
                           + "); not part of the T0-T6 series").where(flare, ""),
    })
    people = meta.drop_duplicates("Subject").sort_values("Subject")
    subjects = pd.DataFrame({
        "subject_id": people["Subject"].to_numpy(),
        "cohort": people["Study.Group"].map(GROUPS).to_numpy(),
        "age": people["Age"].replace("NA", "").to_numpy(),
        "sex": people["Gender"].map({"Female": "F", "Male": "M"}).fillna("").to_numpy(),
        "bmi": people["BMI"].replace("NA", "").to_numpy(),
    })
    return samples.sort_values(["subject_id", "timepoint"]).reset_index(drop=True), subjects


def main(argv=None) -> None:
    make_sheets(__doc__, "mmcd_mars_ibs", ["metadata.tsv"], build, HERE, argv)


if __name__ == "__main__":
    main()
