"""The ``run`` task: run a command and fail the experiment if it fails.

Two forms, as in Iter8:

* ``run: "a script"`` (a string) is a bash script: ``/bin/bash -c SCRIPT``, exactly what Iter8's
  ``run`` did (``base/run.go``), with Iter8's environment: the caller's, plus ``TEMP_DIR`` (the
  system's temporary folder). The experiment's author wrote the script, so this is the one place a
  shell is used on purpose; nothing else in the product hands a string to a shell.
* ``run: [cmd, arg, ...]`` (a list) is executed directly, never through a shell.

``shell:`` (an older kubectl-iter8 key) is still accepted and changes nothing: a string is always a
bash script, and ``shell: true`` with a list is refused (write the script as one string). Output
(standard output and error, interleaved) is kept in the task's record, the last 64 KiB of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from kubectl_iter8.durations import format_duration
from kubectl_iter8.errors import TaskError
from kubectl_iter8.task import Duration, Task, TaskContext, TaskInputs

OUTPUT_LIMIT = 64 * 1024
#: The most of the output's last line a failure message quotes: the message is stored (record,
#: failure message) and logged besides the output itself.
LINE_LIMIT = 200
CHUNK = 64 * 1024
#: Where Iter8 ran a string ``run:`` (``exec.Command("/bin/bash", "-c", script)``).
BASH = "/bin/bash"


def _command(value: Any) -> Any:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    raise PydanticCustomError(
        "command",
        "expected a string or a list of strings (quote YAML words like false or 1), got '{value}'",
        # YAML's spelling: a bare `true` is what an author most likely wrote (Python would show 1)
        {"value": str(value).lower() if isinstance(value, bool) else value},
    )


class RunInputs(TaskInputs):
    #: The command: a bash script (one string), or a program and its arguments (a list).
    command: Annotated[str | list[str], BeforeValidator(_command)] = Field(alias="cmd")
    #: Accepted for older experiments; a string is always a bash script, a list never is.
    shell: bool = False
    #: Extra environment variables for the command.
    env: dict[str, str] = Field(default_factory=dict)
    #: Fail the task if the command runs longer than this.
    timeout: Duration | None = None
    #: Working directory; the experiment's run directory by default.
    cwd: str | None = None

    @model_validator(mode="after")
    def _check(self) -> RunInputs:
        if self.shell and not isinstance(self.command, str):
            raise ValueError(
                "a list runs without a shell; for bash, give the script as one string (shell: is not needed)"
            )
        if isinstance(self.command, str):
            if not self.command.strip():
                raise ValueError("the command is empty")
        elif not self.command:
            raise ValueError("the command is empty")
        return self


class RunTask(Task[RunInputs]):
    """Run a command; a non-zero exit fails the task."""

    name = "run"
    Inputs = RunInputs

    def argv(self) -> list[str]:
        command = self.inputs.command
        if isinstance(command, str):
            return [_bash(), "-c", command]
        return list(command)

    async def run(self, ctx: TaskContext) -> None:
        argv = self.argv()
        env = {**os.environ, "TEMP_DIR": tempfile.gettempdir(), **self.inputs.env}
        ctx.details["command"] = self.inputs.command
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=self.inputs.cwd or ctx.work_dir,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            missing = argv[0] if exc.filename in (None, argv[0]) else exc.filename
            raise TaskError(f"command not found: {missing}") from None
        except PermissionError:
            raise TaskError(f"command not executable: {argv[0]}") from None
        tail = bytearray()
        total = 0
        try:
            async with asyncio.timeout(self.inputs.timeout):
                total = await _read_tail(process, tail)
                await process.wait()
        except TimeoutError:
            _kill(process)
            await process.wait()
            raise TaskError(f"command timed out after {format_duration(self.inputs.timeout or 0)}") from None
        except asyncio.CancelledError:
            _kill(process)
            raise
        text = tail.decode("utf-8", errors="replace")
        ctx.details["exitCode"] = process.returncode
        ctx.details["output"] = text
        if total > len(tail):
            ctx.details["outputTruncated"] = True
        for line in text.splitlines():
            ctx.logger.debug("%s", line)
        if process.returncode != 0:
            last = text.strip().splitlines()[-1] if text.strip() else "no output"
            if len(last) > LINE_LIMIT:
                last = f"...{last[-LINE_LIMIT:]}"
            raise TaskError(f"command exited with code {process.returncode}: {last}")


def _bash() -> str:
    """Iter8's ``/bin/bash``; where a system has bash elsewhere only (NixOS, some images), that one."""
    if os.access(BASH, os.X_OK):
        return BASH
    found = shutil.which("bash")
    if found is None:
        raise TaskError(
            "a string run: is a bash script, and bash is not installed (give a list to run directly)"
        )
    return found


async def _read_tail(process: asyncio.subprocess.Process, tail: bytearray) -> int:
    """Read the command's output to the end, keeping only its last :data:`OUTPUT_LIMIT` bytes in
    ``tail`` (a command may print gigabytes); returns how many bytes it printed."""
    assert process.stdout is not None
    total = 0
    while chunk := await process.stdout.read(CHUNK):
        total += len(chunk)
        tail += chunk
        if len(tail) > OUTPUT_LIMIT:
            del tail[: len(tail) - OUTPUT_LIMIT]
    return total


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
