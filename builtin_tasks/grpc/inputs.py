"""The ``grpc`` task's inputs: ghz's options (as Iter8 passed them through) and their resolution.

Names are the issue's camelCase ones; ghz's own JSON spellings, which Iter8 experiments used, are
accepted too: ``rps`` (= ``qps``), ``import-paths``, ``data-file``, ``binary-file``,
``metadata-file``, ``connect-timeout``, ``stream-interval``, ``stream-call-count``,
``stream-call-duration``, ``reflect-metadata``; ``numRequests`` is another name for ``total``.
TLS takes ghz's names (``cacert``, ``cert``, ``key``, ``cname``, ``skipTLS``) or the ``http``
task's (``caFile``, ``certFile``, ``keyFile``, ``insecureSkipVerify``).

Defaults are ghz's: ``total`` 200 (``duration``, when given, wins, as in ghz), ``concurrency`` 50,
``connections`` 1, ``qps`` 0 (closed loop), ``timeout`` 20s, ``connectTimeout`` 10s. Plaintext
unless a TLS input is given or ``insecure: false``.

Iter8's chart helpers are inputs here: ``protoURL``, ``dataURL``, ``binaryDataURL`` and
``metadataURL`` are fetched when the task runs (so ``--set grpc.protoURL=...`` works as it did).

``pods`` (cluster experiments only) spreads each endpoint's load over that many shard pods, started
at one instant and merged exactly (see ``docs/distributed-load.md``); ``connections``,
``concurrency`` and ``total`` must each be at least ``pods``.

``endpoints`` are named calls; each takes every field it does not set from the top level. The
descriptor source (``proto``, ``protoset`` or ``protoURL``), the data source (``data``,
``dataFile``, ``dataURL``, ``binaryFile`` or ``binaryDataURL``) and the metadata source are each
inherited as a whole: an endpoint naming its own replaces the top level's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, Field, field_validator, model_validator

from kubectl_iter8.task import Duration, TaskInputs

from ..loadgen.checks import check_endpoint_name, check_percentiles
from . import templates
from .channel import Security, split_host
from .plan import Plan, parse_call

DEFAULT_TOTAL = 200
DEFAULT_CONCURRENCY = 50
DEFAULT_CONNECTIONS = 1
DEFAULT_TIMEOUT = 20.0
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Each group is one source: at most one of its inputs per level, inherited as a whole.
DESCRIPTORS = ("proto", "protoset", "proto_url")
DATA = ("data", "data_file", "data_url", "binary_file", "binary_data_url")
METADATA = ("metadata", "metadata_file", "metadata_url")
_INPUT_NAMES = {
    "proto": "proto",
    "protoset": "protoset",
    "proto_url": "protoURL",
    "data": "data",
    "data_file": "dataFile",
    "data_url": "dataURL",
    "binary_file": "binaryFile",
    "binary_data_url": "binaryDataURL",
    "metadata": "metadata",
    "metadata_file": "metadataFile",
    "metadata_url": "metadataURL",
}


#: (a URL input's spellings, the spellings of the local sources of its group) for Iter8's rendered
#: experiments, which carry both (see ``EndpointInputs._drop_downloaded_urls``).
_DOWNLOADED = (
    ({"protoURL", "protoUrl", "proto_url"}, {"proto", "protoset"}),
    (
        {"dataURL", "dataUrl", "data_url", "binaryDataURL", "binaryDataUrl", "binary_data_url"},
        {"data", "dataFile", "data-file", "data_file", "binaryFile", "binary-file", "binary_file"},
    ),
    (
        {"metadataURL", "metadataUrl", "metadata_url"},
        {"metadata", "metadataFile", "metadata-file", "metadata_file"},
    ),
)


def _names(*names: str) -> Any:
    return AliasChoices(*names)


class EndpointInputs(TaskInputs):
    """What one endpoint may set; anything unset comes from the task's top level."""

    host: str | None = None
    call: str | None = None
    proto: str | None = None
    protoset: str | None = None
    proto_url: str | None = Field(None, validation_alias=_names("protoURL", "protoUrl"))
    import_paths: list[str] | None = Field(None, validation_alias=_names("importPaths", "import-paths"))
    data: dict[str, Any] | list[Any] | None = None
    data_file: str | None = Field(None, validation_alias=_names("dataFile", "data-file"))
    binary_file: str | None = Field(None, validation_alias=_names("binaryFile", "binary-file"))
    data_url: str | None = Field(None, validation_alias=_names("dataURL", "dataUrl"))
    binary_data_url: str | None = Field(None, validation_alias=_names("binaryDataURL", "binaryDataUrl"))
    metadata: dict[str, Any] | list[dict[str, Any]] | None = None
    metadata_file: str | None = Field(None, validation_alias=_names("metadataFile", "metadata-file"))
    metadata_url: str | None = Field(None, validation_alias=_names("metadataURL", "metadataUrl"))
    reflect_metadata: dict[str, Any] | None = Field(
        None, validation_alias=_names("reflectMetadata", "reflect-metadata")
    )
    total: int | None = Field(None, ge=1, validation_alias=_names("total", "numRequests"))
    duration: Duration | None = None
    qps: float | None = Field(None, ge=0, validation_alias=_names("qps", "rps"))
    concurrency: int | None = Field(None, ge=1)
    connections: int | None = Field(None, ge=1)
    timeout: Duration | None = None
    connect_timeout: Duration | None = Field(
        None, validation_alias=_names("connectTimeout", "connect-timeout")
    )
    stream_call_count: int | None = Field(
        None, ge=1, validation_alias=_names("streamCallCount", "stream-call-count")
    )
    stream_interval: Duration | None = Field(
        None, validation_alias=_names("streamInterval", "stream-interval")
    )
    stream_call_duration: Duration | None = Field(
        None, validation_alias=_names("streamCallDuration", "stream-call-duration")
    )
    percentiles: list[float] | None = None
    insecure: bool | None = None
    cacert: str | None = Field(None, validation_alias=_names("cacert", "caFile"))
    cert: str | None = Field(None, validation_alias=_names("cert", "certFile"))
    key: str | None = Field(None, validation_alias=_names("key", "keyFile"))
    skip_tls: bool | None = Field(None, validation_alias=_names("skipTLS", "insecureSkipVerify"))
    cname: str | None = None
    authority: str | None = None

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            split_host(value)  # ValueError: write it as host:port
        return value

    @field_validator("call")
    @classmethod
    def _check_call(cls, value: str | None) -> str | None:
        if value is not None:
            parse_call(value)
        return value

    @field_validator("data", "metadata", "reflect_metadata")
    @classmethod
    def _check_templates(cls, value: Any) -> Any:
        templates.check(value)
        return value

    @field_validator("percentiles")
    @classmethod
    def _check_percentiles(cls, value: list[float] | None) -> list[float] | None:
        return check_percentiles(value)

    @field_validator("timeout", "connect_timeout", "stream_call_duration")
    @classmethod
    def _check_positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be more than 0")
        return value

    @model_validator(mode="before")
    @classmethod
    def _drop_downloaded_urls(cls, data: Any) -> Any:
        """Iter8's chart fetched each ``...URL`` into a file (a ``run: curl`` task) and left the URL
        beside that file, and Iter8's task read only the file: so the experiments it rendered name
        both, and here, as there, the local source wins."""
        if not isinstance(data, dict):
            return data
        present = {key for key, value in data.items() if value is not None}
        for urls, locals_ in _DOWNLOADED:
            if present & locals_:
                data = {key: value for key, value in data.items() if key not in urls}
        return data

    @model_validator(mode="after")
    def _check_sources(self) -> EndpointInputs:
        for group in (DESCRIPTORS, DATA, METADATA):
            given = [_INPUT_NAMES[name] for name in _given(self, group)]
            if len(given) > 1:
                names = ", ".join(_INPUT_NAMES[name] for name in group)
                raise ValueError(f"give one of {names}, not {' and '.join(given)}")
        for name in ("proto_url", "data_url", "binary_data_url", "metadata_url"):
            url = getattr(self, name)
            if url is not None and not url.startswith(("http://", "https://")):
                raise ValueError(f"{_INPUT_NAMES[name]}: only http:// and https:// URLs are supported")
        tls_inputs = self.cacert or self.cert or self.key or self.skip_tls or self.cname
        if self.insecure and tls_inputs:
            raise ValueError("insecure: true (plaintext) does not go with TLS inputs")
        if bool(self.cert) != bool(self.key):
            raise ValueError("a client certificate needs both cert and key")
        return self


