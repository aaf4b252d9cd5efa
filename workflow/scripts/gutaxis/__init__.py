"""gutaxis: the library behind the gutaxis Snakemake workflow.

Pure functions on arrays and DataFrames for a paired pre/post-treatment trial, one subpackage
per workflow module, each named after its rule file and its results folder:

==================  =============================  ==============================================
subpackage          rule file (workflow/rules/)    results
==================  =============================  ==============================================
``io``              ``inputs.smk``                 ``results/{inputs,import,qc}/``, ``study.tsv``
``clinical``        ``clinical.smk``               ``results/clinical/``
``diversity``       ``diversity.smk``              ``results/diversity/<modality>/``
``differential``    ``differential.smk``           ``results/differential/<modality>/``
``metabolome``      ``metabolome.smk``             ``results/metabolome/<modality>/``
``integration``     ``integration.smk``            ``results/integration/``
``models``          ``models.smk``                 ``results/models/``
``plots``           each module's ``plot_*`` rules ``results/figures/<module>/``
==================  =============================  ==============================================

``stats`` holds the tests several modules share (paired tests, Hodges-Lehmann, mixed and
logistic models), ``demo`` the simulator of the demo study. At the top level: ``summary`` (the
one-page ``results/summary.md``, ``workflow/rules/summary.smk``), ``runner`` (how an entry script
runs: logging, one-line input errors) and ``console`` (the quiet console of a run). Nothing in
this package imports Snakemake; the thin entry points in ``workflow/scripts/*.py`` read
``snakemake.input/params/output``, call one function here and write its tables.
"""

__version__ = "0.1.0"
