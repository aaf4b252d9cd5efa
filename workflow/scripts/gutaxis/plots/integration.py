"""Integration figures: immune dynamics, clustered association heatmaps, the three-layer network, MOFA+ and top triads.

Each ``*_data`` function selects, joins and orders the rows one figure draws (every
correlation, q value, clustering order, variance explained, test and mediation
estimate comes from the tables of the integration compute rules; nothing is
estimated here) and each ``plot_*`` function draws them and returns the Figure.
Only numpy, pandas and matplotlib are imported, as in the plots environment.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.colors import TwoSlopeNorm
from matplotlib.transforms import ScaledTranslation
from matplotlib.lines import Line2D
from mpl_toolkits.axes_grid1 import make_axes_locatable

from gutaxis.io.tables import read_feature_table, read_sheet, read_tsv
from gutaxis.plots.names import (draw_parts, is_logit_scale, is_taxon, logit_percent_axis, mathtext,
                                 taxon_parts)
from gutaxis.plots.style import figure_size, mark_title, message_figure, paired_lines, palette

#: response groups; ``all`` = every subject of a study without a response (no groups shown)
RESPONSE_LEVELS = ["responder", "non_responder", "not_evaluable", "all"]
RESPONSE_LABELS = {"responder": "Responder", "non_responder": "Non-responder", "not_evaluable": "Not evaluable",
                   "all": "Subject"}
RESPONSE_SHORT = {"responder": "R", "non_responder": "NR", "not_evaluable": "NE", "all": "All"}
NO_RESPONSE = "all"
#: edge colours of positive / negative correlations: the red and blue ends of the heatmaps' RdBu
#: scale, apart from the Okabe-Ito response colours of the figures they share (Figure 4)
SIGN_COLOURS = {"positive": "#B2182B", "negative": "#2166AC"}
LAYER_NAMES = ("Microbes", "Metabolites", "Immune subsets")
MINUS = "\u2212"
DELTA = "\u0394"


# --------------------------------------------------------------------------- helpers
def response_key(values: pd.Series) -> pd.Series:
    """responder / non_responder, anything else (empty, NE) not_evaluable."""
    values = values.fillna("").astype(str)
    return values.where(values.isin(["responder", "non_responder"]), "not_evaluable")


def subject_groups(subject_ids: pd.Series, responders: pd.DataFrame | None, response_column: str) -> pd.Series:
    """The response group of each subject (:func:`response_key`), or ``all`` for every subject
    when the study has no response (``response_column`` empty or ``responders`` None)."""
    if not response_column or responders is None:
        return pd.Series(NO_RESPONSE, index=subject_ids.index)
    labels = responders.set_index("subject_id")[response_column] if response_column in responders.columns \
        else pd.Series(dtype=str)
    return response_key(subject_ids.astype(str).map(labels))


def format_p(p, name: str = "p") -> str:
    """``p = 0.47`` / ``p = 0.012`` / ``p = 3.1e-05`` (typographic minus) / ``p = NA``."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        return f"{name} = NA"
    if not np.isfinite(p):
        return f"{name} = NA"
    if p >= 0.1:
        text = f"{p:.2f}"
    elif p >= 0.001:
        text = f"{p:.3f}"
    else:
        text = f"{p:.1e}"
    return f"{name} = {text}".replace("-", MINUS)


