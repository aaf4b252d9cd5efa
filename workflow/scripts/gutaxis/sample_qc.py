"""QC tables of the sampling: each sample's fate per modality, and each subject's pairs."""

from __future__ import annotations

import pandas as pd

from gutaxis.reconcile import TECHNICAL_TYPES


def sample_status(
    samples: pd.DataFrame,
    sheet_dropped: pd.DataFrame,
    modalities: dict[str, dict],
) -> pd.DataFrame:
    """One row per sample and modality: kept or dropped, and why.

    Parameters
    ----------
    samples : DataFrame
        The checked sheet after duplicate resolution.
    sheet_dropped : DataFrame
        ``sample_id, subject_id, timepoint, sample_type, reason`` dropped by
        the sheet checks (duplicates).
    modalities : dict
        ``name -> {"sample_type": str, "kept": list of sample ids,
        "dropped": DataFrame(sample_id, reason), "technical": bool}``.

    Returns
    -------
    DataFrame
        ``sample_id, subject_id, timepoint, sample_type, modality, status, reason``
        sorted by modality then sheet order.
    """
    sheet = samples.set_index("sample_id")
    rows = []
    for name in sorted(modalities):
        info = modalities[name]
        kept = set(info["kept"])
        reasons = dict(zip(info["dropped"]["sample_id"], info["dropped"]["reason"]))
        types = {info["sample_type"]} | (set(TECHNICAL_TYPES) if info.get("technical") else set())
        expected = [s for s in samples["sample_id"] if sheet.at[s, "sample_type"] in types]
        # duplicates resolved away by the sheet checks are no longer in `samples`
        duplicates = sheet_dropped[sheet_dropped["sample_type"].isin(types)]
        for sample, reason in zip(duplicates["sample_id"], duplicates["reason"]):
            reasons.setdefault(sample, reason)
        expected += [s for s in reasons if s not in sheet.index]
        meta_of_dropped = sheet_dropped.set_index("sample_id")
        for sample in expected:
            status = "kept" if sample in kept else "dropped"
            reason = "" if status == "kept" else reasons.get(sample, "not kept")
            if sample in sheet.index:
                meta = sheet.loc[sample]
            else:
                meta = meta_of_dropped.loc[sample] if sample in meta_of_dropped.index else None
            rows.append(
                {
                    "sample_id": sample,
                    "subject_id": meta["subject_id"] if meta is not None else "",
                    "timepoint": meta["timepoint"] if meta is not None else "",
                    "sample_type": meta["sample_type"] if meta is not None else info["sample_type"],
                    "modality": name,
                    "status": status,
                    "reason": reason,
                }
            )
    return pd.DataFrame(
        rows, columns=["sample_id", "subject_id", "timepoint", "sample_type", "modality", "status", "reason"]
    )


def pairing_table(
    status: pd.DataFrame,
    subjects: pd.DataFrame,
    timepoints: list[str],
    contrasts: list[dict],
) -> pd.DataFrame:
    """Per subject and modality: the kept sample at each timepoint and whether each contrast is paired.

    Returns
    -------
    DataFrame
        ``subject_id, cohort, modality, <one column per timepoint holding the
        kept sample id or "">, n_timepoints, paired_<contrast> ("yes"/"no")``
        for every subject of the subjects table and every modality, so a
        subject with no sample at all still appears (with "no").
    """
    kept = status[(status["status"] == "kept") & (status["subject_id"] != "")]
    modalities = sorted(status["modality"].unique())
    grid = pd.MultiIndex.from_product(
        [subjects["subject_id"].to_list(), modalities], names=["subject_id", "modality"]
    )
    wide = (
        kept.pivot_table(
            index=["subject_id", "modality"], columns="timepoint", values="sample_id", aggfunc="first"
        )
        .reindex(grid)
        .reindex(columns=timepoints)
        .fillna("")
    )
    wide.columns.name = None
    out = wide.reset_index()
    out.insert(1, "cohort", out["subject_id"].map(subjects.set_index("subject_id")["cohort"]))
    out["n_timepoints"] = (out[timepoints] != "").sum(axis=1)
    for contrast in contrasts:
        paired = (out[contrast["pre"]] != "") & (out[contrast["post"]] != "")
        out[f"paired_{contrast['name']}"] = paired.map({True: "yes", False: "no"})
    return out.sort_values(["modality", "subject_id"], kind="stable").reset_index(drop=True)
