"""The test gRPC server: ``iter8.test.Echo`` (unary and streaming) and ``iter8.test.Other``.

Run as a separate process by the tests and the benchmark (``python server.py --stubs DIR ...``),
so that its CPU and the client's are apart. It prints ``PORT <n>`` once it serves, and stops when
its standard input closes (the parent died or is done) or on SIGTERM.

The request steers it: ``code`` fails the call with that status code, ``delay_ms`` waits first,
``count`` is how many replies ``ServerStream`` sends (1 when unset). Client and bidirectional
streams fail only once the client has closed its side (a server failing a stream while the
client still writes makes grpc.aio report ``INTERNAL: Internal error from Core`` for the write
that raced with it, instead of the server's status). With ``--log FILE`` every
request is appended as one JSON line (method, fields, the ``x-*`` metadata), for the tests to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stubs", required=True, help="folder holding echo_pb2*.py")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reflection", action="store_true")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--client-ca", help="require client certificates signed by this CA")
    parser.add_argument("--log")
    args = parser.parse_args()
    sys.path.insert(0, args.stubs)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    asyncio.run(serve(args))


async def serve(args: argparse.Namespace) -> None:
    import echo_pb2  # type: ignore[import-not-found]
    import echo_pb2_grpc  # type: ignore[import-not-found]
    import grpc
    from google.protobuf import json_format

    log = open(args.log, "a", buffering=1) if args.log else None  # noqa: SIM115

    def note(method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if log is None:
            return
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if k.startswith("x-")}
        fields = json_format.MessageToDict(request, preserving_proto_field_name=True)
        log.write(json.dumps({"method": method, "request": fields, "metadata": metadata}) + "\n")

    async def steer(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        if request.code:
            await context.abort(_status(request.code), f"asked to fail with {request.code}")

    class Echo(echo_pb2_grpc.EchoServicer):  # type: ignore[misc]
        async def Unary(self, request: Any, context: Any) -> Any:
            note("Unary", request, context)
            await steer(request, context)
            return echo_pb2.EchoReply(message=f"hello {request.name}", id=request.id, count=1)

        async def ClientStream(self, requests: AsyncIterator[Any], context: Any) -> Any:
            count = 0
            last = echo_pb2.EchoRequest()
            async for request in requests:
                note("ClientStream", request, context)
                count += 1
                last = request
            await steer(last, context)  # once the client is done writing: no race with its writes
            return echo_pb2.EchoReply(message=f"hello {last.name}", id=last.id, count=count)

        async def ServerStream(self, request: Any, context: Any) -> AsyncIterator[Any]:
            note("ServerStream", request, context)
            await steer(request, context)
            for i in range(request.count or 1):
                yield echo_pb2.EchoReply(message=f"hello {request.name}", id=request.id, count=i + 1)

        async def Bidi(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            count = 0
            code = 0
            async for request in requests:
                note("Bidi", request, context)
                if request.delay_ms:
                    await asyncio.sleep(request.delay_ms / 1000)
                code = code or request.code
                count += 1
                yield echo_pb2.EchoReply(message=f"hello {request.name}", id=request.id, count=count)
            if code:  # once the client is done writing: no race with its writes
                await context.abort(_status(code), f"asked to fail with {code}")

    class Other(echo_pb2_grpc.OtherServicer):  # type: ignore[misc]
        async def Ping(self, request: Any, context: Any) -> Any:
            note("Ping", request, context)
            return echo_pb2.EchoReply(message="pong", id=request.id)

    server = grpc.aio.server()
    echo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    echo_pb2_grpc.add_OtherServicer_to_server(Other(), server)
    if args.reflection:
        from grpc_reflection.v1alpha import reflection

        names = [
            echo_pb2.DESCRIPTOR.services_by_name["Echo"].full_name,
            echo_pb2.DESCRIPTOR.services_by_name["Other"].full_name,
            reflection.SERVICE_NAME,
        ]
        reflection.enable_server_reflection(names, server)
    address = f"127.0.0.1:{args.port}"
    if args.cert:
        with open(args.cert, "rb") as f:
            chain = f.read()
        with open(args.key, "rb") as f:
            key = f.read()
        root = None
        if args.client_ca:
            with open(args.client_ca, "rb") as f:
                root = f.read()
        credentials = grpc.ssl_server_credentials(
            [(key, chain)], root_certificates=root, require_client_auth=root is not None
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    await server.start()
    print(f"PORT {port}", flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 4096) else None)
    await stop.wait()
    await server.stop(0.2)
    if log is not None:
        log.close()


def _status(value: int) -> Any:
    import grpc

    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


if __name__ == "__main__":
    main()
