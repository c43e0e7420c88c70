"""The typer app: parse, call :mod:`moeplan.plan`, render.  The only module that prints or exits."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import Console

from moeplan import __version__
from moeplan.errors import MoeplanError

app = typer.Typer(
    name="moeplan",
    help="VRAM, speed and cost planner for Mixture-of-Experts language models.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout, and nothing else.")]
ModelArg = Annotated[
    str,
    typer.Argument(
        help="A catalogue id or alias (mixtral-8x22b), a config.json, a model folder or a YAML spec.",
        show_default=False,
    ),
]
GpuOpt = Annotated[
    str | None, typer.Option("--gpu", help="An accelerator from the catalogue (a100, h100, rtx-4090, mi300x, ...).")
]


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=False)


@contextlib.contextmanager
def handled_errors() -> Iterator[None]:
    """Turn a MoeplanError into one line on stderr and exit 1 (the traceback only with MOEPLAN_DEBUG=1)."""
    try:
        yield
    except MoeplanError as e:
        if os.environ.get("MOEPLAN_DEBUG") == "1":
            raise
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=1) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"moeplan {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """VRAM, speed and cost planner for Mixture-of-Experts language models."""


@app.command()
def estimate(model: ModelArg, gpu: GpuOpt = None, json_out: JsonOpt = False) -> None:
    """One deployment: total and active parameters, and their breakdown by kind.

    Examples:

      moeplan estimate mixtral-8x22b --gpu a100

      moeplan estimate deepseek-v3 --json

      moeplan estimate ./Qwen3-30B-A3B/config.json
    """
    from moeplan.plan import EstimateRequest
    from moeplan.plan import estimate as run_estimate

    with handled_errors():
        result = run_estimate(EstimateRequest(model=model, gpu=gpu))
    if json_out:
        from moeplan.render import to_json_text

        typer.echo(to_json_text(result.to_json()))
        return
    from moeplan.render import print_estimate

    print_estimate(_stdout(), result)


@app.command()
def models(json_out: JsonOpt = False) -> None:
    """The model catalogue: id, total and active parameters, experts, top-k and source.

    Example:

      moeplan models --json
    """
    from moeplan.plan import catalog_rows

    with handled_errors():
        rows = catalog_rows()
    if json_out:
        from moeplan.render import to_json_text

        typer.echo(to_json_text([r.to_json() for r in rows]))
        return
    from moeplan.render import print_models

    print_models(_stdout(), rows)


@app.command()
def spec(model: ModelArg) -> None:
    """Print a model's spec as YAML: the starting point for a spec of your own.

    Example:

      moeplan spec ./my-model/config.json > my-model.yaml
    """
    from moeplan.catalog import resolve_model, spec_to_yaml

    with handled_errors():
        typer.echo(spec_to_yaml(resolve_model(model)), nl=False)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)
