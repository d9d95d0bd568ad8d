"""The cluster tiers for the corpus's cluster cases: the very fixture of ``tests/cluster`` (the fake
API server and a real control plane, each test in a namespace of its own), so both suites launch
experiments in the same way."""

from cluster.conftest import cluster, pytest_generate_tests

__all__ = ["cluster", "pytest_generate_tests"]
