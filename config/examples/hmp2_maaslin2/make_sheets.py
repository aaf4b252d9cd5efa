#!/usr/bin/env python
"""Sample sheet and subjects table of the HMP2/IBDMDB subset shipped with MaAsLin 2.

Reads ``HMP2_metadata.tsv`` of the data set (one row per stool sample: ID, site, age,
diagnosis, subject, antibiotics, dysbiosis_binary, dysbiosis, dysbiosisnonIBD,
dysbiosisUC, dysbiosisCD, collection) and writes, without changing any data value:

* ``samples.tsv`` - ``sample_id`` = ID (the row id of HMP2_taxonomy.tsv), ``subject_id``
  = subject, ``timepoint`` c1 ... c24 (the collection number), ``sample_type`` stool,
  and the sample-level columns the MaAsLin 2 test model reads: ``site``, ``age``,
  ``antibiotics``, ``dysbiosisnonIBD``, ``dysbiosisUC``, ``dysbiosisCD`` (Yes/No; R's
  ``NA`` becomes an empty cell, so the model drops those 19 samples as lmer does);
  42 subjects have two samples with the same collection number, which the config keeps
  (``design.duplicates: keep``) as MaAsLin 2 does;
* ``subjects.tsv`` - one row per subject, ``cohort`` and ``diagnosis`` = diagnosis
  (CD / UC / nonIBD; constant within subject).

Usage (from the repository root)::

    python config/examples/hmp2_maaslin2/make_sheets.py --data ../shared/data/hmp2_maaslin2
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from sheet_cli import make_sheets  # noqa: E402  (the examples' shared command line)
SAMPLE_COLUMNS = ["site", "age", "antibiotics", "dysbiosisnonIBD", "dysbiosisUC", "dysbiosisCD"]


def build(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    meta = pd.read_csv(data / "HMP2_metadata.tsv", sep="\t", dtype=str, keep_default_na=False)
    samples = pd.DataFrame({
        "sample_id": meta["ID"],
        "subject_id": meta["subject"],
        "timepoint": "c" + meta["collection"],
        "sample_type": "stool",
        **{column: meta[column].replace("NA", "") for column in SAMPLE_COLUMNS},
    })
    people = meta.drop_duplicates("subject").sort_values("subject")
    subjects = pd.DataFrame({"subject_id": people["subject"].to_numpy(),
                             "cohort": people["diagnosis"].to_numpy(),
                             "diagnosis": people["diagnosis"].to_numpy()})
    return samples, subjects


def main(argv=None) -> None:
    make_sheets(__doc__, "hmp2_maaslin2", ["HMP2_metadata.tsv"], build, HERE, argv)


if __name__ == "__main__":
    main()
