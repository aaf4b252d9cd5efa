"""Taxon names as figures write them: genus and species in italics, the rest in roman.

Nomenclature (ICNP/ICN usage, as journals ask): a genus name and a species
binomial are set in italics (*Escherichia coli*, *E. coli*, *Bacteroides*);
what is not a Latin name stays roman: ``sp.``, ``spp.``, ``unclassified``,
``bacterium``, SGB/GGB/OGU codes, strain and GTDB placeholder suffixes
(``CAG:58``, ``SGB15316``), and names above genus as MetaPhlAn and GTDB
lineages write them (``f__Lachnospiraceae``). Anything that is not a taxon
(a metabolite, an immune subset) passes through unchanged.

A name is split into *parts*, ``[(text, italic), ...]``, and drawn as one
matplotlib ``Text`` per part with ``fontstyle="italic"`` for the italic ones
(:func:`draw_parts`), not as mathtext: with ``svg.fonttype: none`` a Text is
written as one SVG ``<text>`` element whose style carries
``font-style: italic`` in the configured font family, so the name stays
editable and searchable in the SVG, whereas mathtext writes one ``<tspan>``
per character in the mathtext font. Most names are one part (all italic or
all roman) and so one Text; a mixed name (``Clostridium sp. CAG:58``) is a
chain of Texts, each anchored to the end of the previous one.

Which strings are taxa: a rank prefix (``s__``, ``g__``; a ``|`` or ``;``
lineage), an underscore-joined binomial (MetaPhlAn's ``Genus_species``) or an
abbreviated binomial (``E. coli``) is recognised alone; a plain
``Genus species`` could as well be a metabolite (``Butyric acid``), so it is a
taxon only when the caller says the feature is one (``taxon=True``, e.g. the
microbe layer of the integration figures, or a feature whose id carries a rank
prefix: :func:`is_taxon`).

The module also labels logit axes of proportions in percent
(:func:`logit_percent_axis`): immune subsets are modelled as logits, read as % of
parent. Only the standard library and matplotlib are used (the plots environment).
"""

from __future__ import annotations

import math
import re

#: epithets that are not species names (the "species" is unnamed): kept whole, in roman
PLACEHOLDER_EPITHETS = {"bacterium", "sp", "sp.", "spp", "spp.", "unclassified", "uncultured",
                        "unknown", "archaeon", "cf.", "aff.", "group", "incertae", "sedis"}
#: words after which the next word is again an italic epithet (``subsp. lactis``)
INFRA_MARKERS = {"subsp.", "var.", "subsp", "var"}
#: rank prefixes (MetaPhlAn, GTDB, Greengenes/QIIME): the ranks set in italics when named
ITALIC_RANKS = {"g", "s", "t"}
_RANK_PREFIX = re.compile(r"^([a-z])__(.*)$")
#: suffixes of names above genus (family -aceae, order -ales, phylum -ota/-etes, ...): roman
_ABOVE_GENUS = re.compile(r"(aceae|ales|ineae|idae|ota|etes|archaeota|mycota|phyta)$")
#: a genus word: capitalised Latin, optionally GTDB's placeholder suffix (``Clostridium_A``) or
#: brackets for a misplaced genus (``[Eubacterium]``)
_GENUS = re.compile(r"^\[?[A-Z][a-z]+(?:-[a-z]+)?\]?(?:_[A-Z]+)?$")
_ABBREVIATED = re.compile(r"^\[?[A-Z][a-z]?\.\]?$")
#: genome-bin and placeholder codes (MetaPhlAn SGB/GGB/FGB, OGU, GTDB/NCBI CAG)
_CODE = re.compile(r"^(?:SGB|GGB|FGB|OGU|CAG)[_:]?\d+")
_EPITHET = re.compile(r"^[a-z][a-z-]+(?:_[A-Z]+)?$")


def _strip_rank(text: str) -> tuple[str, str | None]:
    """``k__Bacteria|...|s__Bifidobacterium_longum`` -> (``Bifidobacterium_longum``, ``s``)."""
    text = str(text).strip()
    for sep in ("|", ";"):
        if sep in text:
            pieces = [p.strip() for p in text.split(sep) if p.strip()]
            # the deepest named rank (QIIME writes empty ranks as "s__")
            named = [p for p in pieces if not re.fullmatch(r"[a-z]__", p)]
            text = named[-1] if named else (pieces[-1] if pieces else text)
    match = _RANK_PREFIX.match(text)
    if match:
        return match.group(2), match.group(1)
    return text, None


