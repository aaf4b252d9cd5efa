# Figures. Plot rules read result tables only, never raw inputs, and compute
# no statistic, so a change of the `style` section reruns them and nothing else.


# plots run on the submitting host, not as cluster jobs
localrules:
    plot_qc_sampling,
    plot_main_figure,


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
    benchmark:
        "logs/benchmarks/figures/qc_sampling.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style("qc/sampling"),
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


MAIN_FIGURES = _main_figure_panels()


rule plot_main_figure:
    input:
        panels=main_figure_panels,
        sources=main_figure_sources,
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
    benchmark:
        "logs/benchmarks/figures/main_figure{number}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style("main/figure{number}"),
        layout=wildcard_lookup(MAIN_FIGURES, "number"),
        names=main_figure_stems,
        title="",
    script:
        "../scripts/plot_main_figure.py"


for _number in MAIN_FIGURES:
    FINAL_OUTPUTS.extend(figure_paths(f"main/figure{_number}"))
    FINAL_OUTPUTS.append(f"results/figures/main/figure{_number}.source.tsv")


# `panels` selects the panels of main figures only.
for _key, _override in (config["style"].get("overrides") or {}).items():
    _main = [f"main/figure{n}" for n in MAIN_FIGURES]
    if (_override or {}).get("panels") and not any(
        override_matches(_key, m) for m in _main
    ):
        print(
            f"Warning: config key 'style.overrides.{_key}.panels' is ignored: panels "
            "can be chosen in main figures only (main/figure1 ... main/figure5).",
            file=sys.stderr,
        )


# A per-figure override that names no figure of this run is most likely a typo.
for _key in unmatched_overrides(
    config["style"],
    [figure_stem(p) for p in FINAL_OUTPUTS if str(p).startswith("results/figures/")],
):
    print(
        f"Warning: config key 'style.overrides.{_key}' names no figure of this run; "
        "name a figure by its path under results/figures without the suffix "
        "(e.g. main/figure2) or by the end of that path (e.g. pcoa_braycurtis).",
        file=sys.stderr,
    )
