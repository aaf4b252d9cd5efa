# Clinical endpoints: ORR/DCR with exact CIs, responder labels, PFS2/OS
# Kaplan-Meier with log-rank tests, adverse-event incidence, abscopal effect,
# and their figures. Every compute script checks the clinical meaning of the
# subjects (and adverse-event) table first, so a bad value stops the rule with
# one message naming the file, column and subjects. Plot rules read the tables
# below (and, for the patient-level waterfall and swimmer plots, the checked
# subjects table) and compute nothing.

CLINICAL = config["clinical"]
CLINICAL_SUBJECTS_LABEL = config["subjects"]
CLINICAL_AE_LABEL = config["adverse_events"] or "adverse_events.tsv"
# the best-response criterion (recist/irecist) that colours the patient-level
# plots: the primary responder definition's, else the first RECIST definition's
CLINICAL_RECIST = STUDY.recist_definitions
CLINICAL_PRIMARY_CRITERION = (
    STUDY.definitions.get(RESPONSE) or next(iter(CLINICAL_RECIST.values()), {})
).get("criterion", "recist")
# the first grouping is drawn in the Kaplan-Meier figure and the AE heatmap
CLINICAL_PLOT_GROUPING = next(iter(CLINICAL["groupings"].values()), [])


# one row per patient or adverse event: small tables and plots that run on the
# submitting host, not as cluster jobs
localrules:
    clinical_response,
    clinical_responders,
    clinical_survival,
    clinical_safety,
    plot_clinical_waterfall,
    plot_clinical_swimmer,
    plot_clinical_forest,
    plot_clinical_km,
    plot_clinical_ae_heatmap,


rule clinical_response:
    input:
        subjects="results/inputs/subjects.tsv",
    output:
        response=report(
            "results/clinical/response.tsv",
            caption="../report/clinical_response.rst",
            category="Clinical endpoints",
            labels={"table": "ORR and DCR"},
        ),
        abscopal=report(
            "results/clinical/abscopal.tsv",
            caption="../report/clinical_abscopal.rst",
            category="Clinical endpoints",
            labels={"table": "Abscopal effect"},
        ),
    log:
        "logs/clinical/clinical_response.log",
    benchmark:
        "logs/benchmarks/clinical/clinical_response.tsv"
    conda:
        "../envs/stats.yaml"
    params:
        subjects_label=CLINICAL_SUBJECTS_LABEL,
        definitions=CLINICAL_RECIST,
        not_evaluable=config["response"]["not_evaluable"],
        groupings=CLINICAL["groupings"],
        conf_level=CLINICAL["conf_level"],
    script:
        "../scripts/clinical_response.py"


rule clinical_responders:
    input:
        subjects="results/inputs/subjects.tsv",
    output:
        responders="results/clinical/responders.tsv",
    log:
        "logs/clinical/clinical_responders.log",
    benchmark:
        "logs/benchmarks/clinical/clinical_responders.tsv"
    conda:
        "../envs/stats.yaml"
    params:
        subjects_label=CLINICAL_SUBJECTS_LABEL,
        definitions=STUDY.definitions,
    script:
        "../scripts/clinical_responders.py"


rule clinical_survival:
    input:
        subjects="results/inputs/subjects.tsv",
    output:
        survival=report(
            "results/clinical/survival.tsv",
            caption="../report/clinical_survival.rst",
            category="Clinical endpoints",
            labels={"table": "PFS2 and OS"},
        ),
        curves="results/clinical/km_curves.tsv",
        warnings="results/clinical/subject_warnings.tsv",
    log:
        "logs/clinical/clinical_survival.log",
    benchmark:
        "logs/benchmarks/clinical/clinical_survival.tsv"
    conda:
        "../envs/stats.yaml"
    params:
        subjects_label=CLINICAL_SUBJECTS_LABEL,
        endpoints=STUDY.survival_endpoints,
        groupings=CLINICAL["groupings"],
        landmarks=CLINICAL["landmarks"],
        conf_level=CLINICAL["conf_level"],
        conf_type=CLINICAL["km_conf_type"],
        at_risk_every=CLINICAL["at_risk_every_months"],
    script:
        "../scripts/clinical_survival.py"


rule clinical_safety:
    input:
        subjects="results/inputs/subjects.tsv",
        adverse_events="results/inputs/adverse_events.tsv",
    output:
        incidence=report(
            "results/clinical/adverse_events.tsv",
            caption="../report/clinical_adverse_events.rst",
            category="Clinical endpoints",
            labels={"table": "Adverse events"},
        ),
        worst_grade="results/clinical/adverse_events_worst_grade.tsv",
    log:
        "logs/clinical/clinical_safety.log",
    benchmark:
        "logs/benchmarks/clinical/clinical_safety.tsv"
    conda:
        "../envs/stats.yaml"
    params:
        subjects_label=CLINICAL_SUBJECTS_LABEL,
        ae_label=CLINICAL_AE_LABEL,
        groupings=CLINICAL["groupings"],
        related=CLINICAL["ae_related_attributions"],
    script:
        "../scripts/clinical_safety.py"


