"""Clinical-endpoint figures: waterfall, Kaplan-Meier, swimmer, forest and AE-grade heatmap.

Each ``*_data`` function selects and orders the rows a figure draws (no statistic is
computed: rates, CIs, curves and numbers at risk come from the result tables of the
clinical rules) and each ``plot_*`` function draws them and returns the Figure. Only
numpy, pandas and matplotlib are imported, as in the plots environment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from gutaxis.plots.style import OKABE_ITO, figure_size, mark_title, message_figure, palette
from gutaxis.io.tables import decimal_text

#: best-overall-response colours from ColorBrewer's colour-blind-safe RdBu scale (blue:
#: response, red: progression), chosen apart from the Okabe-Ito cohort colours that share
#: figures with them; a code named in the config's ``style.palette.response`` overrides it
RESPONSE_CODE_COLOURS = {
    "CR": "#2166AC", "PR": "#92C5DE", "SD": "#F4A582", "PD": "#B2182B",
    "iCR": "#2166AC", "iPR": "#92C5DE", "iSD": "#F4A582", "iUPD": "#D6604D", "iCPD": "#B2182B",
    "NE": "#BBBBBB",
}
RESPONSE_CODE_ORDER = {
    "recist": ("CR", "PR", "SD", "PD", "NE"),
    "irecist": ("iCR", "iPR", "iSD", "iUPD", "iCPD", "NE"),
}
RESPONSE_COLUMNS = {"recist": "best_response", "irecist": "best_response_irecist"}
CRITERION_NAMES = {"recist": "RECIST 1.1", "irecist": "iRECIST"}
OVERALL_GROUP_VAR, OVERALL_GROUP = "overall", "all"
GRADES = (1, 2, 3, 4, 5)


# --------------------------------------------------------------------------- shared helpers


def response_colours(style: dict, codes: Sequence[str]) -> dict[str, str]:
    """Colour of each best-response code: the config's ``style.palette.response`` first."""
    configured = dict(style.get("palette", {}).get("response", {}))
    return {code: configured.get(code, RESPONSE_CODE_COLOURS.get(code, "#777777")) for code in codes}


def group_colours(style: dict, group_var: str, groups: Sequence[str]) -> dict[str, str]:
    """Curve colours: the cohort palette for cohorts, Okabe-Ito otherwise; black for everybody."""
    if group_var == "cohort":
        colours = palette(style, "cohort", groups)
    else:
        colours = {g: OKABE_ITO[i % len(OKABE_ITO)] for i, g in enumerate(groups)}
    return {OVERALL_GROUP: "#000000", **colours}


def ordered_groups(groups: Sequence[str], preferred: Sequence[str] = ()) -> list[str]:
    """``groups`` in the order of ``preferred`` (e.g. design.cohorts), the others after, as given."""
    groups = list(dict.fromkeys(groups))
    first = [g for g in preferred if g in groups]
    return first + [g for g in groups if g not in first]


def _column(subjects: pd.DataFrame, column: str) -> pd.Series:
    """A subjects-table column, or an all-empty one when the table lacks it."""
    return subjects[column] if column in subjects.columns else pd.Series("", index=subjects.index)


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series.replace("", np.nan), errors="coerce")


def _pretty(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return "NA"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}" if p < 0.1 else f"= {p:.2f}"


# --------------------------------------------------------------------------- waterfall


