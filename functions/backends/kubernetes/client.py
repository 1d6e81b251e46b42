"""Which cluster and as whom: an EKS cluster by name (IAM), a kubeconfig + context, or in-cluster."""

from __future__ import annotations

import logging
import tempfile
from typing import Literal

import botocore.exceptions
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException

from functions.aws.eks_auth import EksClusterAuth
from functions.core.errors import BackendUnavailableError
from functions.settings import Settings

logger = logging.getLogger(__name__)

_AWS_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)

AuthMode = Literal["eks", "kubeconfig", "in_cluster"]


def auth_mode(settings: Settings) -> AuthMode:
    if settings.k8s_auth != "auto":
        return settings.k8s_auth
    return "eks" if settings.eks_cluster_name else "kubeconfig"


def eks_configuration(auth: EksClusterAuth) -> Configuration:
    """Client configuration for the cluster; every request asks `auth` for a (cached) fresh token."""
    configuration = Configuration()
    # The loader writes the CA to a temp file once; Lambda's /tmp is writable.
    kube_config.load_kube_config_from_dict(  # type: ignore[no-untyped-call]  # untyped module
        auth.kubeconfig(),
        client_configuration=configuration,
        persist_config=False,
        temp_file_path=tempfile.gettempdir(),
    )

    def refresh_token(target: Configuration) -> None:
        try:
            token = auth.token()
        except _AWS_ERRORS as exc:
            logger.exception("cannot renew the EKS token")
            raise BackendUnavailableError("the EKS token could not be renewed") from exc
        target.api_key["BearerToken"] = f"Bearer {token}"

    configuration.refresh_api_key_hook = refresh_token  # type: ignore[assignment]  # declared as None
    return configuration


def kubeconfig_configuration(path: str | None, context: str | None) -> Configuration:
    configuration = Configuration()
    kube_config.load_kube_config(  # type: ignore[no-untyped-call]  # untyped module
        config_file=path, context=context, client_configuration=configuration, persist_config=False
    )
    return configuration


def in_cluster_configuration() -> Configuration:
    configuration = Configuration()
    kube_config.load_incluster_config(  # type: ignore[no-untyped-call]  # untyped module
        client_configuration=configuration
    )
    return configuration


def create_api_client(settings: Settings) -> ApiClient:
    """The client for the configured cluster; a cluster we cannot configure is the backend failing (502)."""
    try:
        return ApiClient(_configuration(settings))
    except (ConfigException, OSError, ValueError, *_AWS_ERRORS) as exc:
        # The detail (file paths, account and role ARNs) goes to the log, not to API callers.
        logger.exception("cannot configure the Kubernetes client", extra={"auth": auth_mode(settings)})
        raise BackendUnavailableError(
            "the Kubernetes cluster cannot be reached with the configured credentials"
        ) from exc


def _configuration(settings: Settings) -> Configuration:
    mode = auth_mode(settings)
    if mode == "eks":
        if not settings.eks_cluster_name:
            raise ValueError("EXEC_K8S_AUTH=eks needs EXEC_EKS_CLUSTER_NAME")
        configuration = eks_configuration(
            EksClusterAuth(settings.eks_cluster_name, region=settings.aws_region)
        )
    elif mode == "kubeconfig":
        path = str(settings.kubeconfig) if settings.kubeconfig else None
        configuration = kubeconfig_configuration(path, settings.kube_context)
    else:
        configuration = in_cluster_configuration()
    return configuration