rule plot_clinical_waterfall:
    input:
        subjects="results/inputs/subjects.tsv",
    output:
        figures=report(
            figure_paths("clinical/waterfall"),
            caption="../report/clinical_waterfall.rst",
            category="Clinical endpoints",
            labels={"figure": "Waterfall plot"},
        ),
        source="results/figures/clinical/waterfall.source.tsv",
    log:
        "logs/figures/clinical_waterfall.log",
    benchmark:
        "logs/benchmarks/figures/clinical_waterfall.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style("clinical/waterfall"),
        criterion=CLINICAL_PRIMARY_CRITERION,
        thresholds=CLINICAL["waterfall_thresholds"],
    script:
        "../scripts/plot_clinical_waterfall.py"


rule plot_clinical_swimmer:
    input:
        subjects="results/inputs/subjects.tsv",
    output:
        figures=report(
            figure_paths("clinical/swimmer"),
            caption="../report/clinical_swimmer.rst",
            category="Clinical endpoints",
            labels={"figure": "Swimmer plot"},
        ),
        source="results/figures/clinical/swimmer.source.tsv",
    log:
        "logs/figures/clinical_swimmer.log",
    benchmark:
        "logs/benchmarks/figures/clinical_swimmer.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style("clinical/swimmer"),
        criterion=CLINICAL_PRIMARY_CRITERION,
        cohorts=config["design"]["cohorts"],
        max_patients=CLINICAL["swimmer_max_patients"],
    script:
        "../scripts/plot_clinical_swimmer.py"


rule plot_clinical_forest:
    input:
        response="results/clinical/response.tsv",
    output:
        figures=report(
            figure_paths("clinical/forest"),
            caption="../report/clinical_forest.rst",
            category="Clinical endpoints",
            labels={"figure": "Forest plot of ORR and DCR"},
        ),
        source="results/figures/clinical/forest.source.tsv",
    log:
        "logs/figures/clinical_forest.log",
    benchmark:
        "logs/benchmarks/figures/clinical_forest.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style("clinical/forest"),
        groupings=CLINICAL["groupings"],
        cohorts=config["design"]["cohorts"],
        conf_level=CLINICAL["conf_level"],
    script:
        "../scripts/plot_clinical_forest.py"


rule plot_clinical_km:
    input:
        curves="results/clinical/km_curves.tsv",
        survival="results/clinical/survival.tsv",
    output:
        figures=report(
            figure_paths("clinical/km"),
            caption="../report/clinical_km.rst",
            category="Clinical endpoints",
            labels={"figure": "Kaplan-Meier curves"},
        ),
        source="results/figures/clinical/km.source.tsv",
    log:
        "logs/figures/clinical_km.log",
    benchmark:
        "logs/benchmarks/figures/clinical_km.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style("clinical/km"),
        grouping=CLINICAL_PLOT_GROUPING,
        cohorts=config["design"]["cohorts"],
        max_months=CLINICAL["km_max_months"],
    script:
        "../scripts/plot_clinical_km.py"


rule plot_clinical_ae_heatmap:
    input:
        worst_grade="results/clinical/adverse_events_worst_grade.tsv",
    output:
        figures=report(
            figure_paths("clinical/ae_heatmap"),
            caption="../report/clinical_ae_heatmap.rst",
            category="Clinical endpoints",
            labels={"figure": "Adverse-event grades"},
        ),
        source="results/figures/clinical/ae_heatmap.source.tsv",
    log:
        "logs/figures/clinical_ae_heatmap.log",
    benchmark:
        "logs/benchmarks/figures/clinical_ae_heatmap.tsv"
    conda:
        "../envs/plots.yaml"
    params:
        style=plot_style("clinical/ae_heatmap"),
        grouping=CLINICAL_PLOT_GROUPING,
        cohorts=config["design"]["cohorts"],
        subset="all",
    script:
        "../scripts/plot_clinical_ae_heatmap.py"


# What the study's subjects table supports (gutaxis.io.design.plan_study): ORR/DCR
# need a RECIST/iRECIST responder definition, survival its time and event columns,
# safety an adverse-event table; the rest is skipped with a note.
CLINICAL_FIGURES = sorted(STUDY.patient_plots)
if CLINICAL_RECIST:
    CLINICAL_FIGURES.append("forest")
    FINAL_OUTPUTS.extend(
        ["results/clinical/response.tsv", "results/clinical/abscopal.tsv"]
    )
if STUDY.survival_endpoints:
    CLINICAL_FIGURES.append("km")
    FINAL_OUTPUTS.extend(
        [
            "results/clinical/survival.tsv",
            "results/clinical/km_curves.tsv",
            "results/clinical/subject_warnings.tsv",
        ]
    )
if STUDY.adverse_events:
    CLINICAL_FIGURES.append("ae_heatmap")
    FINAL_OUTPUTS.extend(
        [
            "results/clinical/adverse_events.tsv",
            "results/clinical/adverse_events_worst_grade.tsv",
        ]
    )
FINAL_OUTPUTS.append("results/clinical/responders.tsv")
for _figure in CLINICAL_FIGURES:
    FINAL_OUTPUTS.extend(figure_paths(f"clinical/{_figure}"))
    FINAL_OUTPUTS.append(f"results/figures/clinical/{_figure}.source.tsv")
