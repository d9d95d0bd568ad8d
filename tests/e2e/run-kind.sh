#!/usr/bin/env bash
# Run the cluster scenario tests against a real Kubernetes cluster made with kind.
# Needs docker (with a running engine) and kind on PATH; prints why and exits 0 when they are missing.
#   tests/e2e/run-kind.sh            create cluster "iter8-e2e", build and load the image, run the tests
#   KEEP_CLUSTER=1 tests/e2e/run-kind.sh   leave the cluster running afterwards
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in docker kind kubectl; do
  if ! command -v "$tool" >/dev/null; then
    echo "skipped: $tool is not installed (kind clusters need docker and kind)"; exit 0
  fi
done
if ! docker info >/dev/null 2>&1; then
  echo "skipped: no Docker engine is running"; exit 0
fi

cluster=iter8-e2e
version=$(python3 -c 'import re; print(re.search(r"\"(.+)\"", open("kubectl_iter8/version.py").read().split("__version__")[1]).group(1))')
image="ghcr.io/kubectl-iter8/kubectl-iter8:v${version}-e2e"
kubeconfig=$(mktemp)
trap '[ -n "${KEEP_CLUSTER:-}" ] || kind delete cluster --name "$cluster"; rm -f "$kubeconfig"' EXIT

kind create cluster --name "$cluster" --kubeconfig "$kubeconfig" --wait 120s
docker build -t "$image" .
kind load docker-image --name "$cluster" "$image"
shared="$(cd .. && pwd)/shared/crds"
if [ -d "$shared" ]; then
  for crd in "$shared"/*.yaml; do kubectl --kubeconfig "$kubeconfig" apply --server-side -f "$crd" >/dev/null; done
fi
ITER8_TEST_KUBECONFIG="$kubeconfig" ITER8_IMAGE="$image" scripts/test tests/cluster -p no:cacheprovider
