"""Widgets of the inspector: the X-ray pane, tokens, metrics, charts and the samples table."""
