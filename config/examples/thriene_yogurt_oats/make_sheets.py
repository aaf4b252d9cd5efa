#!/usr/bin/env python
"""Sample sheet and subjects table of the Thriene yogurt / rolled-oats crossover.

Reads the study's own metadata (``metadata_microbiome.tsv`` of the data set: one row
per stool sample with participant, timepoint T1-T4, crossover group, intervention
and period) and writes, without changing any data value:

* ``samples.tsv`` - one row per stool metagenome. ``sample_id`` is the column name
  of the MetaPhlAn tables (JH001 ...); ``timepoint`` is the intervention and its
  side, ``yogurt_pre``/``yogurt_post``/``oats_pre``/``oats_post`` (T1/T3 are
  "before", T2/T4 "after" the period's intervention); ``period`` is 1 or 2;
  ``scfa_id`` is the integer ``Client Sample ID`` of the SCFA report (JH-007 -> 7),
  which the SCFA modality matches through ``options.sample_id_column``.
  JH379 and JH380 (participant ID016, yogurt period) are excluded with the
  authors' reason. The SCFA report also holds 22 repeat samples (JH441-JH462,
  ``Number`` 2 in ``metadata_metabolome.tsv``: a second sample of a participant's
  visit, without metagenome); they are listed with that visit's timepoint and
  period and excluded with that reason, so the first sample of the visit is the
  one analysed;
* ``subjects.tsv`` - one row per participant; ``cohort`` is the crossover sequence
  (group A = yogurt first, B = oats first), ``sex`` (w -> F, m -> M), ``age``, ``bmi``.

Usage (from the repository root)::

    python config/examples/thriene_yogurt_oats/make_sheets.py \
        --data ../shared/data/thriene_yogurt_oats
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from sheet_cli import make_sheets  # noqa: E402  (the examples' shared command line)
#: intervention of the metadata -> timepoint prefix
INTERVENTIONS = {"Yogurt": "yogurt", "YogurtOatmeal": "oats"}
SIDES = {"Before": "pre", "After": "post"}
#: crossover group -> cohort (the sequence of the two periods)
SEQUENCES = {"A": "yogurt_first", "B": "oats_first"}
#: the samples the authors left out, with their reason (SOURCE.md, README of the study)
EXCLUDED = {
    "JH379": "not correctly prepared by the participant (ID016, yogurt period); excluded by the authors",
    "JH380": "not correctly prepared by the participant (ID016, yogurt period); excluded by the authors",
}


def build(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    meta = pd.read_csv(data / "metadata_microbiome.tsv", sep="\t", dtype=str)
    bad = sorted(set(meta["Intervention"]) - set(INTERVENTIONS)) + sorted(set(meta["Treatment"]) - set(SIDES))
    if bad:
        sys.exit(f"{data / 'metadata_microbiome.tsv'}: unexpected Intervention/Treatment value(s) {bad}")
    samples = pd.DataFrame({
        "sample_id": meta["abundance_column"],
        "subject_id": meta["Participant_ID"],
        "timepoint": meta["Intervention"].map(INTERVENTIONS) + "_" + meta["Treatment"].map(SIDES),
        "sample_type": "stool",
        "period": meta["Period"],
        "scfa_id": meta["Sample_ID"].str.replace("JH-", "", regex=False).astype(int).astype(str),
        "original_timepoint": meta["Timepoint"],
    })
    samples["exclude"] = samples["sample_id"].map(lambda s: "yes" if s in EXCLUDED else "")
    samples["exclude_reason"] = samples["sample_id"].map(EXCLUDED).fillna("")

    # repeat SCFA samples: the visit's labels from the microbiome sample of the same visit
    scfa_meta = pd.read_csv(data / "metadata_metabolome.tsv", sep="\t", dtype=str)
    repeats = scfa_meta[scfa_meta["Number"] != "1"]
    visit = samples.assign(Participant_ID=samples["subject_id"], Timepoint=samples["original_timepoint"])
    repeats = repeats[["Participant_ID", "Sample_ID", "Timepoint", "Number"]].merge(
        visit[["Participant_ID", "Timepoint", "timepoint", "period"]], on=["Participant_ID", "Timepoint"],
        how="left", validate="many_to_one")
    if repeats["timepoint"].isna().any():
        sys.exit(f"{data / 'metadata_metabolome.tsv'}: repeat sample(s) "
                 f"{list(repeats.loc[repeats['timepoint'].isna(), 'Sample_ID'])} match no metagenome visit")
    extra = pd.DataFrame({
        "sample_id": repeats["Sample_ID"].str.replace("-", "", regex=False),
        "subject_id": repeats["Participant_ID"],
        "timepoint": repeats["timepoint"],
        "sample_type": "stool",
        "period": repeats["period"],
        "scfa_id": repeats["Sample_ID"].str.replace("JH-", "", regex=False).astype(int).astype(str),
        "original_timepoint": repeats["Timepoint"],
        "exclude": "yes",
        "exclude_reason": "repeat SCFA sample of this visit (Number " + repeats["Number"]
                          + " in Metadata_metabolome; no metagenome); the visit's first sample is analysed",
    })
    samples = pd.concat([samples, extra], ignore_index=True)
    samples = samples.sort_values("sample_id", kind="stable").reset_index(drop=True)

    people = meta.drop_duplicates("Participant_ID").sort_values("Participant_ID")
    subjects = pd.DataFrame({
        "subject_id": people["Participant_ID"].to_numpy(),
        "cohort": people["Gruppe"].map(SEQUENCES).to_numpy(),
        "sex": people["Geschlecht"].map({"w": "F", "m": "M"}).fillna("").to_numpy(),
        "age": people["Alter"].to_numpy(),
        "bmi": people["BMI"].to_numpy(),
    })
    return samples, subjects


def main(argv=None) -> None:
    make_sheets(__doc__, "thriene_yogurt_oats", ["metadata_microbiome.tsv"], build, HERE, argv)


if __name__ == "__main__":
    main()
