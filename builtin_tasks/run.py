"""The ``run`` task: run a command and fail the experiment if it fails.

Written ``run: [cmd, arg, ...]`` or ``run: "cmd arg ..."`` (split like a shell would, but run
without one), or ``run: "a | b"`` with ``shell: true`` to get bash. A shell is used only when the
entry asks for it, so an experiment's strings are never handed to a shell by accident. Output
(standard output and error, interleaved) is kept in the task's record, the last 64 KiB of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
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


def _command(value: Any) -> Any:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    raise PydanticCustomError(
        "command",
        "expected a string or a list of strings (quote YAML words like false or 1), got '{value}'",
        {"value": value},
    )


class RunInputs(TaskInputs):
    #: The command: a list of arguments, or one string (split, or given to bash with ``shell``).
    command: Annotated[str | list[str], BeforeValidator(_command)] = Field(alias="cmd")
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
            raise ValueError("with shell: true, give the command as one string")
        if isinstance(self.command, str):
            if not self.command.strip():
                raise ValueError("the command is empty")
            if not self.shell:
                try:
                    shlex.split(self.command)
                except ValueError as exc:
                    raise ValueError(f"cannot split the command: {exc}") from None
        elif not self.command:
            raise ValueError("the command is empty")
        return self


class RunTask(Task[RunInputs]):
    """Run a command; a non-zero exit fails the task."""

    name = "run"
    Inputs = RunInputs

    def argv(self) -> list[str]:
        command = self.inputs.command
        if self.inputs.shell:
            assert isinstance(command, str)
            return [shutil.which("bash") or "/bin/sh", "-c", command]
        return shlex.split(command) if isinstance(command, str) else list(command)

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
