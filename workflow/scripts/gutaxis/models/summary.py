"""Responder-model summaries: the tables of every feature set collected, the best feature set, top
biomarkers and their values, ROC/calibration tables and the README text.

These functions read the per-feature-set tables written by the nested CV
(:mod:`gutaxis.models.fit`) and never refit a model; :func:`biomarker_values` applies the
label-free per-sample transform of a block to all subjects for the survival analysis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gutaxis.models.features import CLINICAL_BLOCK, RESPONDER
from gutaxis.models.fit import GROUP_COLUMNS, PERFORMANCE_COLUMNS, PREDICTION_COLUMNS
from gutaxis.models.metrics import calibration_bins, roc_band
from gutaxis.models.pipeline import BlockTransformer

NON_BIOMARKER_BLOCKS = (CLINICAL_BLOCK, "stack")
#: text columns of the per-feature-set tables (read as text, so ids such as "1" stay ids)
TEXT_COLUMNS = {column: str for column in (
    "feature_set", "model", "subject_id", "label", "timepoint", "cohort", "blocks", "outer_folds", "best_params",
    "reason", "validation_group", "group", "validation", "note", "view")}
EXCLUDED_COLUMNS = ["feature_set", "subject_id", "reason"]


def best_feature_set(performance: pd.DataFrame) -> pd.Series | None:
    """The (feature set, model) row with the highest mean AUROC among sets with omics blocks.

    Ties go to the earlier row (performance tables are sorted by feature set, then
    model). Returns None when no row has an omics block and a finite AUROC.
    """
    blocks = performance["blocks"].fillna("").astype(str).str.split("+")
    omics = blocks.apply(lambda bs: any(b and b not in NON_BIOMARKER_BLOCKS for b in bs))
    candidates = performance[omics & performance["auroc_mean"].notna()]
    if candidates.empty:
        return None
    return candidates.loc[candidates["auroc_mean"].idxmax()]


def top_biomarkers(features: pd.DataFrame, feature_set: str, model: str, k: int) -> pd.DataFrame:
    """The ``k`` best-ranked omics features of one (feature set, model), selected at least once."""
    part = features[(features["feature_set"] == feature_set) & (features["model"] == model)
                    & ~features["block"].isin(NON_BIOMARKER_BLOCKS)
                    & (features["selection_frequency"] > 0)]
    return part.sort_values("rank", kind="stable").head(int(k)).reset_index(drop=True)


def biomarker_values(X: np.ndarray, rows: pd.DataFrame, blocks, wanted, *, min_prevalence: float,
                     pseudocount_fraction: float, logit_epsilon: float) -> pd.DataFrame:
    """Transformed values of chosen features for every row (subject), without any label.

    Each block's :class:`~gutaxis.models.pipeline.BlockTransformer` is fitted on all
    rows (the prevalence filter then decides the CLR's parts, as in the folds), and
    the wanted ``(block, feature)`` columns are returned, indexed by subject (the
    first row of a subject when it has several).
    """
    first = ~rows["subject_id"].duplicated().to_numpy()
    out = {}
    by_name = {b.name: b for b in blocks}
    for block_name, feature in wanted:
        block = by_name.get(block_name)
        if block is None or feature not in block.features:
            continue
        transformer = BlockTransformer(block.transform, block.layout, min_prevalence,
                                       pseudocount_fraction, block.scale, logit_epsilon)
        values = transformer.fit_transform(X[first][:, list(block.columns)])
        kept = np.asarray(block.features, dtype=object)[transformer.support_]
        hit = np.flatnonzero(kept == feature)
        if hit.size:
            out[feature] = values[:, hit[0]]
    return pd.DataFrame(out, index=pd.Index(rows["subject_id"].to_numpy()[first], name="subject_id"))


# --------------------------------------------------------------------------- curves


def roc_table(predictions: pd.DataFrame, grid_size: int = 101, conf_level: float = 0.95) -> pd.DataFrame:
    """Mean ROC curve and percentile band over CV repeats per (feature set, model), subject level."""
    pieces = []
    for (feature_set, model), part in predictions.groupby(["feature_set", "model"], sort=True):
        per_subject = part.groupby(["repeat", "subject_id"], sort=True).agg(
            label=("label", "first"), probability=("probability", "mean")).reset_index()
        ys, ps = [], []
        for _, rep in per_subject.groupby("repeat", sort=True):
            ys.append((rep["label"] == RESPONDER).astype(int).to_numpy())
            ps.append(rep["probability"].to_numpy())
        band = roc_band(ys, ps, grid_size, conf_level)
        band.insert(0, "model", model)
        band.insert(0, "feature_set", feature_set)
        pieces.append(band)
    return pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()


def calibration_table(predictions: pd.DataFrame, n_bins: int = 5, conf_level: float = 0.95) -> pd.DataFrame:
    """Calibration bins of the repeat-averaged probability of each subject, per (feature set, model)."""
    pieces = []
    for (feature_set, model), part in predictions.groupby(["feature_set", "model"], sort=True):
        per_subject = part.groupby("subject_id", sort=True).agg(
            label=("label", "first"), probability=("probability", "mean"))
        bins = calibration_bins((per_subject["label"] == RESPONDER).astype(int).to_numpy(),
                                per_subject["probability"].to_numpy(), n_bins, conf_level)
        bins.insert(0, "model", model)
        bins.insert(0, "feature_set", feature_set)
        pieces.append(bins)
    return pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()


# --------------------------------------------------------------------------- README


def _fmt(x, digits=2):
    return "NA" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}f}"


def _design_line(performance: pd.DataFrame, settings: dict) -> str:
    """The validation design in one sentence."""
    validation = (str(performance["validation"].iloc[0]) if "validation" in performance
                  and len(performance) else "stratified")
    inner = (f"inner {settings['inner_folds']} folds for hyperparameters; every transform, filter, "
             "selector and scaler fitted inside the training folds only.")
    if validation == "leave_one_group_out":
        return f"Leave-one-group-out validation: each group held out once, the model fitted on the others; {inner}"
    if validation == "external":
        return f"External validation: fitted on the training groups, tested once on the test groups; {inner}"
    return (f"Nested cross-validation: outer {settings['outer_folds']} folds x {settings['outer_repeats']} "
            f"repeats (stratified; grouped by subject when a subject has several rows), {inner}")


def readme_text(performance: pd.DataFrame, excluded: pd.DataFrame, *, label: str, settings: dict,
                best: pd.Series | None, survival_note: str = "") -> str:
    """Plain-text summary of the models module: sample sizes, exclusions, settings, caveat."""
    lines = [
        "gutaxis responder models (results/models/)",
        "==========================================",
        "",
        "EXPLORATORY ANALYSIS. With a few dozen patients, these cross-validated",
        "estimates are uncertain and the selected features are hypotheses to be",
        "tested in an independent cohort, not validated biomarkers.",
        "",
        f"Label: '{label}' from results/clinical/responders.tsv (1 = responder).",
        _design_line(performance, settings),
        f"Permutation test: {settings['permutations']} label permutations of the whole nested procedure "
        f"(smallest attainable p = 1/{settings['permutations'] + 1} = "
        f"{1 / (settings['permutations'] + 1):.4f}); seed {settings['seed']}.",
        "",
        "Sample sizes per feature set (subjects modelled; responders / non-responders; excluded):",
    ]
    sizes = performance.drop_duplicates("feature_set")
    for _, row in sizes.iterrows():
        part = excluded[excluded["feature_set"] == row["feature_set"]]
        ne = part["reason"].str.contains("not evaluable").sum()
        missing = part["subject_id"].nunique() - ne
        landmark = part["reason"].str.contains("the landmark").sum()
        lines.append(f"  {row['feature_set']}: n = {row['n_subjects']} ({row['n_responders']} / "
                     f"{row['n_non_responders']}); excluded {part['subject_id'].nunique()} "
                     f"({ne} not evaluable, {landmark} before the landmark, "
                     f"{missing - landmark} without the needed samples or label)")
        if str(row.get("on_treatment", "")).lower() == "true":
            lines.append(f"    ON-TREATMENT features: predicts from the landmark "
                         f"({_fmt(row.get('landmark_months', np.nan))} months after treatment start), "
                         "not from day 0; a patient had to stay event-free until then to be sampled.")
    validation = str(performance["validation"].iloc[0]) if "validation" in performance and len(performance) else "stratified"
    if validation != "stratified":
        lines += ["", f"Validation: {validation} (models.validation); the AUROC of each held-out group "
                      "is in group_performance.tsv, their mean and SD in performance.tsv "
                      "(auroc_group_mean, auroc_group_sd); labels are permuted within groups."]
    if validation == "stratified":
        lines += ["", "Cross-validated AUROC (mean over repeats [95% interval over repeats]; permutation p):"]
    else:
        lines += ["", "AUROC of the held-out groups pooled [DeLong 95% CI]; mean +- SD over groups; "
                      "permutation p:"]
    for _, row in performance.iterrows():
        p = row.get("perm_p_value", np.nan)
        if validation == "stratified":
            text = f"{_fmt(row['auroc_mean'])} [{_fmt(row['auroc_low'])}, {_fmt(row['auroc_high'])}]"
        else:
            text = (f"{_fmt(row['auroc_pooled'])} [{_fmt(row['auroc_delong_low'])}, "
                    f"{_fmt(row['auroc_delong_high'])}]; {_fmt(row['auroc_group_mean'])} +- "
                    f"{_fmt(row['auroc_group_sd'])} over {int(row['n_groups'])} groups")
        lines.append(f"  {row['feature_set']} / {row['model']}: {text}"
                     + (f"; p = {_fmt(p, 3)}" if np.isfinite(p) else "; p not computed"))
    if best is not None:
        lines += ["", f"Best omics feature set: {best['feature_set']} / {best['model']} "
                      f"(AUROC {_fmt(best['auroc_mean'])}); its top features are tested for "
                      "time to event in survival.tsv."]
    if survival_note:
        lines += ["", survival_note]
    lines += [
        "",
        "The interval over repeats reflects how the estimate moves with the random fold split;",
        "auroc_delong_low/high (performance.tsv) adds the sampling uncertainty of the",
        "repeat-averaged predictions. Files: performance.tsv, predictions.tsv (out-of-fold",
        "probabilities per subject and repeat), features.tsv (selection frequency, sign",
        "stability, importance, differential/integration links), survival.tsv, km_curves.tsv,",
        "roc_curves.tsv, calibration.tsv, excluded.tsv.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the workflow step
@dataclass(frozen=True)
class ModelSummarySettings:
    """How the summary of the responder models orders, bins and describes the results.

    Attributes
    ----------
    set_order, model_order : tuple of str
        Feature sets (config order) and estimators, the order of the performance table.
    label : str
        The responder definition modelled (``models.label``).
    design : dict
        ``outer_folds``, ``outer_repeats``, ``inner_folds``, ``permutations`` and ``seed``,
        as the README states them.
    roc_grid_points : int
        False-positive rates of the ROC grid.
    calibration_bins : int
        Equal-count bins of the calibration table.
    conf_level : float
        Level of the ROC bands and calibration intervals.
    """

    set_order: tuple
    model_order: tuple
    label: str
    design: dict
    roc_grid_points: int = 101
    calibration_bins: int = 5
    conf_level: float = 0.95

    @classmethod
    def from_config(cls, models: Mapping, *, seed: int, label: str, set_order: Sequence[str],
                    model_order: Sequence[str], roc_grid_points: int, calibration_bins: int,
                    conf_level: float) -> ModelSummarySettings:
        """From the cross-validation keys of the config's ``models`` section (``outer_folds``,
        ``outer_repeats``, ``inner_folds``, ``permutations``), the run's seed, the label, the
        orders, and the section's ROC grid, calibration bins and interval level."""
        design = {key: models[key] for key in ("outer_folds", "outer_repeats", "inner_folds", "permutations")}
        design["seed"] = seed
        return cls(tuple(set_order), tuple(model_order), label, design, roc_grid_points, calibration_bins,
                   conf_level)