def number(x, digits: int = 2) -> str:
    """A short number with a typographic minus; NA when missing."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "NA"
    if not np.isfinite(x):
        return "NA"
    return f"{x:.{digits}f}".replace("-", MINUS)


def scale_name(kind: str, transform: str) -> str:
    """The name of the scale a prepared modality is on (axis labels)."""
    if transform == "none":
        return "log2 intensity" if kind == "metabolome" else "value"
    return {"clr": "CLR", "rclr": "rCLR", "logit": "logit of proportion", "log2": "log2",
            "log2p1": "log2(x + 1)"}.get(transform, transform)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(str(text), width, break_long_words=False)) or str(text)


def _name_tick(feature, label, width: int) -> str:
    """A tick label: a taxon with italic and roman runs as mathtext (one string per tick), any
    other name wrapped at word boundaries (fully italic taxa are styled by :func:`_italic_ticks`)."""
    parts = taxon_parts(label, taxon=is_taxon(feature, label))
    if len(parts) > 1:
        return mathtext(label, taxon=True)
    return _wrap(label, width)


def _italic_ticks(ticklabels, features, labels) -> None:
    """Set the tick labels of whole taxon names (``Bacteroides caccae``) in italics: one SVG
    ``<text>`` with ``font-style: italic`` each (:mod:`gutaxis.plots.names`)."""
    for tick, feature, label in zip(ticklabels, features, labels):
        parts = taxon_parts(label, taxon=is_taxon(feature, label))
        if len(parts) == 1 and parts[0][1]:
            tick.set_fontstyle("italic")


#: what a proportion mediated outside [0, 1] means (figure note and caption)
PROPORTION_NOTE = ("* Proportion mediated = ACME / total effect. Above 1 or below 0 the direct and the indirect "
                   "(mediated) effects have opposite signs (inconsistent mediation): the indirect effect is "
                   "larger than the total, which the direct effect partly cancels, so the value is not a "
                   "share of the effect.")


def _axis_name(name: str, scale: str, taxon: bool, width: int) -> str:
    """A triad axis label: ``Δ <name>`` wrapped at word boundaries, the scale on a line of its own
    (never split), a taxon in italics (mathtext: one string per axis label)."""
    lines = textwrap.wrap(f"{DELTA} {name}", width, break_long_words=False) or [f"{DELTA} {name}"]
    if taxon:
        lines = [DELTA + " " + mathtext(" ".join(lines)[2:], taxon=True)]
    return "\n".join(lines + [f"({scale})"])


def _response_handles(colours: dict, levels) -> list:
    return [Line2D([], [], color=colours[lev], marker="o", markersize=3, lw=1, label=RESPONSE_LABELS[lev])
            for lev in levels]


# --------------------------------------------------------------------------- immune dynamics
def dynamics_data(table: pd.DataFrame, samples: pd.DataFrame, responders: pd.DataFrame,
                  response_column: str, pre: str, post: str) -> pd.DataFrame:
    """Long rows ``subject_id, response, feature_id, timepoint, value`` for subjects with both timepoints.

    Parameters
    ----------
    table : DataFrame
        Prepared (transformed) samples x subsets table.
    samples : DataFrame
        Sample sheet (``sample_id, subject_id, timepoint``).
    responders : DataFrame
        ``subject_id`` and the response column.
    response_column : str
        The primary responder definition.
    pre, post : str
        Timepoints shown.
    """
    sheet = samples.set_index("sample_id")[["subject_id", "timepoint"]]
    long = table.rename_axis(index="sample_id", columns="feature_id").stack().rename("value").reset_index()
    long = long.join(sheet, on="sample_id")
    long = long[long["timepoint"].isin([pre, post]) & long["value"].notna()]
    both = long.groupby(["subject_id", "feature_id"])["timepoint"].transform("nunique") == 2
    long = long[both]
    long["response"] = subject_groups(long["subject_id"], responders, response_column)
    order = {f: i for i, f in enumerate(table.columns)}
    long["_f"] = long["feature_id"].map(order)
    long["_t"] = (long["timepoint"] == post).astype(int)
    long = long.sort_values(["_f", "subject_id", "_t"], kind="stable")
    return long[["subject_id", "response", "feature_id", "timepoint", "value"]].reset_index(drop=True)


def plot_dynamics(data: pd.DataFrame, style: dict, pre: str, post: str, scale: str,
                  title: str = "", ncols: int = 5):
    """One panel per subset: each subject's pre -> post line, one pair of columns per response group."""
    if data.empty:
        return message_figure(style, f"No subject has immune samples at both {pre} and {post}.", title)
    features = list(pd.unique(data["feature_id"]))
    ncols = min(ncols, len(features))
    nrows = math.ceil(len(features) / ncols)
    width, _ = figure_size(style, "double")
    height = 1.45 * nrows + 0.55
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    levels = [lev for lev in ("non_responder", "responder", "not_evaluable", NO_RESPONSE)
              if (data["response"] == lev).any()]
    colours = palette(style, "response", RESPONSE_LEVELS)
    x0 = {lev: 1.5 * i for i, lev in enumerate(levels)}
    for ax, feature in zip(axes.ravel(), features):
        rows = data[data["feature_id"] == feature]
        for lev in levels:
            wide = rows[rows["response"] == lev].pivot(index="subject_id", columns="timepoint", values="value")
            if wide.empty:
                continue
            paired_lines(ax, [x0[lev], x0[lev] + 1.0], wide[[pre, post]].to_numpy(float), colours[lev],
                         lw=0.5, alpha=0.55, ms=1.6, marker_alpha=0.8)
        ax.set_title(_wrap(feature, 20), fontsize=style["font_size"] - 1, pad=2)
        ax.set_xticks([x0[lev] + 0.5 for lev in levels])
        ax.set_xticklabels([RESPONSE_SHORT[lev] if lev != NO_RESPONSE else "" for lev in levels],
                           fontsize=style["font_size"] - 2)
        ax.tick_params(axis="x", length=0)
        ax.set_xlim(-0.3, x0[levels[-1]] + 1.3)
        if is_logit_scale(scale):
            # modelled as logits, read as % of parent: percent ticks at logit-spaced positions
            ax.autoscale_view()
            logit_percent_axis(ax, "y")
        ax.tick_params(axis="y", labelsize=style["font_size"] - 2)
    for ax in axes.ravel()[len(features):]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel("% of parent (logit-spaced)" if is_logit_scale(scale) else scale,
                          fontsize=style["font_size"] - 1)
    shown = [lev for lev in levels if lev != NO_RESPONSE]
    if shown:
        handles = _response_handles(colours, shown)
        fig.legend(handles=handles, labels=[f"{RESPONSE_SHORT[lev]}: {RESPONSE_LABELS[lev]}" for lev in shown],
                   loc="upper center", ncol=len(shown), frameon=False, bbox_to_anchor=(0.5, 1 - 0.3 / height))
    # fig.text, not suptitle: tight_layout would reserve the suptitle's space a second time
    mark_title(fig.text(0.5, 1.0, f"{title}\neach line: one subject, {pre} (left) \u2192 {post} (right)",
                        ha="center", va="top", fontsize=style["title_size"]))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / height), h_pad=0.5, w_pad=0.4)
    return fig


