# Metabolomics processing: each modality of kind `metabolome` goes from raw peak
# intensities (study samples, pooled QC and blank injections) through the blank,
# missingness and QC-RSD filters, imputation, normalisation, log2, optional batch
# centring and scaling to `results/metabolome/<modality>/processed.tsv` (study
# samples x kept features, log2), which the differential and integration modules
# read instead of the import (see analysis_table in common.smk). Every step is logged in
# processing_log.tsv; every dropped feature and injection is listed with its
# reason. Parameters come only from the config's `metabolome` section. The QC
# figures read the QC tables and compute nothing.

METABOLOME_MODALITIES = modalities_of_kind("metabolome")
# a pattern that matches no name when no modality is a metabolome
METABOLOME_PATTERN = "|".join(METABOLOME_MODALITIES) or "(?!)"
METABOLOME_DIR = "results/metabolome/{modality}"
METABOLOME_FIGURES = "metabolome/{modality}"


# the QC figures run on the submitting host, not as cluster jobs
localrules:
    plot_metabolome_pca,
    plot_metabolome_rsd,
    plot_metabolome_missingness,
    plot_metabolome_total_signal,


rule process_metabolome:
    input:
        table="results/import/{modality}.tsv",
        features="results/import/{modality}.features.tsv",
        samples="results/inputs/samples.tsv",
    output:
        # not in the report: at consortium scale it is hundreds of MB
        processed=f"{METABOLOME_DIR}/processed.tsv",
        features=f"{METABOLOME_DIR}/features.tsv",
        processing_log=report(
            f"{METABOLOME_DIR}/processing_log.tsv",
            caption="../report/metabolome_processing_log.rst",
            category="Metabolomics",
            subcategory="{modality}",
            labels={"modality": "{modality}", "table": "Processing log"},
        ),
        dropped_features=f"{METABOLOME_DIR}/dropped_features.tsv",
        dropped_samples=f"{METABOLOME_DIR}/dropped_samples.tsv",
        qc_pca=f"{METABOLOME_DIR}/qc_pca.tsv",
        qc_dispersion=f"{METABOLOME_DIR}/qc_dispersion.tsv",
        qc_rsd=f"{METABOLOME_DIR}/qc_rsd.tsv",
        missingness_samples=f"{METABOLOME_DIR}/missingness_samples.tsv",
        missingness_features=f"{METABOLOME_DIR}/missingness_features.tsv",
        total_signal=f"{METABOLOME_DIR}/total_signal.tsv",
        normalisation_factors=f"{METABOLOME_DIR}/normalisation_factors.tsv",
        missingness_structure=f"{METABOLOME_DIR}/missingness_structure.tsv",
        platform_missingness=report(
            f"{METABOLOME_DIR}/platform_missingness.tsv",
            caption="../report/metabolome_platform_missingness.rst",
            category="Metabolomics",
            subcategory="{modality}",
            labels={"modality": "{modality}", "table": "Platform coverage per group"},
        ),
        contrast_missingness=f"{METABOLOME_DIR}/contrast_missingness.tsv",
        qc_precision=report(
            f"{METABOLOME_DIR}/qc_precision.tsv",
            caption="../report/metabolome_qc_precision.rst",
            category="Metabolomics",
            subcategory="{modality}",
            labels={
                "modality": "{modality}",
                "table": "QC precision before/after correction",
            },
        ),
        drift_fits=f"{METABOLOME_DIR}/drift_fits.tsv",
    wildcard_constraints:
        modality=METABOLOME_PATTERN,
    log:
        "logs/metabolome/process_{modality}.log",
    benchmark:
        "logs/benchmarks/metabolome/process_metabolome_{modality}.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 2
    resources:
        # measured: 5,579 injections x 5,000 features (205 MB of TSV) peak at 1.1 GB
        # and 2 min (25 s processing, the rest reading and writing)
        mem_mb=memory_mb(1000, 8),
        runtime=runtime_minutes(10, 10),
    params:
        metabolome=config["metabolome"],
        contrasts=config["design"].get("contrasts") or [],
        table_label=modality_setting("path"),
        samples_label=config["samples"],
    script:
        "../scripts/metabolome_process.py"


