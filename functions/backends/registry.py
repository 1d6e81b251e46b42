"""Backend name -> factory. A new backend is one module plus one line here.

Imports are lazy so a Lambda configured for Kubernetes never imports the local sandbox and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from functions.core.backend import ExecutionBackend
from functions.core.runs import RunPort
from functions.settings import Settings

# name -> "module:factory"; each factory takes the Settings and returns an ExecutionBackend.
BACKEND_FACTORIES: dict[str, str] = {
    "local": "functions.backends.local.backend:create_backend",
    "kubernetes": "functions.backends.kubernetes.backend:create_backend",
}
# name -> "module:factory" of the backend's asynchronous port; each factory takes the backend that
# BACKEND_FACTORIES made (runs share its supervisor or its cluster client) and the Settings.
RUNS_FACTORIES: dict[str, str] = {
    "local": "functions.backends.local.runs:create_runs",
    "kubernetes": "functions.backends.kubernetes.runs:create_runs",
}


def create_backend(settings: Settings) -> ExecutionBackend:
    if settings.backend not in BACKEND_FACTORIES:
        known = ", ".join(sorted(BACKEND_FACTORIES))
        raise ValueError(f"EXEC_BACKEND={settings.backend!r} names no backend; known: {known}")
    factory: Callable[[Settings], ExecutionBackend] = _factory(BACKEND_FACTORIES[settings.backend])
    return factory(settings)


def create_runs(backend: ExecutionBackend, settings: Settings) -> RunPort:
    factory: Callable[[Any, Settings], RunPort] = _factory(RUNS_FACTORIES[backend.name])
    return factory(backend, settings)


def _factory(reference: str) -> Any:
    module_name, factory_name = reference.split(":")
    return getattr(import_module(module_name), factory_name)