class GrpcInputs(EndpointInputs):
    """The ``with:`` block of a ``grpc`` task."""

    warmup: bool = False
    #: Pods sharing each endpoint's load (cluster experiments only).
    pods: int = Field(1, ge=1)
    endpoints: dict[str, EndpointInputs] = Field(default_factory=dict)

    @field_validator("pods")
    @classmethod
    def _pods(cls, value: int) -> int:
        from kubectl_iter8.cluster import MAX_SHARDS

        if value > MAX_SHARDS:
            raise ValueError(f"at most {MAX_SHARDS}")
        return value

    @model_validator(mode="after")
    def _check_endpoints(self) -> GrpcInputs:
        if not self.endpoints:
            if not self.host:
                raise ValueError("please set the host (host:port)")
            if not self.call:
                raise ValueError("please set the call (package.Service/Method)")
        for key, endpoint in self.endpoints.items():
            check_endpoint_name(key)
            if not (endpoint.host or self.host):
                raise ValueError(f"endpoint {key!r} has no host (and there is no top-level host)")
            if not (endpoint.call or self.call):
                raise ValueError(f"endpoint {key!r} has no call (and there is no top-level call)")
        if self.pods > 1:
            for resolved in resolve(self):
                self._check_pods(resolved)
        return self

    def _check_pods(self, endpoint: Endpoint) -> None:
        """Each pod needs a connection, a concurrent caller and, with a fixed count, a call."""
        where = f" (endpoint {endpoint.prefix[5:]!r})" if self.endpoints else ""
        plan = endpoint.plan
        for name, value in (
            ("connections", endpoint.connections),
            ("concurrency", plan.concurrency),
            ("total", plan.total),
        ):
            if value is not None and value < self.pods:
                raise ValueError(f"pods: {self.pods} pods need at least as many {name}, not {value}{where}")


