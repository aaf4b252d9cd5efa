"""Main (paper) figures composed from the module figures, with panel letters.

The module plot functions build whole figures, not panels on a given axes, so
a main figure places each module figure's raster (PNG/TIFF at the style's dpi)
in a row-wise grid. Vector formats of a main figure therefore embed rasters;
the module figures themselves stay fully vector. The plotted data of every
panel is concatenated into the main figure's source data with a ``panel``
column, so no number is recomputed here.
"""

from __future__ import annotations

from string import ascii_uppercase
from typing import Sequence

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gutaxis.plots.style import MM_PER_INCH, figure_size


def panel_layout(sizes, width: float, gap: float = 0.08) -> tuple[list, float, float]:
    """Place panels at their own size, row by row, shrinking a row only when it is too wide.

    A row is a list of cells side by side; a cell is a list of panels stacked
    top to bottom. Panels keep their native size (the module figures are drawn
    at the configured column widths and font sizes, so 1:1 keeps the fonts at
    the configured size); a row wider than ``width`` is scaled down as a
    whole, never up.

    Parameters
    ----------
    sizes : list (rows) of lists (cells) of lists of (width, height)
        Native panel sizes in inches.
    width : float
        Maximum figure width in inches (the double-column width).
    gap : float
        Space between cells, panels and rows, in inches.

    Returns
    -------
    rects : list of (x, y, w, h) in inches from the top-left corner, in
        reading order (row, then cell, then panel).
    used_width, height : float
        The figure's width and height in inches.
    """
    rects, top, used_width = [], 0.0, 0.0
    for row in sizes:
        cell_w = [max(w for w, _ in cell) for cell in row]
        cell_h = [sum(h for _, h in cell) + gap * (len(cell) - 1) for cell in row]
        natural = sum(cell_w) + gap * (len(row) - 1)
        scale = min(1.0, (width - gap * (len(row) - 1)) / (natural - gap * (len(row) - 1)))
        x = 0.0
        for cell, cw in zip(row, cell_w):
            y = top
            for w, h in cell:
                rects.append((x, y, w * scale, h * scale))
                y += h * scale + gap
            x += cw * scale + gap
        used_width = max(used_width, x - gap)
        top += max(cell_h) * scale + gap
    return rects, used_width, top - gap


def compose_panels(layout, style: dict, title: str = ""):
    """A figure with one module-figure image per panel and panel letters A, B, ...

    Parameters
    ----------
    layout : list (rows) of lists (cells) of lists of arrays
        Raster images (pixels x pixels x channels), rendered at ``style["dpi"]``.
    style : dict
        The config's style section (double-column width, dpi, title size).
    title : str
        Optional figure title (empty: none, as most journals want).
    """
    dpi = style["dpi"]
    # a white band above every panel holds its letter, so the letter never covers the panel's title
    layout = [[[_letter_band(img, dpi) for img in cell] for cell in row] for row in layout]
    sizes = [[[(img.shape[1] / dpi, img.shape[0] / dpi) for img in cell] for cell in row] for row in layout]
    images = [img for row in layout for cell in row for img in cell]
    # the double-column width, or the figure's override (width, height_mm)
    max_width, _ = figure_size(style, "double")
    rects, width, height = panel_layout(sizes, max_width)
    title_space = 0.25 if title else 0.0
    height_mm = (style.get("figure") or {}).get("height_mm")
    if height_mm is not None and height + title_space > height_mm / MM_PER_INCH:
        # too tall for the override: scale the whole layout down (never up)
        scale = max(0.05, (height_mm / MM_PER_INCH - title_space) / height)
        rects = [tuple(v * scale for v in rect) for rect in rects]
        width, height = width * scale, height * scale
    total = height + title_space
    fig = plt.figure(figsize=(width, total))
    for letter, img, (x, y, w, h) in zip(ascii_uppercase, images, rects):
        ax = fig.add_axes((x / width, 1 - (y + title_space + h) / total, w / width, h / total))
        ax.imshow(img, interpolation="antialiased")
        ax.set_axis_off()
        ax.text(0.0, 1.0, letter, transform=ax.transAxes, ha="left", va="top",
                fontsize=style["title_size"] + 3, fontweight="bold")
    if title:
        fig.suptitle(title, y=1.0, va="top", fontsize=style["title_size"] + 1)
    return fig


#: height of the band above each panel that holds the panel letter, in inches
LETTER_BAND = 0.17


def _letter_band(img: np.ndarray, dpi: float) -> np.ndarray:
    """``img`` with a white band of :data:`LETTER_BAND` inches on top."""
    rows = int(round(LETTER_BAND * dpi))
    white = 1.0 if img.dtype.kind == "f" else np.iinfo(img.dtype).max
    pad = ((rows, 0), (0, 0)) + ((0, 0),) * (img.ndim - 2)
    return np.pad(img, pad, mode="constant", constant_values=white)


def read_panel_image(path) -> np.ndarray:
    """A module figure's raster (PNG or TIFF) as an array."""
    return mpimg.imread(str(path))


def panel_source_data(sources: Sequence[tuple[str, str, pd.DataFrame]]) -> pd.DataFrame:
    """Concatenate the panels' source tables, each row tagged with its panel and figure.

    Parameters
    ----------
    sources : list of (panel letter, module figure name, DataFrame)

    Returns
    -------
    DataFrame with ``panel`` and ``source_figure`` first, then the union of
    the panels' columns (empty where a panel has no such column); a panel's
    own ``panel`` column is renamed ``source_panel``.
    """
    parts = []
    for letter, name, table in sources:
        # a panel's own "panel" column (its facet) keeps its values under another name
        part = table.rename(columns={c: f"source_{c}" for c in ("panel", "source_figure") if c in table.columns})
        part.insert(0, "source_figure", name)
        part.insert(0, "panel", letter)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["panel", "source_figure"])
    return pd.concat(parts, ignore_index=True, sort=False)
