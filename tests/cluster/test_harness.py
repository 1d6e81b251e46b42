"""`make cluster-up` / `make cluster-down`: a detached cluster a person can use, and nothing left after it."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from tests.cluster import harness, processes

pytestmark = pytest.mark.cluster


def test_cluster_up_then_down_serves_both_identities_and_leaves_no_process(
    cluster_bin_dir: Path, tmp_path: Path
) -> None:
    # Given a cluster started as `make cluster-up` does (detached from this process, k8s/overlays/dev applied)
    state_dir = tmp_path / "state"
    assert harness.main(["up", "--dir", str(state_dir)]) == 0
    records = harness._read_state(state_dir)
    try:
        # Then its kubeconfigs work: the admin sees the Ready node, the controller identity is who it says
        with harness.api_client_for(state_dir / "admin.kubeconfig") as admin:
            nodes = client.CoreV1Api(admin).list_node().items
            namespace = client.CoreV1Api(admin).read_namespace("runner-dev")
        assert [node.metadata.name for node in nodes if node.metadata] == [harness.NODE_NAME]
        assert namespace.metadata is not None
        assert namespace.metadata.labels is not None
        assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
        with harness.api_client_for(state_dir / "controller.kubeconfig") as controller:
            review = client.AuthenticationV1Api(controller).create_self_subject_review(
                client.V1SelfSubjectReview()
            )
        assert review.status is not None
        assert review.status.user_info is not None
        assert review.status.user_info.username == harness.CONTROLLER_USER
        assert harness.CONTROLLER_GROUP in (review.status.user_info.groups or [])
        assert [record.name for record in records] == [
            harness.SUPERVISOR,
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "node-agent",
        ]
    finally:
        # When it is taken down as `make cluster-down` does
        assert harness.main(["down", "--dir", str(state_dir)]) == 0

    # Then none of its processes is left, not even <defunct>: the supervisor reaped the components it started
    # (it alone was this process's child, reaped by `down`), and a second `down` finds nothing to do
    assert not [record.name for record in records if processes.exists(record)]
    assert harness.stop_cluster(state_dir) == []
