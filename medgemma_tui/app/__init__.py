"""The Textual app (``medtui``): the only part of medgemma_tui that imports textual.

``state``, ``session``, ``frame`` and ``bench`` are plain Python (the app's headless core); ``picture``
turns a map into cached half-block strips; ``app`` wires them to widgets, screens and workers.
"""