def waterfall_data(subjects: pd.DataFrame, criterion: str = "recist") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients with a best target-lesion change, sorted from largest growth to deepest shrinkage.

    Parameters
    ----------
    subjects : pandas.DataFrame
        The checked subjects table (``results/inputs/subjects.tsv``).
    criterion : {"recist", "irecist"}
        Which best-response column colours the bars.

    Returns
    -------
    plotted : pandas.DataFrame
        ``position, subject_id, cohort, response, target_lesion_change_pct`` (position 1 =
        leftmost bar); ties broken by subject id.
    missing : pandas.DataFrame
        ``subject_id, cohort, response`` of the patients without a measured change (not drawn).
    """
    change = _numeric(_column(subjects, "target_lesion_change_pct"))
    table = pd.DataFrame({
        "subject_id": subjects["subject_id"].astype(str),
        "cohort": subjects["cohort"].astype(str),
        "response": _column(subjects, RESPONSE_COLUMNS[criterion]).astype(str).str.strip(),
        "target_lesion_change_pct": change,
    })
    missing = table[change.isna().to_numpy()][["subject_id", "cohort", "response"]].reset_index(drop=True)
    plotted = table[change.notna().to_numpy()].sort_values(
        ["target_lesion_change_pct", "subject_id"], ascending=[False, True], kind="stable")
    plotted.insert(0, "position", np.arange(1, len(plotted) + 1))
    return plotted.reset_index(drop=True), missing


def plot_waterfall(
    plotted: pd.DataFrame,
    n_missing: int,
    thresholds: Mapping[str, float],
    style: dict,
    criterion: str = "recist",
    title: str = "",
):
    """Waterfall plot of the best change in the sum of target lesions, coloured by best response.

    Dashed lines mark the RECIST 1.1 thresholds (``thresholds["partial_response"]``, -30 %,
    and ``thresholds["progressive_disease"]``, +20 %).
    """
    if plotted.empty:
        return message_figure(style, "No target-lesion change recorded\n(column target_lesion_change_pct)")
    codes = [c for c in RESPONSE_CODE_ORDER[criterion] if c in set(plotted["response"])]
    codes += sorted(set(plotted["response"]) - set(codes))
    colours = response_colours(style, codes)
    fig, ax = plt.subplots(figsize=figure_size(style, "single", 0.7))
    x = plotted["position"].to_numpy()
    y = plotted["target_lesion_change_pct"].to_numpy(dtype=float)
    ax.bar(x, y, width=0.8, color=[colours[r] for r in plotted["response"]], linewidth=0)
    ax.axhline(0, color="black", lw=0.6)
    n = len(plotted)
    for key, value in (("progressive_disease", thresholds["progressive_disease"]),
                       ("partial_response", thresholds["partial_response"])):
        ax.axhline(value, color="#444444", lw=0.7, ls=(0, (4, 3)))
        ax.annotate(f"{value:+g}%".replace("-", "\u2212"), xy=(1, value), xycoords=("axes fraction", "data"),
                    xytext=(2, 0), textcoords="offset points", va="center", ha="left",
                    fontsize=plt.rcParams["xtick.labelsize"], color="#444444")
    low = min(np.nanmin(y, initial=0.0), thresholds["partial_response"]) - 8
    high = max(np.nanmax(y, initial=0.0), thresholds["progressive_disease"]) + 8
    ax.set_ylim(low, high)
    ax.set_xlim(0.3, n + 0.7)
    ax.set_xticks([])
    ax.spines["bottom"].set_visible(False)
    ax.set_ylabel("Best change in target\nlesions from baseline (%)")
    not_shown = f"; {n_missing} without a measurement not shown" if n_missing else ""
    ax.set_xlabel(f"Patients (n = {n}{not_shown})")
    handles = [Patch(color=colours[c], label=c) for c in codes]
    # above the axis: the tallest bars reach the top on the left, the deepest the bottom on the right
    ax.legend(handles=handles, title=f"Best response ({CRITERION_NAMES[criterion]})", loc="lower center",
              bbox_to_anchor=(0.5, 1.0), frameon=False, ncol=min(6, len(handles)), columnspacing=1.0,
              handlelength=1.2)
    if title:
        mark_title(ax.set_title(title))
    return fig


# --------------------------------------------------------------------------- swimmer


def swimmer_data(subjects: pd.DataFrame, criterion: str = "recist", cohorts: Sequence[str] = (),
                 max_patients: int = 0) -> pd.DataFrame:
    """One row per patient with a time on treatment: cohorts in config order, longest first within each.

    A swimmer plot has one bar per patient, which stops being readable (and fast) at a few
    hundred patients. With ``max_patients`` > 0 and more patients than that, each cohort keeps
    its longest-treated patients in proportion to its size: largest-remainder quotas of
    ``max_patients * n_cohort / n`` that sum to ``max_patients``, except that every cohort keeps
    at least one patient.

    Parameters
    ----------
    max_patients : int
        Most patients drawn; 0 draws every patient.

    Returns
    -------
    pandas.DataFrame
        ``position, subject_id, cohort, response, treatment_months, treatment_ongoing,
        progression_months`` (the PFS2 time when ``pfs2_event`` is 1, else NaN).
        ``position`` is the plotted row (1 = top); each cohort's block is preceded by
        one free row for its heading, so positions skip one number per cohort.
        ``cohort_patients`` is the cohort's number of patients with a time on treatment,
        drawn or not.
    """
    table = pd.DataFrame({
        "subject_id": subjects["subject_id"].astype(str),
        "cohort": subjects["cohort"].astype(str),
        "response": _column(subjects, RESPONSE_COLUMNS[criterion]).astype(str).str.strip(),
        "treatment_months": _numeric(_column(subjects, "treatment_months")),
        "treatment_ongoing": _numeric(_column(subjects, "treatment_ongoing")).fillna(0).astype(int),
    })
    if "pfs2_months" in subjects.columns and "pfs2_event" in subjects.columns:
        event = _numeric(subjects["pfs2_event"]) == 1
        table["progression_months"] = _numeric(subjects["pfs2_months"]).where(event)
    else:
        table["progression_months"] = np.nan
    table = table[table["treatment_months"].notna()]
    rank = {c: i for i, c in enumerate(ordered_groups(table["cohort"], cohorts))}
    cohort_rank = table["cohort"].map(rank)
    table = table.assign(_c=cohort_rank).sort_values(
        ["_c", "treatment_months", "subject_id"], ascending=[True, False, True], kind="stable")
    cohort_sizes = table["_c"].value_counts(sort=False).sort_index()
    table["cohort_patients"] = table["_c"].map(cohort_sizes).astype(int)
    if max_patients and len(table) > max_patients:
        quota = _largest_remainder_quota(cohort_sizes, max_patients)
        within = table.groupby("_c", sort=False).cumcount()
        table = table[within.to_numpy() < table["_c"].map(quota).to_numpy()]
    block = table["_c"].map({c: i for i, c in enumerate(dict.fromkeys(table["_c"]))}).to_numpy()
    table.insert(0, "position", np.arange(1, len(table) + 1) + block + 1)
    return table.drop(columns="_c").reset_index(drop=True)


def _largest_remainder_quota(sizes: pd.Series, total: int) -> pd.Series:
    """Split ``total`` over groups in proportion to ``sizes`` (Hamilton's method), at least one each."""
    exact = sizes / sizes.sum() * total
    quota = np.maximum(1, np.floor(exact)).astype(int)
    remainder = (exact - np.floor(exact)).sort_values(ascending=False, kind="stable")
    for group in remainder.index[: max(0, total - int(quota.sum()))]:
        quota.loc[group] += 1
    return quota


#: swimmer rows: text lines per row (bar plus gap) at the subject-ID font size, and the
#: fewest before the IDs would touch (more rows than fit a page at that are drawn without IDs)
SWIMMER_ROW_LINES, SWIMMER_MIN_ROW_LINES = 1.4, 1.15
#: swimmer figure: inches outside the rows (title, axis, legend) and the tallest figure (a page)
SWIMMER_MARGIN, SWIMMER_MAX_HEIGHT = 1.35, 9.5


def swimmer_id_fontsize() -> float:
    """Font size of the swimmer's subject IDs: the style's smallest text (tick labels), never less."""
    sizes = [plt.rcParams["ytick.labelsize"], plt.rcParams["xtick.labelsize"], plt.rcParams["legend.fontsize"]]
    points = [float(v) for v in sizes if isinstance(v, (int, float))]
    return min(points) if points else float(plt.rcParams["font.size"])


def plot_swimmer(data: pd.DataFrame, style: dict, criterion: str = "recist", title: str = ""):
    """Swimmer plot: time on treatment per patient, coloured by best response, one block per cohort.

    An arrow marks treatment ongoing at the data cut-off and a black diamond the PFS2
    event (progression or death), which may come after the end of treatment. The
    subject IDs are printed at the style's smallest font size
    (:func:`swimmer_id_fontsize`) with :data:`SWIMMER_ROW_LINES` lines per row, so the
    figure grows with the patients up to a page (:data:`SWIMMER_MAX_HEIGHT`), then the
    rows tighten to :data:`SWIMMER_MIN_ROW_LINES`; beyond that the IDs are left out (the
    source table lists them in row order) rather than shrunk below a readable size.
    """
    if data.empty:
        return message_figure(style, "No time on treatment recorded\n(column treatment_months)")
    codes = [c for c in RESPONSE_CODE_ORDER[criterion] if c in set(data["response"])]
    codes += sorted(set(data["response"]) - set(codes))
    colours = response_colours(style, codes)
    n = len(data)
    n_rows = int(data["position"].max()) if n else 1
    # subject IDs at the style's smallest size (tick labels), one line of text per row
    id_size = swimmer_id_fontsize()
    room = SWIMMER_MAX_HEIGHT - SWIMMER_MARGIN
    # roomy rows when they fit on a page, tighter ones next, and no IDs when even those do not fit
    pitch = min(SWIMMER_ROW_LINES * id_size / 72, room / n_rows)
    show_ids = pitch >= SWIMMER_MIN_ROW_LINES * id_size / 72
    width, height = figure_size(style, "single", height=SWIMMER_MARGIN + n_rows * pitch)
    fig, ax = plt.subplots(figsize=(width, height))
    # the axis takes the rows; title above and legend below take fixed inches
    fig.subplots_adjust(top=1 - 0.35 / height, bottom=0.85 / height)
    y = data["position"].to_numpy()
    months = data["treatment_months"].to_numpy(dtype=float)
    ax.barh(y, months, height=0.72, color=[colours[r] for r in data["response"]], linewidth=0)
    progression = data["progression_months"].to_numpy(dtype=float)
    right = max(np.nanmax(months, initial=1.0), np.nanmax(progression, initial=0.0))
    pad = 0.012 * right
    ongoing = data["treatment_ongoing"].to_numpy() == 1
    ax.plot(months[ongoing] + pad, y[ongoing], marker=">", ls="none", color="black", ms=3.2)
    progressed = np.isfinite(progression)
    ax.plot(progression[progressed], y[progressed], marker="D", ls="none", color="black", ms=2.4,
            mec="white", mew=0.3)
    total = int(data.groupby("cohort", sort=False)["cohort_patients"].first().sum())
    for cohort, rows in data.groupby("cohort", sort=False):
        top = int(rows["position"].min()) - 1
        in_cohort = int(rows["cohort_patients"].iloc[0])
        shown = f"n = {len(rows)}" if in_cohort == len(rows) else f"{len(rows)} of {in_cohort} shown"
        ax.text(0, top, f"{cohort} ({shown})", ha="left", va="center", fontweight="bold",
                fontsize=plt.rcParams["legend.fontsize"])
    ax.set_ylim(n_rows + 0.6, -0.4)
    ax.set_xlim(0, right * 1.04 + 2 * pad)
    if show_ids:
        ax.set_yticks(y)
        ax.set_yticklabels(data["subject_id"])
        ax.tick_params(axis="y", length=0, labelsize=id_size)
    else:
        # too many rows for readable IDs on a page: the source table lists them in row order
        ax.set_yticks([])
        ax.set_ylabel("Patients (IDs in the source table)")
    ax.spines["left"].set_visible(False)
    ax.set_xlabel("Time on treatment (months)")
    handles = [Patch(color=colours[c], label=c) for c in codes]
    handles += [
        Line2D([], [], marker=">", ls="none", color="black", ms=3.2, label="Ongoing at cut-off"),
        Line2D([], [], marker="D", ls="none", color="black", ms=2.4, label="PFS2 event"),
    ]
    # below the axis: inside it, the legend would cover the bars of a small last cohort
    ax.legend(handles=handles, title=f"Best response ({CRITERION_NAMES[criterion]})", loc="upper center",
              bbox_to_anchor=(0.45, -0.4 / (height * (fig.subplotpars.top - fig.subplotpars.bottom))), ncol=4,
              frameon=False, columnspacing=1.0, handlelength=1.2)
    if total == n:
        default_title = f"Treatment duration and response (n = {n})"
    else:
        default_title = f"Treatment duration and response ({n} of {total:,} longest on treatment)"
    mark_title(ax.set_title(title or default_title))
    return fig


# --------------------------------------------------------------------------- forest


def forest_data(response: pd.DataFrame, groupings: Mapping[str, Sequence[str]],
                cohorts: Sequence[str] = ()) -> pd.DataFrame:
    """Rows of the forest plot: overall, then every group of each grouping, per criterion x endpoint.

    Parameters
    ----------
    response : pandas.DataFrame
        ``results/clinical/response.tsv``.
    groupings : mapping
        ``name -> columns`` as in the config (their ``"+"``-joined columns are the
        ``group_var`` of the table); groupings absent from the table are skipped.
    cohorts : sequence of str
        Order of the cohort groups.

    Returns
    -------
    pandas.DataFrame
        The response rows plus ``section`` (grouping name or "overall"),
        ``section_label`` (its heading, e.g. "Dose group (study / dose_gy)") and ``row``
        (0 = top), ordered by row, criterion, endpoint.
    """
    sections = [("overall", OVERALL_GROUP_VAR, "Overall")]
    for name, columns in groupings.items():
        columns = [columns] if isinstance(columns, str) else list(columns)
        label = _pretty(name) if columns == [name] else f"{_pretty(name)} ({' / '.join(columns)})"
        sections.append((name, "+".join(columns), label))
    pieces, row = [], 0
    for section, group_var, label in sections:
        rows = response[response["group_var"] == group_var]
        if rows.empty:
            continue
        preferred = cohorts if group_var == "cohort" else ()
        for group in ordered_groups(rows["group"].astype(str), preferred):
            pieces.append(rows[rows["group"].astype(str) == group].assign(section=section, section_label=label,
                                                                          row=row))
            row += 1
    if not pieces:
        return response.iloc[:0].assign(section="", section_label="", row=0)
    return pd.concat(pieces, ignore_index=True)


def plot_forest(data: pd.DataFrame, style: dict, conf_level: float = 0.95, title: str = ""):
    """Forest plot of ORR and DCR (%) with exact CIs: one panel per endpoint, one row per group.

    Filled circles are RECIST 1.1, open squares iRECIST; the dotted line is the overall
    RECIST 1.1 rate. Row labels give the group and its denominator N.
    """
    endpoints = [e for e in ("ORR", "DCR") if e in set(data["endpoint"])]
    criteria = [c for c in ("recist", "irecist") if c in set(data["criterion"])]
    offsets = {c: o for c, o in zip(criteria, np.linspace(-0.16, 0.16, len(criteria)) if len(criteria) > 1 else [0])}
    markers = {"recist": dict(marker="o", mfc="black"), "irecist": dict(marker="s", mfc="white")}
    rows = data[["row", "section", "section_label", "group", "n_denominator"]].drop_duplicates(["row"])
    # one heading line per section after the overall row
    layout, y, labels, headings = {}, 0.0, [], []
    previous = None
    for _, r in rows.sort_values("row").iterrows():
        if r["section"] != previous and r["section"] != "overall":
            headings.append((y, r["section_label"]))
            y += 1
        previous = r["section"]
        layout[r["row"]] = y
        label = "Overall" if r["section"] == "overall" else str(r["group"])
        labels.append((y, f"{label} (N = {int(r['n_denominator'])})"))
        y += 1
    n_lines = y
    size = figure_size(style, 0.8 * style["width_double_mm"], height=0.75 + 0.17 * n_lines)
    fig, axes = plt.subplots(1, len(endpoints), figsize=size, sharey=True, squeeze=False)
    for ax, endpoint in zip(axes[0], endpoints):
        for criterion in criteria:
            sub = data[(data["endpoint"] == endpoint) & (data["criterion"] == criterion)]
            ys = sub["row"].map(layout).to_numpy(dtype=float) + offsets[criterion]
            rate = 100 * sub["rate"].to_numpy(dtype=float)
            low = 100 * sub["ci_low"].to_numpy(dtype=float)
            high = 100 * sub["ci_high"].to_numpy(dtype=float)
            ax.hlines(ys, low, high, color="black", lw=0.8)
            ax.plot(rate, ys, ls="none", color="black", ms=3.5, mew=0.8, **markers.get(criterion, {}))
        overall = data[(data["endpoint"] == endpoint) & (data["section"] == "overall")
                       & (data["criterion"] == criteria[0])]
        if not overall.empty:
            ax.axvline(100 * float(overall["rate"].iloc[0]), color="#777777", lw=0.7, ls=":")
        ax.set_xlim(-2, 102)
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.set_xlabel(f"{endpoint} (%) with exact {100 * conf_level:g}% CI")
        ax.set_title({"ORR": "Objective response rate", "DCR": "Disease control rate"}.get(endpoint, endpoint))
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        for y_heading, _ in headings:
            ax.axhline(y_heading - 0.5, color="#DDDDDD", lw=0.6)
    ax0 = axes[0][0]
    ax0.set_ylim(n_lines - 0.5, -0.6)
    ax0.set_yticks([y for y, _ in labels])
    ax0.set_yticklabels([text for _, text in labels])
    for y_heading, text in headings:
        ax0.annotate(text, xy=(0, y_heading), xycoords=("axes fraction", "data"), xytext=(-4, 0),
                     textcoords="offset points", ha="right", va="center", fontweight="bold",
                     fontsize=plt.rcParams["ytick.labelsize"])
    handles = [Line2D([], [], ls="-", color="black", lw=0.8, ms=3.5, mew=0.8, label=CRITERION_NAMES.get(c, c),
                      **markers.get(c, {})) for c in criteria]
    handles.append(Line2D([], [], ls=":", color="#777777", lw=0.7, label="Overall rate"))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), frameon=False)
    handling = set(data["not_evaluable_handling"]) if "not_evaluable_handling" in data else set()
    if handling:
        note = ("not-evaluable patients counted as non-responders" if handling == {"include"}
                else "not-evaluable patients excluded from N")
        axes[0][0].annotate(f"N: denominator; {note}", xy=(0, 0), xycoords="axes fraction",
                            xytext=(0, -3.6 * plt.rcParams["font.size"]), textcoords="offset points",
                            ha="left", va="top", fontsize=plt.rcParams["xtick.labelsize"], color="#444444")
    if title:
        fig.suptitle(title, y=1.08)
    return fig