def looks_taxonomic(text) -> bool:
    """Is ``text`` recognisably a taxon without being told: a rank prefix or lineage, a
    MetaPhlAn ``Genus_species``, or an abbreviated binomial ``E. coli``?"""
    if not isinstance(text, str) or not text.strip():
        return False
    name, rank = _strip_rank(text)
    if rank is not None:
        return True
    if " " not in name and "_" in name:
        words = name.split("_")
        return bool(_GENUS.match(words[0])) and bool(re.match(r"^[a-z]", words[1]))
    words = name.split()
    if len(words) < 2:
        return False
    if _ABBREVIATED.match(words[0]) and _EPITHET.match(words[1]):
        return True
    # "Genus sp.", "Genus unclassified", "Genus SGB1234": no metabolite is written so
    return bool(_GENUS.match(words[0])) and (words[1] in {"sp.", "spp.", "unclassified"}
                                             or bool(_CODE.match(words[1])))


def is_taxon(feature, annotation="", hint: bool = False) -> bool:
    """Is the feature a taxon: its id or annotation looks taxonomic (:func:`looks_taxonomic`),
    or the caller knows it is (``hint``, e.g. the microbe layer)?"""
    return bool(hint) or looks_taxonomic(feature) or looks_taxonomic(annotation)


def display_name(feature, annotation="", abbreviate: bool = True, max_chars: int | None = 26) -> str:
    """Short display text of a feature: its annotation when there is one, species as ``B. longum``.

    ``s__Bifidobacterium_longum`` or ``Bifidobacterium_longum`` (underscore-joined
    binomials, as MetaPhlAn writes them) -> ``B. longum`` (``abbreviate``) or
    ``Bifidobacterium longum``, except for placeholder epithets (``Lachnospiraceae
    bacterium`` stays whole); a lineage keeps its deepest named rank; names with
    spaces (metabolites, immune subsets) are kept; anything longer than
    ``max_chars`` ends in an ellipsis.
    """
    text = str(annotation).strip() if isinstance(annotation, str) else ""
    text = text or str(feature)
    if "|" in text or (len(text) > 3 and text[1:3] == "__"):
        text, _ = _strip_rank(text)
    if " " not in text and "_" in text:
        words = text.split("_")
        binomial = (len(words) >= 2 and words[0][:1].isupper() and words[1][:1].islower()
                    and words[1] not in PLACEHOLDER_EPITHETS)
        if binomial and abbreviate:
            text = f"{words[0][0]}. {' '.join(words[1:])}"
        else:
            text = " ".join(words)
    if max_chars and len(text) > max_chars:
        text = text[:max_chars - 1] + "\u2026"
    return text


def taxon_parts(name, taxon: bool | None = None) -> list[tuple[str, bool]]:
    """Split a name into ``[(text, italic), ...]`` runs that join back to the displayed text.

    Parameters
    ----------
    name : str
        A display name (``E. coli``, ``Bifidobacterium longum``, ``Clostridium sp.
        CAG:58``) or a raw id (``s__Escherichia_coli``, ``g__Bacteroides``): raw ids
        are shown with spaces for underscores and without the rank prefix.
    taxon : bool, optional
        True: the name is a taxon (a plain ``Genus species`` is italicised);
        False: pass through in roman; None: decide by :func:`looks_taxonomic`.

    Returns
    -------
    list of (str, bool)
        Consecutive runs; ``"".join(text for text, _ in parts)`` is the text shown.
        Rules: a genus word (capitalised Latin or an abbreviation ``E.``) is italic,
        unless its rank prefix is above genus or it ends like a family/order/phylum
        (``-aceae``, ``-ales``, ``-ota``...); the next word is an italic epithet when
        it is lower-case Latin and not a placeholder (``sp.``, ``bacterium``,
        ``unclassified``); after ``subsp.``/``var.`` the next word is italic again;
        every other word (codes, strains, placeholders) is roman.
    """
    text = "" if name is None else str(name)
    if taxon is False or not text.strip():
        return [(text, False)] if text else []
    if taxon is None and not looks_taxonomic(text):
        return [(text, False)]
    body, rank = _strip_rank(text)
    if rank is not None and "…" not in body:
        body = body.replace("_", " ") if " " not in body else body
    elif " " not in body and "_" in body:
        body = body.replace("_", " ")
    if rank is not None and rank not in ITALIC_RANKS:
        return [(body, False)]
    words = body.split(" ")
    flags = [False] * len(words)
    first = words[0].rstrip("\u2026")
    genus = bool(_ABBREVIATED.match(first)) or (bool(_GENUS.match(first)) and not _ABOVE_GENUS.search(
        first.strip("[]")))
    if genus:
        flags[0] = True
        italic_next = True
        for i in range(1, len(words)):
            word = words[i]
            bare = word.rstrip("\u2026")
            if italic_next and bare not in PLACEHOLDER_EPITHETS and _EPITHET.match(bare or "x"):
                flags[i] = True
                italic_next = False
            elif word in INFRA_MARKERS:
                italic_next = True
            else:
                break  # a code, strain or placeholder: the rest stays roman
    parts: list[tuple[str, bool]] = []
    for i, (word, italic) in enumerate(zip(words, flags)):
        piece = word if i == 0 else " " + word
        if parts and parts[-1][1] == italic:
            parts[-1] = (parts[-1][0] + piece, italic)
        elif parts and not italic:
            # the space before a roman run is roman
            parts.append((piece, italic))
        else:
            parts.append((piece, italic))
    # keep spaces in the roman runs, not at the start of an italic one
    fixed: list[tuple[str, bool]] = []
    for text_part, italic in parts:
        if italic and text_part.startswith(" ") and fixed:
            fixed[-1] = (fixed[-1][0] + " ", fixed[-1][1])
            text_part = text_part[1:]
        fixed.append((text_part, italic))
    return fixed