def _stack(frames: Sequence[pd.DataFrame], columns) -> pd.DataFrame:
    """The non-empty tables one under the other (an empty table with ``columns`` when none is)."""
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def summarise_models(tables: Mapping[str, Sequence[pd.DataFrame]], settings: ModelSummarySettings) -> dict:
    """The collected results of every feature set, with the ROC and calibration tables and the README.

    Parameters
    ----------
    tables : mapping of str -> sequence of DataFrame
        ``performance``, ``predictions``, ``excluded`` and ``groups``: the tables of each
        feature set (:func:`gutaxis.models.fit.fit_feature_set`).
    settings : ModelSummarySettings

    Returns
    -------
    dict
        ``performance`` (ordered, ``best`` flags the best omics set and estimator),
        ``predictions``, ``excluded``, ``groups``, ``roc``, ``calibration`` (DataFrames) and
        ``readme`` (the README text).
    """
    performance = _stack(tables["performance"], PERFORMANCE_COLUMNS)
    set_rank = {name: i for i, name in enumerate(settings.set_order)}
    model_rank = {name: i for i, name in enumerate(settings.model_order)}
    performance = performance.assign(_set=performance["feature_set"].map(set_rank),
                                     _model=performance["model"].map(model_rank))
    performance = performance.sort_values(["_set", "_model"], kind="stable").drop(columns=["_set", "_model"])
    best = best_feature_set(performance)
    performance["best"] = False
    if best is not None:
        performance.loc[best.name, "best"] = True
    predictions = _stack(tables["predictions"], PREDICTION_COLUMNS)
    excluded = _stack(tables["excluded"], EXCLUDED_COLUMNS)
    return {
        "performance": performance.reset_index(drop=True), "predictions": predictions, "excluded": excluded,
        "groups": _stack(tables["groups"], GROUP_COLUMNS),
        "roc": roc_table(predictions, settings.roc_grid_points, settings.conf_level),
        "calibration": calibration_table(predictions, settings.calibration_bins, settings.conf_level),
        "readme": readme_text(performance, excluded, label=settings.label, settings=settings.design, best=best),
    }
