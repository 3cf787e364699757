"""The one pipeline: a dataset row becomes inputs, an answer, a record, an analysis and a written result.

``rows`` answers and analyses one row, ``batch`` runs many into a sink, ``evaluation`` wraps a batch into a results
tree with ``run.json`` and ``analysis/``, ``check`` answers one question about one film; ``studies``
re-run a row under perturbations or deletions. ``medtui check``, ``medtui eval``, the app and the bench
all go through here, with the same ``Config``, so one row gives the same numbers whichever ran it.
"""
