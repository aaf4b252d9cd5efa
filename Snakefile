# gutaxis: the gut microbiota-metabolite-immune axis in paired pre/post trials.
# Run the demo study with `snakemake --cores 2`; see README.md.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/clinical.smk"
include: "workflow/rules/metabolome.smk"
include: "workflow/rules/diversity.smk"
include: "workflow/rules/differential.smk"
include: "workflow/rules/integration.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


# `snakemake --cores 2 figures` rebuilds every figure; after a style change only
# plot jobs rerun, because plot rules read result tables and nothing else.
rule figures:
    input:
        [path for path in FINAL_OUTPUTS if str(path).startswith("results/figures/")],
