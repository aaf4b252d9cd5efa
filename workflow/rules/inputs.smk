# Inputs: the checked sheets, each omics table imported into a canonical
# samples x features table, and the QC tables saying what happened to every
# sample. Everything downstream reads these outputs, never the raw files.


# small tables: run on the submitting host, not as cluster jobs
localrules:
    study_plan,
    check_sheets,
    qc_sampling,


# The study type and what it cannot have (gutaxis.io.design.plan_study, decided when
# the workflow is parsed): one row per analysis skipped, with the reason.
rule study_plan:
    output:
        table=report(
            "results/study.tsv",
            caption="../report/study_plan.rst",
            category="Study design",
            labels={"table": "Study type and analyses skipped"},
        ),
    log:
        "logs/inputs/study_plan.log",
    benchmark:
        "logs/benchmarks/inputs/study_plan.tsv"
    conda:
        "../envs/io.yaml"
    params:
        rows=STUDY.table().values.tolist(),
    script:
        "../scripts/study_plan.py"


rule check_sheets:
    input:
        samples=config["samples"],
        subjects=config["subjects"],
        adverse_events=config["adverse_events"] or [],
    output:
        samples="results/inputs/samples.tsv",
        subjects="results/inputs/subjects.tsv",
        adverse_events="results/inputs/adverse_events.tsv",
        # samples the sheet's `exclude` column leaves out, with their reason
        excluded="results/inputs/excluded_samples.tsv",
    log:
        "logs/inputs/check_sheets.log",
    benchmark:
        "logs/benchmarks/inputs/check_sheets.tsv"
    conda:
        "../envs/io.yaml"
    params:
        # only the keys the sheets depend on, so a style change never reruns this
        config={
            k: config[k] for k in ("samples", "subjects", "adverse_events", "design")
        },
    script:
        "../scripts/check_sheets.py"


rule import_modality:
    input:
        table=modality_input,
        samples="results/inputs/samples.tsv",
        excluded="results/inputs/excluded_samples.tsv",
    output:
        table="results/import/{modality}.tsv",
        features="results/import/{modality}.features.tsv",
        dropped="results/import/{modality}.dropped.tsv",
        notes="results/import/{modality}.notes.tsv",
    log:
        "logs/import/{modality}.log",
    benchmark:
        "logs/benchmarks/import/{modality}.tsv"
    conda:
        "../envs/io.yaml"
    params:
        modality=modality_config,
        samples_label=config["samples"],
        duplicates=config["design"]["duplicates"],
    resources:
        # parsing the tool's text table dominates and grows with its size
        # (benchmarks/README.md: minutes at 5,000 samples)
        mem_mb=memory_mb(1000, 20),
        runtime=runtime_minutes(10, 10),
    script:
        "../scripts/import_modality.py"


rule qc_sampling:
    input:
        samples="results/inputs/samples.tsv",
        excluded="results/inputs/excluded_samples.tsv",
        subjects="results/inputs/subjects.tsv",
        tables=expand("results/import/{modality}.tsv", modality=MODALITIES),
        dropped=expand("results/import/{modality}.dropped.tsv", modality=MODALITIES),
    output:
        samples="results/qc/samples.tsv",
        pairing="results/qc/pairing.tsv",
    log:
        "logs/qc/qc_sampling.log",
    benchmark:
        "logs/benchmarks/qc/qc_sampling.tsv"
    conda:
        "../envs/io.yaml"
    params:
        modalities={m: config["modalities"][m] for m in MODALITIES},
        modality_names=MODALITIES,
        timepoints=config["design"]["timepoints"],
        contrasts=config["design"]["contrasts"],
    script:
        "../scripts/qc_sampling.py"


FINAL_OUTPUTS.extend(
    ["results/study.tsv", "results/qc/samples.tsv", "results/qc/pairing.tsv"]
    + expand("results/import/{modality}.tsv", modality=MODALITIES)
)
