"""Differential-testing figures: volcano panels per test family, heatmap of within-subject
changes, paired plots of the top features.

Every function takes the tables of the ``differential`` rule
(``<contrast>.tsv``, ``.changes.tsv``, ``.transformed.tsv``, ``.pairs.tsv``) and
draws them; p and q values are read, never recomputed. The ``*_data`` functions
return the exact data drawn (written beside the figure as source data). Imports
only numpy, pandas and matplotlib (the plots environment).
"""

from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap, TwoSlopeNorm
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.transforms import ScaledTranslation, blended_transform_factory

from gutaxis.plots.names import (display_name, draw_parts, is_logit_scale, logit_percent_axis, looks_taxonomic,
                                 taxon_parts)
from gutaxis.plots.names import extent as names_extent
from gutaxis.differential.prevalence import PRESENCE_METHODS
from gutaxis.plots.style import MINUS, figure_size, message_figure, paired_lines, palette, statistic_text

#: response groups; ``all`` = every subject of a study without a response (no groups shown)
RESPONSE_LEVELS = ["responder", "non_responder", "not_evaluable", "all"]
RESPONSE_LABELS = {"responder": "Responder", "non_responder": "Non-responder",
                   "not_evaluable": "Not evaluable", "all": "Subject"}
NO_RESPONSE = "all"


def _responses(pairs: pd.DataFrame) -> pd.Series:
    """The response group of each pair: its label (empty = not evaluable), or ``all`` when
    the pairs table has no response column (a study without a response)."""
    if "response" not in pairs.columns:
        return pd.Series(NO_RESPONSE, index=pairs.index)
    return pairs["response"].fillna("not_evaluable").astype(str)


METHOD_ORDER = ["paired_t", "wilcoxon", "lmm", "ols", "mann_whitney"]
METHOD_LABELS = {"paired_t": "Paired t", "wilcoxon": "Wilcoxon", "lmm": "Mixed model",
                 "ols": "OLS (adjusted)", "mann_whitney": "Mann\u2013Whitney",
                 "presence_mcnemar": "Presence (McNemar)",
                 "presence_interaction": "Presence (Fisher, discordant pairs)",
                 "presence_fisher": "Presence (Fisher)"}
#: colours of called features by direction: the red and blue ends of the change heatmap's RdBu
#: scale (higher: red), apart from the Okabe-Ito cohort and response colours of the same figures
DIRECTION_COLOURS = {"up": "#B2182B", "down": "#2166AC", "none": "#BBBBBB"}
#: greys for "which family called the feature" (the cohort and response palettes use colour)
CALLED_BY_COLOURS = {"time": "#D9D9D9", "time \u00d7 response": "#252525", "both": "#969696"}
#: cells with no value (a zero under rclr): hatched in this grey, apart from white (no change),
#: the reds/blues and the grey "called by" strip
MISSING_COLOUR = "#8C8C8C"
MISSING_HATCH = "//////"
SCALE_LABELS = {"clr": "CLR", "rclr": "robust CLR", "log2": "log2", "log2p1": "log2(x + 1)", "logit": "logit",
                "none": "value"}


# --------------------------------------------------------------------------- labels


def feature_label(feature: str, annotation: str = "", max_chars: int = 26) -> str:
    """Short display name: the annotation when there is one, species as ``B. longum``
    (:func:`gutaxis.plots.names.display_name`)."""
    return display_name(feature, annotation, abbreviate=True, max_chars=max_chars)


def feature_is_taxon(feature, annotation="", effect_scale: str = "") -> bool:
    """Is a tested feature a taxon (its name is set in italics)?

    Its id or annotation looks taxonomic (rank prefix, ``Genus_species``, ``E. coli``), or
    it is a composition (CLR/rCLR effect) whose name reads ``Genus species`` (a plain
    species name as Bracken writes it); see :func:`gutaxis.plots.names.is_taxon`.
    """
    if looks_taxonomic(feature) or looks_taxonomic(annotation):
        return True
    compositional = str(effect_scale).split(",")[0].split(":")[0].strip() in ("clr", "rclr")
    if not compositional:
        return False
    text = str(annotation).strip() if isinstance(annotation, str) and annotation.strip() else str(feature)
    return any(italic for _, italic in taxon_parts(text, taxon=True))


def term_label(term: str, pre: str) -> str:
    """``timepoint[post]`` -> ``post vs baseline``; interaction -> ``... × responder``."""
    parts = []
    for piece in str(term).split(":"):
        if piece.startswith("timepoint[") and piece.endswith("]"):
            parts.append(f"{piece[10:-1]} vs {pre}")
        elif piece.startswith("response[") and piece.endswith("]"):
            parts.append("responder vs non-responder")
        else:
            parts.append(piece)
    if len(parts) == 2 and parts[1] == "responder vs non-responder":
        return f"({parts[0]}) \u00d7 response"
    if parts == ["responder vs non-responder"]:
        return f"responder vs non-responder ({pre})"
    return " : ".join(parts)


def _format_q(q) -> str:
    return statistic_text("q", q, ((0.01, 2),))


