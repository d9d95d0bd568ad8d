"""What every command shares: the CLI state and the common options."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..host import Iter8Hooks
    from ..storage import ExperimentStore

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


class AliasedOption(click.Option):
    """An option that also answers to other spellings that ``--help`` does not show.

    For Iter8's flag names (``--values``, ``--dry``, ``--outputFormat``, ``--reuseResult``): scripts
    written for Iter8 keep working, and the help stays about one spelling.
    """

    def __init__(self, *args: Any, aliases: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases = tuple(aliases)

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        shown = self.opts
        self.opts = [*shown, *self.aliases]
        try:
            super().add_to_parser(parser, ctx)
        finally:
            self.opts = shown


def output_option(*choices: str, default: str = "text") -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        cls=AliasedOption,
        aliases=["--outputFormat"],
        type=click.Choice(choices, case_sensitive=False),
        default=default,
        show_default=True,
        help="Output format.",
    )


def run_dir_option(func: F) -> F:
    return click.option(
        "--run-dir",
        cls=AliasedOption,
        aliases=["--runDir"],  # Iter8 v0.13's spelling
        metavar="DIR",
        help="Local folder that holds experiment.yaml (with --local; default: the current folder).",
    )(func)


def local_option(func: F) -> F:
    return click.option(
        "--local",
        is_flag=True,
        help="Use the experiment in a local folder (--run-dir) instead of a Kubernetes cluster.",
    )(func)


def kube_options(func: F) -> F:
    """kubectl's connection flags."""
    for option in reversed(
        [
            click.option(
                "--kubeconfig",
                metavar="PATH",
                help="Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).",
            ),
            click.option(
                "--context",
                cls=AliasedOption,
                aliases=["--kube-context"],  # Helm's (and so Iter8's) spelling
                metavar="NAME",
                help="The kubeconfig context to use.",
            ),
            click.option(
                "-n", "--namespace", metavar="NS", help="Namespace (default: the context's, else 'default')."
            ),
        ]
    ):
        func = option(func)
    return func


def group_option(func: F) -> F:
    return click.option(
        "-g",
        "--group",
        default="default",
        show_default=True,
        help="Experiment group: the name of the Secret (and Job) that hold the experiment in the cluster.",
    )(func)


@contextlib.contextmanager
def store_for(
    local: bool,
    run_dir: str | None,
    group: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> Iterator[ExperimentStore]:
    """The store ``assert``, ``report`` and ``run`` read: a run directory or a group's Secret."""
    from ..errors import UsageError

    if local:
        from ..storage import LocalStore

        yield LocalStore(run_dir or ".")
        return
    if run_dir is not None:
        raise UsageError("--run-dir goes with --local")
    from ..cluster import SecretStore, check_group
    from ..kube import Kube, KubeOptions

    check_group(group)
    with Kube(KubeOptions(kubeconfig, context, namespace)) as kube:
        yield SecretStore(kube, group, kube.namespace)


def emit(data: Any, output: str) -> None:
    """Print ``data`` as JSON or YAML (kubectl's ``-o json|yaml``)."""
    if output == "json":
        import json

        click.echo(json.dumps(data, indent=2))
    else:
        from ..storage import dump_yaml

        click.echo(dump_yaml(data), nl=False)
