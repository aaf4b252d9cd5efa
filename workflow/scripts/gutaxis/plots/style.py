"""One figure style for every gutaxis plot, taken from the config's ``style`` section.

Every plot entry point calls :func:`apply_style` first and saves through
:func:`save_figure`, so fonts, sizes, palettes and formats change in one place
and a style change reruns plot rules only.

Per-figure overrides (``style.overrides``) are resolved here too, once, by the
figure's stem (its path under ``results/figures`` without the suffix):
:func:`resolve_style` gives a plot job the style with only its own override,
under the key ``figure``; :func:`figure_size` then applies the width and
height, and :func:`save_figure` hides the title when the override says so.
Plot modules never look at the overrides themselves.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# matplotlib.pyplot is imported where it is used: the workflow imports this module
# when it is parsed (the override helpers), and pyplot would add half a second
# to every `snakemake -n`.

MM_PER_INCH = 25.4
#: Okabe-Ito colours, safe for the common colour-vision deficiencies; used for
#: any level the config's palette does not name.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
#: ``gid`` of a text artist that is the figure's title (besides ``fig.suptitle``):
#: hidden by :func:`save_figure` when the figure's override sets ``title: false``.
TITLE_GID = "gutaxis-title"
#: The keys of one per-figure override and the value that leaves a key alone.
OVERRIDE_DEFAULTS = {"width": "auto", "height_mm": None, "title": True, "panels": []}


# --------------------------------------------------------------------------- per-figure overrides


def figure_stem(path) -> str:
    """A figure's name as overrides use it: its path under ``results/figures`` without the suffix.

    ``results/figures/diversity/taxa/post_vs_baseline/pcoa_braycurtis.pdf`` ->
    ``diversity/taxa/post_vs_baseline/pcoa_braycurtis``; a path not under a
    ``figures`` folder keeps all its parts (``main/figure2.png`` -> ``main/figure2``).
    """
    parts = list(PurePosixPath(str(path).replace("\\", "/")).parts)
    if "figures" in parts:
        parts = parts[len(parts) - parts[::-1].index("figures"):]
    if parts:
        name = parts[-1]
        name = name[: -len(".source.tsv")] if name.endswith(".source.tsv") else name.rsplit(".", 1)[0]
        parts[-1] = name
    return "/".join(p for p in parts if p not in ("", "."))


def override_matches(key: str, stem: str) -> bool:
    """Does the override ``key`` name the figure ``stem``?

    A key is a figure's stem or its end at a ``/`` boundary: ``pcoa_braycurtis``
    names every Bray-Curtis PCoA, ``taxa/post_vs_baseline/pcoa_braycurtis`` one of
    them, ``main/figure2`` the second main figure.
    """
    key = key.strip().strip("/")
    return bool(key) and (stem == key or stem.endswith("/" + key))


def figure_override(style: dict, stem: str) -> dict:
    """The override of figure ``stem``: the most specific matching key of ``style["overrides"]``.

    When several keys match (``volcano`` and ``differential/taxa/post_vs_baseline/volcano``),
    the one with more path parts (then the longer one) applies, alone. Keys left
    out of the override take :data:`OVERRIDE_DEFAULTS`, which leave the figure as
    its plot module draws it.
    """
    matches = [
        (key.strip("/").count("/"), len(key), key)
        for key in (style.get("overrides") or {})
        if override_matches(key, stem)
    ]
    chosen = dict(style["overrides"][max(matches)[2]] or {}) if matches else {}
    return {key: default if chosen.get(key) is None else chosen[key] for key, default in OVERRIDE_DEFAULTS.items()}


def resolve_style(style: dict, figure) -> dict:
    """The style one plot job draws with: the config's section with the figure's own override.

    ``overrides`` is replaced by ``figure`` (``stem`` plus the keys of
    :data:`OVERRIDE_DEFAULTS`), so a job's style, and with it its parameters,
    changes only when its own override does: editing the override of one figure
    reruns that figure alone.

    Parameters
    ----------
    style : dict
        The config's ``style`` section.
    figure : str or path
        The figure's stem or any of its output paths.
    """
    stem = figure_stem(figure)
    out = {key: value for key, value in style.items() if key != "overrides"}
    out["figure"] = {"stem": stem, **figure_override(style, stem)}
    return out


def unmatched_overrides(style: dict, stems) -> list[str]:
    """Override keys of ``style`` that name none of ``stems`` (a typo, or a figure this run does not make)."""
    stems = list(stems)
    return [key for key in (style.get("overrides") or {}) if not any(override_matches(key, s) for s in stems)]


def select_panels(panels, wanted) -> list:
    """The panels a main figure keeps: ``wanted`` names them by letter (A, B, ...) or by stem.

    Parameters
    ----------
    panels : list of str
        The figure's panels (module figure stems) in reading order.
    wanted : list of str
        The override's ``panels``; empty keeps them all. A letter is the panel's
        letter in the full figure; a stem may be shortened as override keys are.

    Returns
    -------
    list of str
        The kept panels, in reading order.

    Raises
    ------
    ValueError
        When an entry names no panel of the figure (the message lists them).
    """
    if not wanted:
        return list(panels)
    letters = {chr(ord("A") + i): stem for i, stem in enumerate(panels)}
    keep, unknown = set(), []
    for entry in wanted:
        entry = str(entry).strip()
        hits = [letters[entry.upper()]] if entry.upper() in letters and len(entry) == 1 else [
            stem for stem in panels if override_matches(entry, stem)]
        keep.update(hits)
        if not hits:
            unknown.append(entry)
    if unknown:
        known = ", ".join(f"{letter} = {stem}" for letter, stem in letters.items())
        raise ValueError(f"{', '.join(map(repr, unknown))} names no panel of this figure; its panels are {known}")
    return [stem for stem in panels if stem in keep]


def apply_style(style: dict) -> None:
    """Set matplotlib's rcParams from the config's ``style`` section.

    Text stays text in vector formats (``svg.fonttype = none``; TrueType in
    PDF) so journals can edit it; metadata that embeds the date is cleared
    elsewhere so reruns give identical files.
    """
    import matplotlib.pyplot as plt

    plt.rcdefaults()
    matplotlib.use("Agg")
    plt.rcParams.update(
        {
            "font.family": style["font_family"],
            "font.size": style["font_size"],
            "axes.titlesize": style["title_size"],
            "axes.labelsize": style["font_size"],
            "xtick.labelsize": style["font_size"] - 1,
            "ytick.labelsize": style["font_size"] - 1,
            "legend.fontsize": style["font_size"] - 1,
            "legend.title_fontsize": style["font_size"],
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.fonttype": "none",
            "svg.hashsalt": "gutaxis",
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
            "savefig.bbox": "tight",
            "savefig.pad_inches": 0.02,
            "figure.dpi": 100,
        }
    )


def _width_mm(style: dict, width) -> float:
    if width == "double":
        return float(style["width_double_mm"])
    if width == "single":
        return float(style["width_single_mm"])
    return float(width)


def figure_size(style: dict, width="single", aspect: float = 0.75, height: float | None = None) -> tuple[float, float]:
    """Figure size in inches: a column width and a height, after the figure's override.

    Parameters
    ----------
    style : dict
        The style of the figure (:func:`resolve_style`); its ``figure`` entry, when
        present, overrides ``width`` (``single``, ``double`` or millimetres) and the
        height (``height_mm``).
    width : "single", "double" or float
        The plot module's choice: a journal column, or millimetres.
    aspect : float
        Height / width, used when ``height`` is not given.
    height : float, optional
        The plot module's height in inches (e.g. grown with the number of rows).
    """
    override = style.get("figure") or {}
    chosen = override.get("width", "auto")
    inches = _width_mm(style, width if chosen in (None, "auto") else chosen) / MM_PER_INCH
    if override.get("height_mm") is not None:
        return inches, float(override["height_mm"]) / MM_PER_INCH
    return inches, inches * aspect if height is None else float(height)


def show_title(style: dict) -> bool:
    """Whether the figure keeps its title (the override's ``title``; true by default)."""
    return bool((style.get("figure") or {}).get("title", True))


def mark_title(*artists):
    """Mark text artists as the figure's title, so ``title: false`` hides them; returns the first."""
    for artist in artists:
        if artist is not None:
            artist.set_gid(TITLE_GID)
    return artists[0] if artists else None


#: the minus sign of figure text (a hyphen looks like a dash next to digits)
MINUS = "\u2212"


def statistic_text(name: str, value, fixed: tuple[tuple[float, int], ...]) -> str:
    """``<name> = <value>`` for a p or q value in a figure.

    Parameters
    ----------
    name : str
        ``p``, ``q``, ...
    value : float or None
    fixed : tuple of (threshold, decimals)
        Fixed decimals for the first threshold the value reaches, in order; below
        them, one-decimal scientific notation with a typographic minus.

    Returns
    -------
    str
        ``<name> = NA`` when the value is missing.
    """
    if value is None or not np.isfinite(float(value)):
        return f"{name} = NA"
    value = float(value)
    for threshold, decimals in fixed:
        if value >= threshold:
            return f"{name} = {value:.{decimals}f}"
    return f"{name} = {value:.1e}".replace("-", MINUS)


def message_figure(style: dict, text: str, title: str = ""):
    """A small figure that says why there is nothing to draw (the rule still delivers its outputs)."""
    import textwrap

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figure_size(style, "single", 0.35))
    ax.axis("off")
    ax.text(0.5, 0.5, "\n".join(textwrap.wrap(text, 60)), ha="center", va="center", transform=ax.transAxes)
    if title:
        mark_title(ax.set_title(title))
    return fig


