"""Studies of one row that need the model again (headless, opt-in): robustness and faithfulness.

Each returns a plain JSON-ready dict; in ``medtui eval`` the study callables put it in
``result.analysis.extras`` under ``STUDY_KEYS``, the tree writes them to ``robustness/{key}.json`` and
``export.study_tables`` turns the files of a tree into tables and summary numbers.
"""

STUDY_KEYS = ("robustness", "faithfulness", "one_pixel")  # sections of robustness/{key}.json, keys of analysis.extras
