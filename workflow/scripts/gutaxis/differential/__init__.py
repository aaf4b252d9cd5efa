"""Differential testing of every feature of a modality: paired contrasts, baseline comparisons and formula models.

Rule file ``workflow/rules/differential.smk``; results under ``results/differential/<modality>/``.
The modules: ``transforms`` (the scale a modality is tested on), ``contrast`` (the engine of one
contrast or baseline comparison), ``reference_shift`` (compositional bias correction),
``prevalence`` (presence/absence tests), ``models`` (MaAsLin-class formula models), ``calls``
(the called features, one row each) and ``run`` (one job of the rule: the table prepared and
tested, with every table the rule writes).
"""