def plain_text(parts) -> str:
    """The text a list of parts shows."""
    return "".join(text for text, _ in parts)


def mathtext(name, taxon: bool | None = None) -> str:
    """The name as one matplotlib mathtext string (italic runs as ``\\mathit``), for the few
    places that take a single string only (e.g. legend entries); prefer :func:`draw_parts`,
    whose SVG keeps whole words in one ``<text>`` element."""
    out = []
    for text, italic in taxon_parts(name, taxon):
        escaped = text.replace("$", r"\$")
        if italic:
            inner = escaped.replace(" ", r"\ ")
            out.append(rf"$\mathit{{{inner}}}$")
        else:
            out.append(escaped)
    return "".join(out)


def part_widths(fig, parts, fontsize=None, **kwargs) -> list[float]:
    """Width in points of each part as drawn (italic parts measured in the italic face)."""
    from matplotlib.font_manager import FontProperties

    renderer = fig.canvas.get_renderer()
    widths = []
    for text, italic in parts:
        prop = FontProperties(size=fontsize, style="italic" if italic else "normal",
                              weight=kwargs.get("fontweight", kwargs.get("weight", "normal")))
        if not text:
            widths.append(0.0)
            continue
        # a trailing or leading space is dropped by the layout: measure it between letters
        probe = text.replace(" ", "\u00a0")
        w, _, _ = renderer.get_text_width_height_descent(probe, prop, ismath=False)
        widths.append(w * 72.0 / fig.dpi)
    return widths


def draw_parts(ax, x, y, parts, ha: str = "left", va: str = "baseline", rotation: float = 0,
               transform=None, gid: str | None = None, fontsize=None, **kwargs) -> list:
    """Draw a name's parts side by side, one Text each (italic runs in ``fontstyle="italic"``).

    Every part is placed at ``(x, y)`` plus an offset in points along the reading
    direction: the widths of the parts before it (measured with the figure's renderer,
    italic in the italic face), less the whole width (``ha="right"``) or half of it
    (``ha="center"``). A one-part name is a single Text at ``(x, y)``.

    Parameters
    ----------
    ax : Axes or Figure
        Where to draw.
    x, y : float
        Anchor in ``transform`` (default: the data coordinates of an Axes, figure
        fraction of a Figure).
    parts : list of (str, bool)
        From :func:`taxon_parts`.
    ha : {"left", "center", "right"}
        Where the whole name sits along its reading direction.
    va : str
        Alignment across the reading direction (as ``Text``; with ``rotation=90`` in
        the text's own frame: ``bottom`` puts the line's foot toward +x).
    rotation : {0, 90}
        90 reads upwards (a y-axis label).
    gid : str, optional
        Set on every Text (tests and tools find a label's pieces by it).
    fontsize : float, optional
    **kwargs
        Text properties shared by the parts (colour, zorder, bbox, clip_on ...).

    Returns
    -------
    list of Text
        The parts in reading order.
    """
    parts = [p for p in parts if p[0]] or [("", False)]
    fig = ax.figure if hasattr(ax, "figure") and ax.figure is not None else ax
    if transform is None:
        transform = ax.transData if hasattr(ax, "transData") else fig.transFigure
    fontsize = fontsize if fontsize is not None else kwargs.pop("size", None)
    if fontsize is None:
        import matplotlib as mpl
        fontsize = mpl.rcParams["font.size"]
    if len(parts) == 1:
        text, italic = parts[0]
        artist = ax.text(x, y, text, ha=ha, va=va, rotation=rotation, transform=transform,
                         fontsize=fontsize, fontstyle="italic" if italic else "normal",
                         rotation_mode="anchor" if rotation else "default", **kwargs)
        if gid:
            artist.set_gid(gid)
        return [artist]
    widths = part_widths(fig, parts, fontsize, **kwargs)
    start = {"left": 0.0, "center": -sum(widths) / 2.0, "right": -sum(widths)}[ha]
    upward = rotation == 90
    texts = []
    offset = start
    for (text, italic), width in zip(parts, widths):
        props = dict(xy=(x, y), xycoords=transform, xytext=(0.0, offset) if upward else (offset, 0.0),
                     textcoords="offset points", ha="left", va=va, rotation=rotation,
                     rotation_mode="anchor" if upward else "default", fontsize=fontsize,
                     fontstyle="italic" if italic else "normal", **kwargs)
        if hasattr(ax, "annotate"):
            artist = ax.annotate(text, **props)
        else:  # a Figure
            from matplotlib.text import Annotation

            artist = ax.add_artist(Annotation(text, **props))
        if gid:
            artist.set_gid(gid)
        texts.append(artist)
        offset += width
    return texts


