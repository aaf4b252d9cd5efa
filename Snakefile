# gutaxis: the gut microbiota-metabolite-immune axis in paired pre/post trials.
# Run the demo study with `snakemake --cores 2`; see README.md.

from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# Without --configfile, the demo study's config runs (`snakemake --cores 2` on a fresh
# clone). A config given with --configfile stands alone: it is not merged over the
# demo's, so the study has exactly the modalities and settings it names, the rest
# taking the schema defaults (workflow/schemas/config.schema.yaml). Several files are
# merged in order, e.g. `--configfile config/config.yaml journal.yaml`.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# The report opens with the study's answers once a run has written them (the
# summary rule's landing page), else with the study description alone.
REPORT_LANDING = Path("results/report/landing.rst").resolve()


report: str(REPORT_LANDING) if REPORT_LANDING.is_file() else "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/clinical.smk"
include: "workflow/rules/metabolome.smk"
include: "workflow/rules/diversity.smk"
include: "workflow/rules/differential.smk"
include: "workflow/rules/integration.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/summary.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


# `snakemake --cores 2 figures` rebuilds every figure; after a style change only
# plot jobs rerun, because plot rules read result tables and nothing else.
rule figures:
    input:
        [path for path in FINAL_OUTPUTS if str(path).startswith("results/figures/")],


onstart:
    QUIET_CONSOLE or workflow.dryrun or start_quiet_console()


onsuccess:
    print_run_summary()


# a job that stopped on bad input says why here, after Snakemake's job blocks
onerror:
    print_run_summary(failed=True)
    print_input_errors()