# --------------------------------------------------------------------------- Kaplan-Meier


#: share of the patients still at risk below which the Kaplan-Meier time axis ends
KM_AT_RISK_FRACTION = 0.1


def km_axis_end(km: pd.DataFrame, endpoint: str, fraction: float = KM_AT_RISK_FRACTION) -> float:
    r"""End of the Kaplan-Meier time axis: when fewer than ``fraction`` of the patients remain at risk.

    The tail of a Kaplan-Meier curve rests on the few patients still followed; each
    event there moves it by a large step with a wide interval, so drawing it invites
    over-reading (Pocock, Clayton & Altman 2002, Lancet 359:1686-9, advise cutting the
    axis where few remain at risk). With :math:`n_0` patients at time 0 and
    :math:`n(t_i)` at risk at the step time :math:`t_i`, the number still at risk
    just after :math:`t_i` is :math:`n(t_i) - d_i - c_i` (events, censorings); the
    axis ends at the first :math:`t_i` where that falls below :math:`\text{fraction}
    \cdot n_0`, or at the last step time (the longest follow-up) when it never does.
    Read from the overall curve's ``step`` rows of ``km_curves.tsv``; nothing is
    re-estimated.

    Parameters
    ----------
    km : pandas.DataFrame
        ``results/clinical/km_curves.tsv`` rows (or :func:`km_data` output).
    endpoint : str
    fraction : float
        Share of the patients at time 0, e.g. 0.1.

    Returns
    -------
    float
        Months; NaN when the endpoint has no overall curve.
    """
    steps = km[(km["endpoint"] == endpoint) & (km["group_var"] == OVERALL_GROUP_VAR) & (km["record"] == "step")]
    steps = steps.sort_values("time", kind="stable")
    if steps.empty:
        return float("nan")
    n0 = float(steps["n_risk"].iloc[0])
    after = (steps["n_risk"] - steps["n_event"] - steps["n_censor"]).to_numpy(dtype=float)
    below = np.flatnonzero(after < fraction * n0)
    times = steps["time"].to_numpy(dtype=float)
    return float(times[below[0]] if below.size else times[-1])


