"""EKS authentication, verified structurally: moto answers DescribeCluster; the token is taken apart."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import boto3
import pytest
from moto import mock_aws

from functions.aws import eks_auth
from functions.aws.eks_auth import (
    CLUSTER_ID_HEADER,
    PRESIGN_EXPIRES_S,
    TOKEN_MAX_AGE_S,
    TOKEN_PREFIX,
    EksClusterAuth,
)
from functions.backends.kubernetes.client import auth_mode, create_api_client, eks_configuration
from functions.core.errors import BackendUnavailableError
from functions.settings import Settings

REGION = "eu-west-1"
CLUSTER = "code-exec-test"
SECRET_KEY = "secret-for-tests"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Fake credentials so nothing can reach a real account; moto intercepts every call.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def cluster(aws: None) -> dict[str, str]:
    eks = boto3.client("eks", region_name=REGION)
    role_arn = "arn:aws:iam::123456789012:role/eks"
    created = eks.create_cluster(
        name=CLUSTER, roleArn=role_arn, resourcesVpcConfig={"subnetIds": ["subnet-1"]}
    )["cluster"]
    return {"endpoint": created["endpoint"], "ca": created["certificateAuthority"]["data"]}


@pytest.fixture
def session(aws: None) -> boto3.session.Session:
    # Explicit keys, so the test can recompute the signature below.
    return boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=SECRET_KEY, region_name=REGION
    )


def sigv4_signature(url: str, signed_headers: dict[str, str], secret_key: str) -> str:
    """Recompute a presigned GET's SigV4 signature (AWS General Reference, "Signature Version 4")."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    canonical_query = "&".join(
        f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}"
        for key, value in sorted(params.items())
        if key != "X-Amz-Signature"
    )
    headers = {"host": parts.hostname or "", **signed_headers}
    canonical_request = "\n".join(
        [
            "GET",
            parts.path or "/",
            canonical_query,
            *(f"{name}:{value}" for name, value in sorted(headers.items())),
            "",
            ";".join(sorted(headers)),
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    scope = params["X-Amz-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret_key}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def decode_token(token: str) -> str:
    assert token.startswith(TOKEN_PREFIX)
    body = token.removeprefix(TOKEN_PREFIX)
    assert "=" not in body, "the token is unpadded base64url"
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_is_a_presigned_get_caller_identity_bound_to_the_cluster(
    session: boto3.session.Session,
) -> None:
    # Given credentials for the region
    auth = EksClusterAuth(CLUSTER, region=REGION, session=session)
    # When a token is made
    token = auth.token()
    # Then it decodes to a presigned STS GetCallerIdentity URL in that region ...
    url = urlsplit(decode_token(token))
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert url.scheme == "https"
    assert url.hostname == f"sts.{REGION}.amazonaws.com"
    assert (query["Action"], query["Version"]) == ("GetCallerIdentity", "2011-06-15")
    # ... signed with SigV4 for sts, valid for the presign window ...
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].endswith(f"/{REGION}/sts/aws4_request")
    assert query["X-Amz-Expires"] == str(PRESIGN_EXPIRES_S)
    assert query["X-Amz-Date"]
    assert len(query["X-Amz-Signature"]) == 64
    # ... with the cluster id in a *signed* header (not a query parameter), so it only opens this cluster
    assert CLUSTER_ID_HEADER in query["X-Amz-SignedHeaders"].split(";")
    assert CLUSTER_ID_HEADER not in query
    assert len(token) < 4096
    # ... and the signature covers that header's value: it verifies for this cluster and no other
    url_text = decode_token(token)
    assert sigv4_signature(url_text, {CLUSTER_ID_HEADER: CLUSTER}, SECRET_KEY) == query["X-Amz-Signature"]
    assert sigv4_signature(url_text, {CLUSTER_ID_HEADER: "other"}, SECRET_KEY) != query["X-Amz-Signature"]


def test_token_is_cached_and_replaced_before_fourteen_minutes(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a clock we control and a count of presigned URLs made
    made: list[str] = []
    real = eks_auth.presigned_token

    def counting(*args: Any) -> str:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(eks_auth, "presigned_token", counting)
    clock = FakeClock()
    auth = EksClusterAuth(CLUSTER, region=REGION, clock=clock)
    first = auth.token()
    # When asked again within the cache window, the same token comes back without signing again
    clock.now += TOKEN_MAX_AGE_S - 1
    assert auth.token() == first
    assert len(made) == 1
    # And once the window has passed (always before 14 min) a new one is made
    assert TOKEN_MAX_AGE_S < 14 * 60
    clock.now += 1
    auth.token()
    assert len(made) == 2


def test_signing_hooks_do_not_leak_into_other_sts_calls(aws: None) -> None:
    # The header hooks are registered for one presign only; the client keeps working normally after.
    auth = EksClusterAuth(CLUSTER, region=REGION)
    auth.token()
    identity = boto3.client("sts", region_name=REGION).get_caller_identity()
    assert identity["Account"]


def test_describe_cluster_gives_endpoint_and_ca_once_per_container(cluster: dict[str, str]) -> None:
    # Given a cluster moto knows
    auth = EksClusterAuth(CLUSTER, region=REGION)
    # When asked twice
    first = auth.endpoint()
    second = auth.endpoint()
    # Then it answers from DescribeCluster, and the second time from the cache
    assert (first.endpoint, first.certificate_authority_b64) == (cluster["endpoint"], cluster["ca"])
    assert second is first


def test_kubeconfig_targets_the_cluster_with_the_token(cluster: dict[str, str]) -> None:
    auth = EksClusterAuth(CLUSTER, region=REGION)
    config = auth.kubeconfig()
    (entry,) = config["clusters"]
    assert entry["cluster"] == {"server": cluster["endpoint"], "certificate-authority-data": cluster["ca"]}
    (user,) = config["users"]
    assert user["user"]["token"].startswith(TOKEN_PREFIX)
    assert config["current-context"] == config["contexts"][0]["name"]


def test_client_configuration_targets_endpoint_and_ca_and_refreshes_the_token(
    cluster: dict[str, str],
) -> None:
    # Given the client configuration built from the EKS auth
    clock = FakeClock()
    auth = EksClusterAuth(CLUSTER, region=REGION, clock=clock)
    configuration = eks_configuration(auth)
    # Then it talks to the cluster's endpoint, trusting exactly its CA
    assert configuration.host == cluster["endpoint"].rstrip("/")
    assert configuration.ssl_ca_cert is not None
    assert Path(configuration.ssl_ca_cert).read_bytes() == base64.b64decode(cluster["ca"])
    # And each request carries a bearer token that is renewed when the cache window passes
    header = configuration.auth_settings()["BearerToken"]["value"]
    assert header == f"Bearer {auth.token()}"
    clock.now += TOKEN_MAX_AGE_S
    renewed = configuration.auth_settings()["BearerToken"]["value"]
    assert renewed == f"Bearer {auth.token()}"


@pytest.mark.parametrize(
    ("overrides", "mode"),
    [
        pytest.param({}, "kubeconfig", id="default-kubeconfig"),
        pytest.param({"eks_cluster_name": "c"}, "eks", id="cluster-name-means-eks"),
        pytest.param({"eks_cluster_name": "c", "k8s_auth": "kubeconfig"}, "kubeconfig", id="explicit-wins"),
        pytest.param({"k8s_auth": "in_cluster"}, "in_cluster", id="in-cluster"),
    ],
)
def test_auth_mode_from_settings(overrides: dict[str, str], mode: str) -> None:
    assert auth_mode(Settings(**overrides)) == mode  # type: ignore[arg-type]


def test_api_client_for_an_eks_cluster_by_name(cluster: dict[str, str]) -> None:
    # Given settings that name the cluster (the Lambda's configuration)
    settings = Settings(backend="kubernetes", eks_cluster_name=CLUSTER, aws_region=REGION)
    # When the backend's client is made
    api_client = create_api_client(settings)
    # Then it targets the cluster's endpoint
    assert api_client.configuration.host == cluster["endpoint"].rstrip("/")


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"eks_cluster_name": "no-such-cluster", "aws_region": REGION}, id="unknown-cluster"),
        pytest.param({"k8s_auth": "eks"}, id="eks-without-a-name"),
        pytest.param({"kubeconfig": "/nonexistent/kubeconfig"}, id="missing-kubeconfig"),
    ],
)
def test_unusable_cluster_configuration_is_backend_unavailable(aws: None, overrides: dict[str, Any]) -> None:
    # A misconfigured cluster answers 502 with a sentence, never a 500 with a trace; details go to the log.
    with pytest.raises(BackendUnavailableError) as raised:
        create_api_client(Settings(backend="kubernetes", **overrides))
    assert "arn:" not in raised.value.message
    assert "/nonexistent" not in raised.value.message