# --------------------------------------------------------------------------- heatmap
def plot_heatmap(heatmap: pd.DataFrame, style: dict, title: str, mark_q: float,
                 name_a: str, name_b: str, rho_label: str = "Spearman \u03c1"):
    """Clustered heatmap of rho, rows and columns in the order the compute rule wrote, q < mark_q starred."""
    if heatmap.empty:
        return message_figure(style, "No association was tested in this block and view.", title)
    rows = heatmap.drop_duplicates("feature_a").sort_values("row_order")
    cols = heatmap.drop_duplicates("feature_b").sort_values("col_order")
    rho = heatmap.pivot(index="feature_a", columns="feature_b", values="rho").loc[rows["feature_a"], cols["feature_b"]]
    q = heatmap.pivot(index="feature_a", columns="feature_b", values="q").loc[rows["feature_a"], cols["feature_b"]]
    n_r, n_c = rho.shape
    width, _ = figure_size(style, "double")
    cell = min(0.16, (width - 2.6) / max(n_c, 1))
    height = max(2.2, cell * n_r + 2.2)
    fig, ax = plt.subplots(figsize=(width, height))
    limit = max(0.1, float(np.nanmax(np.abs(rho.to_numpy()))) if np.isfinite(rho.to_numpy()).any() else 1.0)
    image = ax.imshow(rho.to_numpy(dtype=float), cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -limit, limit),
                      aspect="equal", interpolation="nearest")
    values = rho.to_numpy(dtype=float)
    for i, j in np.argwhere(q.to_numpy(dtype=float) < mark_q):
        ax.text(j, i, "*", ha="center", va="center", fontsize=style["font_size"] - 1,
                color="white" if abs(values[i, j]) > 0.6 * limit else "black")
    ax.set_xticks(range(n_c))
    ax.set_xticklabels([_name_tick(f, v, 30) for f, v in zip(cols["feature_b"], cols["label_b"])], rotation=90,
                       fontsize=style["font_size"] - 2)
    ax.set_yticks(range(n_r))
    ax.set_yticklabels([_name_tick(f, v, 40) for f, v in zip(rows["feature_a"], rows["label_a"])],
                       fontsize=style["font_size"] - 2)
    _italic_ticks(ax.get_xticklabels(), cols["feature_b"], cols["label_b"])
    _italic_ticks(ax.get_yticklabels(), rows["feature_a"], rows["label_a"])
    ax.set_xlabel(name_b)
    ax.set_ylabel(name_a)
    for spine in ax.spines.values():
        spine.set_visible(False)
    # a colour bar as tall as the cells; it also says what the stars mean, so that stays when
    # the title is left out
    cax = make_axes_locatable(ax).append_axes("right", size=0.12, pad=0.1)
    bar = fig.colorbar(image, cax=cax)
    bar.set_label(f"{rho_label}\n* q < {mark_q:g} (BH over the whole block)", fontsize=style["font_size"] - 1)
    bar.ax.tick_params(labelsize=style["font_size"] - 2)
    mark_title(ax.set_title(title, fontsize=style["title_size"]))
    return fig