def paired_lines(ax, x, values, color, lw: float, alpha: float, marker: str = "o", ms: float = 2.0,
                 marker_alpha: float | None = None, zorder: float = 2) -> None:
    """One pre -> post line per row of ``values`` (n x 2) from ``x[0]`` to ``x[1]``, with markers.

    Draws one LineCollection and one marker artist per call instead of ``n`` lines: a figure of
    2,500 subjects x 30 panels had 150,000 artists and took minutes to save; each segment and
    marker is still drawn on its own, so overlapping lines still darken as before.
    """
    from matplotlib.collections import LineCollection

    values = np.asarray(values, dtype=float).reshape(-1, 2)
    if not len(values):
        return
    xs = np.broadcast_to(np.asarray(x, dtype=float), values.shape)
    segments = np.stack([xs, values], axis=-1)  # (n, 2 points, xy)
    ax.add_collection(LineCollection(segments, colors=color, linewidths=lw, alpha=alpha, zorder=zorder),
                      autolim=True)
    ax.plot(xs.ravel(), values.ravel(), ls="none", marker=marker, ms=ms, color=color,
            alpha=alpha if marker_alpha is None else marker_alpha, zorder=zorder)
    ax.autoscale_view()


def hide_titles(fig) -> None:
    """Hide the figure's suptitle and every text marked with :func:`mark_title`.

    Hidden text takes no space in the saved file: ``savefig.bbox = tight`` crops
    to the visible artists.
    """
    texts = [fig._suptitle] if getattr(fig, "_suptitle", None) is not None else []
    texts += [t for t in fig.findobj(lambda a: a.get_gid() == TITLE_GID)]
    for text in texts:
        text.set_visible(False)