def km_data(km: pd.DataFrame, group_var: str, groups_order: Sequence[str] = (), max_months: float = 0.0,
            at_risk_fraction: float = KM_AT_RISK_FRACTION) -> pd.DataFrame:
    """Curve and at-risk rows of the overall curve and of each group of ``group_var``, up to the axis end.

    Adds ``curve`` (0 = overall, then groups in ``groups_order`` first) and
    ``axis_end`` (months, per endpoint): ``max_months`` when positive, else
    :func:`km_axis_end` (fewer than ``at_risk_fraction`` of the patients at risk).
    Rows after the axis end are left out (they are not drawn), so the figure's
    source table holds what the figure shows; a curve followed past the axis end
    gets one ``record = "end"`` row at the axis end with the survival, CI and
    number at risk in force there (the last step before it, no event). Rows are
    ordered by endpoint, curve, then steps, end, at-risk ticks, each by time.
    """
    keep = km[(km["group_var"] == OVERALL_GROUP_VAR) | (km["group_var"] == group_var)].copy()
    keep["group"] = keep["group"].astype(str)
    groups = ordered_groups(keep.loc[keep["group_var"] == group_var, "group"], groups_order)
    rank = {(OVERALL_GROUP_VAR, OVERALL_GROUP): 0, **{(group_var, g): i + 1 for i, g in enumerate(groups)}}
    keep["curve"] = [rank[(v, g)] for v, g in zip(keep["group_var"], keep["group"])]
    order = np.lexsort((keep["time"].to_numpy(), (keep["record"] != "step").to_numpy(), keep["curve"].to_numpy()))
    endpoint_rank = {e: i for i, e in enumerate(dict.fromkeys(keep["endpoint"]))}
    keep = keep.iloc[order]
    keep = keep.iloc[np.argsort(keep["endpoint"].map(endpoint_rank).to_numpy(), kind="stable")]
    ends = {e: float(max_months) if max_months and max_months > 0 else km_axis_end(keep, e, at_risk_fraction)
            for e in endpoint_rank}
    keep["axis_end"] = keep["endpoint"].map(ends).astype(float)
    beyond = keep["time"].astype(float) > keep["axis_end"]
    # a curve followed past the axis end is drawn to it at the survival in force there
    steps = keep[(keep["record"] == "step") & ~beyond]
    last = steps.groupby(["endpoint", "curve"], sort=False).tail(1)
    continued = keep[beyond & (keep["record"] == "step")][["endpoint", "curve"]].drop_duplicates()
    ends_rows = last.merge(continued, on=["endpoint", "curve"])
    ends_rows = ends_rows[ends_rows["time"].astype(float) < ends_rows["axis_end"]].assign(
        record="end", time=ends_rows["axis_end"],
        n_risk=ends_rows["n_risk"] - ends_rows["n_event"] - ends_rows["n_censor"], n_event=0, n_censor=0)
    keep = pd.concat([keep[~beyond], ends_rows[keep.columns]], ignore_index=True)
    record_rank = keep["record"].map({"step": 0, "end": 1, "at_risk": 2}).to_numpy()
    order = np.lexsort((keep["time"].to_numpy(dtype=float), record_rank, keep["curve"].to_numpy(),
                        keep["endpoint"].map(endpoint_rank).to_numpy()))
    return keep.iloc[order].reset_index(drop=True)


