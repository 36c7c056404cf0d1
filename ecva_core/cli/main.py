"""Root of the ``ecva`` command.

Sub-commands are imported lazily so ``ecva --help`` starts fast; a user error (any
:class:`~ecva_core.errors.EcvaError`) is printed as one message on stderr with exit status 1.
"""

from __future__ import annotations

import functools
import importlib
import sys
from importlib.metadata import entry_points

import click

from ecva_core import __version__
from ecva_core.errors import EcvaError

# command name -> (module, attribute, one-line help shown by ``ecva --help``)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "data": ("ecva_core.cli.data", "data", "Validate, download or generate the dataset."),
    "frames": ("ecva_core.cli.frames", "frames", "Sample frames from a video and write JPEGs."),
    "score": ("ecva_core.cli.scoring", "score", "Validate, store and score a submission."),
    "leaderboard": ("ecva_core.cli.scoring", "leaderboard", "Print the leaderboard with 95% CIs."),
    "compare": ("ecva_core.cli.scoring", "compare", "Paired comparison of two models."),
    "results": ("ecva_core.cli.scoring", "results", "Export or import a model's full results."),
    "chat": ("ecva_core.cli.chat", "chat", "Ask a video LLM one question about a clip."),
    "models": ("ecva_core.cli.models", "models", "Download model weights (Hugging Face, ModelScope) for offline use."),
    "infer": ("ecva_core.cli.infer", "infer", "Run a video LLM over the benchmark (resumable, sharded, Ray)."),
}
# Commands that other installed packages add (the apps add ``serve``): the library never imports them.
PLUGIN_GROUP = "ecva.commands"


@functools.cache
def _plugins() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP) if ep.name not in COMMANDS}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use, and that turns user errors into exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*COMMANDS, *_plugins()])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attribute, _ = COMMANDS[cmd_name]
            return getattr(importlib.import_module(module_name), attribute)
        plugin = _plugins().get(cmd_name)
        return plugin.load() if plugin is not None else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2] if name in COMMANDS else self._plugin_help(ctx, name))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _plugin_help(self, ctx: click.Context, name: str) -> str:
        command = self.get_command(ctx, name)
        return command.get_short_help_str(80) if command is not None else ""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except EcvaError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ecva")
def cli() -> None:
    """ECVA explorer: browse, chat with and score video LLMs on the ECVA benchmark."""


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="ecva")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