# --------------------------------------------------------------------------- network
def network_data(links_xm: pd.DataFrame, links_my: pd.DataFrame, labels: list[pd.Series],
                 max_q: float, max_edges: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Edges (significant change-view links) and node positions of the three-layer network.

    Edges: the links with ``q < max_q`` of each block, at most ``max_edges`` per
    block (smallest q first, as the tables are ordered). Nodes: every feature on
    an edge; within a layer, metabolites are placed by label, microbes and immune
    subsets at the mean position of their metabolite neighbours, and metabolites
    then at the mean of all their neighbours (a two-pass barycentre ordering that
    reduces crossings; presentation only).

    Returns
    -------
    edges : DataFrame
        ``layer_from, source, target, label_source, label_target, rho, q, sign,
        line_width`` (points, :func:`edge_width`).
    nodes : DataFrame
        ``layer, feature_id, label, taxon, y`` (y in [0, 1], top = 1; ``taxon``: the
        name is set in italics).
    """
    parts = []
    for layer, links in ((0, links_xm), (1, links_my)):
        sig = links[links["q"] < max_q].head(max_edges)
        parts.append(pd.DataFrame({
            "layer_from": layer, "source": sig["feature_a"].astype(str), "target": sig["feature_b"].astype(str),
            "rho": sig["rho"].astype(float), "q": sig["q"].astype(float)}))
    edges = pd.concat(parts, ignore_index=True)
    edges["sign"] = np.where(edges["rho"] >= 0, "positive", "negative")
    edges["line_width"] = edge_width(edges["rho"])
    if edges.empty:
        return (edges.assign(label_source=[], label_target=[]),
                pd.DataFrame(columns=["layer", "feature_id", "label", "taxon", "y"]))
    edges["label_source"] = [_label(labels[lay], s) for lay, s in zip(edges["layer_from"], edges["source"])]
    edges["label_target"] = [_label(labels[lay + 1], t) for lay, t in zip(edges["layer_from"], edges["target"])]
    xm, my = edges[edges["layer_from"] == 0], edges[edges["layer_from"] == 1]
    metabolites = sorted(set(xm["target"]) | set(my["source"]), key=lambda f: (_label(labels[1], f), f))
    pos_m = _positions(metabolites)
    microbes = _barycentre(xm, "source", "target", pos_m)
    immune = _barycentre(my, "target", "source", pos_m)
    pos_x, pos_y = _positions(microbes), _positions(immune)
    neighbour = pd.concat([
        pd.DataFrame({"m": xm["target"], "y": xm["source"].map(pos_x)}),
        pd.DataFrame({"m": my["source"], "y": my["target"].map(pos_y)})])
    centre = neighbour.groupby("m")["y"].mean()
    metabolites = sorted(metabolites, key=lambda f: (-centre.get(f, 0.5), _label(labels[1], f), f))
    pos_m = _positions(metabolites)
    nodes = pd.concat([
        pd.DataFrame({"layer": layer, "feature_id": ids, "label": [_label(labels[layer], f) for f in ids],
                      # the microbe layer is taxa: its names are set in italics
                      "taxon": [is_taxon(f, _label(labels[layer], f), hint=layer == 0) for f in ids],
                      "y": [pos[f] for f in ids]})
        for layer, ids, pos in ((0, microbes, pos_x), (1, metabolites, pos_m), (2, immune, pos_y))],
        ignore_index=True)
    cols = ["layer_from", "source", "target", "label_source", "label_target", "rho", "q", "sign", "line_width"]
    return edges[cols], nodes


#: edge width (points) = EDGE_WIDTH_MIN + EDGE_WIDTH_SCALE * rho^2: squared so that |rho| 0.4
#: (0.9 pt) and 0.85 (3.2 pt) are told apart at a glance, on the same scale in every run
EDGE_WIDTH_MIN, EDGE_WIDTH_SCALE = 0.3, 4.0


def edge_width(rho) -> np.ndarray:
    """Line width in points of an edge of correlation ``rho``: ``0.3 + 4 rho^2`` (absolute, not
    relative to the strongest edge, so the key means the same in every figure)."""
    rho = np.asarray(rho, dtype=float)
    return EDGE_WIDTH_MIN + EDGE_WIDTH_SCALE * rho ** 2


def width_key(rho) -> list[float]:
    """Round |rho| values (one decimal) for the width key: the weakest and strongest edges'
    |rho| rounded to 0.1, and a middle one when they are 0.3 or more apart."""
    values = np.abs(np.asarray(rho, dtype=float))
    values = values[np.isfinite(values)]
    if not values.size:
        return []
    low = max(0.1, round(float(values.min()), 1))
    high = min(1.0, max(low, round(float(values.max()), 1)))
    keys = [low, high] if high > low else [low]
    if high - low >= 0.3 - 1e-9:
        keys.insert(1, round((low + high) / 2.0, 1))
    return sorted(set(keys))


def _label(labels: pd.Series, feature: str) -> str:
    value = labels.get(feature) if labels is not None else None
    return str(value) if value is not None and value == value else str(feature)


def _positions(ids) -> dict:
    n = len(ids)
    return {f: (1.0 - i / (n - 1)) if n > 1 else 0.5 for i, f in enumerate(ids)}


def _barycentre(edges: pd.DataFrame, own: str, other: str, pos: dict) -> list:
    centre = edges.assign(y=edges[other].map(pos)).groupby(own)["y"].mean()
    return sorted(centre.index, key=lambda f: (-centre[f], f))


#: places of a metabolite label with edges on both sides, (dx, dy points, ha, va), in order of
#: preference: centred above, centred below, then above/below to the right or left of the node
METABOLITE_LABEL_PLACES = ((0, 4, "center", "bottom"), (0, -4, "center", "top"), (3, 4, "left", "bottom"),
                           (-3, 4, "right", "bottom"), (3, -4, "left", "top"), (-3, -4, "right", "top"))


def _crossings(ax, edges, y_of, xs, label: str, y: float, place, size: float) -> int:
    """How many edges pass through a metabolite label's box at ``place`` (dx, dy, ha, va).

    The box is the label's extent (measured with the figure's renderer) placed as the text
    would be; an edge crosses it when its height at some x of the box lies inside it
    (straight edges, sampled at 9 points across the box). Ties keep the earlier place."""
    dx, dy, ha, _ = place
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    from matplotlib.font_manager import FontProperties

    w, h, _ = renderer.get_text_width_height_descent(label, FontProperties(size=size), ismath=False)
    to_data = ax.transData.inverted()
    x0, y0 = ax.transData.transform((xs[1], y))
    shift = dy * fig.dpi / 72.0
    x0 += dx * fig.dpi / 72.0
    lo, hi = (y0 + shift, y0 + shift + h) if dy > 0 else (y0 + shift - h, y0 + shift)
    left = {"center": x0 - w / 2, "left": x0, "right": x0 - w}[ha]
    (bx0, by0), (bx1, by1) = to_data.transform([(left, lo), (left + w, hi)])
    count = 0
    for e in edges.itertuples(index=False):
        xa, xb = xs[e.layer_from], xs[e.layer_from + 1]
        ya, yb = y_of[(e.layer_from, e.source)], y_of[(e.layer_from + 1, e.target)]
        grid = np.linspace(max(bx0, xa), min(bx1, xb), 9)
        if grid[0] > grid[-1]:
            continue
        heights = ya + (yb - ya) * (grid - xa) / (xb - xa)
        count += int(((heights > by0) & (heights < by1)).any())
    return count


def plot_network(edges: pd.DataFrame, nodes: pd.DataFrame, style: dict, layer_names, max_q: float,
                 title: str = ""):
    """Three columns of nodes (microbes, metabolites, immune), edges coloured by the sign of rho."""
    if edges.empty:
        return message_figure(style, f"No change-view link with q < {max_q:g} between the layers.", title)
    width, _ = figure_size(style, "double")
    n_max = int(nodes.groupby("layer").size().max())
    height = max(2.5, min(9.0, 0.22 * n_max + 1.2))
    fig, ax = plt.subplots(figsize=(width, height))
    xs = (0.0, 1.0, 2.0)
    y_of = {(r.layer, r.feature_id): r.y for r in nodes.itertuples(index=False)}
    widths = edges["line_width"] if "line_width" in edges.columns else pd.Series(edge_width(edges["rho"]))
    for e, lw in zip(edges.itertuples(index=False), widths):
        y0 = y_of[(e.layer_from, e.source)]
        y1 = y_of[(e.layer_from + 1, e.target)]
        ax.plot([xs[e.layer_from], xs[e.layer_from + 1]], [y0, y1], color=SIGN_COLOURS[e.sign],
                lw=float(lw), alpha=0.75, solid_capstyle="round", zorder=1)
    # which side of a metabolite node has edges: its label goes to a free side when there is one
    left = set(edges.loc[edges["layer_from"] == 0, "target"])
    right = set(edges.loc[edges["layer_from"] == 1, "source"])
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    size = style["font_size"] - 2
    for layer in range(3):
        sub = nodes[nodes["layer"] == layer]
        ax.scatter(np.full(len(sub), xs[layer]), sub["y"], s=16, color="white", edgecolor="black",
                   linewidth=0.7, zorder=3)
        for r in sub.itertuples(index=False):
            # microbes labelled left, immune subsets right; a metabolite on its side without edges,
            # or above its node (edges on both sides), with a white halo so an edge passing
            # behind the text stays visible around the letters instead of being cut by a box
            if layer == 0:
                dx, dy, ha, va = -6, 0, "right", "center"
            elif layer == 2:
                dx, dy, ha, va = 6, 0, "left", "center"
            elif r.feature_id not in right:
                dx, dy, ha, va = 6, 0, "left", "center"
            elif r.feature_id not in left:
                dx, dy, ha, va = -6, 0, "right", "center"
            else:
                # edges on both sides: above or below the node, whichever box fewer edges cross
                dx, dy, ha, va = min(METABOLITE_LABEL_PLACES,
                                     key=lambda c: _crossings(ax, edges, y_of, xs, r.label, r.y, c, size))
            taxon = bool(getattr(r, "taxon", False))
            parts = taxon_parts(r.label, taxon=taxon)
            at = ax.transData + ScaledTranslation(dx / 72.0, dy / 72.0, fig.dpi_scale_trans)
            if len(parts) == 1:
                parts = [(_wrap(parts[0][0], 34), parts[0][1])]
            draw_parts(ax, xs[layer], r.y, parts, ha=ha, va=va, transform=at, fontsize=size, zorder=4,
                       path_effects=halo if layer == 1 else None, gid=f"network-label-{layer}")
        ax.text(xs[layer], 1.1, layer_names[layer], ha="center", va="bottom", fontweight="bold")
    ax.set_xlim(-0.9, 2.9)
    ax.set_ylim(-0.05, 1.16)
    ax.axis("off")
    keys = width_key(edges["rho"])
    handles = [Line2D([], [], color=SIGN_COLOURS["positive"], lw=2, label="positive \u03c1"),
               Line2D([], [], color=SIGN_COLOURS["negative"], lw=2, label="negative \u03c1")]
    handles += [Line2D([], [], color="grey", lw=float(edge_width(k)), solid_capstyle="butt",
                       label=f"|\u03c1| = {k:.1f}") for k in keys]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=len(handles), frameon=False,
              handlelength=3.0)
    mark_title(ax.set_title(title, pad=14))
    return fig


# --------------------------------------------------------------------------- MOFA
def not_fitted_reason(status: pd.DataFrame) -> str | None:
    """None when MOFA was fitted, else the reason from the status table."""
    row = status.iloc[0]
    if row["status"] == "fitted":
        return None
    return f"MOFA+ was not fitted: {row['reason']}"


def plot_mofa_variance(variance: pd.DataFrame, status: pd.DataFrame, style: dict, title: str = ""):
    """Heatmap of % variance explained per factor (rows) and view (columns), totals in the column labels."""
    reason = not_fitted_reason(status)
    if reason:
        return message_figure(style, reason, title)
    per = variance[variance["factor"] != "all"]
    total = variance[variance["factor"] == "all"].set_index("view")["variance_explained"]
    factors = list(pd.unique(per["factor"]))
    views = list(pd.unique(per["view"]))
    grid = 100 * per.pivot(index="factor", columns="view", values="variance_explained").loc[factors, views]
    width, _ = figure_size(style, "single")
    fig, ax = plt.subplots(figsize=(width, 0.9 + 0.28 * len(factors)))
    values = grid.to_numpy(dtype=float)
    top = max(1.0, float(np.nanmax(values)))
    image = ax.imshow(np.clip(values, 0, None), cmap="Blues", vmin=0, vmax=top, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.1f}", ha="center", va="center",
                    color="white" if values[i, j] > 0.6 * top else "black", fontsize=style["font_size"] - 1)
    ax.set_xticks(range(len(views)))
    ax.set_xticklabels([f"{v}\n(all: {100 * total.get(v, np.nan):.1f}%)" for v in views])
    ax.set_yticks(range(len(factors)))
    ax.set_yticklabels(factors)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(image, ax=ax, pad=0.03)
    bar.set_label("Variance explained (%)")
    mark_title(ax.set_title(title))
    return fig


def mofa_scores_data(factors: pd.DataFrame, responders: pd.DataFrame, response_column: str) -> pd.DataFrame:
    """Factor scores with the subject's response label."""
    out = factors.copy()
    out["response"] = subject_groups(out["subject_id"], responders, response_column)
    return out[["subject_id", "timepoint", "response", "factor", "score"]]