def extent(texts, renderer=None):
    """The display-space bounding box of a drawn name (the union of its parts)."""
    from matplotlib.transforms import Bbox

    if renderer is None:
        renderer = texts[0].figure.canvas.get_renderer()
    return Bbox.union([t.get_window_extent(renderer) for t in texts])


# --------------------------------------------------------------------------- proportions on a logit axis

#: tick values (%) of a logit-spaced axis, coarse to fine: the first level with at least 3
#: ticks inside the limits is used
PERCENT_TICK_LEVELS = (
    (1, 5, 20, 50, 80, 95, 99),
    (0.1, 0.5, 1, 2, 5, 10, 20, 30, 50, 70, 80, 90, 95, 98, 99, 99.5, 99.9),
    (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 3, 5, 7, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65,
     70, 75, 80, 85, 90, 93, 95, 97, 98, 99, 99.5, 99.8, 99.9, 99.95, 99.98, 99.99),
)


def is_logit_scale(scale) -> bool:
    """Does an axis/scale name say the values are logits of proportions (``logit``,
    ``logit of proportion``)?"""
    return str(scale).strip().lower().startswith("logit")


def percent_text(percent: float) -> str:
    """``20`` -> ``20%``, ``0.5`` -> ``0.5%``."""
    return f"{percent:g}%"


def logit_percent_ticks(low: float, high: float, min_ticks: int = 3) -> list[tuple[float, str]]:
    """Ticks of a logit axis labelled as percentages: ``[(logit(p), "p%"), ...]``.

    .. math:: \\mathrm{logit}(p) = \\ln\\frac{p}{1 - p}

    (natural log odds, as :func:`gutaxis.differential.transforms.logit_transform` writes them).
    The coarsest level of :data:`PERCENT_TICK_LEVELS` with at least ``min_ticks``
    ticks inside ``[low, high]`` is used (the finest when none has), thinned to at
    most 5 ticks (every k-th, keeping 50%).
    """
    low, high = min(low, high), max(low, high)
    chosen: list[tuple[float, str]] = []
    for level in PERCENT_TICK_LEVELS:
        ticks = []
        for percent in level:
            p = percent / 100.0
            value = math.log(p / (1.0 - p))
            if low <= value <= high:
                ticks.append((value, percent_text(percent)))
        chosen = ticks
        if len(ticks) >= min_ticks:
            break
    if len(chosen) > 5:
        # the finest level on a short axis: every k-th tick, keeping 50% when shown
        step = math.ceil(len(chosen) / 5)
        labels = [label for _, label in chosen]
        anchor = labels.index("50%") if "50%" in labels else 0
        chosen = [tick for i, tick in enumerate(chosen) if (i - anchor) % step == 0]
    return chosen


def logit_percent_axis(ax, axis: str = "y", min_ticks: int = 3) -> None:
    """Label a logit axis in percent (``1%, 5%, 20%, 50%``) at logit-spaced positions.

    The data stay logits (what the tests model); only the tick positions and labels
    change, so clinicians read % of parent. Call after the limits are final.
    """
    get_lim = ax.get_ylim if axis == "y" else ax.get_xlim
    ticks = logit_percent_ticks(*get_lim(), min_ticks=min_ticks)
    if not ticks:
        return
    set_ticks = ax.set_yticks if axis == "y" else ax.set_xticks
    set_ticks([t for t, _ in ticks], [label for _, label in ticks])
    # no minor ticks: a linear minor grid would contradict the logit spacing
    from matplotlib.ticker import NullLocator

    (ax.yaxis if axis == "y" else ax.xaxis).set_minor_locator(NullLocator())