def format_median(estimate: float, low: float = np.nan, high: float = np.nan, decimals: int = 1) -> str:
    """``3.2 (2.6\u20136.3)``: a median survival time with its CI, every number at ``decimals`` decimals.

    One precision for every number of a figure, so ``3.3`` never stands beside ``3.35``.
    A median or upper limit the curve does not reach (missing in survival.tsv) reads
    ``NR``; a missing lower limit ``NA``. Numbers are rounded half away from zero on
    their shortest decimal form (``3.15`` -> ``3.2``, as a reader rounding the table
    by hand would; binary rounding would give ``3.1``).

    Parameters
    ----------
    estimate, low, high : float
        Median and its CI limits (months); NaN when not reached / not estimable.
    decimals : int
    """
    def number(x, missing):
        text = decimal_text(x, decimals)
        return missing if text is None else text

    median = number(estimate, "NR")
    if not np.isfinite(float(estimate)) and not np.isfinite(float(low)):
        return "NR"
    return f"{median} ({number(low, 'NA')}\u2013{number(high, 'NR')})"


def _km_label(survival: pd.DataFrame, endpoint: str, group_var: str, group: str) -> str:
    rows = survival[(survival["endpoint"] == endpoint) & (survival["group_var"] == group_var)
                    & (survival["group"].astype(str) == group) & (survival["quantity"] == "median")]
    label = "All patients" if group_var == OVERALL_GROUP_VAR else group
    if rows.empty:
        return label
    row = rows.iloc[0]
    return f"{label}: {format_median(float(row['estimate']), float(row['ci_low']), float(row['ci_high']))}"


