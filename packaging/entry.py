"""Entry point of the frozen kubectl-iter8 (the Krew archive, built by PyInstaller).

The frozen executable is also ``sys.executable``, so where kubectl-iter8 starts a Python child it
starts this executable instead: ``python -m grpc_tools.protoc ...`` when the grpc task compiles a
``.proto`` at run time, and multiprocessing's ``spawn`` children (the HTTP load's ``workers``, and
multiprocessing's resource tracker). Those argument shapes are recognised here, before the CLI,
and run as a Python interpreter would run them. Only these fixed shapes: no other Python code is
ever taken from the command line.

PyInstaller's own runtime hooks for ``multiprocessing``, ``inspect`` and ``pkgutil`` are left out
of the build (see packaging/kubectl-iter8.spec): they import those modules, and ``zipfile``, on
every start, about a third of the start-up of ``kubectl iter8 --help``. This module does the
multiprocessing part only in the children that need it; kubectl-iter8 uses neither
``inspect.getsource`` nor ``pkgutil.iter_modules``. It also gives child processes back the
user's ``LD_LIBRARY_PATH`` (see :func:`restore_library_path`) and ends the process without the
interpreter's teardown (see :func:`fast_exit`).

``kubectl iter8 --help`` (and ``-h``, ``version``, ``version --short``) prints text that was
rendered by the CLI itself when the archive was built (see :func:`prerendered_output`), without
importing click or the plugins. kubectl takes as long to find a plugin as ``kubectl version
--client`` takes in all, which leaves the plugin about 40 ms within twice that; the frozen
interpreter starts in about 20 ms, and the CLI (click, the plugins, formatting the help) took
about 50 ms more. The build checks the text against the CLI's output, byte for byte, at every help
width (scripts/build_krew.py).
"""

from __future__ import annotations

import os
import sys

#: ``typing`` (and ``collections``) would cost ``--help`` milliseconds: mypy reads this name as
#: ``typing.TYPE_CHECKING``.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: What the grpc task runs (builtin_tasks/grpc/descriptors.py): ``<python> -m grpc_tools.protoc ARGS``.
PROTOC = ["-m", "grpc_tools.protoc"]
#: multiprocessing's spawn child: ``<python> --multiprocessing-fork tracker_fd=N pipe_handle=N``.
SPAWN_CHILD = "--multiprocessing-fork"
#: multiprocessing's resource tracker:
#: ``<python> [flags] -c 'from multiprocessing.resource_tracker import main;main(FD)'``
#: (compiled where it is used: ``re`` costs milliseconds that ``--help`` does not need).
RESOURCE_TRACKER = r"from multiprocessing\.resource_tracker import main;\s*main\((\d+)\)"

#: The outputs rendered when the archive was built, beside the package's other data in ``_internal``.
PRERENDERED = os.path.join("kubectl_iter8", "prerendered.marshal")
#: The arguments whose output is prerendered. In that file the help is under ``"help"``, keyed by
#: its width, and each of the others under its arguments joined by spaces.
HELP_ARGS = (["--help"], ["-h"])
VERSION_ARGS = (["version"], ["version", "--short"])
#: click's help width is the terminal's, within these bounds (cli.py's ``max_content_width``).
MAX_CONTENT_WIDTH = 110
MIN_HELP_WIDTH = 50
#: click's shell-completion switch for ``prog_name="kubectl iter8"``: with it, no help is printed.
COMPLETE_VAR = "_KUBECTL ITER8_COMPLETE"


def protoc(args: list[str]) -> int:
    """grpcio-tools' protoc, as ``python -m grpc_tools.protoc`` runs it (its well-known types included)."""
    from pathlib import Path

    from grpc_tools import protoc as grpc_protoc  # type: ignore[import-untyped]

    well_known = Path(grpc_protoc.__file__).parent / "_proto"
    return int(grpc_protoc.main(["grpc_tools.protoc", *args, f"-I{well_known}"]))


def spawn_child(args: list[str]) -> None:
    """Run a multiprocessing spawn child: the arguments are ``name=int`` (or ``None``) pairs."""
    import multiprocessing.spawn

    kwds: dict[str, int | None] = {}
    for arg in args:
        name, _, value = arg.partition("=")
        kwds[name] = None if value == "None" else int(value)
    multiprocessing.spawn.spawn_main(**kwds)  # type: ignore[arg-type]


