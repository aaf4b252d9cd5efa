"""gutaxis.style: sizes in millimetres, colour-blind-safe fallbacks, every output format."""

from __future__ import annotations

import hashlib

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from gutaxis import style as gstyle


@pytest.fixture
def style():
    return {
        "font_family": "DejaVu Sans",
        "font_size": 7,
        "title_size": 8,
        "width_single_mm": 89,
        "width_double_mm": 183,
        "formats": ["pdf", "svg", "png", "tiff"],
        "dpi": 150,
        "palette": {"cohort": {"lung": "#123456"}},
    }


def _figure(style):
    gstyle.apply_style(style)
    fig, ax = plt.subplots(figsize=gstyle.figure_size(style, "single", 0.5))
    ax.plot([0, 1, 2], [1, 3, 2])
    ax.set_xlabel("Months since treatment start")
    ax.set_title("Overview")
    return fig


def test_figure_size_converts_millimetres_to_inches(style):
    width, height = gstyle.figure_size(style, "double", aspect=0.5)
    assert width == pytest.approx(183 / 25.4)
    assert height == pytest.approx(183 / 25.4 / 2)
    assert gstyle.figure_size(style, "single", 1.0) == pytest.approx((89 / 25.4, 89 / 25.4))


def test_palette_uses_config_then_okabe_ito_without_repeats(style):
    colours = gstyle.palette(style, "cohort", ["lung", "esophageal", "other"])
    assert colours["lung"] == "#123456"
    # unnamed levels get Okabe-Ito colours in order, distinct from each other
    assert colours["esophageal"] == gstyle.OKABE_ITO[0]
    assert colours["other"] == gstyle.OKABE_ITO[1]
    # a configured colour that is itself Okabe-Ito is not handed out twice
    style["palette"]["cohort"]["lung"] = gstyle.OKABE_ITO[0]
    colours = gstyle.palette(style, "cohort", ["lung", "esophageal"])
    assert colours["esophageal"] != colours["lung"]


def test_palette_without_palette_section_and_with_more_levels_than_colours():
    colours = gstyle.palette({}, "timepoint", [f"t{i}" for i in range(len(gstyle.OKABE_ITO) + 2)])
    assert list(colours.values())[: len(gstyle.OKABE_ITO)] == list(gstyle.OKABE_ITO)
    assert list(colours.values())[-2:] == ["#777777", "#777777"]


def test_tiff_is_written_at_the_configured_dpi_and_size(style, tmp_path):
    style["dpi"] = 600
    fig = _figure(style)
    path = tmp_path / "fig.tiff"
    gstyle.save_figure(fig, [path], style)
    with Image.open(path) as image:
        assert image.format == "TIFF"
        assert image.info["dpi"] == pytest.approx((600, 600))
        assert image.info.get("compression") == "tiff_lzw"
        # bbox "tight" trims a little white space, never adds: at most the nominal 89 mm
        assert 0.8 * 89 / 25.4 * 600 < image.size[0] <= 89 / 25.4 * 600 + 1


def test_every_format_and_source_data_written(style, tmp_path):
    fig = _figure(style)
    paths = [tmp_path / "sub" / f"fig.{fmt}" for fmt in style["formats"]]
    data = pd.DataFrame({"x": [0, 1, 2], "y": [1.5, 3.25, 2.0]})
    gstyle.save_figure(fig, paths, style, source_data=data)
    for path in paths:
        assert path.stat().st_size > 0
    assert paths[0].read_bytes().startswith(b"%PDF")
    source = pd.read_csv(tmp_path / "sub" / "fig.source.tsv", sep="\t")
    pd.testing.assert_frame_equal(source, data)
    assert not list((tmp_path / "sub").glob(".*.tmp")), "temporary files left behind"


def test_svg_keeps_text_editable(style, tmp_path):
    fig = _figure(style)
    path = tmp_path / "fig.svg"
    gstyle.save_figure(fig, [path], style)
    svg = path.read_text()
    assert "<text" in svg
    assert "Months since treatment start" in svg  # a string, not glyph outlines
    assert "7px" in svg


def test_reruns_give_identical_files(style, tmp_path):
    digests = []
    for run in range(2):
        paths = [tmp_path / str(run) / f"fig.{fmt}" for fmt in style["formats"]]
        gstyle.save_figure(_figure(style), paths, style)
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in paths])
    assert digests[0] == digests[1]