def plot_mofa_scores(data: pd.DataFrame, tests: pd.DataFrame, status: pd.DataFrame, style: dict,
                     pre: str, post: str, title: str = ""):
    """One panel per factor: subject lines pre -> post coloured by response; test p values in the titles."""
    reason = not_fitted_reason(status)
    if reason:
        return message_figure(style, reason, title)
    factors = list(pd.unique(data["factor"]))
    ncols = min(5, len(factors))
    nrows = math.ceil(len(factors) / ncols)
    width, _ = figure_size(style, "double")
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 2.0 * nrows + 0.5), squeeze=False, sharey=False)
    colours = palette(style, "response", RESPONSE_LEVELS)
    levels = [lev for lev in RESPONSE_LEVELS if (data["response"] == lev).any()]
    time_tests = tests[tests["test"] == "time_paired_wilcoxon"].set_index("factor")
    resp_tests = tests[tests["test"].str.startswith("response_")].set_index("factor")
    for ax, factor in zip(axes.ravel(), factors):
        rows = data[data["factor"] == factor]
        wide = rows.pivot(index="subject_id", columns="timepoint", values="score").reindex(columns=[pre, post])
        resp = rows.drop_duplicates("subject_id").set_index("subject_id")["response"]
        for lev in levels:
            sub = wide[resp.reindex(wide.index) == lev]
            if sub.empty:
                continue
            offset = {"non_responder": -0.06, "responder": 0.06}.get(lev, 0.0)
            y = sub.to_numpy().T
            xs = np.array([0.0, 1.0]) + offset
            ax.plot(xs, y, color=colours[lev], lw=0.5, alpha=0.5)
            ax.plot(np.repeat(xs[:, None], y.shape[1], axis=1), y, ls="none", marker="o", ms=1.8,
                    color=colours[lev], alpha=0.8)
        ax.set_xticks([0, 1])
        ax.set_xticklabels([pre, post])
        ax.set_xlim(-0.4, 1.4)
        lines = [factor]
        if factor in time_tests.index:
            lines.append(f"time {format_p(time_tests.loc[factor, 'p'])}")
        if factor in resp_tests.index:
            lines.append(f"R vs NR {format_p(resp_tests.loc[factor, 'p'])}")
        ax.set_title("\n".join(lines), fontsize=style["font_size"] - 1)
    for ax in axes.ravel()[len(factors):]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel("Factor score")
    height = fig.get_figheight()
    shown = [lev for lev in levels if lev != NO_RESPONSE]
    if shown:
        fig.legend(handles=_response_handles(colours, shown), loc="upper center", ncol=len(shown),
                   frameon=False, bbox_to_anchor=(0.5, 1 - 0.3 / height))
    tests_text = f"time: paired Wilcoxon {post} vs {pre}" + (
        f"; R vs NR: Mann\u2013Whitney at {pre}" if shown else "")
    mark_title(fig.text(0.5, 1.0, f"{title}\n{tests_text}", ha="center", va="top", fontsize=style["title_size"]))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.55 / height))
    return fig