def _scale_text(effect_scale: str, scale_label: str = "") -> str:
    """Axis text of an effect scale; compositions say whether the effect is bias-corrected
    (absolute if most features do not change) or relative."""
    name = effect_scale.split(",")[0].split(":")[0].strip()
    text = scale_label or SCALE_LABELS.get(name, effect_scale)
    if "bias-corrected" in effect_scale:
        return f"{text}, bias-corrected"
    if "relative" in effect_scale:
        return f"{text}, relative"
    return text


def _ordered_families(results: pd.DataFrame) -> list[tuple[str, str]]:
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    fams = results[["method", "term"]].drop_duplicates()
    fams = fams.assign(_m=fams["method"].map(order).fillna(len(order)),
                       _i=fams["term"].str.contains(":"), _r=fams["term"].str.startswith("response"))
    fams = fams.sort_values(["_r", "_i", "_m", "term"], kind="mergesort")
    return list(fams[["method", "term"]].itertuples(index=False, name=None))


# --------------------------------------------------------------------------- volcano


def volcano_data(results: pd.DataFrame, alpha: float, n_labels: int) -> pd.DataFrame:
    """The points of every volcano panel: one row per feature and family.

    Parameters
    ----------
    results : DataFrame
        ``results/differential/<modality>/<contrast>.tsv``.
    alpha : float
        q threshold of a call.
    n_labels : int
        Called features labelled per family (smallest p first).

    Returns
    -------
    DataFrame
        ``method, term, feature, label, taxon, effect, p, q, neg_log10_p, direction,
        labelled, effect_scale``, families in panel order, features by p; ``taxon``:
        the label is a taxon name, drawn in italics (:func:`feature_is_taxon`);
        ``labelled``: the ``n_labels`` called features with the smallest p.
    """
    rows = results[np.isfinite(results["p"].astype(float))
                   & ~results["method"].isin(PRESENCE_METHODS)].copy()
    rows["label"] = [feature_label(f, a) for f, a in
                     zip(rows["feature"], rows["annotation"].fillna(""))]
    rows["taxon"] = [feature_is_taxon(f, a, e) for f, a, e in
                     zip(rows["feature"], rows["annotation"].fillna(""), rows["effect_scale"].fillna(""))]
    with np.errstate(divide="ignore"):
        rows["neg_log10_p"] = -np.log10(rows["p"].astype(float).clip(lower=1e-300))
    called = rows["q"].astype(float) < alpha
    rows["direction"] = np.where(called & (rows["effect"] > 0), "up",
                                 np.where(called & (rows["effect"] < 0), "down", "none"))
    rows = rows.sort_values(["method", "term", "p", "feature"], kind="mergesort")
    called_rank = rows["direction"].ne("none").groupby([rows["method"], rows["term"]]).cumsum()
    rows["labelled"] = (rows["direction"] != "none") & (called_rank <= n_labels)
    order = {fam: i for i, fam in enumerate(_ordered_families(rows))}
    rows["_f"] = [order[(m, t)] for m, t in zip(rows["method"], rows["term"])]
    rows = rows.sort_values(["_f", "p", "feature"], kind="mergesort")
    cols = ["method", "term", "feature", "label", "taxon", "effect", "p", "q", "neg_log10_p", "direction",
            "labelled", "effect_scale"]
    return rows[cols].reset_index(drop=True)


#: marker areas (points^2) of the volcano points by direction
MARKER_SIZES = {"none": 5.0, "down": 8.0, "up": 8.0}
#: gid of the text pieces and leader lines of volcano labels (tests find them by it)
LABEL_GID = "volcano-label"
LEADER_GID = "volcano-leader"
#: distances (points) from a point to its label box, nearest first
LABEL_DISTANCES = (4.0, 8.0, 13.0, 20.0, 29.0, 40.0, 54.0, 72.0)
#: the nearest distances tried before the axes are widened (beyond, leaders get long)
NEAR_DISTANCES = 6
#: times the axes may be widened to make room for labels
GROW_STEPS = 10
#: directions (degrees) tried for a label right of zero, outward first; mirrored left of zero
LABEL_ANGLES = (30, 0, 60, 330, 90, 300, 120, 270, 150, 240, 180, 210, 15, 45, 75, 345)


def _marker_radius_px(ax, size_pt2: float) -> float:
    """Radius in display pixels of a scatter marker of area ``size_pt2`` (points^2)."""
    return math.sqrt(size_pt2) / 2.0 * ax.figure.dpi / 72.0


def _boxes_overlap(box, boxes: np.ndarray, pad: float) -> np.ndarray:
    """Which rows of ``boxes`` (x0, y0, x1, y1) intersect ``box`` grown by ``pad``."""
    if not len(boxes):
        return np.zeros(0, dtype=bool)
    return ((boxes[:, 0] < box[2] + pad) & (boxes[:, 2] > box[0] - pad)
            & (boxes[:, 1] < box[3] + pad) & (boxes[:, 3] > box[1] - pad))


def _segment_hits_box(p0, p1, box, pad: float = 1.0) -> bool:
    """Does the segment p0-p1 pass through ``box`` (x0, y0, x1, y1), grown by ``pad``?
    (Liang-Barsky clipping.)"""
    x0, y0, x1, y1 = box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, p0[0] - x0), (dx, x1 - p0[0]), (-dy, p0[1] - y0), (dy, y1 - p0[1])):
        if p == 0:
            if q < 0:
                return False
        else:
            t = q / p
            if p < 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
            if t0 > t1:
                return False
    return True