def _logrank_text(survival: pd.DataFrame, endpoint: str, group_var: str) -> str:
    test = survival[(survival["endpoint"] == endpoint) & (survival["group_var"] == group_var)
                    & (survival["quantity"] == "logrank_chisq")]
    if test.empty or not np.isfinite(float(test["p_value"].iloc[0])):
        return ""
    row = test.iloc[0]
    return f"log-rank p {_format_p(float(row['p_value']))} (\u03c7\u00b2 = {float(row['estimate']):.2f}, {int(row['df'])} df)"


def plot_km(data: pd.DataFrame, survival: pd.DataFrame, group_var: str, style: dict,
            endpoint_labels: Mapping[str, str] | None = None, title: str = ""):
    """Kaplan-Meier curves, one panel per endpoint (stacked), with censor ticks and numbers at risk.

    Single-column by default (Figure 1 stacks it under the waterfall). The overall
    curve is black with its pointwise confidence band shaded; group curves take the
    cohort palette. The legend, placed where it covers least of the curves, gives each
    curve's median with its CI (:func:`format_median`, one decimal everywhere); the
    log-rank test between the groups heads the panel; the numbers at risk are printed
    under the axis at its ticks. The time axis ends at ``axis_end`` of
    :func:`km_data` (fewer than 10 % still at risk, or the configured limit).
    """
    endpoints = list(dict.fromkeys(data["endpoint"]))
    curves = data[["curve", "group_var", "group"]].drop_duplicates().sort_values("curve")
    groups = curves.loc[curves["group_var"] == group_var, "group"].tolist()
    colours = group_colours(style, group_var, groups)
    n_curves = len(curves)
    small = plt.rcParams["legend.fontsize"]
    line = 1.35 * small / 72  # one text line in inches
    curve_h, axis_h, table_h, gap_h = 1.7, 3.4 * line, (n_curves + 1.2) * line, 2.6 * line
    heights = []
    for i in range(len(endpoints)):
        heights += [curve_h, axis_h, table_h] + ([gap_h] if i < len(endpoints) - 1 else [])
    top_space = 0.3
    width, height = figure_size(style, "single", height=sum(heights) + top_space)
    fig = plt.figure(figsize=(width, height))
    # the at-risk row names need room left of the axis: about 11 characters
    left = min(0.4, 11 * 0.55 * small / 72 / width + 0.1 / width)
    scale = (height - top_space) / sum(heights)
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0, left=left, right=0.98,
                            top=1 - top_space / height, bottom=1 - top_space / height - scale * sum(heights) / height)
    conf_level = float(survival["conf_level"].iloc[0]) if "conf_level" in survival and len(survival) else 0.95
    for j, endpoint in enumerate(endpoints):
        row = 4 * j
        ax = fig.add_subplot(grid[row, 0])
        ax_table = fig.add_subplot(grid[row + 2, 0], sharex=ax)
        of_endpoint = data[data["endpoint"] == endpoint]
        ticks = np.sort(of_endpoint.loc[of_endpoint["record"] == "at_risk", "time"].unique())
        end = float(of_endpoint["axis_end"].iloc[0]) if "axis_end" in of_endpoint else np.nan
        handles = []
        for _, curve in curves.iterrows():
            steps = of_endpoint[(of_endpoint["curve"] == curve["curve"])
                                & of_endpoint["record"].isin(["step", "end"])]
            overall = curve["curve"] == 0
            colour = "#000000" if overall else colours.get(curve["group"], "#777777")
            t = steps["time"].to_numpy(dtype=float)
            s = steps["survival"].to_numpy(dtype=float)
            (drawn,) = ax.step(t, s, where="post", color=colour, lw=1.4 if overall else 1.0,
                               zorder=3 if overall else 2,
                               label=_km_label(survival, endpoint, curve["group_var"], curve["group"]))
            handles.append(drawn)
            if overall:
                ax.fill_between(t, steps["ci_low"].to_numpy(dtype=float), steps["ci_high"].to_numpy(dtype=float),
                                step="post", color="#000000", alpha=0.08, lw=0, zorder=1)
            censored = steps["n_censor"].to_numpy(dtype=float) > 0
            # not clipped: a censoring at the axis end keeps both halves of its tick
            ax.plot(t[censored], s[censored], ls="none", marker="|", ms=4, mew=0.8, color=colour, zorder=4,
                    clip_on=False)
        handles += [Line2D([], [], ls="none", marker="|", ms=4, mew=0.8, color="black", label="Censored"),
                    Patch(color="#000000", alpha=0.08, label=f"{100 * conf_level:g}% CI, all")]
        ax.legend(handles=handles, loc="best", frameon=True, framealpha=0.9, edgecolor="none", handlelength=1.4,
                  borderaxespad=0.3, borderpad=0.3, labelspacing=0.25, alignment="left",
                  title=f"Median, months ({100 * conf_level:g}% CI)", title_fontsize=small)
        label = (endpoint_labels or {}).get(endpoint, endpoint)
        ax.set_title(label, loc="left", fontweight="bold")
        logrank = _logrank_text(survival, endpoint, group_var)
        if logrank:
            ax.set_title(logrank, loc="right", fontsize=small)
        ax.set_ylim(-0.02, 1.03)
        if not np.isfinite(end):
            end = float(ticks[-1]) if ticks.size else float(of_endpoint["time"].max())
        # the axis ends where fewer than ~10 % remain at risk (km_data), not at the longest follow-up
        ax.set_xlim(-0.01 * end, end)
        if ticks.size:
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.set_ylabel(f"{label} probability")
        ax.set_xlabel("Months")
        # numbers at risk: one text row per curve, under the axis, at the axis ticks
        ax_table.set_ylim(n_curves - 0.5, -1.4)
        ax_table.axis("off")
        ax_table.annotate("Number at risk", xy=(0, -1.2), xycoords=("axes fraction", "data"), xytext=(-4, 0),
                          textcoords="offset points", ha="right", va="center", fontweight="bold", fontsize=small)
        for i, (_, curve) in enumerate(curves.iterrows()):
            rows = of_endpoint[(of_endpoint["curve"] == curve["curve"]) & (of_endpoint["record"] == "at_risk")]
            colour = "#000000" if curve["curve"] == 0 else colours.get(curve["group"], "#777777")
            for t, n_risk in zip(rows["time"], rows["n_risk"]):
                ax_table.text(t, i, f"{int(n_risk)}", ha="center", va="center", color=colour, fontsize=small)
            name = "All" if curve["curve"] == 0 else str(curve["group"])
            ax_table.annotate(name, xy=(0, i), xycoords=("axes fraction", "data"), xytext=(-10, 0),
                              textcoords="offset points", ha="right", va="center", color=colour, fontsize=small)
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- AE heatmap