def palette(style: dict, kind: str, levels) -> dict[str, str]:
    """Colours for ``levels`` of ``kind`` (cohort, timepoint, response, batch ...): config first, then Okabe-Ito.

    A level the config does not name gets an Okabe-Ito colour, first one that no
    named level of any palette uses (so cohort, timepoint and response colours stay
    apart when one figure shows several of them), then one this kind does not use,
    then grey.
    """
    palettes = style.get("palette", {}) or {}
    configured = dict(palettes.get(kind, {}) or {})
    own = {str(c).upper() for c in configured.values()}
    taken = {str(c).upper() for p in palettes.values() for c in (p or {}).values()}
    spare = [c for c in OKABE_ITO if c.upper() not in taken]
    spare += [c for c in OKABE_ITO if c.upper() not in own and c not in spare]
    out = {}
    for level in levels:
        if level in configured:
            out[level] = configured[level]
        else:
            out[level] = spare.pop(0) if spare else "#777777"
    return out


def save_figure(fig, paths, style: dict, source_data: pd.DataFrame | None = None) -> None:
    """Save ``fig`` to every path (one per format), with the plotted data beside it.

    Parameters
    ----------
    fig : matplotlib Figure
    paths : iterable of str
        Output paths; the suffix chooses the format.
    style : dict
        The config's style section (dpi for raster formats).
    source_data : DataFrame, optional
        The exact data plotted, written as ``<figure>.source.tsv`` next to the
        first path, as journals ask for source data.
    """
    paths = [Path(p) for p in paths]
    override = style.get("figure") or {}
    if not show_title(style):
        hide_titles(fig)
    if override.get("height_mm") is not None:
        # plots that size their height by content (rows, panels) meet the override here;
        # a layout engine (constrained) lays the figure out again at the new size
        width, height = fig.get_size_inches()
        target = float(override["height_mm"]) / MM_PER_INCH
        if abs(height - target) > 1e-3:
            fig.set_size_inches(width, target)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = path.suffix.lstrip(".").lower()
        metadata = {"pdf": {"CreationDate": None, "ModDate": None}, "svg": {"Date": None}}.get(fmt)
        if fmt == "png":
            metadata = {"Software": None}
        extra = {}
        if fmt == "tiff":
            # Pillow writes TIFF; LZW is lossless and accepted by journals, and
            # keeps a 600-dpi double-column figure at a few MB instead of tens
            metadata = None
            extra = {"pil_kwargs": {"compression": "tiff_lzw"}}
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=fmt, dpi=style["dpi"], metadata=metadata, **extra)
        os.replace(tmp, path)
    if source_data is not None and paths:
        from gutaxis.io.tables import write_tsv

        write_tsv(source_data, source_data_path(paths[0]))
    import matplotlib.pyplot as plt

    plt.close(fig)


def source_data_path(figure_path) -> Path:
    """``results/figures/x/y.pdf`` -> ``results/figures/x/y.source.tsv``."""
    figure_path = Path(figure_path)
    return figure_path.with_name(figure_path.stem + ".source.tsv")
