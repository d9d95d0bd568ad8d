"""HTTPS targets: CA file, skip-verify and client certificates, against the sample app over TLS.

Certificates are made at test time with the ``openssl`` command (a throw-away CA, a server
certificate for 127.0.0.1 and a client certificate, all signed by that CA).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubectl_iter8.builtin_tasks.http.engine import InitialError, LoadEngine, LoadPlan
from kubectl_iter8.builtin_tasks.http.stats import RunStats
from kubectl_iter8.builtin_tasks.http.target import Target

from kubectl_iter8.aio import run_async
from kubectl_iter8.sample_app import SampleApp, running

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=iter8 test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=d)  # fmt: skip
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)  # fmt: skip
    return d


def _server_context(pki: Path, *, client_certs: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    if client_certs:
        context.load_verify_locations(pki / "ca.crt")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def https_app(pki: Path) -> Iterator[SampleApp]:
    with running(ssl=_server_context(pki, client_certs=False)) as app:
        yield app


def load(target: Target, plan: LoadPlan | None = None) -> RunStats:
    async def main() -> RunStats:
        return await LoadEngine(target, plan or LoadPlan(connections=2, qps=0, num_requests=20)).run()

    return run_async(main())


def test_https_with_the_ca_file(https_app: SampleApp, pki: Path) -> None:
    assert https_app.url.startswith("https://")
    stats = load(Target(url=f"{https_app.url}/get", ca_file=str(pki / "ca.crt")))
    assert stats.statuses == {200: 20}


def test_an_unknown_ca_is_refused_unless_verification_is_skipped(https_app: SampleApp) -> None:
    with pytest.raises(InitialError, match="tls: .*certificate"):
        load(Target(url=f"{https_app.url}/get"))
    stats = load(Target(url=f"{https_app.url}/get", insecure_skip_verify=True))
    assert stats.statuses == {200: 20}


def test_open_loop_over_tls(https_app: SampleApp, pki: Path) -> None:
    stats = load(
        Target(url=f"{https_app.url}/get", ca_file=str(pki / "ca.crt")),
        LoadPlan(connections=2, qps=100, num_requests=15),
    )
    assert stats.statuses == {200: 15}


def test_client_certificates(pki: Path) -> None:
    with running(ssl=_server_context(pki, client_certs=True)) as app:
        base = Target(url=f"{app.url}/get", ca_file=str(pki / "ca.crt"))
        with pytest.raises(InitialError):
            load(base)  # the server wants a client certificate
        stats = load(
            Target(
                url=base.url,
                ca_file=base.ca_file,
                cert_file=str(pki / "client.crt"),
                key_file=str(pki / "client.key"),
            )
        )
        assert stats.statuses == {200: 20}
