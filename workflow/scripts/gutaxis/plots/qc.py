"""QC figure: which samples each subject has at each timepoint, per modality."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from gutaxis.plots.style import figure_size, palette

STATUS_CODES = {"missing": 0, "dropped": 1, "kept": 2}
STATUS_COLOURS = ["#F2F2F2", "#D55E00", "#0072B2"]


def sampling_grid(status: pd.DataFrame, subjects: pd.DataFrame, timepoints: list[str]) -> pd.DataFrame:
    """Tidy grid behind the figure: subject x (modality, timepoint) -> kept/dropped/missing."""
    biological = status[status["subject_id"] != ""]
    best = (
        biological.assign(rank=biological["status"].map({"kept": 2, "dropped": 1}))
        .sort_values("rank", ascending=False, kind="stable")
        .drop_duplicates(["subject_id", "modality", "timepoint"])
    )
    modalities = sorted(status["modality"].unique())
    index = pd.MultiIndex.from_product(
        [subjects["subject_id"], modalities, timepoints], names=["subject_id", "modality", "timepoint"]
    )
    grid = best.set_index(["subject_id", "modality", "timepoint"])["status"].reindex(index).fillna("missing")
    out = grid.reset_index()
    out.insert(1, "cohort", out["subject_id"].map(subjects.set_index("subject_id")["cohort"]))
    return out


def status_colours(style: dict, cohorts) -> list[str]:
    """Colours of missing, dropped and kept: two greys and an accent no cohort colour uses."""
    taken = {c.upper() for c in palette(style, "cohort", cohorts).values()}
    accent = next((c for c in ("#D55E00", "#CC79A7", "#E69F00", "#F0E442") if c not in taken), "#D55E00")
    return [STATUS_COLOURS[0], accent, "#4D4D4D"]


def plot_sampling(grid: pd.DataFrame, cohorts: list[str], timepoints: list[str], style: dict, title: str = ""):
    """Heatmap of the sampling grid: rows subjects grouped by cohort, columns modality x timepoint."""
    modalities = sorted(grid["modality"].unique())
    order = grid[["subject_id", "cohort"]].drop_duplicates()
    order = order.assign(c=order["cohort"].map({c: i for i, c in enumerate(cohorts)})).sort_values(
        ["c", "subject_id"], kind="stable"
    )
    codes = grid.assign(code=grid["status"].map(STATUS_CODES)).pivot_table(
        index="subject_id", columns=["modality", "timepoint"], values="code", aggfunc="first"
    )
    columns = [(m, t) for m in modalities for t in timepoints]
    matrix = codes.reindex(index=order["subject_id"], columns=pd.MultiIndex.from_tuples(columns)).to_numpy()
    n_subjects = matrix.shape[0]
    fig, (ax_c, ax) = plt.subplots(
        1, 2, figsize=figure_size(style, "single", height=min(9.0, 1.6 + 0.07 * n_subjects)),
        gridspec_kw={"width_ratios": [0.6, len(columns)], "wspace": 0.05}, layout="constrained",
    )
    status = status_colours(style, cohorts)
    ax.imshow(matrix, aspect="auto", cmap=ListedColormap(status), vmin=0, vmax=2, interpolation="none")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([t for _, t in columns], rotation=90)
    ax.set_xlabel("Timepoint")
    # modality names on a second x axis on top, centred over their timepoints
    top = ax.secondary_xaxis("top")
    top.set_xticks([i * len(timepoints) + (len(timepoints) - 1) / 2 for i in range(len(modalities))])
    top.set_xticklabels(modalities)
    top.tick_params(length=0)
    top.spines["top"].set_visible(False)
    for i in range(1, len(modalities)):
        ax.axvline(i * len(timepoints) - 0.5, color="white", lw=2)
    ax.set_yticks([])
    ax.set_xlim(-0.5, len(columns) - 0.5)
    for spine in ax.spines.values():
        spine.set_visible(False)
    colours = palette(style, "cohort", cohorts)
    cohort_codes = order["cohort"].map({c: i for i, c in enumerate(cohorts)}).to_numpy()[:, None]
    ax_c.imshow(
        cohort_codes,
        aspect="auto",
        cmap=ListedColormap([colours[c] for c in cohorts]),
        vmin=0,
        vmax=max(len(cohorts) - 1, 1),
        interpolation="none",
    )
    ax_c.set_xticks([])
    ax_c.set_yticks([])
    ax_c.set_ylabel(f"Subjects (n = {n_subjects}), by cohort")
    for spine in ax_c.spines.values():
        spine.set_visible(False)
    cohort_legend = ax.legend(handles=[Patch(color=colours[c], label=c) for c in cohorts], loc="upper left",
                              bbox_to_anchor=(1.02, 1), frameon=False, title="Cohort", alignment="left")
    ax.add_artist(cohort_legend)
    cohort_legend.set_clip_on(False)  # add_artist clips to the axes: the saved bbox would cut it
    ax.legend(handles=[Patch(facecolor=status[v], edgecolor="#BBBBBB", lw=0.4, label=k)
                       for k, v in sorted(STATUS_CODES.items(), key=lambda kv: -kv[1])],
              loc="upper left", bbox_to_anchor=(1.02, 0.76), frameon=False, title="Sample", alignment="left")
    if title:
        fig.suptitle(title, fontsize=plt.rcParams["axes.titlesize"])
    return fig


def sampling_counts(grid: pd.DataFrame) -> pd.DataFrame:
    """Number of subjects with a kept sample per modality and timepoint (for captions)."""
    kept = grid[grid["status"] == "kept"]
    return kept.groupby(["modality", "timepoint"]).size().rename("n_subjects").reset_index()


__all__ = ["sampling_grid", "plot_sampling", "sampling_counts"]
