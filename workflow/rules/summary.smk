# The study summary (results/summary.md): the answers on one page - response rates and
# the PFS2 median with their CIs, the features called per modality and contrast, the
# diversity tests, the triads and the best responder model - each line naming the table
# or figure it comes from. It reads only tables the other modules of this study write
# (a table the study does not have is not an input), so it is planned last. The end of
# a run prints its first lines and its path; the report opens with it.

SUMMARY_PATH = "results/summary.md"
# the report's landing page (the Snakefile's `report:` uses it once it exists)
SUMMARY_LANDING = "results/report/landing.rst"


SUMMARY_CALLS = [
    (m, c, f"results/differential/{m}/{c}.calls.tsv")
    for m in config["modalities"]  # in the config's order
    if m in MODALITIES
    for c in (CONTRASTS or ([DIFFERENTIAL_BASELINE] if RESPONSE else []))
    if f"results/differential/{m}/{c}.calls.tsv" in FINAL_OUTPUTS
]
SUMMARY_ALPHA = [
    (m, f"results/diversity/{m}/alpha_tests.tsv")
    for m in DIVERSITY_MODALITIES
    if f"results/diversity/{m}/alpha_tests.tsv" in FINAL_OUTPUTS
]
SUMMARY_PERMANOVA = [
    (m, f"results/diversity/{m}/permanova/{DIVERSITY['primary_metric']}.tsv")
    for m in DIVERSITY_MODALITIES
    if f"results/diversity/{m}/permanova/{DIVERSITY['primary_metric']}.tsv"
    in FINAL_OUTPUTS
]


localrules:
    study_summary,


rule study_summary:
    input:
        study="results/study.tsv",
        samples="results/qc/samples.tsv",
        response=if_written("results/clinical/response.tsv"),
        survival=if_written("results/clinical/survival.tsv"),
        calls=[path for _, _, path in SUMMARY_CALLS],
        alpha_tests=[path for _, path in SUMMARY_ALPHA],
        permanova=[path for _, path in SUMMARY_PERMANOVA],
        triads=if_written("results/integration/triads.tsv"),
        performance=if_written("results/models/performance.tsv"),
    output:
        summary=report(
            SUMMARY_PATH,
            caption="../report/summary.rst",
            category="Summary",
            labels={"table": "Study summary"},
        ),
        landing=SUMMARY_LANDING,
    log:
        "logs/summary.log",
    benchmark:
        "logs/benchmarks/summary.tsv"
    conda:
        "../envs/stats.yaml"
    params:
        title=config["study_name"],
        calls=[(m, c) for m, c, _ in SUMMARY_CALLS],
        alpha_modalities=[m for m, _ in SUMMARY_ALPHA],
        permanova_keys=[(m, DIVERSITY["primary_metric"]) for m, _ in SUMMARY_PERMANOVA],
        alpha=config["differential"]["alpha"],
        description=str(Path(workflow.basedir) / "workflow" / "report" / "workflow.rst"),
    script:
        "../scripts/summary_write.py"


FINAL_OUTPUTS.append(SUMMARY_PATH)
