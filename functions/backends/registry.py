"""Backend name -> factory. A new backend is one module plus one line here.

Imports are lazy so a Lambda configured for Kubernetes never imports the local sandbox and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from functions.core.backend import ExecutionBackend
from functions.settings import Settings

# name -> "module:factory"; each factory takes the Settings and returns an ExecutionBackend.
BACKEND_FACTORIES: dict[str, str] = {
    "local": "functions.backends.local.backend:create_backend",
    "kubernetes": "functions.backends.kubernetes.backend:create_backend",
}


def create_backend(settings: Settings) -> ExecutionBackend:
    module_name, factory_name = BACKEND_FACTORIES[settings.backend].split(":")
    factory: Callable[[Settings], ExecutionBackend] = getattr(import_module(module_name), factory_name)
    return factory(settings)