def _nearest_on_box(point, box):
    """The point of ``box`` nearest to ``point`` (where a leader line leaves the label)."""
    return (min(max(point[0], box[0]), box[2]), min(max(point[1], box[1]), box[3]))


def _label_layout(ax, points: pd.DataFrame, labelled: pd.DataFrame, sizes: dict[str, float],
                  relaxed: bool = False) -> list:
    """Greedy, deterministic placement of volcano labels in display space.

    Labels are placed in order of significance (``labelled`` is sorted by p). For
    each, candidate boxes are tried nearest first (:data:`LABEL_DISTANCES` from the
    point, in the directions of :data:`LABEL_ANGLES`, outward first: up and away
    from zero); a candidate is taken when its box lies inside the axes, clear of
    every label placed before it, of every other point's marker, and when its
    leader line crosses no placed label and no other called point's marker (and no
    placed leader crosses it). When no candidate is clear, the markers of uncalled
    points are no longer avoided; a label that still finds no place within
    :data:`NEAR_DISTANCES` is reported as None (the caller widens the axes and tries
    again). ``relaxed`` (the last try) also allows the far distances and boxes over
    any marker ("where feasible").

    Parameters
    ----------
    ax : Axes
        Limits and layout final (positions are computed in display pixels).
    points : DataFrame
        Every point of the panel (``effect, neg_log10_p, direction``).
    labelled : DataFrame
        The points to label, most significant first, with ``width, height``
        (label size in pixels).
    sizes : dict
        Marker area (points^2) by direction.

    Returns
    -------
    list
        Per labelled row: ``(box, anchor)`` in display pixels (box = x0, y0, x1, y1;
        anchor = the marker centre), or None.
    """
    xy = ax.transData.transform(points[["effect", "neg_log10_p"]].to_numpy(float))
    radius = np.array([_marker_radius_px(ax, sizes[d]) for d in points["direction"]])
    markers = np.column_stack([xy - radius[:, None], xy + radius[:, None]])
    called = points["direction"].to_numpy() != "none"
    frame = ax.get_window_extent()
    inner = (frame.x0 + 2, frame.y0 + 2, frame.x1 - 2, frame.y1 - 2)
    px = ax.figure.dpi / 72.0
    placed: list = []
    leaders: list = []
    out = []
    index = {k: i for i, k in enumerate(points.index)}
    for key, row in labelled.iterrows():
        i = index[key]
        anchor = xy[i]
        w, h = float(row["width"]), float(row["height"])
        others = np.ones(len(points), dtype=bool)
        others[i] = False
        # markers under this one's centre (near-identical points) cannot be kept off its leader
        beneath = ((markers[:, 0] <= anchor[0]) & (markers[:, 2] >= anchor[0])
                   & (markers[:, 1] <= anchor[1]) & (markers[:, 3] >= anchor[1]))
        angles = LABEL_ANGLES if row["effect"] >= 0 else tuple((180 - a) % 360 for a in LABEL_ANGLES)
        choice = None
        passes = (others, others & called) + ((np.zeros_like(others),) if relaxed else ())
        distances = LABEL_DISTANCES if relaxed else LABEL_DISTANCES[:NEAR_DISTANCES]
        for avoid in passes:
            for dist in distances:
                d = dist * px + radius[i]
                for angle in angles:
                    ux, uy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
                    # the box's side (or corner) facing the point sits d away from it
                    cx = anchor[0] + ux * d + (w / 2.0) * np.sign(round(ux, 6))
                    cy = anchor[1] + uy * d + (h / 2.0) * np.sign(round(uy, 6))
                    box = (cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
                    if box[0] < inner[0] or box[1] < inner[1] or box[2] > inner[2] or box[3] > inner[3]:
                        continue
                    if placed and _boxes_overlap(box, np.array(placed), 2.0).any():
                        continue
                    if _boxes_overlap(box, markers[avoid], 1.0).any():
                        continue
                    start = _nearest_on_box(anchor, box)
                    if any(_segment_hits_box(start, anchor, b) for b in placed):
                        continue
                    if any(_segment_hits_box(a, b, box) for a, b in leaders):
                        continue
                    if not relaxed and any(_segment_hits_box(start, anchor, m, 0.0)
                                           for m in markers[others & called & avoid & ~beneath]):
                        continue
                    choice = (box, (float(anchor[0]), float(anchor[1])))
                    break
                if choice:
                    break
            if choice:
                break
        if choice:
            placed.append(choice[0])
            leaders.append((_nearest_on_box(choice[1], choice[0]), choice[1]))
        out.append(choice)
    return out


def _draw_labels(ax, part: pd.DataFrame, font: float, sizes: dict[str, float]) -> None:
    """Label the ``labelled`` points of one panel, one label and one leader line each.

    Places them with :func:`_label_layout`; when a label finds no clear place, the
    y axis gains 10 % headroom (and x 4 % each side) and the panel is laid out
    again, up to :data:`GROW_STEPS` times (then once more, relaxed), so every point up
    to the label limit is labelled.
    """
    labelled = part[part["labelled"]].sort_values(["p", "feature"], kind="mergesort")
    if labelled.empty:
        return
    renderer = ax.figure.canvas.get_renderer()
    rows = []
    for _, row in labelled.iterrows():
        parts = taxon_parts(row["label"], taxon=bool(row.get("taxon", False)))
        probe = draw_parts(ax, 0, 0, parts, ha="left", va="bottom", fontsize=font)
        box = names_extent(probe, renderer)
        for t in probe:
            t.remove()
        rows.append((parts, box.width, box.height))
    labelled = labelled.assign(width=[r[1] for r in rows], height=[r[2] for r in rows])
    for attempt in range(GROW_STEPS + 1):
        layout = _label_layout(ax, part, labelled, sizes, relaxed=attempt == GROW_STEPS)
        if all(c is not None for c in layout):
            break
        y0, y1 = ax.get_ylim()
        ax.set_ylim(y0, y1 + 0.1 * (y1 - y0))
        x0, x1 = ax.get_xlim()
        ax.set_xlim(x0 - 0.04 * (x1 - x0), x1 + 0.04 * (x1 - x0))
    to_data = ax.transData.inverted()
    px = ax.figure.dpi / 72.0
    for (parts, _, _), (_, row), choice in zip(rows, labelled.iterrows(), layout):
        if choice is None:
            continue
        box, anchor = choice
        x, y = to_data.transform((box[0], box[1]))
        draw_parts(ax, x, y, parts, ha="left", va="bottom", fontsize=font, color="black", zorder=5,
                   gid=LABEL_GID)
        start = to_data.transform(_nearest_on_box(anchor, box))
        radius_pt = _marker_radius_px(ax, sizes[row["direction"]]) / px
        line = ax.annotate("", xy=(row["effect"], row["neg_log10_p"]), xycoords="data", xytext=tuple(start),
                           textcoords="data", zorder=4,
                           arrowprops=dict(arrowstyle="-", lw=0.5, color="#555555", shrinkA=0,
                                           shrinkB=radius_pt + 0.6))
        line.set_gid(LEADER_GID)


def plot_volcano(data: pd.DataFrame, style: dict, alpha: float, pre: str = "pre",
                 scale_label: str = "", title: str = ""):
    """Volcano panels, one per family (method x term): effect vs -log10 p.

    Parameters
    ----------
    data : DataFrame
        :func:`volcano_data` output.
    style : dict
    alpha : float
        q threshold (coloured points are called).
    pre : str
        The contrast's pre timepoint (panel titles).
    scale_label : str
        Name of the transformed scale for the x axis (e.g. ``log2 intensity``).
    title : str

    Returns
    -------
    matplotlib Figure
    """
    if data.empty:
        return message_figure(style, "No feature was tested.", title)
    families = list(dict.fromkeys(zip(data["method"], data["term"])))
    n_cols = min(3, len(families))
    n_rows = math.ceil(len(families) / n_cols)
    width, _ = figure_size(style, "double")
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width, 2.05 * n_rows + 0.55),
                             squeeze=False)
    font = plt.rcParams["font.size"] - 1.5
    for k, (method, term) in enumerate(families):
        ax = axes[k // n_cols, k % n_cols]
        part = data[(data["method"] == method) & (data["term"] == term)]
        for direction in ("none", "down", "up"):
            sub = part[part["direction"] == direction]
            ax.scatter(sub["effect"], sub["neg_log10_p"], s=MARKER_SIZES[direction],
                       c=DIRECTION_COLOURS[direction], linewidths=0, alpha=0.9,
                       zorder=2 if direction == "none" else 3, rasterized=len(sub) > 2000)
        x = part["effect"].astype(float)
        reach = float(np.nanmax(np.abs(x))) if len(x) else 1.0
        reach = reach if reach > 0 else 1.0
        ax.set_xlim(-1.08 * reach, 1.08 * reach)
        top = max(float(part["neg_log10_p"].max()) if len(part) else 1.0, 1.0)
        # headroom for the labels of the top points; _draw_labels adds more when they need it
        ax.set_ylim(0, top * (1.12 if part["labelled"].any() else 1.05))
        ax.axvline(0, color="#888888", lw=0.5, zorder=1)
        n_called = int((part["direction"] != "none").sum())
        ax.set_title(f"{METHOD_LABELS.get(method, method)} ({n_called} of {len(part)} called)\n"
                     f"{term_label(term, pre)}", fontsize=plt.rcParams["font.size"] - 1)
        effect_scale = str(part["effect_scale"].iloc[0]) if len(part) else ""
        ax.set_xlabel(f"Effect ({_scale_text(effect_scale, scale_label)})")
        if k % n_cols == 0:
            ax.set_ylabel(f"{MINUS}log10 p")
    for k in range(len(families), n_rows * n_cols):
        axes[k // n_cols, k % n_cols].axis("off")
    handles = [Line2D([], [], ls="", marker="o", ms=3.5, color=DIRECTION_COLOURS[d],
                      label=lab) for d, lab in
               (("up", f"higher (q < {alpha:g})"), ("down", f"lower (q < {alpha:g})"),
                ("none", f"not called (q \u2265 {alpha:g})"))]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(title + ("\n" if title else "") + "Benjamini\u2013Hochberg q within each panel",
                 fontsize=plt.rcParams["axes.titlesize"])
    # the legend row under the panels: a fixed 0.25 in, whatever the number of rows
    fig.tight_layout(rect=(0, 0.25 / fig.get_figheight(), 1, 1), h_pad=0.9, w_pad=0.6)
    # labels last: they are placed in display space, which the layout fixes
    for k, (method, term) in enumerate(families):
        part = data[(data["method"] == method) & (data["term"] == term)]
        _draw_labels(axes[k // n_cols, k % n_cols], part, font, MARKER_SIZES)
    return fig


# --------------------------------------------------------------------------- heatmap


def _called(results: pd.DataFrame, method: str, term: str, alpha: float) -> pd.DataFrame:
    part = results[(results["method"] == method) & (results["term"] == term)]
    return part[part["q"].astype(float) < alpha]


def heatmap_data(results: pd.DataFrame, changes: pd.DataFrame, pairs: pd.DataFrame, alpha: float,
                 method: str, post: str, max_features: int, cohorts=()) -> pd.DataFrame:
    """Within-subject changes of the called features, tidy, in drawing order.

    Rows are features called (q < alpha) by ``method`` on ``timepoint[post]``
    or by the mixed model's ``timepoint[post]:response[responder]`` term, at
    most ``max_features`` by smallest q, ordered by group (time, time x
    response, both) and effect. Columns are subjects grouped by cohort (in
    ``cohorts`` order) then response.

    Parameters
    ----------
    results, changes, pairs : DataFrame
        ``<contrast>.tsv``, ``<contrast>.changes.tsv`` (subject_id + one column
        per feature), ``<contrast>.pairs.tsv``.

    Returns
    -------
    DataFrame
        ``feature, label, taxon, called_by, q, effect, row, subject_id, cohort, response,
        column, change, colour_cap, change_shown``: ``colour_cap`` is the colour
        scale's limit (:func:`colour_cap`), ``change_shown`` the change clipped to
        ± it, as coloured.
    """
    time_term = f"timepoint[{post}]"
    inter_term = f"timepoint[{post}]:response[responder]"
    time = _called(results, method, time_term, alpha).set_index("feature")
    inter = _called(results, "lmm", inter_term, alpha).set_index("feature")
    features = [f for f in dict.fromkeys(list(time.index) + list(inter.index))
                if f in changes.columns]
    cols = ["feature", "label", "taxon", "called_by", "q", "effect", "row", "subject_id", "cohort",
            "response", "column", "change", "colour_cap", "change_shown"]
    if not features:
        return pd.DataFrame(columns=cols)
    info = pd.DataFrame(index=pd.Index(features, name="feature"))
    in_time = info.index.isin(time.index)
    in_inter = info.index.isin(inter.index)
    info["called_by"] = np.where(in_time & in_inter, "both",
                                 np.where(in_time, "time", "time \u00d7 response"))
    info["q"] = [min(time["q"].get(f, np.inf), inter["q"].get(f, np.inf)) for f in features]
    info["effect"] = [time["effect"].get(f, inter["effect"].get(f, np.nan)) for f in features]
    annot = results.drop_duplicates("feature").set_index("feature")["annotation"].fillna("")
    info["label"] = [feature_label(f, annot.get(f, "")) for f in features]
    scales = results.drop_duplicates("feature").set_index("feature")["effect_scale"].fillna("") \
        if "effect_scale" in results.columns else pd.Series(dtype=str)
    info["taxon"] = [feature_is_taxon(f, annot.get(f, ""), scales.get(f, "")) for f in features]
    info = info.sort_values(["q"], kind="mergesort").head(max_features)
    group_order = {"time": 0, "both": 1, "time \u00d7 response": 2}
    info = info.assign(_g=info["called_by"].map(group_order)).sort_values(
        ["_g", "effect"], ascending=[True, False], kind="mergesort")
    info["row"] = np.arange(len(info))

    subj = pairs[["subject_id", "cohort"]].copy()
    subj["cohort"] = subj["cohort"].fillna("").astype(str)
    subj["response"] = _responses(pairs)
    cohort_rank = {c: i for i, c in enumerate(cohorts)}
    subj["_c"] = subj["cohort"].map(cohort_rank).fillna(len(cohort_rank))
    subj["_r"] = subj["response"].map({r: i for i, r in enumerate(RESPONSE_LEVELS)}).fillna(9)
    subj = subj.sort_values(["_c", "cohort", "_r", "subject_id"], kind="mergesort")
    subj["column"] = np.arange(len(subj))

    wide = changes.set_index("subject_id")[list(info.index)].reindex(subj["subject_id"])
    long = wide.reset_index().melt(id_vars="subject_id", var_name="feature", value_name="change")
    long = long.merge(info.reset_index()[["feature", "label", "taxon", "called_by", "q", "effect", "row"]],
                      on="feature").merge(subj[["subject_id", "cohort", "response", "column"]],
                                          on="subject_id")
    long["colour_cap"] = colour_cap(long["change"])
    long["change_shown"] = long["change"].astype(float).clip(-long["colour_cap"], long["colour_cap"])
    return long.sort_values(["row", "column"], kind="mergesort")[cols].reset_index(drop=True)


def colour_cap(changes) -> float:
    """The colour scale's limit: the 98th percentile of the absolute changes, to 2 significant
    digits (1 when there is none), so a few extreme cells do not wash out the rest; cells
    beyond it are drawn at the limit (``change_shown``)."""
    finite = np.abs(np.asarray(changes, dtype=float))
    finite = finite[np.isfinite(finite)]
    limit = float(np.quantile(finite, 0.98)) if finite.size else 1.0
    if not limit > 0:
        return 1.0
    return float(f"{limit:.2g}")


def plot_heatmap(data: pd.DataFrame, style: dict, alpha: float, method: str, pre: str = "pre",
                 post: str = "post", scale_label: str = "", title: str = ""):
    """Heatmap of within-subject changes (post - pre), subjects grouped by cohort and response.

    Parameters
    ----------
    data : DataFrame
        One row per cell (feature row x subject column), from :func:`heatmap_data`.
    style : dict
    alpha : float
        q threshold of the calls that chose the rows.
    method : str
        The method whose time calls chose the rows (legend text).
    pre, post : str
    scale_label : str
        Name of the transformed scale (colour bar).
    title : str

    Returns
    -------
    matplotlib Figure
    """
    if data.empty:
        return message_figure(style, f"No feature called (q < {alpha:g}) by "
                                     f"{METHOD_LABELS.get(method, method)} or by the "
                                     "time \u00d7 response term.", title)
    rows = data.drop_duplicates("row").sort_values("row")
    cols = data.drop_duplicates("column").sort_values("column")
    matrix = np.full((len(rows), len(cols)), np.nan)
    matrix[data["row"].to_numpy(int), data["column"].to_numpy(int)] = data["change"].astype(float)
    limit = float(data["colour_cap"].iloc[0]) if "colour_cap" in data.columns else colour_cap(matrix)
    n_beyond = int((np.abs(matrix[np.isfinite(matrix)]) > limit).sum())

    cohorts = list(dict.fromkeys(cols["cohort"]))
    cohort_colours = palette(style, "cohort", cohorts)
    response_colours = palette(style, "response", RESPONSE_LEVELS)
    # a study without a response: no response strip, no response legend
    grouped = bool((cols["response"] != NO_RESPONSE).any())
    group_colours = {g: CALLED_BY_COLOURS[g] for g in CALLED_BY_COLOURS
                     if g in set(rows["called_by"])}
    small = plt.rcParams["font.size"] - 1.5

    # fixed layout in millimetres, so rows keep their height whatever their number
    width, _ = figure_size(style, "double")
    width_mm = width * 25.4
    # rows 3 mm high, taller when there are few so the colour bar has room for its label
    row_mm, strip_mm, gap_mm = max(3.0, 36.0 / len(rows)), 3.0, 1.0
    title_mm, xlabel_mm, legend_mm = 14.0, 7.0, 13.0
    body_mm = len(rows) * row_mm
    height_mm = title_mm + 2 * (strip_mm + gap_mm) + body_mm + xlabel_mm + legend_mm
    left_mm, group_mm, bar_gap_mm, bar_mm, right_mm = 40.0, 3.0, 3.0, 3.0, 22.0
    fig = plt.figure(figsize=(width, height_mm / 25.4))

    def box(x_mm, y_top_mm, w_mm, h_mm):
        return [x_mm / width_mm, 1 - (y_top_mm + h_mm) / height_mm, w_mm / width_mm,
                h_mm / height_mm]

    x0 = left_mm + group_mm + gap_mm
    map_w = width_mm - x0 - bar_gap_mm - bar_mm - right_mm
    y = title_mm
    ax_cohort = fig.add_axes(box(x0, y, map_w, strip_mm))
    y += strip_mm + gap_mm
    ax_resp = fig.add_axes(box(x0, y, map_w, strip_mm))
    y += strip_mm + gap_mm
    ax = fig.add_axes(box(x0, y, map_w, body_mm))
    ax_group = fig.add_axes(box(left_mm, y, group_mm, body_mm))
    ax_bar = fig.add_axes(box(x0 + map_w + bar_gap_mm, y, bar_mm, body_mm))

    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad((1.0, 1.0, 1.0, 0.0))  # missing cells show the hatched background
    ax.add_patch(Rectangle((-0.5, -0.5), len(cols), len(rows), facecolor="white", edgecolor=MISSING_COLOUR,
                           hatch=MISSING_HATCH, lw=0, zorder=0))
    image = ax.imshow(np.ma.masked_invalid(matrix), aspect="auto", cmap=cmap,
                      norm=TwoSlopeNorm(0.0, -limit, limit), interpolation="nearest", zorder=1)
    ax.set_xticks([])
    ax.set_yticks([])
    bounds = np.flatnonzero(cols["cohort"].to_numpy()[1:] != cols["cohort"].to_numpy()[:-1])
    ax.set_xlabel(f"Subjects with both samples (n = {len(cols)}), grouped by cohort"
                  + (", then response" if grouped else ""))
    if not grouped:
        ax_resp.axis("off")
    strips = [(ax_cohort, "cohort", cohort_colours, "Cohort")]
    strips += [(ax_resp, "response", response_colours, "Response")] if grouped else []
    for strip, key, colours, name in strips:
        codes = {lvl: i for i, lvl in enumerate(colours)}
        strip.imshow(cols[key].map(codes).to_numpy()[None, :], aspect="auto",
                     cmap=ListedColormap(list(colours.values())), vmin=-0.5,
                     vmax=len(colours) - 0.5, interpolation="nearest")
        strip.set_xticks([])
        strip.set_yticks([0])
        strip.set_yticklabels([name])
        strip.tick_params(axis="y", length=0)
    codes = {g: i for i, g in enumerate(CALLED_BY_COLOURS)}
    ax_group.imshow(rows["called_by"].map(codes).to_numpy()[:, None], aspect="auto",
                    cmap=ListedColormap(list(CALLED_BY_COLOURS.values())), vmin=-0.5,
                    vmax=len(CALLED_BY_COLOURS) - 0.5, interpolation="nearest")
    ax_group.set_xticks([])
    ax_group.set_yticks([])
    # row names: taxa in italics (gutaxis.plots.names), right-aligned 1 mm left of the strip
    label_at = blended_transform_factory(ax_group.transAxes, ax_group.transData)
    taxa = rows["taxon"] if "taxon" in rows.columns else pd.Series(False, index=rows.index)
    for y_row, (label, taxon) in enumerate(zip(rows["label"], taxa)):
        draw_parts(ax_group, -1.0 / group_mm, y_row, taxon_parts(label, taxon=bool(taxon)), ha="right",
                   va="center", transform=label_at, fontsize=small, gid="heatmap-row-label")
    # the strip's heading, under it (the cohort and response labels take the space above)
    ax_group.set_xlabel("Called\nby", fontsize=small - 0.5, labelpad=2, linespacing=1.0)
    for a in (ax, ax_cohort, ax_resp, ax_group):
        for spine in a.spines.values():
            spine.set_visible(False)
        for b in (bounds if a is not ax_group else []):
            a.axvline(b + 0.5, color="white", lw=1.2)

    # the colour scale is capped: the bar's triangles and its label say so
    bar = fig.colorbar(image, cax=ax_bar, extend="both" if n_beyond else "neither")
    cap = f"{limit:g}".replace("-", MINUS)
    bar.set_label(f"{post} {MINUS} {pre} ({scale_label or 'transformed scale'})\n"
                  + (f"values beyond \u00b1{cap} shown at \u00b1{cap}" if n_beyond else
                     f"scale \u00b1{cap}"), fontsize=small)
    bar.outline.set_visible(False)

    # one legend column per key (cohort, response, called by, missing cells)
    groups = [[Patch(color=c, label=f"Cohort: {lvl}") for lvl, c in cohort_colours.items()],
              [Patch(color=response_colours[lvl], label=RESPONSE_LABELS[lvl])
               for lvl in RESPONSE_LEVELS if lvl in set(cols["response"]) and lvl != NO_RESPONSE],
              [Patch(color=c, label=f"Called: {g}") for g, c in group_colours.items()]]
    if np.isnan(matrix).any():
        groups.append([Patch(facecolor="white", edgecolor=MISSING_COLOUR, hatch=MISSING_HATCH, lw=0,
                             label="No value (absent in a sample)")])
    groups = [g for g in groups if g]
    n_rows = max(len(g) for g in groups)
    handles = [h for g in groups for h in g + [Patch(visible=False, label=" ")] * (n_rows - len(g))]
    fig.legend(handles=handles, loc="lower center", ncol=len(groups), frameon=False, fontsize=small,
               bbox_to_anchor=(0.5, 0.0), handlelength=1.2, columnspacing=1.2)
    fig.suptitle((title + "\n" if title else "")
                 + f"Features called (q < {alpha:g}): {METHOD_LABELS.get(method, method)} on "
                   + ("time, or the mixed-model time \u00d7 response term" if grouped else "time"),
                 fontsize=plt.rcParams["axes.titlesize"], y=1 - 1.5 / height_mm, va="top")
    return fig


# --------------------------------------------------------------------------- paired plots


def paired_data(results: pd.DataFrame, transformed: pd.DataFrame, pairs: pd.DataFrame,
                method: str, post: str, n_features: int) -> pd.DataFrame:
    """Pre and post values of the top ``n_features`` features of ``method`` on ``timepoint[post]``.

    Parameters
    ----------
    results : DataFrame
    transformed : DataFrame
        ``<contrast>.transformed.tsv`` read with the sample id as index.
    pairs : DataFrame
        ``<contrast>.pairs.tsv``.

    Returns
    -------
    DataFrame
        ``panel, feature, label, taxon, effect, ci_low, ci_high, q, subject_id, cohort,
        response, pre_value, post_value`` (one row per feature and subject; ``taxon``:
        the name is set in italics).
    """
    part = results[(results["method"] == method) & (results["term"] == f"timepoint[{post}]")]
    part = part.sort_values(["p", "feature"], kind="mergesort").head(n_features)
    part = part[part["feature"].isin(transformed.columns)]
    cols = ["panel", "feature", "label", "taxon", "effect", "ci_low", "ci_high", "q", "subject_id",
            "cohort", "response", "pre_value", "post_value"]
    if part.empty:
        return pd.DataFrame(columns=cols)
    frames = []
    for panel, row in enumerate(part.itertuples(index=False)):
        values = transformed[row.feature]
        frames.append(pd.DataFrame({
            "panel": panel, "feature": row.feature,
            "label": feature_label(row.feature, row.annotation if isinstance(row.annotation, str)
                                   else ""),
            "taxon": feature_is_taxon(row.feature, row.annotation if isinstance(row.annotation, str) else "",
                                      getattr(row, "effect_scale", "")),
            "effect": row.effect, "ci_low": row.ci_low, "ci_high": row.ci_high, "q": row.q,
            "subject_id": pairs["subject_id"].to_numpy(),
            "cohort": pairs["cohort"].fillna("").to_numpy(),
            "response": _responses(pairs).to_numpy(),
            "pre_value": values.reindex(pairs["pre_sample"]).to_numpy(dtype=float),
            "post_value": values.reindex(pairs["post_sample"]).to_numpy(dtype=float)}))
    return pd.concat(frames, ignore_index=True)[cols]


def _panel_title(ax, label: str, taxon: bool, **kwargs) -> None:
    """A panel's title: a one-style name wrapped at word boundaries as ``set_title``; a name with
    italic and roman runs (``Clostridium`` sp. CAG:58) drawn in pieces above the axes."""
    parts = taxon_parts(label, taxon=taxon)
    if len(parts) <= 1:
        ax.set_title(textwrap.fill(label, 22, break_long_words=False), fontstyle="italic"
                     if parts and parts[0][1] else "normal", **kwargs)
        return
    pad = plt.rcParams["axes.titlepad"]
    draw_parts(ax, 0.5, 1.0, parts, ha="center", va="bottom", transform=ax.transAxes + ScaledTranslation(
        0, pad / 72.0, ax.figure.dpi_scale_trans), **kwargs)


def plot_paired(data: pd.DataFrame, style: dict, method: str, alpha: float, pre: str = "pre",
                post: str = "post", scale_label: str = "", title: str = ""):
    """Small multiples: one line per subject from pre to post, coloured by response.

    `data` is :func:`paired_data`'s table (one row per panel, subject and timepoint).

    Parameters
    ----------
    method : str
        The test whose effect and q are printed in each panel.
    scale_label : str
        Name of the transformed scale (y axis).
    style, alpha, pre, post, title
        As in :func:`plot_heatmap`; returns its kind of figure.
    """
    if data.empty:
        return message_figure(style, f"No feature tested by {METHOD_LABELS.get(method, method)}.",
                              title)
    panels = data.drop_duplicates("panel").sort_values("panel")
    n_cols = min(4, len(panels))
    n_rows = math.ceil(len(panels) / n_cols)
    width, _ = figure_size(style, "double")
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width, 1.75 * n_rows + 0.6), squeeze=False)
    colours = palette(style, "response", RESPONSE_LEVELS)
    font = plt.rcParams["font.size"] - 1.5
    for k, head in enumerate(panels.itertuples(index=False)):
        ax = axes[k // n_cols, k % n_cols]
        part = data[data["panel"] == head.panel]
        for level in RESPONSE_LEVELS[::-1]:
            sub = part[part["response"] == level]
            if sub.empty:
                continue
            paired_lines(ax, [0.0, 1.0], sub[["pre_value", "post_value"]].to_numpy(float), colours[level],
                         lw=0.6, alpha=0.6, ms=1.8)
        medians = part[["pre_value", "post_value"]].median()
        ax.plot([0, 1], medians.to_numpy(float), color="black", lw=1.6, marker="s", ms=3,
                zorder=5)
        ax.set_xlim(-0.25, 1.25)
        ax.set_xticks([0, 1])
        ax.set_xticklabels([pre, post])
        called = np.isfinite(head.q) and head.q < alpha
        _panel_title(ax, head.label, bool(getattr(head, "taxon", False)), fontsize=plt.rcParams["font.size"],
                     fontweight="bold" if called else "normal")
        ax.text(0.5, 0.98, f"\u0394 {head.effect:+.2f}, {_format_q(head.q)}".replace("-", MINUS),
                transform=ax.transAxes, ha="center", va="top", fontsize=font,
                bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8))
        low = float(np.nanmin(part[["pre_value", "post_value"]].to_numpy(float)))
        high = float(np.nanmax(part[["pre_value", "post_value"]].to_numpy(float)))
        span = (high - low) or 1.0
        ax.set_ylim(low - 0.05 * span, high + 0.22 * span)
        if is_logit_scale(scale_label):
            # immune subsets: modelled as logits, read as % of parent
            logit_percent_axis(ax, "y")
        if k % n_cols == 0:
            ax.set_ylabel("% of parent (logit-spaced)" if is_logit_scale(scale_label)
                          else scale_label or "transformed value")
    for k in range(len(panels), n_rows * n_cols):
        axes[k // n_cols, k % n_cols].axis("off")
    handles = [Line2D([], [], color=colours[lvl], marker="o", ms=3, lw=1,
                      label=RESPONSE_LABELS[lvl])
               for lvl in RESPONSE_LEVELS if (data["response"] == lvl).any()]
    handles.append(Line2D([], [], color="black", marker="s", ms=3, lw=1.6, label="median"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.suptitle((title + "\n" if title else "")
                 + f"Smallest p of the {METHOD_LABELS.get(method, method)} test; \u0394 = its "
                   f"effect ({post} {MINUS} {pre}); bold title: q < {alpha:g}",
                 fontsize=plt.rcParams["axes.titlesize"])
    # the legend row under the panels: a fixed 0.25 in, whatever the number of rows
    fig.tight_layout(rect=(0, 0.25 / fig.get_figheight(), 1, 1))
    return fig