# --------------------------------------------------------------------------- triads
def triads_plot_data(data: pd.DataFrame, responders: pd.DataFrame, response_column: str) -> pd.DataFrame:
    """Per-subject changes of the top triads with the subject's response label."""
    out = data.copy()
    out["response"] = subject_groups(out["subject_id"], responders, response_column)
    return out


def plot_triads(triads: pd.DataFrame, data: pd.DataFrame, labels: list[pd.Series], scales: list[str],
                style: dict, fdr_level: float, n_rep: int | None = None, title: str = ""):
    """Small multiples: one row per top triad, three scatter panels of the within-subject changes.

    Each row's heading gives the ACME, its CI, the proportion mediated and the ACME q; with
    `n_rep` (bootstrap replicates per triad) a triad whose ACME p is at its floor
    ``2 / (n_rep + 1)`` (every replicate on one side) is marked so.
    """
    ranks = list(pd.unique(data["rank"])) if not data.empty else []
    if not ranks:
        return message_figure(style, "No triad was tested (no chain of significant, sign-consistent "
                                     "change-view links).", title)
    width, _ = figure_size(style, "double")
    height = 2.1 * len(ranks) + 0.6
    fig, axes = plt.subplots(len(ranks), 3, figsize=(width, height), squeeze=False)
    colours = palette(style, "response", RESPONSE_LEVELS)
    levels = [lev for lev in RESPONSE_LEVELS if (data["response"] == lev).any()]
    table = triads.set_index("rank")
    pairs = (("microbe", "metabolite"), ("metabolite", "immune"), ("microbe", "immune"))
    layer = {"microbe": 0, "metabolite": 1, "immune": 2}
    heads = []
    any_inconsistent = False
    for row_axes, rank in zip(axes, ranks):
        rows = data[data["rank"] == rank]
        t = table.loc[rank]
        names = {k: _label(labels[layer[k]], t[k]) for k in layer}
        rho = {("microbe", "metabolite"): t["rho_microbe_metabolite"],
               ("metabolite", "immune"): t["rho_metabolite_immune"],
               ("microbe", "immune"): t["rho_microbe_immune"]}
        for ax, (xk, yk) in zip(row_axes, pairs):
            for lev in levels:
                sub = rows[rows["response"] == lev]
                ax.scatter(sub[f"{xk}_change"], sub[f"{yk}_change"], s=7, color=colours[lev], alpha=0.85,
                           linewidths=0)
            ax.axhline(0, color="#BBBBBB", lw=0.5, zorder=0)
            ax.axvline(0, color="#BBBBBB", lw=0.5, zorder=0)
            ax.set_xlabel(_axis_name(names[xk], scales[layer[xk]], xk == "microbe", 40),
                          fontsize=style["font_size"] - 1)
            ax.set_ylabel(_axis_name(names[yk], scales[layer[yk]], yk == "microbe", 28),
                          fontsize=style["font_size"] - 1)
            ax.tick_params(labelsize=style["font_size"] - 2)
            ax.text(0.03, 0.97, f"\u03c1 = {number(rho[(xk, yk)])}", transform=ax.transAxes, ha="left",
                    va="top", fontsize=style["font_size"] - 1, zorder=5,
                    bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8))
        q = float(t["acme_q"])
        # bootstrap p = min(1, 2 (b + 1) / (n_rep + 1)) is never 0 (gutaxis.integration.triads.bootstrap_p); at its
        # floor 2 / (n_rep + 1) every replicate fell on one side, which the heading says
        q_text = format_p(q, "q")
        if n_rep and float(t["acme_p"]) <= 2 / (n_rep + 1) * (1 + 1e-9):
            q_text += f" (ACME p at its floor 2/{n_rep + 1}: every replicate on one side)"
        called = "called" if q < fdr_level else "not called"
        prop = float(t["prop_mediated"]) if pd.notna(t["prop_mediated"]) else np.nan
        # a proportion outside [0, 1]: direct and indirect effects of opposite signs (inconsistent
        # mediation), so ACME / total effect is not a share; the heading says so where it happens
        inconsistent = bool(np.isfinite(prop) and (prop > 1 or prop < 0))
        any_inconsistent = any_inconsistent or inconsistent
        prop_note = "*" if inconsistent else ""
        heads.append(([(f"#{rank}  ", False)] + taxon_parts(names["microbe"], taxon=True)
                      + [(f" \u2192 {names['metabolite']} \u2192 {names['immune']}", False)],
                      f"mediation: ACME {number(t['acme'])} [{number(t['acme_ci_low'])}, "
                      f"{number(t['acme_ci_high'])}], proportion mediated {number(t['prop_mediated'])}"
                      f"{prop_note}, {q_text} ({called} at FDR {fdr_level:g})"))
    shown = [lev for lev in levels if lev != NO_RESPONSE]
    if shown:
        fig.legend(handles=[Line2D([], [], ls="none", marker="o", ms=3, color=colours[lev],
                                   label=RESPONSE_LABELS[lev]) for lev in shown],
                   loc="upper center", ncol=len(shown), frameon=False, bbox_to_anchor=(0.5, 1 - 0.2 / height))
    mark_title(fig.text(0.5, 1.0, title, ha="center", va="top", fontsize=style["title_size"]))
    # h_pad leaves room for each row's two-line heading above its panels
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / height), h_pad=4.2, w_pad=1.0)
    # row headings after the layout, so their length does not squeeze the panels
    size = style["font_size"] - 0.5
    chars = int(fig.get_figwidth() * 72 / (0.55 * size))
    if any_inconsistent:
        # the note under the panels: why a "proportion" can exceed 1 or be negative
        fig.text(0.01, 0.0, _wrap(PROPORTION_NOTE, chars), ha="left", va="top", fontsize=size - 0.5,
                 linespacing=1.3)
    line = size * 1.3 / 72.0 / height  # one heading line, in figure fraction
    for row_axes, (chain, stats) in zip(axes, heads):
        box = row_axes[0].get_position()
        stats_text = _wrap(stats, chars)
        fig.text(0.01, box.y1 + 0.1 / height, stats_text, ha="left", va="bottom", fontsize=size, linespacing=1.3)
        # the chain above its statistics: one line, the microbe in italics (gutaxis.plots.names)
        draw_parts(fig, 0.01, box.y1 + 0.1 / height + line * (stats_text.count("\n") + 1), chain, ha="left",
                   va="bottom", transform=fig.transFigure, fontsize=size, gid="triad-heading")
    return fig


