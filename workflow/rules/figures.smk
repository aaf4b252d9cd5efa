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
