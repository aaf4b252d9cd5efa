"""The demo study: a deterministic simulator of a paired microbiome-metabolome-immune trial.

Not an analysis module: ``workflow/scripts/simulate_demo.py`` calls ``simulate.simulate_study``
to rewrite ``resources/demo/`` byte for byte. ``catalog`` holds the real names it draws from.
"""
