# Shared setup: the library on the path, the config validated and filled with
# its defaults, the sheets checked, and helper functions for rule inputs.
# Any problem with the config or the sheets stops here, before a job runs,
# with one message that names the file, the row or key, and the fix.

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from gutaxis.configuration import validate_config
from gutaxis.errors import InputError
from gutaxis.sheets import load_sheets

try:
    config.update(validate_config(config))
    SHEETS = load_sheets(config)
except InputError as err:
    # the message names file, row and fix; a traceback would only hide it
    print(err, file=sys.stderr)
    sys.exit(1)

MODALITIES = sorted(config["modalities"])
CONTRASTS = [c["name"] for c in config["design"]["contrasts"]]
FIGURE_FORMATS = config["style"]["formats"]
# Every rule's outputs that `rule all` builds; each module file adds its own.
FINAL_OUTPUTS = []


wildcard_constraints:
    modality="|".join(MODALITIES),
    contrast="|".join(CONTRASTS) if CONTRASTS else "NONE",
    fmt="|".join(FIGURE_FORMATS),


def modality_config(wildcards):
    return config["modalities"][wildcards.modality]


def modality_input(wildcards):
    return config["modalities"][wildcards.modality]["path"]


def modalities_of_kind(*kinds):
    return [m for m in MODALITIES if config["modalities"][m]["kind"] in kinds]


# The downstream contract: differential and integration rules take their table
# and annotations from these two, e.g. `table=analysis_table` (an input
# function of the `modality` wildcard) or `analysis_table("metabolites")`.
def analysis_table(modality):
    """The samples x features table a downstream module analyses: the processed
    (log2) table for metabolome kinds, the import otherwise."""
    name = getattr(modality, "modality", modality)
    if config["modalities"][name]["kind"] == "metabolome":
        return f"results/metabolome/{name}/processed.tsv"
    return f"results/import/{name}.tsv"


def analysis_features(modality):
    """Feature annotations aligned with analysis_table(modality)."""
    name = getattr(modality, "modality", modality)
    if config["modalities"][name]["kind"] == "metabolome":
        return f"results/metabolome/{name}/features.tsv"
    return f"results/import/{name}.features.tsv"


def figure_paths(stem):
    """One path per configured format for the figure `results/figures/<stem>`."""
    return expand("results/figures/{stem}.{fmt}", stem=stem, fmt=FIGURE_FORMATS)


# Main (paper) figures: see figures.smk; MAIN_RASTER is set there.
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


def _main_stems(wildcards):
    return [s for row in MAIN_FIGURES[wildcards.number] for cell in row for s in cell]


def final_outputs():
    return FINAL_OUTPUTS
