"""Tumour tissue as a modality: the log2(x + 1) transform, cell densities in the immune reader,
tissue in the integration plan (associations yes, MOFA+ only when listed) and the demo's plan."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from conftest import make_demo_workdir, run_snakemake
from gutaxis.io.errors import InputError
from gutaxis.io.importers.immune import read_immune
from gutaxis.integration.design import integration_design
from gutaxis.differential.transforms import TRANSFORMS, transform_table

# ---------------------------------------------------------------------------------------------
# transform log2p1
# ---------------------------------------------------------------------------------------------


def test_log2p1_by_hand():
    """0, 1, 3, 255 and 7 cells/mm^2 are 0, 1, 2, 8 and 3 on the log2(x + 1) scale; missing stays missing."""
    table = pd.DataFrame({"CD8": [0.0, 3.0, np.nan], "PD-L1": [1.0, 255.0, 7.0]}, index=["s1", "s2", "s3"])
    result = transform_table(table, "log2p1", file="tissue.tsv")
    expected = pd.DataFrame({"CD8": [0.0, 2.0, np.nan], "PD-L1": [1.0, 8.0, 3.0]}, index=table.index)
    pd.testing.assert_frame_equal(result.values, expected)
    assert result.name == "log2p1" and "log2p1" in TRANSFORMS
    assert result.parameters == {"pseudocount": 1.0}
    assert "1 cell/mm^2" in result.description
    # a difference d is the fold change 2^d of (x + 1): 3 -> 7 cells/mm^2 is one doubling of x + 1
    assert result.log_base ** (expected.loc["s3", "PD-L1"] - expected.loc["s2", "CD8"]) == 2.0


def test_log2p1_fold_change_approaches_the_density_ratio():
    """Above 100 cells/mm^2 the change on this scale is the log2 ratio of densities to within 1 %."""
    x = np.array([100.0, 400.0, 5000.0])
    t = transform_table(pd.DataFrame({"a": x, "b": 2 * x}), "log2p1").values
    change = t["b"] - t["a"]
    assert np.all(np.abs(change - 1.0) < np.log2(1.01))
    assert np.all(change < 1.0)  # the pseudocount always shrinks towards 0


def test_log2p1_rejects_negative_densities_naming_the_file():
    with pytest.raises(InputError) as caught:
        transform_table(pd.DataFrame({"CD8": [1.0, -2.0]}), "log2p1", file="tissue.tsv")
    message = str(caught.value)
    assert "tissue.tsv" in message and "non-negative" in message


# ---------------------------------------------------------------------------------------------
# reading densities
# ---------------------------------------------------------------------------------------------


def test_immune_reader_takes_cells_per_mm2_above_100(tmp_path):
    path = tmp_path / "tissue.tsv"
    path.write_text("sample_id\tCD8+ cells\tPD-L1+ cells\nA_TU\t1520.5\t0\nB_TU\t12.25\t3.5\n")
    result = read_immune(path, units="cells_per_mm2")
    assert result.table.loc["A_TU", "CD8+ cells"] == 1520.5
    assert result.table.loc["A_TU", "PD-L1+ cells"] == 0.0
    assert result.notes["units"] == "cells_per_mm2"


def test_immune_reader_rejects_an_unknown_density_unit(tmp_path):
    path = tmp_path / "tissue.tsv"
    path.write_text("sample_id\tCD8+ cells\nA_TU\t15\n")
    with pytest.raises(InputError) as caught:
        read_immune(path, units="cells_per_mm")
    assert "cells_per_mm2" in str(caught.value)  # the fix lists the units, this one among them


# ---------------------------------------------------------------------------------------------
# integration plan
# ---------------------------------------------------------------------------------------------


def plan(**mofa):
    return {
        "modalities": {"taxa": {"kind": "taxonomy"}, "metabolites": {"kind": "metabolome"},
                       "immune": {"kind": "immune"}, "tissue": {"kind": "immune"}},
        "design": {"contrasts": [{"name": "post_vs_baseline", "pre": "baseline", "post": "post"}]},
        "integration": {"modalities": [], "contrast": "", "method": "partial_spearman", "covariates": ["cohort"],
                        "triads": {"microbes": "", "metabolites": "", "immune": ""}, "mofa": mofa},
    }


def test_tissue_joins_the_immune_side_of_the_blocks():
    design = integration_design(plan())
    assert design.modalities == ["taxa", "metabolites", "immune", "tissue"]
    assert list(design.blocks) == ["taxa__metabolites", "taxa__immune", "taxa__tissue",
                                   "metabolites__immune", "metabolites__tissue"]  # never immune__tissue
    assert design.triad == ("taxa", "metabolites", "immune")  # the first immune modality by name
    assert design.mofa_modalities == design.modalities  # empty list: every integrated modality


def test_mofa_views_can_leave_tissue_out():
    design = integration_design(plan(modalities=["immune", "taxa", "metabolites"]))
    assert design.mofa_modalities == ["taxa", "metabolites", "immune"]  # in axis order
    assert "tissue" in design.modalities and "metabolites__tissue" in design.blocks


@pytest.mark.parametrize("listed, wanted", [(["taxa", "stool"], "'stool' is not an integrated modality"),
                                            (["taxa"], "fewer than two views")])
def test_mofa_modalities_errors_name_the_key(listed, wanted):
    with pytest.raises(InputError) as caught:
        integration_design(plan(modalities=listed))
    message = str(caught.value)
    assert "integration.mofa.modalities" in message and wanted in message


# ---------------------------------------------------------------------------------------------
# the demo plans the tissue jobs
# ---------------------------------------------------------------------------------------------


def test_demo_dry_run_plans_tissue_import_differential_associations_and_no_tissue_mofa(tmp_path):
    workdir = make_demo_workdir(tmp_path / "demo")
    targets = ["results/differential/tissue/post_vs_baseline.tsv",
               "results/integration/associations/taxa__tissue_change.tsv",
               "results/integration/associations/metabolites__tissue_change.tsv",
               "results/integration/mofa/status.tsv",
               "results/figures/integration/tissue_dynamics.pdf"]
    result = run_snakemake(workdir, "-n", "--cores", "1", *targets, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    jobs = re.split(r"\n(?=(?:local)?rule \w+:)", out)

    def job(rule, output):
        found = [j for j in jobs if re.match(rf"(?:local)?rule {rule}:", j) and output in j]
        assert found, f"no {rule} job for {output}"
        return found[0]

    assert "resources/demo/tissue_densities.tsv" in job("import_modality", "results/import/tissue.tsv")
    job("differential", "results/differential/tissue/post_vs_baseline.tsv")
    job("integration_prepare", "results/integration/prepared/tissue.tsv")
    for block in ("taxa__tissue", "metabolites__tissue"):
        job("integration_associations", f"results/integration/associations/{block}_change.tsv")
    job("plot_integration_immune_dynamics", "results/figures/integration/tissue_dynamics.pdf")
    mofa = job("integration_mofa", "results/integration/mofa/status.tsv")
    mofa_input = mofa.split("output:")[0]
    assert "prepared/immune.tsv" in mofa_input and "prepared/tissue.tsv" not in mofa_input


def test_models_transform_log2p1_per_sample_like_the_differential_scale():
    """The responder models transform each sample on its own; log2p1 needs nothing but the value,
    so a model block of densities is on the differential module's scale exactly."""
    from gutaxis.models.transformers import ELEMENTWISE_TRANSFORMS, transform_rows

    values = np.array([[0.0, 3.0, np.nan], [255.0, 1.0, 7.0]])
    np.testing.assert_array_equal(transform_rows(values, "log2p1"), [[0.0, 2.0, np.nan], [8.0, 1.0, 3.0]])
    assert "log2p1" in ELEMENTWISE_TRANSFORMS
    table = pd.DataFrame(values)
    np.testing.assert_array_equal(transform_rows(values, "log2p1"),
                                  transform_table(table, "log2p1").values.to_numpy())
