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
"""

from __future__ import annotations

import re
import sys

#: What the grpc task runs (builtin_tasks/grpc/descriptors.py): ``<python> -m grpc_tools.protoc ARGS``.
PROTOC = ["-m", "grpc_tools.protoc"]
#: multiprocessing's spawn child: ``<python> --multiprocessing-fork tracker_fd=N pipe_handle=N``.
SPAWN_CHILD = "--multiprocessing-fork"
#: multiprocessing's resource tracker:
#: ``<python> [flags] -c 'from multiprocessing.resource_tracker import main;main(FD)'``.
RESOURCE_TRACKER = re.compile(r"from multiprocessing\.resource_tracker import main;\s*main\((\d+)\)")


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
    match = RESOURCE_TRACKER.fullmatch(command[0]) if command else None
    if match is None or not all(flag.startswith("-") for flag in flags):
        return False
    from multiprocessing import resource_tracker as tracker

    tracker.main(int(match.group(1)))
    return True


def fast_exit(code: int) -> None:
    """Exit without the interpreter's teardown when nothing is left that it would wait for.

    Tearing down every module took 17-25 ms of ``kubectl iter8 --help``. What the teardown does
    that matters here is kept: the ``atexit`` handlers (logging's flush among them) and flushing
    the standard streams. With any other thread alive the interpreter exits normally, joining it.
    """
    import atexit
    import contextlib
    import os
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
    import os

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
    from kubectl_iter8.cli import main as cli_main

    code = cli_main()
    fast_exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