def _given(inputs: EndpointInputs, group: tuple[str, ...]) -> list[str]:
    return [name for name in group if getattr(inputs, name) is not None]


@dataclass(frozen=True)
class Endpoint:
    """One endpoint with every default applied."""

    prefix: str
    host: str
    call: str
    proto: str | None
    protoset: str | None
    proto_url: str | None
    import_paths: tuple[str, ...]
    data: Any
    data_file: str | None
    binary_file: str | None
    data_url: str | None
    binary_data_url: str | None
    metadata: Any
    metadata_file: str | None
    metadata_url: str | None
    reflect_metadata: dict[str, Any] | None
    plan: Plan
    connections: int
    connect_timeout: float
    security: Security
    percentiles: tuple[float, ...]


def resolve(inputs: GrpcInputs) -> list[Endpoint]:
    """The endpoints to load, in order, each merged with the top level and given defaults."""
    from ..loadgen.metrics import named_endpoints

    named = named_endpoints("grpc", inputs.endpoints, lambda: EndpointInputs.model_validate({}))
    return [_resolve_one(prefix, endpoint, inputs) for prefix, endpoint in named]


def _resolve_one(prefix: str, endpoint: EndpointInputs, top: GrpcInputs) -> Endpoint:
    from ..loadgen.metrics import all_percentiles

    def pick(name: str) -> Any:
        value = getattr(endpoint, name)
        return getattr(top, name) if value is None else value

    # Sources are inherited whole: an endpoint's own proto/protoset/protoURL (data/dataFile/...)
    # replaces the top level's.
    describes = endpoint if _given(endpoint, DESCRIPTORS) else top
    feeds = endpoint if _given(endpoint, DATA) else top
    tells = endpoint if _given(endpoint, METADATA) else top
    total, duration = pick("total"), pick("duration")
    if duration is not None:
        total = None  # ghz: a duration makes the count irrelevant
    elif total is None:
        total = DEFAULT_TOTAL
    interval = pick("stream_interval")
    plan = Plan(
        concurrency=pick("concurrency") or DEFAULT_CONCURRENCY,
        qps=float(pick("qps") or 0.0),
        total=total,
        duration=duration,
        timeout=pick("timeout") or DEFAULT_TIMEOUT,
        stream_count=pick("stream_call_count"),
        stream_interval=float(interval or 0.0),
        stream_duration=pick("stream_call_duration"),
    )
    skip = bool(pick("skip_tls"))
    insecure = pick("insecure")
    tls = (
        not insecure
        if insecure is not None
        else bool(pick("cacert") or pick("cert") or skip or pick("cname"))
    )
    security = Security(
        tls=tls,
        ca_file=pick("cacert"),
        cert_file=pick("cert"),
        key_file=pick("key"),
        skip_verify=skip,
        server_name=pick("cname"),
        authority=pick("authority"),
    )
    return Endpoint(
        prefix=prefix,
        host=pick("host"),
        call=pick("call"),
        proto=describes.proto,
        protoset=describes.protoset,
        proto_url=describes.proto_url,
        import_paths=tuple(pick("import_paths") or ()),
        data=feeds.data,
        data_file=feeds.data_file,
        binary_file=feeds.binary_file,
        data_url=feeds.data_url,
        binary_data_url=feeds.binary_data_url,
        metadata=tells.metadata,
        metadata_file=tells.metadata_file,
        metadata_url=tells.metadata_url,
        reflect_metadata=pick("reflect_metadata"),
        plan=plan,
        connections=pick("connections") or DEFAULT_CONNECTIONS,
        connect_timeout=pick("connect_timeout") or DEFAULT_CONNECT_TIMEOUT,
        security=security,
        percentiles=tuple(all_percentiles(pick("percentiles") or ())),
    )