rule plot_metabolome_pca:
    input:
        scores=f"{METABOLOME_DIR}/qc_pca.tsv",
        dispersion=f"{METABOLOME_DIR}/qc_dispersion.tsv",
        samples="results/inputs/samples.tsv",
    output:
        figures=report(
            figure_paths(f"{METABOLOME_FIGURES}/qc_pca"),
            caption="../report/metabolome_qc_pca.rst",
            category="Metabolomics",
            subcategory="{modality}",
            labels={"modality": "{modality}", "figure": "QC PCA before/after"},
        ),
        source=f"results/figures/{METABOLOME_FIGURES}/qc_pca.source.tsv",
    wildcard_constraints:
        modality=METABOLOME_PATTERN,
    log:
        "logs/figures/metabolome_pca_{modality}.log",
    benchmark:
        "logs/benchmarks/figures/metabolome_pca_{modality}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="pca",
        style=plot_style(f"{METABOLOME_FIGURES}/qc_pca"),
        title=modality_title,
    script:
        "../scripts/plot_metabolome_qc.py"


rule plot_metabolome_rsd:
    input:
        rsd=f"{METABOLOME_DIR}/qc_rsd.tsv",
    output:
        figures=report(
            figure_paths(f"{METABOLOME_FIGURES}/qc_rsd"),
            caption="../report/metabolome_qc_rsd.rst",
            category="Metabolomics",
            subcategory="{modality}",
            labels={"modality": "{modality}", "figure": "QC RSD distribution"},
        ),
        source=f"results/figures/{METABOLOME_FIGURES}/qc_rsd.source.tsv",
    wildcard_constraints:
        modality=METABOLOME_PATTERN,
    log:
        "logs/figures/metabolome_rsd_{modality}.log",
    benchmark:
        "logs/benchmarks/figures/metabolome_rsd_{modality}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="rsd",
        style=plot_style(f"{METABOLOME_FIGURES}/qc_rsd"),
        title=modality_title,
        qc_rsd=config["metabolome"]["qc_rsd"],
    script:
        "../scripts/plot_metabolome_qc.py"


rule plot_metabolome_missingness:
    input:
        per_sample=f"{METABOLOME_DIR}/missingness_samples.tsv",
        per_feature=f"{METABOLOME_DIR}/missingness_features.tsv",
        dropped=f"{METABOLOME_DIR}/dropped_features.tsv",
        samples="results/inputs/samples.tsv",
    output:
        figures=report(
            figure_paths(f"{METABOLOME_FIGURES}/missingness"),
            caption="../report/metabolome_missingness.rst",
            category="Metabolomics",
            subcategory="{modality}",
            labels={"modality": "{modality}", "figure": "Missingness"},
        ),
        source=f"results/figures/{METABOLOME_FIGURES}/missingness.source.tsv",
    wildcard_constraints:
        modality=METABOLOME_PATTERN,
    log:
        "logs/figures/metabolome_missingness_{modality}.log",
    benchmark:
        "logs/benchmarks/figures/metabolome_missingness_{modality}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="missingness",
        style=plot_style(f"{METABOLOME_FIGURES}/missingness"),
        title=modality_title,
        missingness=config["metabolome"]["missingness"],
    script:
        "../scripts/plot_metabolome_qc.py"


rule plot_metabolome_total_signal:
    input:
        total_signal=f"{METABOLOME_DIR}/total_signal.tsv",
    output:
        figures=report(
            figure_paths(f"{METABOLOME_FIGURES}/total_signal"),
            caption="../report/metabolome_total_signal.rst",
            category="Metabolomics",
            subcategory="{modality}",
            labels={"modality": "{modality}", "figure": "Total signal in run order"},
        ),
        source=f"results/figures/{METABOLOME_FIGURES}/total_signal.source.tsv",
    wildcard_constraints:
        modality=METABOLOME_PATTERN,
    log:
        "logs/figures/metabolome_total_signal_{modality}.log",
    benchmark:
        "logs/benchmarks/figures/metabolome_total_signal_{modality}.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        figure="total_signal",
        style=plot_style(f"{METABOLOME_FIGURES}/total_signal"),
        title=modality_title,
        normalisation=config["metabolome"]["normalise"]["method"],
    script:
        "../scripts/plot_metabolome_qc.py"


FINAL_OUTPUTS.extend(
    expand(
        f"{METABOLOME_DIR}/{{table}}.tsv",
        modality=METABOLOME_MODALITIES,
        table=["processed", "features", "processing_log"],
    )
    + [
        path
        for stem in ("qc_pca", "qc_rsd", "missingness", "total_signal")
        for modality in METABOLOME_MODALITIES
        for path in figure_paths(f"metabolome/{modality}/{stem}")
    ]
)


# end of run: metabolites left out of a contrast as not measured at one of its timepoints
RUN_SUMMARY.append(metabolome_run_summary)
