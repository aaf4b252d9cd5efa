"""Figure functions: each takes result tables (DataFrames) and a style, returns a Figure."""