# --------------------------------------------------------------------------- the plot rules
# Each function below draws the figure of one plot rule from the rule's input paths and params
# (attribute namespaces, as Snakemake passes them) and returns it with its source data.


def _feature_labels(path) -> pd.Series:
    return read_tsv(path, dtype=str, keep_default_na=False).set_index("feature_id")["label"]


def _responders(inputs, params) -> pd.DataFrame | None:
    """The responder labels, None when the study has no response (no input then)."""
    return read_sheet(inputs.responders) if params.response else None


def _scale(path) -> str:
    notes = read_sheet(path).set_index("key")["value"]
    return scale_name(notes.get("kind", ""), notes.get("transform", ""))


def dynamics_figure(inputs, params, wildcards):
    """Paired immune dynamics of one modality by response."""
    data = dynamics_data(read_feature_table(inputs.table), read_sheet(inputs.samples),
                         _responders(inputs, params), params.response, params.pre, params.post)
    by_response = f" by response ({params.response})" if params.response else ""
    fig = plot_dynamics(data, params.style, params.pre, params.post, _scale(inputs.notes),
                        title=f"{params.title}: {params.pre} \u2192 {params.post}" + by_response)
    return fig, data


def heatmap_figure(inputs, params, wildcards):
    """The clustered heatmap of one block and view."""
    data = read_tsv(inputs.heatmap, dtype={"feature_a": str, "feature_b": str, "label_a": str, "label_b": str})
    summary = read_tsv(inputs.summary, keep_default_na=False).iloc[0]
    if summary.get("method", "") == "partial_spearman":
        rho_label = f"partial Spearman \u03c1 | {summary['covariate_terms'].split('[')[0]}"
    else:
        rho_label = "Spearman \u03c1"
    title = (f"{params.modality_a} vs {params.modality_b}, {wildcards.view} view "
             f"(n = {summary.get('n', '')} subjects): strongest associations")
    fig = plot_heatmap(data, params.style, title, params.mark_q, params.modality_a, params.modality_b, rho_label)
    return fig, data


