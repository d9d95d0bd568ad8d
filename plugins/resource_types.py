"""The kinds the traffic controller can watch as parts of a version, with their readiness rules.

The short names are Iter8's (``deploy``, ``svc``, ``isvc``, ``cm``); the long forms are aliases.
Routing kinds (VirtualService, HTTPRoute) are not listed: routers write them, versions are not made
of them.
"""

from __future__ import annotations

from kubectl_iter8.registry import ResourceType

#: (resource type, aliases)
BUILTIN_RESOURCE_TYPES: tuple[tuple[ResourceType, tuple[str, ...]], ...] = (
    (ResourceType("deploy", "apps", "v1", "deployments", "Deployment", ("Available",)), ("deployment",)),
    (ResourceType("svc", "", "v1", "services", "Service"), ("service",)),
    (
        ResourceType(
            "isvc", "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService", ("Ready",)
        ),
        ("inferenceservice",),
    ),
    (ResourceType("cm", "", "v1", "configmaps", "ConfigMap"), ("configmap",)),
)
