"""What the ``release`` commands (:mod:`.release`, :mod:`.rollout_commands`) share: the connection
and reading a routemap by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubectl_iter8.errors import UsageError

if TYPE_CHECKING:
    from kubectl_iter8.kube import Kube
    from kubectl_iter8.routemap import RouteMap


def load_routemap(kube: Kube, name: str) -> tuple[dict[str, Any], RouteMap]:
    from kubectl_iter8.kube import CONFIGMAPS
    from kubectl_iter8.routemap import KIND_LABEL, ROUTEMAP_KIND, parse_routemap

    cm = kube.get(CONFIGMAPS, name)
    labels = cm.get("metadata", {}).get("labels") or {}
    if labels.get(KIND_LABEL) != ROUTEMAP_KIND:
        raise UsageError(f'configmap "{name}" is not a routemap (no label {KIND_LABEL}={ROUTEMAP_KIND})')
    return cm, parse_routemap(cm)


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Kube:
    from kubectl_iter8.kube import Kube, KubeOptions

    return Kube(KubeOptions(kubeconfig, context, namespace))
