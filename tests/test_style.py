"""gutaxis.plots.style: sizes in millimetres, colour-blind-safe fallbacks, every output format."""

from __future__ import annotations

import hashlib

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from gutaxis.plots import style as gstyle


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


# --------------------------------------------------------------------------- per-figure overrides


def test_figure_stem_is_the_path_under_results_figures():
    assert gstyle.figure_stem("results/figures/main/figure2.pdf") == "main/figure2"
    assert gstyle.figure_stem("results/figures/diversity/taxa/c/pcoa_braycurtis.source.tsv") == (
        "diversity/taxa/c/pcoa_braycurtis")
    assert gstyle.figure_stem("/tmp/x/results/figures/qc/sampling.png") == "qc/sampling"
    assert gstyle.figure_stem("main/figure1") == "main/figure1"


def test_override_keys_match_a_whole_stem_or_its_end_at_a_slash():
    stem = "diversity/taxa/post_vs_baseline/pcoa_braycurtis"
    assert gstyle.override_matches(stem, stem)
    assert gstyle.override_matches("pcoa_braycurtis", stem)
    assert gstyle.override_matches("post_vs_baseline/pcoa_braycurtis", stem)
    assert not gstyle.override_matches("braycurtis", stem)  # not at a "/" boundary
    assert not gstyle.override_matches("pcoa_jaccard", stem)
    assert not gstyle.override_matches("figure1", "main/figure10")


def test_most_specific_override_applies_alone_and_unset_keys_keep_the_plot(style):
    style["overrides"] = {
        "volcano": {"title": False, "width": "single"},
        "differential/taxa/post_vs_baseline/volcano": {"height_mm": 100},
    }
    exact = gstyle.figure_override(style, "differential/taxa/post_vs_baseline/volcano")
    assert exact == {"width": "auto", "height_mm": 100, "title": True, "panels": []}
    other = gstyle.figure_override(style, "differential/metabolites/post_vs_baseline/volcano")
    assert other == {"width": "single", "height_mm": None, "title": False, "panels": []}
    assert gstyle.figure_override(style, "clinical/km") == gstyle.OVERRIDE_DEFAULTS


def test_resolved_style_carries_only_the_figures_own_override(style):
    style["overrides"] = {"main/figure2": {"panels": ["A"]}, "clinical/km": {"title": False}}
    km = gstyle.resolve_style(style, "results/figures/clinical/km.pdf")
    assert "overrides" not in km
    assert km["figure"]["stem"] == "clinical/km" and km["figure"]["title"] is False
    # editing another figure's override leaves this figure's style (its job's params) unchanged
    style["overrides"]["main/figure2"] = {"panels": ["B"]}
    assert gstyle.resolve_style(style, "results/figures/clinical/km.pdf") == km
    assert style["font_size"] == km["font_size"] and style["palette"] == km["palette"]


def test_figure_size_applies_width_and_height_overrides(style):
    own = gstyle.figure_size(style, "double", 0.5)
    assert gstyle.figure_size({**style, "figure": gstyle.OVERRIDE_DEFAULTS}, "double", 0.5) == own
    single = {**style, "figure": {"width": "single", "height_mm": None}}
    assert gstyle.figure_size(single, "double", 0.5) == pytest.approx((89 / 25.4, 89 / 25.4 / 2))
    mm = {**style, "figure": {"width": 120, "height_mm": 60}}
    assert gstyle.figure_size(mm, "single", 0.5, height=9.0) == pytest.approx((120 / 25.4, 60 / 25.4))
    # a plot's own height (rows x inches) is kept when no height override is set
    assert gstyle.figure_size(style, "single", height=3.3) == pytest.approx((89 / 25.4, 3.3))
    assert gstyle.figure_size(style, 100.0)[0] == pytest.approx(100 / 25.4)


def test_title_false_hides_suptitle_and_marked_titles(style, tmp_path):
    style["formats"] = ["svg"]
    for show in (True, False):
        gstyle.apply_style(style)
        fig, ax = plt.subplots(figsize=gstyle.figure_size(style, "single", 0.5))
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("Months")
        fig.suptitle("Suptitle text")
        gstyle.mark_title(ax.set_title("Axes title text"))
        path = tmp_path / f"{show}.svg"
        gstyle.save_figure(fig, [path], {**style, "figure": {"title": show}})
        svg = path.read_text()
        assert ("Suptitle text" in svg) is show and ("Axes title text" in svg) is show
        assert "Months" in svg


