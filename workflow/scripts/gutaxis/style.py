"""One figure style for every gutaxis plot, taken from the config's ``style`` section.

Every plot entry point calls :func:`apply_style` first and saves through
:func:`save_figure`, so fonts, sizes, palettes and formats change in one place
and a style change reruns plot rules only.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

MM_PER_INCH = 25.4
#: Okabe-Ito colours, safe for the common colour-vision deficiencies; used for
#: any level the config's palette does not name.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def apply_style(style: dict) -> None:
    """Set matplotlib's rcParams from the config's ``style`` section.

    Text stays text in vector formats (``svg.fonttype = none``; TrueType in
    PDF) so journals can edit it; metadata that embeds the date is cleared
    elsewhere so reruns give identical files.
    """
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


def figure_size(style: dict, width: str = "single", aspect: float = 0.75) -> tuple[float, float]:
    """Figure size in inches for a single- or double-column width and a height/width ratio."""
    width_mm = style["width_double_mm"] if width == "double" else style["width_single_mm"]
    inches = width_mm / MM_PER_INCH
    return inches, inches * aspect


def palette(style: dict, kind: str, levels) -> dict[str, str]:
    """Colours for ``levels`` of ``kind`` (cohort, timepoint, response): config first, then Okabe-Ito."""
    configured = dict(style.get("palette", {}).get(kind, {}))
    spare = [c for c in OKABE_ITO if c not in configured.values()]
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
        from gutaxis.tables import write_tsv

        write_tsv(source_data, source_data_path(paths[0]))
    plt.close(fig)


def source_data_path(figure_path) -> Path:
    """``results/figures/x/y.pdf`` -> ``results/figures/x/y.source.tsv``."""
    figure_path = Path(figure_path)
    return figure_path.with_name(figure_path.stem + ".source.tsv")