def ae_heatmap_data(worst_grade: pd.DataFrame, group_var: str, groups_order: Sequence[str] = (),
                    subset: str = "all", max_terms: int = 40) -> tuple[pd.DataFrame, int]:
    """Cells of the AE grade heatmap: term x (group, worst grade) -> patients and % of the group.

    Terms are ordered by overall any-grade incidence (highest first, "Any AE" on top);
    only the ``max_terms`` most frequent are kept.

    Returns
    -------
    cells : pandas.DataFrame
        The worst-grade rows of the overall and ``group_var`` groups of ``subset`` plus
        ``term_rank`` and ``column`` (block of the group x grade).
    n_hidden : int
        Number of terms left out by ``max_terms``.
    """
    rows = worst_grade[(worst_grade["subset"] == subset)
                       & worst_grade["group_var"].isin([OVERALL_GROUP_VAR, group_var])].copy()
    rows["group"] = rows["group"].astype(str)
    overall = rows[rows["group_var"] == OVERALL_GROUP_VAR]
    incidence = overall.groupby("term", sort=False)["pct"].sum()
    any_name = overall["term"].iloc[0] if len(overall) else "Any AE"
    ranked = incidence.drop(any_name, errors="ignore").reset_index().sort_values(
        ["pct", "term"], ascending=[False, True], kind="stable")
    terms = [any_name] + ranked.loc[ranked["pct"] > 0, "term"].tolist()
    n_hidden = max(0, len(terms) - 1 - max_terms)
    terms = terms[: max_terms + 1]
    groups = [OVERALL_GROUP] + ordered_groups(rows.loc[rows["group_var"] == group_var, "group"], groups_order)
    rows = rows[rows["term"].isin(terms)]
    rows["term_rank"] = rows["term"].map({t: i for i, t in enumerate(terms)})
    rows["group_rank"] = np.where(rows["group_var"] == OVERALL_GROUP_VAR, 0,
                                  rows["group"].map({g: i for i, g in enumerate(groups)}))
    rows["column"] = rows["group_rank"] * len(GRADES) + rows["worst_grade"].astype(int) - 1
    rows = rows.sort_values(["term_rank", "column"], kind="stable").reset_index(drop=True)
    return rows, n_hidden


