"""gutaxis: the library behind the gutaxis Snakemake workflow.

Pure functions on arrays and DataFrames for a paired pre/post-treatment trial:
importing tool outputs into canonical tables, validating them, diversity,
differential testing, metabolomics processing, integration, responder models
and figures.  Nothing in this package imports Snakemake; the thin entry points
in ``workflow/scripts/*.py`` read ``snakemake.input/params/output`` and call it.
"""

__version__ = "0.1.0"
