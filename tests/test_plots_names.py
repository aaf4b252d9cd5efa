"""Taxon names in figures (gutaxis.plots.names): italics for genus and species, roman for the rest,
checked in the parts and in the SVG text; percent ticks on a logit axis."""

from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gutaxis.plots.names import (display_name, draw_parts, is_taxon, logit_percent_axis,  # noqa: E402
                                 logit_percent_ticks, looks_taxonomic, taxon_parts)
from gutaxis.plots.style import apply_style  # noqa: E402

STYLE = {"font_family": "DejaVu Sans", "font_size": 8, "title_size": 9}


@pytest.mark.parametrize("name, taxon, parts", [
    ("s__Escherichia_coli", None, [("Escherichia coli", True)]),
    ("E. coli", None, [("E. coli", True)]),
    ("g__Bacteroides", None, [("Bacteroides", True)]),
    ("k__Bacteria|p__Firmicutes|g__Blautia|s__", None, [("Blautia", True)]),
    ("f__Lachnospiraceae", None, [("Lachnospiraceae", False)]),
    ("Bifidobacterium longum", True, [("Bifidobacterium longum", True)]),
    ("Clostridium sp. CAG:58", None, [("Clostridium", True), (" sp. CAG:58", False)]),
    ("Bacteroides unclassified", True, [("Bacteroides", True), (" unclassified", False)]),
    ("Faecalibacterium prausnitzii SGB15316", True, [("Faecalibacterium prausnitzii", True), (" SGB15316", False)]),
    ("Lactococcus lactis subsp. cremoris MG1363", True,
     [("Lactococcus lactis", True), (" subsp. ", False), ("cremoris", True), (" MG1363", False)]),
    ("Lachnospiraceae bacterium", True, [("Lachnospiraceae bacterium", False)]),
    ("GGB1234 SGB5678", True, [("GGB1234 SGB5678", False)]),
    # not taxa: pass through unchanged, roman
    ("Butyric acid", None, [("Butyric acid", False)]),
    ("Tregs (CD4+CD25+CD127lo)", None, [("Tregs (CD4+CD25+CD127lo)", False)]),
    ("Butyric acid", False, [("Butyric acid", False)]),
])
def test_taxon_parts(name, taxon, parts):
    assert taxon_parts(name, taxon=taxon) == parts


def test_a_plain_binomial_is_a_taxon_only_when_the_caller_says_so():
    # "Butyric acid" reads like "Genus species": only ids and MetaPhlAn/abbreviated forms are recognised alone
    assert not looks_taxonomic("Butyric acid") and not looks_taxonomic("Bifidobacterium longum")
    assert looks_taxonomic("Bifidobacterium_longum") and looks_taxonomic("B. longum")
    assert is_taxon("s__Bifidobacterium_longum", "Bifidobacterium longum")
    assert not is_taxon("FT0055", "Butyric acid")
    assert display_name("s__Bifidobacterium_longum") == "B. longum"
    assert display_name("s__Bifidobacterium_longum", abbreviate=False) == "Bifidobacterium longum"


def _svg_texts(fig, tmp_path):
    path = tmp_path / "names.svg"
    fig.savefig(path, format="svg")
    plt.close(fig)
    svg = path.read_text()
    return re.findall(r'<text style="([^"]*)"[^>]*>([^<]*)</text>', svg)


def test_species_is_italic_text_in_the_svg_and_a_metabolite_is_not(tmp_path):
    apply_style(STYLE)
    fig, ax = plt.subplots()
    draw_parts(ax, 0.1, 0.8, taxon_parts("s__Escherichia_coli"), transform=ax.transAxes)
    draw_parts(ax, 0.1, 0.5, taxon_parts("Clostridium sp. CAG:58", taxon=True), transform=ax.transAxes)
    draw_parts(ax, 0.1, 0.2, taxon_parts("Butyric acid"), transform=ax.transAxes)
    texts = dict((text, style) for style, text in _svg_texts(fig, tmp_path))
    # one <text> element per run: the name stays whole and editable (svg.fonttype none)
    assert "font-style: italic" in texts["Escherichia coli"]
    assert "font-style: italic" in texts["Clostridium"]
    assert "font-style" not in texts[" sp. CAG:58"]
    assert "font-style" not in texts["Butyric acid"]


def test_parts_of_a_mixed_name_sit_side_by_side(tmp_path):
    apply_style(STYLE)
    fig, ax = plt.subplots()
    for ha in ("left", "center", "right"):
        texts = draw_parts(ax, 0.5, 0.5, taxon_parts("Clostridium sp. CAG:58", taxon=True), ha=ha,
                           transform=ax.transAxes)
        fig.canvas.draw()
        a, b = (t.get_window_extent() for t in texts)
        assert b.x0 == pytest.approx(a.x1, abs=1.5)  # the roman run starts where the italic ends
        anchor = ax.transAxes.transform((0.5, 0.5))[0]
        start = {"left": a.x0, "center": (a.x0 + b.x1) / 2, "right": b.x1}[ha]
        assert start == pytest.approx(anchor, abs=1.5)
    plt.close(fig)


def test_logit_axis_reads_percent():
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    ticks = logit_percent_ticks(logit(0.005), logit(0.9))
    assert [label for _, label in ticks] == ["1%", "5%", "20%", "50%", "80%"]
    for value, label in ticks:
        assert value == pytest.approx(logit(float(label[:-1]) / 100))
    narrow = logit_percent_ticks(logit(0.3), logit(0.75))
    assert 3 <= len(narrow) <= 5 and "50%" in [label for _, label in narrow]
    fig, ax = plt.subplots()
    ax.set_ylim(logit(0.02), logit(0.6))
    logit_percent_axis(ax, "y")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["5%", "20%", "50%"]
    plt.close(fig)
