"""Credentials for HTTP calls (metrics providers, webhooks, the A/B/n reads): where they come from
and how they stay out of sight. A helper the tasks share (as :mod:`.loadgen` is), so that the tasks
stay independent of each other (the import contracts check it).

A credential is read from an environment variable (``{env: NAME}``) or a key of a Kubernetes Secret
(``{secret: {name, key, namespace}}``, read with the experiment's Kubernetes access). Every value
read is registered with a :class:`Redactor`, which the tasks run over every message they log, store
or raise, so a token never reaches logs, results, reports or errors.
"""

from __future__ import annotations

import base64
import os
import urllib.parse
from typing import Any

from pydantic import Field, model_validator

from kubectl_iter8.errors import TaskError
from kubectl_iter8.kube import SECRETS, KubeOptions
from kubectl_iter8.task import KubeAccess, TaskInputs

MASK = "***"


class SecretKeyRef(TaskInputs):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)
    #: Default: the experiment's namespace (the kubeconfig's, when run locally).
    namespace: str | None = None


class SecretValue(TaskInputs):
    """Where one credential comes from: exactly one of ``env`` and ``secret``."""

    env: str | None = Field(default=None, min_length=1)
    secret: SecretKeyRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretValue:
        if (self.env is None) == (self.secret is None):
            raise ValueError("give exactly one of 'env' (a variable name) or 'secret' ({name, key})")
        return self

    def describe(self) -> str:
        if self.env is not None:
            return f"environment variable {self.env}"
        assert self.secret is not None
        return f"key {self.secret.key!r} of Secret {self.secret.name!r}"


class BasicAuth(TaskInputs):
    username: SecretValue | str
    password: SecretValue


class AuthInput(TaskInputs):
    """HTTP authentication: a bearer token or basic auth (not both)."""

    bearer_token: SecretValue | None = Field(default=None, alias="bearerToken")
    basic: BasicAuth | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> AuthInput:
        if (self.bearer_token is None) == (self.basic is None):
            raise ValueError("give exactly one of 'bearerToken' or 'basic'")
        return self

    def refs(self) -> list[SecretValue]:
        if self.bearer_token is not None:
            return [self.bearer_token]
        assert self.basic is not None
        refs = [self.basic.password]
        if isinstance(self.basic.username, SecretValue):
            refs.append(self.basic.username)
        return refs


class Redactor:
    """Replaces every registered secret (and its base64 forms) with ``***`` in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str) -> str:
        if secret:
            self._secrets.add(secret)
        return secret

    def __call__(self, text: Any) -> str:
        result = str(text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            result = result.replace(secret, MASK)
        return result


def split_query(url: str) -> tuple[str, list[tuple[str, str]]]:
    """``url`` without its query, and the query's pairs (blank values kept), for httpx's ``params``."""
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    return urllib.parse.urlunsplit(parts._replace(query="")), pairs


def kube_access(refs: list[SecretValue]) -> list[KubeAccess]:
    """The Secrets a task must be allowed to read for these credentials."""
    return [
        KubeAccess(SECRETS, (ref.secret.name,), ref.secret.namespace, verbs=("get",))
        for ref in refs
        if ref.secret is not None
    ]


def resolve(ref: SecretValue, field: str, options: KubeOptions, redactor: Redactor) -> str:
    """The credential's value, registered with ``redactor``.

    :raises TaskError: naming ``field`` and the source, never the value.
    """
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if not value:
            raise TaskError(f"{field}: environment variable {ref.env} is not set")
        return redactor.add(value)
    assert ref.secret is not None
    from kubectl_iter8.errors import Iter8Error
    from kubectl_iter8.kube import Kube

    try:
        with Kube(options) as kube:
            obj = kube.get(SECRETS, ref.secret.name, ref.secret.namespace)
    except Iter8Error as exc:
        raise TaskError(f"{field}: cannot read Secret {ref.secret.name!r}: {exc}") from None
    data = obj.get("data") or {}
    if ref.secret.key in data:
        try:
            value = base64.b64decode(data[ref.secret.key]).decode("utf-8").strip()
        except (ValueError, UnicodeDecodeError):
            raise TaskError(
                f"{field}: key {ref.secret.key!r} of Secret {ref.secret.name!r} is not text"
            ) from None
    else:
        value = str((obj.get("stringData") or {}).get(ref.secret.key) or "")
    if not value:
        raise TaskError(f"{field}: Secret {ref.secret.name!r} has no key {ref.secret.key!r}")
    return redactor.add(value)


def auth_headers(
    auth: AuthInput | None, field: str, options: KubeOptions, redactor: Redactor
) -> dict[str, str]:
    """The ``Authorization`` header for ``auth`` (empty without auth); values are redacted."""
    if auth is None:
        return {}
    if auth.bearer_token is not None:
        token = resolve(auth.bearer_token, f"{field}.bearerToken", options, redactor)
        return {"Authorization": f"Bearer {token}"}
    assert auth.basic is not None
    user = auth.basic.username
    username = user if isinstance(user, str) else resolve(user, f"{field}.basic.username", options, redactor)
    password = resolve(auth.basic.password, f"{field}.basic.password", options, redactor)
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    redactor.add(encoded)
    return {"Authorization": f"Basic {encoded}"}
