"""``kubectl iter8 sample-app``: serve the bundled httpbin-like app (quickstart, tests, benchmarks)."""

from __future__ import annotations

import click


@click.command("sample-app")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--stall-every",
    metavar="DURATION",
    default=None,
    help="Freeze all responses periodically, e.g. every 2s (to show coordinated omission).",
)
@click.option(
    "--stall-for", metavar="DURATION", default="0s", show_default=True, help="How long each freeze lasts."
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of requests answered 500, evenly spread (a bad version to roll out).",
)
@click.option(
    "--delay",
    "extra_delay",
    metavar="DURATION",
    default="0s",
    show_default=True,
    help="Added to every response (a slow version to roll out).",
)
def sample_app(
    port: int, host: str, stall_every: str | None, stall_for: str, error_rate: float, extra_delay: str
) -> None:
    """Serve a small HTTP app to load-test: /get, /status/{code}, /delay/{ms}, /bytes/{n}, /anything, /post.

    \b
    Stops on Ctrl-C or SIGTERM. The quickstart runs against it:
      kubectl iter8 sample-app &
      kubectl iter8 launch --local -f examples/quickstart.yaml
    """
    import asyncio
    import contextlib
    import errno
    import signal

    from ..aio import run_async
    from ..durations import parse_duration
    from ..errors import Iter8Error, UsageError
    from ..sample_app import SampleApp

    try:
        every = parse_duration(stall_every) if stall_every else 0.0
        length = parse_duration(stall_for)
        delay = parse_duration(extra_delay)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if every and not 0 < length < every:
        raise UsageError("--stall-for must be more than 0 and less than --stall-every")
    app = SampleApp(host, port, stall_every=every, stall_for=length, error_rate=error_rate, extra_delay=delay)

    async def serve() -> None:
        try:
            await app.start()
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise Iter8Error(f"cannot listen on {host}:{port}: {reason.lower()}") from None
        click.echo(f"sample app listening on {app.url} (Ctrl-C to stop)")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
            loop.add_signal_handler(signal.SIGTERM, stop.set)  # `kill` ends it cleanly too
        try:
            await stop.wait()
        finally:
            await app.close()

    try:
        run_async(serve())
    except KeyboardInterrupt:
        click.echo("sample app stopped", err=True)
