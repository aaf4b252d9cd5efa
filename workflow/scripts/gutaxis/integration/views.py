"""Subject-aligned views of two omics blocks: baseline, post and within-subject change.

Two modalities (e.g. stool metagenomics and blood immune subsets) have different
sample ids; the sample sheet maps every sample to ``subject_id`` + ``timepoint``,
and the views pair them on that key.  Each view has one row per subject, indexed
by ``subject_id`` in the same order in both blocks, ready for
:func:`gutaxis.integration.associations.associate_blocks`.  The change view is
``post - pre`` on the scale of the tables given (pass CLR/log/logit-transformed
tables: the difference of transformed values is the log-ratio change).

Every subject with data in either table is listed in a membership table with
whether it is used in each view and, if not, why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gutaxis.io.errors import ProblemCollector

__all__ = ["BlockViews", "StudySheets", "build_views", "locate_samples"]

MEMBERSHIP_COLUMNS = ["view", "subject_id", "used", "reason", "samples_a", "samples_b"]
REQUIRED_SHEET_COLUMNS = ("sample_id", "subject_id", "timepoint")


@dataclass
class BlockViews:
    """Aligned blocks per view, and who is in them.

    Attributes
    ----------
    views : dict of str -> (DataFrame, DataFrame)
        View name (the ``pre`` timepoint, the ``post`` timepoint and
        ``"change"``) -> ``(a, b)``: subjects x features, index ``subject_id``
        identical in both, sorted.
    membership : DataFrame
        ``view, subject_id, used, reason, samples_a, samples_b``: one row per
        view and subject seen in either table (``samples_*`` are the
        table's sample ids at the view's timepoints, ``;``-joined, pre before
        post: those used when ``used``, those available otherwise); plus rows with ``view`` =
        ``"none"`` for table samples that belong to no subject (QC pools,
        blanks).
    """

    views: dict
    membership: pd.DataFrame


@dataclass(frozen=True)
class StudySheets:
    """The study tables every integration step aligns its blocks with.

    Attributes
    ----------
    samples : DataFrame
        The checked sample sheet (``sample_id, subject_id, timepoint`` ...).
    subjects : DataFrame or None
        The checked subjects table (covariates, strata); None where a step needs none.
    pre, post : str
        The contrast's timepoints (``post`` = "" in a baseline-only study).
    samples_file, subjects_file : str
        How messages name the two tables (the config's paths).
    """

    samples: pd.DataFrame
    subjects: pd.DataFrame | None = None
    pre: str = "baseline"
    post: str = "post"
    samples_file: str = "samples.tsv"
    subjects_file: str = "subjects.tsv"

    def timepoints(self, view: str) -> list[str]:
        """The timepoints behind ``view``: both of the contrast for the change view, else the view's own."""
        return [self.pre, self.post] if view == "change" else [view]


def locate_samples(
    samples: pd.DataFrame,
    table: pd.DataFrame,
    *,
    source: str,
    samples_file: str = "samples.tsv",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map the rows of one feature table to subject and timepoint.

    Parameters
    ----------
    samples : DataFrame
        The sample sheet (columns ``sample_id, subject_id, timepoint``).
    table : DataFrame
        Feature table, index = sample ids.
    source : str
        Name of the table for messages (its file name or modality).
    samples_file : str
        Name of the sample sheet for messages.

    Returns
    -------
    located : DataFrame
        ``sample_id, subject_id, timepoint`` (strings) for the table's samples
        that belong to a subject.
    unassigned : DataFrame
        ``sample_id, sample_type`` of table samples without subject/timepoint
        (QC pools, blanks).

    Raises
    ------
    InputError
        Sheet columns missing, duplicated sample ids, table samples absent
        from the sheet, or two samples of the table at one subject+timepoint.
    """
    problems = ProblemCollector()
    missing_cols = [c for c in REQUIRED_SHEET_COLUMNS if c not in samples.columns]
    if missing_cols:
        problems.add(samples_file, "header", f"missing column(s) {', '.join(missing_cols)}",
                     "add sample_id, subject_id and timepoint columns")
        problems.raise_if_any()
    sheet = samples.copy()
    sheet["sample_id"] = sheet["sample_id"].astype(str)
    dup = sheet["sample_id"][sheet["sample_id"].duplicated()].unique()
    if len(dup):
        problems.add(samples_file, "sample_id " + ", ".join(sorted(dup)[:10]),
                     "sample id listed more than once", "list each sample once")
    table_ids = pd.Index(table.index.astype(str))
    if table_ids.has_duplicates:
        problems.add(source, "rows " + ", ".join(sorted(table_ids[table_ids.duplicated()].unique())[:10]),
                     "sample id appears more than once", "keep one row per sample")
    unknown = table_ids.difference(sheet["sample_id"])
    if len(unknown):
        problems.add(source, "samples " + ", ".join(sorted(unknown)[:10]) + (" ..." if len(unknown) > 10 else ""),
                     f"{len(unknown)} sample(s) not in the sample sheet",
                     f"add them to {samples_file} or remove them from {source}")
    problems.raise_if_any()

    sheet = sheet.drop_duplicates("sample_id").set_index("sample_id")
    rows = sheet.loc[table_ids]
    subject = rows["subject_id"]
    timepoint = rows["timepoint"]
    has_subject = subject.notna() & timepoint.notna() & (subject.astype(str).str.strip() != "")
    located = pd.DataFrame({
        "sample_id": table_ids[has_subject.to_numpy()],
        "subject_id": subject[has_subject].astype(str).to_numpy(),
        "timepoint": timepoint[has_subject].astype(str).to_numpy(),
    })
    sample_type = rows["sample_type"] if "sample_type" in rows.columns else pd.Series("", index=rows.index)
    unassigned = pd.DataFrame({
        "sample_id": table_ids[~has_subject.to_numpy()],
        "sample_type": sample_type[~has_subject].fillna("").astype(str).to_numpy(),
    })

    clash = located[located.duplicated(["subject_id", "timepoint"], keep=False)]
    for (subj, tp), group in clash.groupby(["subject_id", "timepoint"], sort=True):
        problems.add(source, f"subject {subj}, timepoint {tp}",
                     f"{len(group)} samples ({', '.join(sorted(group['sample_id']))}) at one subject and timepoint",
                     "keep one sample per subject and timepoint (average technical replicates upstream)")
    problems.raise_if_any()
    return located, unassigned


def build_views(
    samples: pd.DataFrame,
    table_a: pd.DataFrame,
    table_b: pd.DataFrame,
    *,
    pre: str = "baseline",
    post: str = "post",
    name_a: str = "a",
    name_b: str = "b",
    samples_file: str = "samples.tsv",
) -> BlockViews:
    """Baseline, post and change views of two feature tables, matched by subject.

    A subject enters the ``pre`` (``post``) view when both tables have its
    sample at that timepoint, and the change view when both tables have both
    timepoints; the change is ``x_post - x_pre`` per subject and feature
    (NaN if either value is NaN).  Samples at other timepoints (e.g.
    progression) are not part of these views.

    Parameters
    ----------
    samples : DataFrame
        Sample sheet with ``sample_id, subject_id, timepoint`` (QC/blank rows
        with empty subject are allowed).
    table_a, table_b : DataFrame
        Feature tables (index = sample ids, columns = features) on the scale
        on which changes are meaningful (CLR, log2, logit ...).
    pre, post : str
        Timepoint labels of the two timepoints compared; ``post`` = "" gives the
        ``pre`` view alone (a study without paired samples).
    name_a, name_b : str
        Modality names for messages and reasons (e.g. ``"taxa"``, ``"immune"``).
    samples_file : str
        Sample sheet name for messages.

    Returns
    -------
    BlockViews
        ``views[pre]``, ``views[post]``, ``views["change"]`` as ``(a, b)``
        pairs indexed by ``subject_id``, and the membership table.
    """
    if pre == post:
        raise ValueError("pre and post timepoints must differ")
    # no post timepoint (a baseline-only study): the pre view alone
    timepoints = (pre, post) if post else (pre,)
    loc_a, unassigned_a = locate_samples(samples, table_a, source=name_a, samples_file=samples_file)
    loc_b, unassigned_b = locate_samples(samples, table_b, source=name_b, samples_file=samples_file)

    # subject x timepoint -> sample id, per table
    wide_a = loc_a.pivot(index="subject_id", columns="timepoint", values="sample_id")
    wide_b = loc_b.pivot(index="subject_id", columns="timepoint", values="sample_id")
    subjects = sorted(set(wide_a.index) | set(wide_b.index))
    sample_of = pd.DataFrame(index=pd.Index(subjects, name="subject_id"))
    for label, wide in (("a", wide_a), ("b", wide_b)):
        for tp in timepoints:
            col = wide[tp] if tp in wide.columns else pd.Series(dtype=object)
            sample_of[f"{label}_{tp}"] = col.reindex(sample_of.index)

    values_a = table_a.set_axis(table_a.index.astype(str), axis=0)
    values_b = table_b.set_axis(table_b.index.astype(str), axis=0)
    names = {"a": name_a, "b": name_b}
    views = {}
    membership = []
    plan = [(pre, (pre,)), (post, (post,)), ("change", (pre, post))] if post else [(pre, (pre,))]
    for view, needed in plan:
        present = {(lab, tp): sample_of[f"{lab}_{tp}"].notna().to_numpy()
                   for lab in "ab" for tp in needed}
        used = np.logical_and.reduce(list(present.values()))
        reasons = [
            "; ".join(f"no {names[lab]} sample at {tp}"
                      for (lab, tp), ok in present.items() if not ok[i])
            for i in range(len(subjects))
        ]
        used_subjects = sample_of.index[used]
        blocks = []
        for lab, values in (("a", values_a), ("b", values_b)):
            if view == "change":
                before = values.loc[sample_of.loc[used_subjects, f"{lab}_{pre}"]].to_numpy(dtype=float)
                after = values.loc[sample_of.loc[used_subjects, f"{lab}_{post}"]].to_numpy(dtype=float)
                block = pd.DataFrame(after - before, index=used_subjects, columns=values.columns)
            else:
                block = values.loc[sample_of.loc[used_subjects, f"{lab}_{view}"]]
                block = block.set_axis(used_subjects, axis=0)
            blocks.append(block)
        views[view] = tuple(blocks)
        membership.append(pd.DataFrame({
            "view": view,
            "subject_id": subjects,
            "used": used,
            "reason": reasons,
            "samples_a": _joined(sample_of, "a", needed),
            "samples_b": _joined(sample_of, "b", needed),
        }))

    unassigned = pd.concat([unassigned_a.assign(which=name_a), unassigned_b.assign(which=name_b)])
    if len(unassigned):
        membership.append(pd.DataFrame({
            "view": "none",
            "subject_id": "",
            "used": False,
            "reason": [f"{w} sample {s} has no subject/timepoint (sample_type '{t}')"
                       for w, s, t in zip(unassigned["which"], unassigned["sample_id"], unassigned["sample_type"])],
            "samples_a": np.where(unassigned["which"] == name_a, unassigned["sample_id"], ""),
            "samples_b": np.where(unassigned["which"] == name_b, unassigned["sample_id"], ""),
        }))
    table = pd.concat(membership, ignore_index=True)[MEMBERSHIP_COLUMNS]
    return BlockViews(views=views, membership=table)


def _joined(sample_of: pd.DataFrame, label: str, timepoints) -> list[str]:
    cols = sample_of[[f"{label}_{tp}" for tp in timepoints]].fillna("")
    return [";".join(v for v in row if v) for row in cols.itertuples(index=False)]