def resource_tracker(argv: list[str]) -> bool:
    """Run multiprocessing's resource tracker if that is what ``argv`` asks for."""
    if "-c" not in argv:
        return False
    at = argv.index("-c")
    flags, command = argv[1:at], argv[at + 1 : at + 2]
    import re

    match = re.fullmatch(RESOURCE_TRACKER, command[0]) if command else None
    if match is None or not all(flag.startswith("-") for flag in flags):
        return False
    from multiprocessing import resource_tracker as tracker

    tracker.main(int(match.group(1)))
    return True


def help_width(environ: Mapping[str, str]) -> int:
    """The width click formats the help to: the columns ``shutil.get_terminal_size`` would find.

    ``$COLUMNS`` if it is a positive number, else the size of the terminal on standard output, else
    80; then click's ``max(min(columns, max_content_width) - 2, 50)``. ``shutil`` itself is not
    imported: it pulls in ``fnmatch``, ``bz2`` and ``lzma``.
    """
    try:
        columns = int(environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return max(min(columns, MAX_CONTENT_WIDTH) - 2, MIN_HELP_WIDTH)


def prerendered_output(
    args: list[str], environ: Mapping[str, str], table: Mapping[str, object]
) -> str | None:
    """The text the CLI would print for ``args``, if it was rendered when the archive was built.

    Only for arguments whose output depends on nothing but the archive and the help width: none
    when any ``ITER8_*`` variable is set (``ITER8_PLUGINS`` and ``ITER8_DISABLE_PLUGINS`` change
    the commands, ``ITER8_TRACE_PLUGINS`` adds output) or click's completion variable is. The
    plain ``version`` names the machine (``platform.machine()``), so it is used only on the
    machine type it was rendered on.
    """
    if any(name.startswith("ITER8_") for name in environ) or COMPLETE_VAR in environ:
        return None
    if args in HELP_ARGS:
        helps = table.get("help")
        text = helps.get(help_width(environ)) if isinstance(helps, dict) else None
    elif args in VERSION_ARGS:
        if args == ["version"] and (not hasattr(os, "uname") or os.uname().machine != table.get("machine")):
            return None
        text = table.get(" ".join(args))
    else:
        return None
    return text if isinstance(text, str) else None


def print_prerendered(args: list[str]) -> bool:
    """Print the prerendered output for ``args`` as click would (one write, flushed); False if none."""
    if (args not in HELP_ARGS and args not in VERSION_ARGS) or sys.stdout is None:
        return False
    import marshal

    try:
        with open(os.path.join(sys._MEIPASS, PRERENDERED), "rb") as f:  # type: ignore[attr-defined]
            table = marshal.loads(f.read())
    except (AttributeError, OSError, EOFError, ValueError, TypeError):
        return False  # not in the archive, or written by another Python: click renders it
    text = prerendered_output(args, os.environ, table) if isinstance(table, dict) else None
    if text is None:
        return False
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stderr.close()  # as cli.main: output piped into `head` is not an error
    return True


def fast_exit(code: int) -> None:
    """Exit without the interpreter's teardown when nothing is left that it would wait for.

    Tearing down every module took 17-25 ms of ``kubectl iter8 --help``. What the teardown does
    that matters here is kept: the ``atexit`` handlers (logging's flush among them) and flushing
    the standard streams. With any other thread alive the interpreter exits normally, joining it.
    """
    import atexit
    import contextlib
    import threading

    if threading.active_count() != 1:
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe: nothing to keep
            stream.flush()
    os._exit(code)


def restore_library_path() -> None:
    """Give child processes the library path the user had, not the bundle's.

    On Linux the bootloader puts ``_internal`` in front of ``LD_LIBRARY_PATH`` and restarts
    itself; the dynamic loader of this process has read it by now. Commands the ``run`` task
    starts (kubectl, curl, bash) would otherwise load the bundle's libssl or libstdc++ instead of
    their own. Children that are this executable again set it anew.
    """
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)


def main() -> None:
    argv = sys.argv
    restore_library_path()
    if argv[1:3] == PROTOC:
        sys.exit(protoc(argv[3:]))
    if argv[1:2] == [SPAWN_CHILD]:
        spawn_child(argv[2:])
        sys.exit()
    if resource_tracker(argv):
        sys.exit()
    if print_prerendered(argv[1:]):
        os._exit(0)  # nothing else ran: no thread, no atexit handler, nothing left to flush
    from kubectl_iter8.cli import main as cli_main

    code = cli_main()
    fast_exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
