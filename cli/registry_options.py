"""Options read from the registries (``medgemma_tui.registry``) each time a command is shown or parsed, so
a method or a study registered after the command was built is in its help and its flags: ``--methods``'
list of names, and one flag per study."""

from __future__ import annotations

import click

from medgemma_tui.registry import STUDIES, chosen_method_names


def methods_help() -> str:
    """``--methods``'s help: the names ``registry.METHODS`` holds when the help is shown."""
    return ("Attribution maps to add and compare in analysis/methods.csv, comma-separated: "
            f"{', '.join(chosen_method_names())} (default: the config's [methods] names).")


class HelpOf(click.Option):
    """An option whose help is written when it is shown (from a registry that may have grown since)."""

    def __init__(self, *args, help_of, **kwargs):
        super().__init__(*args, **kwargs)
        self.help_of = help_of

    def get_help_record(self, ctx):
        self.help = self.help_of()
        return super().get_help_record(ctx)


def param_name(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


class StudyFlags(click.Command):
    """A command with one flag per study of ``registry.STUDIES`` that names a flag of its own (studies asked
    for by an option the command declares, as ``--methods``, use it), after the option ``after``."""

    def __init__(self, *args, after: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.after = after
        self.flags: dict[object, click.Option] = {}  # kept per study, so a parse and its processing agree

    def get_params(self, ctx):
        params = super().get_params(ctx)
        declared = {opt for param in params for opt in param.opts}
        flags = []
        for spec in STUDIES.values():
            if spec.flag is None or spec.flag in declared:
                continue
            if spec not in self.flags:
                self.flags[spec] = click.Option([spec.flag, param_name(spec.flag)], is_flag=True, help=spec.help)
            flags.append(self.flags[spec])
        at = next(i for i, param in enumerate(params) if self.after in param.opts) + 1
        return [*params[:at], *flags, *params[at:]]


def asked_studies(params) -> set[str]:
    """The studies the command line asked for: by their flags, or by an option they name given any value."""
    return {name for name, spec in STUDIES.items()
            if spec.flag is not None and params.get(param_name(spec.flag)) not in (None, False)}
