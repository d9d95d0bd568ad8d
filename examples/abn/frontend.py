"""An A/B/n frontend: sends each user to the backend version the A/B/n service picks, and reports sales.

Iter8's sample frontend, in Python with the standard library and ``kubectl_iter8.sdk``::

    python examples/abn/frontend.py --abn 127.0.0.1:50051 --application default/backend \\
        --backend http://127.0.0.1:8081 --backend http://127.0.0.1:8082 --port 8090

* ``GET /<path>`` with header ``X-User``: looks the user up (one Lookup per request, as Iter8's
  SDK guide says), forwards the request to that version's backend and answers with its body and an
  ``X-Version`` header. Without ``X-User`` the answer is 400.
* ``POST /buy?amount=12.5`` with ``X-User``: writes the metric ``sales`` for the user's version;
  202 once the A/B/n service stored it, 502 when it did not.

The list of backends is the frontend's own (``versionNumberToRoute`` in Iter8's guide): version
``i`` of the routemap is ``--backend`` number ``i``. A version number the list does not cover, and
any failure of the service (the SDK falls back to version 0), go to the first backend.
"""

from __future__ import annotations

import argparse
import logging
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import grpc

from kubectl_iter8.sdk import Client


def make_handler(abn: Client, application: str, backends: list[str]) -> type[BaseHTTPRequestHandler]:
    class Frontend(BaseHTTPRequestHandler):
        def _user(self) -> str | None:
            user = self.headers.get("X-User", "").strip()
            if not user:
                self._answer(400, b"the X-User header is required\n")
                return None
            return user

        def _answer(self, status: int, body: bytes, version: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            if version is not None:
                self.send_header("X-Version", str(version))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            user = self._user()
            if user is None:
                return
            version = abn.lookup(application, user)
            if not 0 <= version < len(backends):
                version = 0
            try:
                with urllib.request.urlopen(backends[version] + self.path, timeout=5) as response:
                    self._answer(response.status, response.read(), version)
            except urllib.error.HTTPError as exc:
                self._answer(exc.code, exc.read(), version)
            except OSError as exc:
                self._answer(502, f"backend {version} failed: {exc}\n".encode(), version)

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/buy":
                self._answer(404, b"not found\n")
                return
            user = self._user()
            if user is None:
                return
            try:
                amount = float(parse_qs(url.query).get("amount", [""])[0])
            except ValueError:
                self._answer(400, b"amount must be a number\n")
                return
            try:
                abn.write_metric(application, user, "sales", amount)
            except grpc.RpcError as exc:
                self._answer(502, f"sale not recorded: {exc.code().name}\n".encode())  # type: ignore[attr-defined]
                return
            self._answer(202, b"recorded\n")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Frontend


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--abn", default="127.0.0.1:50051", help="host:port of the A/B/n service")
    parser.add_argument("--application", default="default/backend", help="namespace/name of the routemap")
    parser.add_argument(
        "--backend", action="append", required=True, help="URL of version 0, 1, ... (in order)"
    )
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    with Client(args.abn, timeout=0.5) as abn:
        handler = make_handler(abn, args.application, [b.rstrip("/") for b in args.backend])
        server = ThreadingHTTPServer((args.address, args.port), handler)
        logging.info(
            "frontend on http://%s:%d, A/B/n service %s", args.address, server.server_address[1], args.abn
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


if __name__ == "__main__":
    main()
