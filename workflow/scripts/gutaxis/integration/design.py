"""What the integration module runs on, read from the config: modalities, views, association blocks and triad layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gutaxis.io.errors import ProblemCollector

__all__ = ["KIND_ROLES", "IntegrationDesign", "count_pairs", "integration_design"]

#: position of a modality kind on the microbe -> metabolite -> immune axis; a block
#: pairs two modalities of different positions, the earlier one as side a
KIND_ROLES = {"taxonomy": 0, "function": 0, "metabolome": 1, "immune": 2}
#: kinds integrated when `integration.modalities` is empty
DEFAULT_KINDS = ("taxonomy", "metabolome", "immune")
#: kinds each triad layer takes by default, in order of preference
TRIAD_KINDS = {"microbes": ("taxonomy", "function"), "metabolites": ("metabolome",), "immune": ("immune",)}
CHANGE_VIEW = "change"


@dataclass(frozen=True)
class IntegrationDesign:
    """The integration module's plan.

    Attributes
    ----------
    modalities : list of str
        Integrated modalities, microbial first, then metabolome, then immune
        (by name within a kind). Empty when there is nothing to integrate
        (fewer than two modalities).
    pre, post : str
        Timepoints of the contrast; ``views`` = ``[pre, post, "change"]``. A
        study without contrasts (baseline-only) has ``pre`` = ``design.baseline``,
        ``post`` = "" and the one view ``[pre]``.
    blocks : dict of str -> (str, str)
        ``"<a>__<b>"`` -> (a, b) for every pair of integrated modalities at
        different positions on the axis.
    triad : tuple of (str or None)
        Modalities of the microbe, metabolite and immune layers.
    triad_blocks : list of str
        The microbe-metabolite and metabolite-immune blocks, empty without a
        complete triad or without a change view.
    covariates : list of str
        Subjects-table columns adjusted for (empty for plain Spearman).
    kinds : dict of str -> str
        Kind of each integrated modality.
    mofa_modalities : list of str
        The views of the MOFA+ fit, in design order: ``integration.mofa.modalities``, or
        every integrated modality when that list is empty. A modality sampled in a subset of
        subjects (tumour biopsies) can be left out of it, because the fit keeps only the
        units that have every view, while it still enters the association blocks.
    """

    modalities: list
    pre: str = ""
    post: str = ""
    views: list = field(default_factory=list)
    blocks: dict = field(default_factory=dict)
    triad: tuple = (None, None, None)
    triad_blocks: list = field(default_factory=list)
    covariates: list = field(default_factory=list)
    kinds: dict = field(default_factory=dict)
    mofa_modalities: list = field(default_factory=list)

    def of_kind(self, *kinds) -> list:
        """Integrated modalities of these kinds, in design order."""
        return [m for m in self.modalities if self.kinds[m] in kinds]


def integration_design(config: dict) -> IntegrationDesign:
    """Read the integration plan from a validated config (defaults filled).

    Parameters
    ----------
    config : dict
        The whole config (``modalities``, ``design.contrasts``, ``integration``).

    Returns
    -------
    IntegrationDesign

    Raises
    ------
    InputError
        A listed modality or triad layer that does not exist or has the wrong
        kind, or an unknown contrast; all problems together.
    """
    problems = ProblemCollector()
    section = config["integration"]
    kinds = {name: spec["kind"] for name, spec in config["modalities"].items()}
    listed = list(section.get("modalities", []))
    for name in listed:
        if name not in kinds:
            problems.add("config", "key 'integration.modalities'", f"'{name}' is not a modality of the config",
                         f"use names from `modalities:` ({', '.join(sorted(kinds))})")
        elif kinds[name] not in KIND_ROLES:
            problems.add("config", "key 'integration.modalities'", f"'{name}' has kind {kinds[name]!r}",
                         "integrate taxonomy, function, metabolome or immune modalities")
    contrasts = {c["name"]: c for c in config["design"].get("contrasts", [])}
    wanted = section.get("contrast", "") or next(iter(contrasts), "")
    if wanted and wanted not in contrasts:
        problems.add("config", "key 'integration.contrast'", f"'{wanted}' is not a contrast of design.contrasts",
                     f"use one of {', '.join(contrasts)} or leave it empty for the first")
    problems.raise_if_any()

    chosen = listed or [m for m in kinds if kinds[m] in DEFAULT_KINDS]
    modalities = sorted(chosen, key=lambda m: (KIND_ROLES[kinds[m]], m))
    contrast = contrasts.get(wanted)
    if not contrasts:
        # a baseline-only study: one view, the baseline samples; no change view, no triads
        contrast = {"pre": config["design"]["baseline"], "post": ""}
    if contrast is None or len(modalities) < 2:
        return IntegrationDesign(modalities=[])

    role = {m: KIND_ROLES[kinds[m]] for m in modalities}
    blocks = {f"{a}__{b}": (a, b) for a in modalities for b in modalities if role[a] < role[b]}
    blocks = dict(sorted(blocks.items(), key=lambda kv: (role[kv[1][0]], role[kv[1][1]], kv[1])))

    triad = []
    for layer, layer_kinds in TRIAD_KINDS.items():
        named = section.get("triads", {}).get(layer, "")
        if named:
            if named not in modalities:
                problems.add("config", f"key 'integration.triads.{layer}'", f"'{named}' is not an integrated modality",
                             f"use one of {', '.join(modalities)}")
            elif kinds[named] not in layer_kinds:
                problems.add("config", f"key 'integration.triads.{layer}'", f"'{named}' has kind {kinds[named]!r}",
                             f"name a modality of kind {' or '.join(layer_kinds)}")
            triad.append(named)
            continue
        found = [m for kind in layer_kinds for m in modalities if kinds[m] == kind]
        triad.append(found[0] if found else None)
    mofa_listed = list(section.get("mofa", {}).get("modalities", []))
    for name in mofa_listed:
        if name not in modalities:
            problems.add("config", "key 'integration.mofa.modalities'", f"'{name}' is not an integrated modality",
                         f"use names from {', '.join(modalities)}, or leave the list empty for all of them")
    if mofa_listed and len(set(mofa_listed)) < 2:
        problems.add("config", "key 'integration.mofa.modalities'", "fewer than two views",
                     "list two or more integrated modalities, or leave the list empty for all of them")
    problems.raise_if_any()
    mofa_modalities = [m for m in modalities if m in mofa_listed] if mofa_listed else list(modalities)
    paired = bool(contrast["post"])
    triad_blocks = [f"{triad[0]}__{triad[1]}", f"{triad[1]}__{triad[2]}"] if all(triad) and paired else []
    covariates = list(section.get("covariates", [])) if section.get("method") == "partial_spearman" else []
    views = [contrast["pre"], contrast["post"], CHANGE_VIEW] if paired else [contrast["pre"]]
    return IntegrationDesign(
        modalities=modalities, pre=contrast["pre"], post=contrast["post"],
        views=views, blocks=blocks, triad=tuple(triad),
        triad_blocks=triad_blocks, covariates=covariates, kinds={m: kinds[m] for m in modalities},
        mofa_modalities=mofa_modalities,
    )


def count_pairs(paths) -> int:
    """Feature pairs of a block from the header lines of its two prepared tables (0 if one is missing)."""
    counts = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            return 0
        with open(path) as handle:
            counts.append(handle.readline().count("\t"))
    product = 1
    for c in counts:
        product *= c
    return product