def plot_ae_heatmap(cells: pd.DataFrame, n_hidden: int, style: dict, subset: str = "all", title: str = ""):
    """Heatmap of the worst CTCAE grade per patient: rows terms, columns grade 1-5 within each group.

    Colour is the % of the group's patients whose worst grade of the term is that grade;
    the number in a cell is that count of patients.
    """
    if cells.empty or cells["n_patients"].sum() == 0:
        return message_figure(style, "No adverse events recorded")
    terms = cells.drop_duplicates("term_rank").sort_values("term_rank")["term"].tolist()
    blocks = cells.drop_duplicates("group_rank").sort_values("group_rank")
    n_cols = len(blocks) * len(GRADES)
    matrix = np.full((len(terms), n_cols), np.nan)
    counts = np.zeros((len(terms), n_cols), dtype=int)
    matrix[cells["term_rank"].to_numpy(), cells["column"].to_numpy()] = cells["pct"].to_numpy(dtype=float)
    counts[cells["term_rank"].to_numpy(), cells["column"].to_numpy()] = cells["n_patients"].to_numpy(dtype=int)
    fig, ax = plt.subplots(figsize=figure_size(style, 0.85 * style["width_double_mm"], height=1.3 + 0.15 * len(terms)))
    cmap = LinearSegmentedColormap.from_list("ae", ["#FFFFFF", "#F3C8A8", "#D55E00", "#6B2F00"])
    vmax = max(10.0, float(np.nanmax(matrix, initial=0.0)))
    image = ax.imshow(np.where(counts > 0, matrix, np.nan), aspect="auto", cmap=cmap, vmin=0, vmax=vmax,
                      interpolation="none")
    ax.set_facecolor("#FFFFFF")
    small = max(4.5, plt.rcParams["font.size"] - 2.5)
    for i, j in zip(*np.nonzero(counts)):
        dark = matrix[i, j] > 0.55 * vmax
        ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=small,
                color="white" if dark else "black")
    ax.set_xticks(np.arange(n_cols))
    ax.set_xticklabels([str(g) for _ in range(len(blocks)) for g in GRADES], fontsize=small + 0.5)
    ax.tick_params(axis="x", length=0, pad=1)
    ax.xaxis.set_ticks_position("top")
    ax.set_yticks(np.arange(len(terms)))
    ax.set_yticklabels(terms)
    ax.tick_params(axis="y", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for b, (_, block) in enumerate(blocks.iterrows()):
        left = b * len(GRADES) - 0.5
        if b:
            ax.axvline(left, color="#444444", lw=0.8)
        name = "All patients" if block["group_var"] == OVERALL_GROUP_VAR else str(block["group"])
        ax.annotate(f"{name}\n(N = {int(block['n_patients_in_group'])})", xy=(left + len(GRADES) / 2, 1),
                    xycoords=("data", "axes fraction"), xytext=(0, 2.2 * small), textcoords="offset points",
                    ha="center", va="bottom", fontweight="bold")
    ax.annotate("Worst CTCAE v5.0 grade", xy=(0, 1), xycoords="axes fraction", xytext=(-4, 0.5 * small),
                textcoords="offset points", ha="right", va="center", fontsize=small + 0.5, style="italic")
    ax.axhline(0.5, color="#444444", lw=0.8)
    ax.set_xlim(-0.5, n_cols - 0.5)
    ax.set_ylim(len(terms) - 0.5, -0.5)
    ax.grid(False)
    # faint cell grid so empty cells read as zero, not missing
    ax.set_xticks(np.arange(-0.5, n_cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, len(terms), 1), minor=True)
    ax.grid(which="minor", color="#EEEEEE", lw=0.4)
    ax.tick_params(which="minor", length=0)
    bar = fig.colorbar(image, ax=ax, fraction=0.025, pad=0.015)
    bar.set_label("% of the group's patients\n(worst grade of the term)")
    bar.outline.set_visible(False)
    subset_text = "all adverse events" if subset == "all" else "treatment-related adverse events"
    note = f"; {n_hidden} rarer terms not shown" if n_hidden else ""
    ax.set_xlabel(f"Number in a cell: patients whose worst grade of the term is that grade ({subset_text}){note}")
    if title:
        mark_title(ax.set_title(title, pad=6 * small))
    return fig


__all__ = [
    "RESPONSE_CODE_COLOURS",
    "ae_heatmap_data",
    "forest_data",
    "format_median",
    "message_figure",
    "km_axis_end",
    "km_data",
    "ordered_groups",
    "plot_ae_heatmap",
    "plot_forest",
    "plot_km",
    "plot_swimmer",
    "plot_waterfall",
    "response_colours",
    "swimmer_data",
    "waterfall_data",
]
