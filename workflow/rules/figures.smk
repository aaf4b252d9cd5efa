# Figures. Plot rules read result tables only, never raw inputs, and compute
# no statistic, so a change of the `style` section reruns them and nothing else.


rule plot_qc_sampling:
    input:
        samples="results/qc/samples.tsv",
        subjects="results/inputs/subjects.tsv",
    output:
        figures=report(
            figure_paths("qc/sampling"),
            caption="../report/qc_sampling.rst",
            category="Quality control",
            labels={"figure": "Samples per subject and timepoint"},
        ),
        source="results/figures/qc/sampling.source.tsv",
    log:
        "logs/figures/qc_sampling.log",
    conda:
        "../envs/plots.yaml"
    params:
        style=config["style"],
        cohorts=config["design"]["cohorts"],
        timepoints=config["design"]["timepoints"],
        title=config["study_name"],
    script:
        "../scripts/plot_qc_sampling.py"


FINAL_OUTPUTS.extend(figure_paths("qc/sampling"))


# Main (paper) figures: module figures composed row-wise with panel letters.
# Each panel is a module figure's raster, so these rules too read figures and
# source tables only; a panel whose module figure is not built (a modality or
# module absent from the config) is left out, and a figure without panels is
# not made. Vector formats of a main figure embed the panels as rasters.
MAIN_RASTER = next((fmt for fmt in ("png", "tiff") if fmt in FIGURE_FORMATS), None)


def _main_panel(stem):
    path = f"results/figures/{stem}.{MAIN_RASTER}"
    return stem if path in FINAL_OUTPUTS else None


def _main_figure_panels():
    """Figure number -> rows of cells (panels stacked in a cell) of module figure stems."""
    taxa = modalities_of_kind("taxonomy")[:1]
    metabolome = modalities_of_kind("metabolome")[:1]
    immune = modalities_of_kind("immune")[:1]
    contrast = CONTRASTS[0] if CONTRASTS else "none"
    metric = (config.get("diversity", {}).get("beta_metrics") or ["none"])[0]
    layouts = {
        "1": [[["clinical/waterfall", "clinical/km"], ["clinical/swimmer"]]],
        "2": [
            [[f"diversity/{m}/{contrast}/alpha_paired" for m in taxa]]
            + [[f"diversity/{m}/{contrast}/pcoa_{metric}" for m in taxa]],
            [[f"differential/{m}/{contrast}/volcano" for m in taxa]],
        ],
        "3": [
            [[f"differential/{m}/{contrast}/volcano"] for m in metabolome + immune],
            [[f"integration/{m}_dynamics" for m in immune]],
        ],
        "4": [[["integration/network"]], [["integration/triads"]]],
        "5": [[["models/roc"], ["models/stability"]]],
    }
    figures = {}
    if MAIN_RASTER is None:
        return figures
    for number, rows in layouts.items():
        kept = [[[s for s in cell if _main_panel(s)] for cell in row] for row in rows]
        kept = [[cell for cell in row if cell] for row in kept]
        kept = [row for row in kept if row]
        if kept:
            figures[number] = kept
    return figures


MAIN_FIGURES = _main_figure_panels()


def _main_stems(wildcards):
    return [s for row in MAIN_FIGURES[wildcards.number] for cell in row for s in cell]


rule plot_main_figure:
    input:
        panels=lambda wc: [
            f"results/figures/{stem}.{MAIN_RASTER}" for stem in _main_stems(wc)
        ],
        sources=lambda wc: [
            f"results/figures/{stem}.source.tsv" for stem in _main_stems(wc)
        ],
    output:
        figures=report(
            figure_paths("main/figure{number}"),
            caption="../report/main_figures.rst",
            category="Main figures",
            labels={"figure": "Figure {number}"},
        ),
        source="results/figures/main/figure{number}.source.tsv",
    wildcard_constraints:
        number="[1-5]",
    log:
        "logs/figures/main_figure{number}.log",
    conda:
        "../envs/plots.yaml"
    params:
        style=config["style"],
        layout=lambda wc: MAIN_FIGURES[wc.number],
        names=_main_stems,
        title="",
    script:
        "../scripts/plot_main_figure.py"


for _number in MAIN_FIGURES:
    FINAL_OUTPUTS.extend(figure_paths(f"main/figure{_number}"))
    FINAL_OUTPUTS.append(f"results/figures/main/figure{_number}.source.tsv")
