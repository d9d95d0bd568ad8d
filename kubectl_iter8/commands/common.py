"""What every command shares: the CLI state and the common options."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..plugins import Iter8Hooks

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CLIState:
    """Handed to every command as ``ctx.obj``; tests and embedders may build their own."""

    debug: bool = False
    hooks: Iter8Hooks | None = None

    def require_hooks(self) -> Iter8Hooks:
        assert self.hooks is not None, "the CLI sets hooks before any command runs"
        return self.hooks


pass_state = click.make_pass_decorator(CLIState)


def output_option(*choices: str, default: str = "text") -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(choices, case_sensitive=False),
        default=default,
        show_default=True,
        help="Output format.",
    )


def run_dir_option(func: F) -> F:
    return click.option(
        "--run-dir",
        default=".",
        show_default=True,
        metavar="DIR",
        help="Local folder that holds experiment.yaml.",
    )(func)


def local_option(func: F) -> F:
    return click.option(
        "--local",
        is_flag=True,
        help="Use the experiment in a local folder (--run-dir) instead of a Kubernetes cluster.",
    )(func)


def require_local(local: bool) -> None:
    from ..errors import UsageError

    if not local:
        raise UsageError(
            "experiments in a Kubernetes cluster are not supported by this version yet; "
            "pass --local to use a local run directory"
        )


def emit(data: Any, output: str) -> None:
    """Print ``data`` as JSON or YAML (kubectl's ``-o json|yaml``)."""
    if output == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        from ..storage import dump_yaml

        click.echo(dump_yaml(data), nl=False)
