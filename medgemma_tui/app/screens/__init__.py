"""Screens: the inspector (main), head gallery, variants, robustness, help, export."""
