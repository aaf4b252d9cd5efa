"""The library layout mirrors the workflow's modules (issue 21).

``results/<module>/x.tsv`` -> ``workflow/rules/<module>.smk`` -> ``workflow/scripts/<module>_x.py``
-> ``gutaxis/<module>/x.py``: these tests keep each hop findable and each entry script thin.
"""

from __future__ import annotations

import ast
import re

import pytest

from conftest import REPO

SCRIPTS = REPO / "workflow" / "scripts"
LIBRARY = SCRIPTS / "gutaxis"
RULES = REPO / "workflow" / "rules"

#: subpackage -> the rule file and results folder its docstring names
MODULES = {
    "io": ("inputs.smk", "results/import/"),
    "clinical": ("clinical.smk", "results/clinical/"),
    "diversity": ("diversity.smk", "results/diversity/"),
    "differential": ("differential.smk", "results/differential/"),
    "metabolome": ("metabolome.smk", "results/metabolome/"),
    "integration": ("integration.smk", "results/integration/"),
    "models": ("models.smk", "results/models/"),
    "plots": ("figures.smk", "results/figures/"),
}
#: an entry script reads its inputs, calls one library function and writes its outputs
MAX_ENTRY_LINES = 45


def _docstring(path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ""


def test_at_most_ten_modules_at_the_top_level():
    top = sorted(p.name for p in LIBRARY.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 10, top


@pytest.mark.parametrize("package", sorted(MODULES))
def test_each_subpackage_names_its_rule_file_and_results(package):
    rule_file, results = MODULES[package]
    text = _docstring(LIBRARY / package / "__init__.py")
    assert f"workflow/rules/{rule_file}" in text
    assert results in text
    assert (RULES / rule_file).is_file()


def test_every_library_module_says_what_it_is():
    missing = [str(p.relative_to(LIBRARY)) for p in LIBRARY.rglob("*.py") if not _docstring(p)]
    assert not missing


def _rule_scripts() -> dict[str, str]:
    """Entry script -> the rule file that runs it."""
    scripts = {}
    for smk in RULES.glob("*.smk"):
        for name in re.findall(r'script:\s*\n\s*"\.\./scripts/([\w]+\.py)"', smk.read_text()):
            scripts[name] = smk.name
    return scripts


def test_every_rule_script_exists_and_is_thin():
    scripts = _rule_scripts()
    assert len(scripts) > 30  # the parse found the rules
    long = {}
    for name in scripts:
        path = SCRIPTS / name
        assert path.is_file(), name
        lines = len(path.read_text().splitlines())
        if lines > MAX_ENTRY_LINES:
            long[name] = lines
    assert not long, f"entry scripts over {MAX_ENTRY_LINES} lines: {long}"


def test_entry_scripts_are_named_after_their_module():
    """``<module>_x.py`` (or ``plot_<module>_x.py``) sits in ``rules/<module>.smk``."""
    prefixes = {"inputs.smk": ("check_", "import_", "qc_", "study_"), "summary.smk": ("summary_",),
                "figures.smk": ("plot_",)}
    wrong = []
    for name, smk in _rule_scripts().items():
        module = smk.removesuffix(".smk")
        allowed = prefixes.get(smk, (f"{module}_", f"plot_{module}_", f"plot_{module}.py"))
        if not name.startswith(allowed) and name != f"plot_{module}.py":
            wrong.append((name, smk))
    assert not wrong


def test_rule_files_use_named_input_functions():
    lambdas = {smk.name: smk.read_text().count("lambda") for smk in RULES.glob("*.smk")}
    lambdas["Snakefile"] = (REPO / "Snakefile").read_text().count("lambda")
    assert not any(lambdas.values()), lambdas


def test_one_pair_samples_and_one_hodges_lehmann():
    """Each is computed in one place; another definition may only hand over to it."""
    home = {"pair_samples": ("io/pairing.py", "paired_design("),
            "hodges_lehmann": ("stats/paired.py", "paired_hodges_lehmann(")}
    defined = {name: [] for name in home}
    for path in LIBRARY.rglob("*.py"):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.name in home:
                where = str(path.relative_to(LIBRARY))
                body = ast.get_source_segment(source, node)
                if where == home[node.name][0] or home[node.name][1] not in body:
                    defined[node.name].append(where)
    assert defined == {name: [where] for name, (where, _) in home.items()}


def test_the_simulator_is_outside_the_analysis_modules():
    analysis = [p for p in LIBRARY.rglob("*.py") if "demo" not in p.parts]
    importers = [str(p.relative_to(LIBRARY)) for p in analysis if "gutaxis.demo" in p.read_text()]
    assert not importers


def test_the_layout_document_lists_every_module_and_script():
    text = (REPO / "docs" / "layout.md").read_text()
    modules = [str(p.relative_to(LIBRARY)).replace("/__init__.py", "/") for p in LIBRARY.rglob("*.py")
               if p.name != "__init__.py" or p.parent.name == "importers"]
    missing = [m for m in modules if f"`{m}`" not in text]
    missing += [s for s in _rule_scripts() if f"`{s}`" not in text]
    assert not missing, f"docs/layout.md does not mention {missing}"
