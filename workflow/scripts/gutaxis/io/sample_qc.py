"""QC tables of the sampling: each sample's fate per modality, and each subject's pairs."""

from __future__ import annotations

import pandas as pd

from gutaxis.io.reconcile import TECHNICAL_TYPES


def sample_status(
    samples: pd.DataFrame,
    modalities: dict[str, dict],
    excluded: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per sample and modality: kept, dropped or excluded, and why.

    Parameters
    ----------
    samples : DataFrame
        The checked sample sheet (without the excluded samples).
    excluded : DataFrame, optional
        ``sample_id, subject_id, timepoint, sample_type, reason`` of the samples the
        sheet excludes; each gets status ``excluded`` in every modality of its
        sample_type.
    modalities : dict
        ``name -> {"sample_type": str, "kept": list of sample ids,
        "dropped": DataFrame(sample_id, reason), "technical": bool}``.

    Returns
    -------
    DataFrame
        ``sample_id, subject_id, timepoint, sample_type, modality, status, reason``
        sorted by modality then sheet order.
    """
    columns = ["sample_id", "subject_id", "timepoint", "sample_type"]
    blocks = []
    for name in sorted(modalities):
        info = modalities[name]
        reasons = pd.Series(list(info["dropped"]["reason"]), index=list(info["dropped"]["sample_id"]), dtype=str)
        types = {info["sample_type"]} | (set(TECHNICAL_TYPES) if info.get("technical") else set())
        block = samples.loc[samples["sample_type"].isin(types), columns].copy()
        kept = block["sample_id"].isin(set(info["kept"]))
        block["modality"] = name
        block["status"] = kept.map({True: "kept", False: "dropped"})
        block["reason"] = block["sample_id"].map(reasons).fillna("not kept").where(~kept, "")
        blocks.append(block)
        if excluded is not None and len(excluded):
            out = excluded.loc[excluded["sample_type"].isin(types), [*columns, "reason"]]
            blocks.append(out.assign(modality=name, status="excluded"))
    out = pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame(columns=columns)
    return out.reindex(columns=[*columns, "modality", "status", "reason"])


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


def _reason_group(reason: str) -> str:
    """A reason without its sample-specific part, so equal causes are counted together
    ("duplicate of S12 (...)" and "duplicate of S31 (...)" are one cause)."""
    if reason.startswith("duplicate of "):
        detail = reason.split(" (", 1)[1].rstrip(")") if " (" in reason else ""
        return f"duplicate sample ({detail})" if detail else "duplicate sample"
    return reason


def not_analysed_summary(status: pd.DataFrame, max_reasons: int = 3) -> list[str]:
    """One line per modality with samples dropped or excluded, for the end-of-run screen.

    Parameters
    ----------
    status : DataFrame
        :func:`sample_status` (``results/qc/samples.tsv``).
    max_reasons : int
        Causes listed per line (the most frequent; the others are counted).

    Returns
    -------
    list of str
        ``"taxa: 3 of 188 samples not analysed: not in taxa.txt (2), ..."``; empty when
        every sample was kept.
    """
    lines = []
    for modality, block in status.groupby("modality", sort=True):
        out = block[block["status"] != "kept"]
        if out.empty:
            continue
        counts = out["reason"].astype(str).map(_reason_group).value_counts(sort=False)
        counts = counts.sort_values(ascending=False, kind="stable")
        shown = [f"{reason} ({n})" for reason, n in counts.iloc[:max_reasons].items()]
        rest = len(counts) - max_reasons
        if rest > 0:
            shown.append(f"{rest} other reason{'s' if rest > 1 else ''}")
        lines.append(f"{modality}: {len(out)} of {len(block)} samples not analysed: " + "; ".join(shown))
    return lines
