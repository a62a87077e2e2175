"""The ``pavement`` command: one subcommand per stage, each calling one ``run_*`` function.

Errors the project raises on purpose (``PavementError``) are printed once as
``TypeName: message`` and exit with status 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys

import click
import typer

from pavement.errors import PavementError

app = typer.Typer(
    name="pavement",
    help=(
        "Road pavement inspection from patrol-car video (MLIT 舗装点検要領).\n\n"
        "Each subcommand is one stage. Run 'pavement COMMAND --help' for its options."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _configure(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show progress details.")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Console-script entry point."""
    try:
        code = app(standalone_mode=False)
    except PavementError as exc:
        typer.echo(f"{type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(1)
    except click.exceptions.ClickException as exc:  # usage errors: click's own message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


# ---------------------------------------------------------------------------------------------
# Subcommands. Each is a thin wrapper: parse options, call one ``run_*``, print where results are.
# ---------------------------------------------------------------------------------------------
