"""Fixtures for in-use discovery: the embedded AWS with workloads, the local Kubernetes API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hygiene_demo.kubernetes_api import KubernetesApi
from hygiene_demo.registry import EmbeddedRegistry
from hygiene_demo.workloads import WorkloadSeeder, reset_workloads

FIXTURES = Path(__file__).parent / "k8s"


@pytest.fixture
def aws(embedded_server: EmbeddedRegistry) -> Iterator[WorkloadSeeder]:
    """The embedded AWS (one moto server per process), workloads emptied around the test."""
    embedded_server.reset()
    reset_workloads()
    yield WorkloadSeeder(embedded_server.endpoint_url, account=embedded_server.account)
    reset_workloads()
    embedded_server.reset()


@pytest.fixture
def kubeconfig(k8s_api: KubernetesApi, tmp_path: Path) -> Path:
    return k8s_api.kubeconfig(tmp_path / "kubeconfig")
