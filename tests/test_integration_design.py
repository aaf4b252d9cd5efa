"""The integration plan read from the config: modalities in axis order, blocks, views, triad layers, errors."""

from __future__ import annotations

import pytest

from gutaxis.io.errors import InputError
from gutaxis.integration.design import count_pairs, integration_design


def config(**integration):
    section = {"modalities": [], "contrast": "", "method": "partial_spearman", "covariates": ["cohort"],
               "triads": {"microbes": "", "metabolites": "", "immune": ""}}
    section.update(integration)
    return {
        "modalities": {"immune": {"kind": "immune"}, "taxa": {"kind": "taxonomy"},
                       "metabolites": {"kind": "metabolome"}, "pathways": {"kind": "function"}},
        "design": {"contrasts": [{"name": "post_vs_baseline", "pre": "baseline", "post": "post"},
                                 {"name": "prog", "pre": "baseline", "post": "progression"}]},
        "integration": section,
    }


def test_default_design_orders_the_axis_and_pairs_different_kinds():
    design = integration_design(config())
    assert design.modalities == ["taxa", "metabolites", "immune"]  # function only when listed
    assert design.views == ["baseline", "post", "change"]
    assert design.blocks == {"taxa__metabolites": ("taxa", "metabolites"), "taxa__immune": ("taxa", "immune"),
                             "metabolites__immune": ("metabolites", "immune")}
    assert design.triad == ("taxa", "metabolites", "immune")
    assert design.triad_blocks == ["taxa__metabolites", "metabolites__immune"]
    assert design.covariates == ["cohort"]
    assert design.of_kind("immune") == ["immune"]


def test_listed_modalities_contrast_and_plain_spearman():
    design = integration_design(config(modalities=["pathways", "immune"], contrast="prog", method="spearman"))
    assert design.modalities == ["pathways", "immune"]
    assert design.views == ["baseline", "progression", "change"]
    assert list(design.blocks) == ["pathways__immune"]
    assert design.triad == ("pathways", None, "immune") and design.triad_blocks == []
    assert design.covariates == []


def test_config_mistakes_are_reported_together():
    with pytest.raises(InputError) as err:
        integration_design(config(modalities=["taxa", "stool16s"], contrast="week4"))
    text = str(err.value)
    assert "'stool16s' is not a modality" in text and "'week4' is not a contrast" in text
    with pytest.raises(InputError, match="integration.triads.immune"):
        integration_design(config(triads={"microbes": "", "metabolites": "", "immune": "taxa"}))


def test_nothing_to_integrate_without_a_second_modality():
    assert integration_design(config(modalities=["taxa"])).modalities == []
    assert integration_design(config(modalities=["taxa"])).blocks == {}


def test_a_study_without_contrasts_integrates_its_baseline_view_only():
    no_contrast = config()
    no_contrast["design"]["contrasts"] = []
    no_contrast["design"]["baseline"] = "screening"
    design = integration_design(no_contrast)
    assert design.modalities == ["taxa", "metabolites", "immune"]
    assert design.views == ["screening"]
    assert (design.pre, design.post) == ("screening", "")
    assert len(design.blocks) == 3
    # triads chain change-view links: none without a change view
    assert design.triad_blocks == []


def test_count_pairs_reads_headers(tmp_path):
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    a.write_text("sample_id\tf1\tf2\tf3\ns1\t1\t2\t3\n")
    b.write_text("sample_id\tg1\tg2\n")
    assert count_pairs([a, b]) == 6
    assert count_pairs([a, tmp_path / "missing.tsv"]) == 0
