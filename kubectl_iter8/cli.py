"""The ``kubectl iter8`` command: the root group, and the one place errors become exit codes.

Subcommands are contributed by plugins through ``iter8_register_commands`` (the core's own
commands are the essential plugin ``kubectl_iter8.commands``). Expected errors
(:class:`~kubectl_iter8.errors.Iter8Error`) print as ``error: <message>`` lines with no traceback;
anything else is a bug and keeps its traceback. ``--debug`` shows tracebacks always.

Start-up cost matters (``kubectl iter8 --help`` runs on every shell completion and typo): nothing
here imports pydantic, YAML, the Kubernetes client, grpc or the load engine; commands import what
they need when they run. Even ``logging`` and ``traceback`` are imported where they are used (the
group's callback, the error branches): ``--help`` exits before either runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from .commands.common import CLIState
from .errors import ExitCode, Iter8Error
from .host import Iter8Hooks

HELP = """Kubernetes release optimizer: experiments, SLO checks and traffic control.

\b
Run an experiment here, check it, and read its report:
  kubectl iter8 launch --local -f experiment.yaml
  kubectl iter8 assert --local -c completed,nofailure,slos
  kubectl iter8 report --local
"""


#: Third-party loggers that log each request's URL at INFO: a webhook URL can be a secret (urlFrom),
#: and users want the product's lines, not the libraries'. Warnings still come through.
QUIET_LOGGERS = ("httpx", "httpcore")


def make_cli(hooks: Iter8Hooks, state: CLIState) -> click.Group:
    """Build the root group with every plugin's commands on it."""

    @click.group(
        help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
    )
    @click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
    @click.option(
        "-l",
        "--loglevel",
        type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
        default="info",
        show_default=True,
        help="How much the command logs to standard error.",
    )
    @click.pass_context
    def cli(ctx: click.Context, debug: bool, loglevel: str) -> None:
        import logging

        state.debug = state.debug or debug
        logging.basicConfig(
            level=logging.DEBUG if state.debug else getattr(logging, loglevel.upper()),
            format="%(asctime)s %(levelname)-7s %(message)s",
            datefmt="%H:%M:%S",
            stream=sys.stderr,
        )
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        ctx.obj = state

    hooks.register_commands(cli)
    return cli


_LOGLEVEL_FLAGS = ("-l", "--loglevel")


def _level(value: str) -> str:
    """Iter8's log levels (logrus') as the ones here: Iter8 scripts pass ``-l trace`` and the like."""
    from .values import ITER8_LOG_LEVELS

    return ITER8_LOG_LEVELS.get(value.lower(), value)


def hoist_loglevel(args: Sequence[str]) -> list[str]:
    """Move ``-l/--loglevel LEVEL`` from wherever it is to the front, where the root group reads it.

    In Iter8 it was a persistent flag, accepted after the subcommand too (``iter8 k launch -l
    debug``); Iter8's level names map to these (``trace`` is ``debug``, ``fatal`` and ``panic`` are
    ``error``). Nothing after ``--`` is touched.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in _LOGLEVEL_FLAGS and i + 1 < len(args):
            front += ["--loglevel", _level(args[i + 1])]
            i += 2
            continue
        if arg.startswith("--loglevel="):
            front.append("--loglevel=" + _level(arg.partition("=")[2]))
        elif arg.startswith("-l") and not arg.startswith("--") and len(arg) > 2:
            front += ["--loglevel", _level(arg[2:].removeprefix("="))]
        else:
            rest.append(arg)
        i += 1
    return front + rest


#: What an error may print: a message quoting a user's value must not become the value itself.
MAX_ERROR_LINES = 20
MAX_ERROR_LINE = 400


def _print_error(error: Iter8Error) -> None:
    lines = str(error).splitlines() or [type(error).__name__]
    for line in lines[:MAX_ERROR_LINES]:
        cut = line if len(line) <= MAX_ERROR_LINE else line[: MAX_ERROR_LINE - 15] + "... (truncated)"
        click.echo(f"error: {cut}", err=True)
    if len(lines) > MAX_ERROR_LINES:
        click.echo(f"error: ... and {len(lines) - MAX_ERROR_LINES} more problems", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kubectl-iter8`` console script; returns the exit code."""
    args = hoist_loglevel(sys.argv[1:] if argv is None else argv)
    state = CLIState(debug="--debug" in args or os.environ.get("ITER8_DEBUG") == "1")
    try:
        hooks = Iter8Hooks()
        state.hooks = hooks
        code = make_cli(hooks, state).main(args, prog_name="kubectl iter8", standalone_mode=False)
        return code if isinstance(code, int) else ExitCode.OK
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("error: interrupted", err=True)
        return ExitCode.INTERRUPTED
    except Iter8Error as exc:
        if state.debug:
            import traceback

            traceback.print_exc()
        _print_error(exc)
        return exc.exit_code
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error. Silence the flush at exit too.
        sys.stderr.close()
        return ExitCode.OK
    except Exception:
        import traceback

        traceback.print_exc()
        click.echo(
            "error: unexpected failure (a bug in kubectl-iter8 or a plugin; the traceback is above)", err=True
        )
        return ExitCode.INTERNAL


def run() -> None:
    sys.exit(main())