def network_figure(inputs, params, wildcards):
    """The three-layer network of the change-view links; its source data are the edges."""
    dtypes = {"feature_a": str, "feature_b": str}
    edges, nodes = network_data(read_tsv(inputs.links_xm, dtype=dtypes), read_tsv(inputs.links_my, dtype=dtypes),
                                [_feature_labels(path) for path in inputs.features],
                                params.network["max_q"], params.network["max_edges"])
    names = [f"{layer}\n({m})" for layer, m in zip(LAYER_NAMES, params.modalities)]
    fig = plot_network(edges, nodes, params.style, names, params.network["max_q"],
                       title=f"Within-subject change links with q < {params.network['max_q']:g}")
    source = edges.merge(nodes.rename(columns={"layer": "layer_from", "feature_id": "source", "y": "y_source"})
                         [["layer_from", "source", "y_source"]], on=["layer_from", "source"], how="left")
    return fig, source


def mofa_variance_figure(inputs, params, wildcards):
    """MOFA+ variance explained per factor and view."""
    data = read_tsv(inputs.variance_explained)
    fig = plot_mofa_variance(data, read_tsv(inputs.status, keep_default_na=False), params.style,
                             title="MOFA+ variance explained")
    return fig, data


def mofa_scores_figure(inputs, params, wildcards):
    """MOFA+ factor scores by timepoint (and response)."""
    data = mofa_scores_data(read_tsv(inputs.factors, dtype={"subject_id": str}), _responders(inputs, params),
                            params.response)
    title = ("MOFA+ factor scores by timepoint and response " + f"({params.response})" if params.response
             else "MOFA+ factor scores by timepoint")
    fig = plot_mofa_scores(data, read_tsv(inputs.factor_tests), read_tsv(inputs.status, keep_default_na=False),
                           params.style, params.pre, params.post, title=title)
    return fig, data


def triads_figure(inputs, params, wildcards, top: int | None = None):
    """All top triads, or the first ``top`` of them (the main-figure panel)."""
    data = triads_plot_data(read_tsv(inputs.data, dtype={"subject_id": str}), _responders(inputs, params),
                            params.response)
    if top is not None:
        data = data[data["rank"].isin(list(pd.unique(data["rank"]))[:top])].reset_index(drop=True)
    summary = read_tsv(inputs.summary).iloc[0]
    fig = plot_triads(read_tsv(inputs.triads), data, [_feature_labels(path) for path in inputs.features],
                      [_scale(path) for path in inputs.notes], params.style, params.fdr_level,
                      n_rep=int(summary["n_rep"]),
                      title="Top microbe \u2192 metabolite \u2192 immune triads (within-subject changes, "
                            f"{params.post} \u2212 {params.pre})")
    return fig, data


#: the figure function of each plot rule (its ``params.figure``)
FIGURES = {"dynamics": dynamics_figure, "heatmap": heatmap_figure, "network": network_figure,
           "mofa_variance": mofa_variance_figure, "mofa_scores": mofa_scores_figure, "triads": triads_figure}
#: the main-figure panel of the triads figure shows this many top triads
PANEL_TRIADS = 2


def integration_figures(inputs, params, wildcards, panel: bool = False) -> Iterator[tuple[str, object, pd.DataFrame]]:
    """The figures of one integration plot rule, drawn one at a time.

    Parameters
    ----------
    inputs, params, wildcards
        The rule's input paths, params (``figure`` picks the entry of :data:`FIGURES`,
        ``style`` and the figure's own) and wildcards, as attributes.
    panel : bool
        Also draw the main-figure panel (the triads figure: its :data:`PANEL_TRIADS` top triads).

    Yields
    ------
    (output, Figure, DataFrame)
        The rule output the figure goes to (``figures`` or ``panel``), the figure and its
        source data.
    """
    yield ("figures", *FIGURES[params.figure](inputs, params, wildcards))
    if panel and params.figure == "triads":
        yield ("panel", *triads_figure(inputs, params, wildcards, top=PANEL_TRIADS))
