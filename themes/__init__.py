"""App themes and heatmap colour tables, registered from the files in this folder."""