def test_select_panels_by_letter_or_stem_in_reading_order():
    panels = ["clinical/waterfall", "clinical/km", "clinical/swimmer"]
    assert gstyle.select_panels(panels, []) == panels
    assert gstyle.select_panels(panels, ["C", "a"]) == ["clinical/waterfall", "clinical/swimmer"]
    assert gstyle.select_panels(panels, ["km", "clinical/waterfall"]) == ["clinical/waterfall", "clinical/km"]
    with pytest.raises(ValueError, match="'D'.*A = clinical/waterfall"):
        gstyle.select_panels(panels, ["D"])


def test_unmatched_overrides_are_reported():
    style = {"overrides": {"main/figure2": {}, "pcoa_braycurtis": {}, "vulcano": {}}}
    stems = ["main/figure2", "diversity/taxa/c/pcoa_braycurtis", "differential/taxa/c/volcano"]
    assert gstyle.unmatched_overrides(style, stems) == ["vulcano"]


def test_default_palettes_never_share_a_colour(repo):
    import yaml

    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    colours = [c.upper() for kind in ("cohort", "timepoint", "response")
               for c in config["style"]["palette"][kind].values()]
    assert len(colours) == len(set(colours)), colours
    # the defaults use all eight Okabe-Ito colours: an unnamed cohort still differs from the named ones
    cohorts = {c.upper() for c in config["style"]["palette"]["cohort"].values()}
    extra = gstyle.palette(config["style"], "cohort", ["lung", "melanoma"])["melanoma"]
    assert extra.upper() not in cohorts


def test_unnamed_levels_avoid_the_colours_of_every_palette():
    style = {"palette": {"cohort": {"a": gstyle.OKABE_ITO[0]}, "response": {"responder": gstyle.OKABE_ITO[1]}}}
    assert gstyle.palette(style, "cohort", ["a", "b"])["b"] == gstyle.OKABE_ITO[2]
    # a kind without a palette (batch) uses Okabe-Ito from the start when all are taken elsewhere
    full = {"palette": {"cohort": dict(zip("abcdefgh", gstyle.OKABE_ITO))}}
    assert list(gstyle.palette(full, "batch", ["B1", "B2"]).values()) == list(gstyle.OKABE_ITO[:2])


def test_override_schema_validates_and_fills_defaults():
    from gutaxis.io.configuration import fill_defaults, schema_problems
    from gutaxis.io.sheets import load_schema

    schema = load_schema("config")
    style_schema = schema["properties"]["style"]
    good = {"overrides": {"main/figure1": {"panels": ["A", "B"]}, "volcano": {"width": 120, "title": False}}}
    assert not schema_problems({"style": good}, {**schema, "required": [], "properties": {"style": style_schema}})
    filled = fill_defaults(good, style_schema, schema)
    assert filled["overrides"]["volcano"] == {"width": 120, "title": False, "height_mm": None, "panels": []}
    for bad in ({"width": "triple"}, {"height_mm": -1}, {"colour": "red"}, {"panels": "A"}):
        problems = schema_problems({"style": {"overrides": {"volcano": bad}}},
                                   {**schema, "required": [], "properties": {"style": style_schema}})
        assert problems, bad


def test_paired_lines_draw_every_subject_in_two_artists_whatever_the_number_of_subjects():
    from matplotlib.collections import LineCollection

    values = [[1.0, 2.0], [3.0, 1.5], [0.5, float("nan")]]
    fig, ax = plt.subplots()
    gstyle.paired_lines(ax, [2.0, 3.0], values, "#123456", lw=0.5, alpha=0.6, ms=2)
    (collection,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    segments = collection.get_segments()
    assert [s.tolist() for s in segments[:2]] == [[[2.0, 1.0], [3.0, 2.0]], [[2.0, 3.0], [3.0, 1.5]]]
    (markers,) = ax.lines
    assert markers.get_xdata().tolist() == [2.0, 3.0] * 3
    assert markers.get_ydata()[:4].tolist() == [1.0, 2.0, 3.0, 1.5]
    assert ax.get_ylim()[0] <= 0.5 and ax.get_ylim()[1] >= 3.0  # every value inside the axes
    plt.close(fig)
    many = [[i, i + 1.0] for i in range(2500)]
    fig, ax = plt.subplots()
    gstyle.paired_lines(ax, [0.0, 1.0], many, "k", lw=0.5, alpha=0.5)
    assert len(ax.collections) == 1 and len(ax.lines) == 1
    assert len(ax.collections[0].get_segments()) == 2500
    plt.close(fig)
