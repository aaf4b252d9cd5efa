"""Figures: each function takes result tables (DataFrames) and a style, and returns a Figure.

Each module's rule file draws its own figures (``plot_*`` rules in
``workflow/rules/<module>.smk``; the sampling and main figures in ``workflow/rules/figures.smk``);
results under ``results/figures/<module>/``. One module per workflow module (``clinical``,
``diversity``, ``differential``, ``metabolome``, ``integration``, ``models``, ``qc``, ``main``),
plus ``style`` (one figure style from the config's ``style`` section) and ``names`` (taxon names
in italics).
"""
