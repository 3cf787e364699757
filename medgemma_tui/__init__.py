"""medgemma-tui: where does a vision-language model look on a chest X-ray?

The core (``data``, ``model``, ``engine``, ``analysis``, ``export``) never imports textual; only
``medgemma_tui.app`` does.
"""

__version__ = "0.1.0"
