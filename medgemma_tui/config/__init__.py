"""The run configuration: a TOML file read into nested frozen dataclasses, every key checked.

``schema`` says what a config is (sections, keys, defaults), ``checks`` how each value is checked,
``load`` how a file is read. The names below are the package's interface.
"""

from medgemma_tui.config.checks import ConfigError
from medgemma_tui.config.load import load_config
from medgemma_tui.config.schema import COLOR_MODES, GRAPHICS_MODES, PROMPT_ORDERS, SECTIONS, Config, PromptConfig

__all__ = ["COLOR_MODES", "GRAPHICS_MODES", "PROMPT_ORDERS", "SECTIONS", "Config", "ConfigError", "PromptConfig",
           "load_config"]
