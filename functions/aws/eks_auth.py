"""EKS authentication with the caller's IAM identity: a presigned STS GetCallerIdentity as bearer token.

This is what `aws eks get-token` does (aws-cli customizations/eks/get_token.py): the cluster name travels
in the signed `x-k8s-aws-id` header, the URL is presigned, and the token is `k8s-aws-v1.` + unpadded
base64url of it. The API server accepts a token for 15 minutes after its X-Amz-Date, so a cached token is
replaced after 13. Endpoint and CA come from `eks:DescribeCluster`, once per container.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_eks import EKSClient
    from mypy_boto3_sts import STSClient

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format prefix, not a secret
CLUSTER_ID_HEADER = "x-k8s-aws-id"
# Lifetime of the presigned URL as aws-cli sets it; the server applies its own 15-minute window.
PRESIGN_EXPIRES_S = 60
# Replace a token well before the server's 15 minutes (and under the 14 the design allows).
TOKEN_MAX_AGE_S = 13 * 60
KUBECONFIG_USER = "code-exec"
# An unreachable EKS endpoint must fail inside the request's budget (a 502), not after botocore's default
# 60 s connect timeout times five attempts (the Lambda's own timeout, seen by the caller as a gateway error).
AWS_CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 2})


@dataclass(frozen=True, slots=True)
class ClusterEndpoint:
    name: str
    endpoint: str
    certificate_authority_b64: str  # base64 of the PEM bundle, as DescribeCluster returns it


def presigned_token(sts: STSClient, cluster_name: str) -> str:
    """One fresh token for `cluster_name`, signed with whatever credentials `sts` holds."""

    def move_header_to_context(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # GetCallerIdentity takes no parameters: carry the cluster id past validation in the context.
        if CLUSTER_ID_HEADER in params:
            context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)

    def add_signed_header(request: Any, **_: Any) -> None:
        # before-sign: the header is part of the signature, so the token is valid for this cluster only.
        if CLUSTER_ID_HEADER in request.context:
            request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]

    events = sts.meta.events
    events.register("provide-client-params.sts.GetCallerIdentity", move_header_to_context)
    events.register("before-sign.sts.GetCallerIdentity", add_signed_header)
    try:
        url = sts.generate_presigned_url(
            "get_caller_identity",
            Params={CLUSTER_ID_HEADER: cluster_name},
            ExpiresIn=PRESIGN_EXPIRES_S,
            HttpMethod="GET",
        )
    finally:
        events.unregister("provide-client-params.sts.GetCallerIdentity", move_header_to_context)
        events.unregister("before-sign.sts.GetCallerIdentity", add_signed_header)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


def describe_cluster(eks: EKSClient, cluster_name: str) -> ClusterEndpoint:
    cluster = eks.describe_cluster(name=cluster_name)["cluster"]
    endpoint = cluster.get("endpoint")
    authority = cluster.get("certificateAuthority", {}).get("data")
    if not endpoint or not authority:
        raise ValueError(f"EKS cluster {cluster_name!r} has no endpoint or certificate authority yet")
    return ClusterEndpoint(name=cluster_name, endpoint=endpoint, certificate_authority_b64=authority)


def kubeconfig_for(cluster: ClusterEndpoint, token: str) -> dict[str, Any]:
    """A kubeconfig document (as a dict) for the cluster with a bearer token."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster.name,
                "cluster": {
                    "server": cluster.endpoint,
                    "certificate-authority-data": cluster.certificate_authority_b64,
                },
            }
        ],
        "users": [{"name": KUBECONFIG_USER, "user": {"token": token}}],
        "contexts": [{"name": cluster.name, "context": {"cluster": cluster.name, "user": KUBECONFIG_USER}}],
        "current-context": cluster.name,
    }


class EksClusterAuth:
    """Endpoint, CA and a cached token for one EKS cluster; one instance per container."""

    def __init__(
        self,
        cluster_name: str,
        *,
        region: str | None = None,
        session: boto3.session.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster_name = cluster_name
        self._session = session or boto3.session.Session(region_name=region)
        self._region = region
        self._clock = clock
        self._endpoint: ClusterEndpoint | None = None
        self._sts: STSClient | None = None
        self._token: str | None = None
        self._token_issued_at = 0.0

    def endpoint(self) -> ClusterEndpoint:
        if self._endpoint is None:
            eks = self._session.client("eks", region_name=self._region, config=AWS_CLIENT_CONFIG)
            self._endpoint = describe_cluster(eks, self.cluster_name)
        return self._endpoint

    def token(self) -> str:
        now = self._clock()
        if self._token is None or now - self._token_issued_at >= TOKEN_MAX_AGE_S:
            if self._sts is None:
                self._sts = self._session.client("sts", region_name=self._region, config=AWS_CLIENT_CONFIG)
            self._token = presigned_token(self._sts, self.cluster_name)
            self._token_issued_at = now
        return self._token

    def kubeconfig(self) -> dict[str, Any]:
        return kubeconfig_for(self.endpoint(), self.token())
