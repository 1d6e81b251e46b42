"""Settings: one model per concern, validated at cold start; a backend name outside the registry is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from functions.backends.registry import BACKEND_FACTORIES, create_backend
from functions.settings import (
    DevServerSettings,
    ExecutionsSettings,
    KubernetesSettings,
    LimitSettings,
    LocalSandboxSettings,
    ServiceSettings,
    Settings,
)

GROUPS = (
    ServiceSettings,
    LimitSettings,
    ExecutionsSettings,
    DevServerSettings,
    LocalSandboxSettings,
    KubernetesSettings,
)


def test_every_setting_belongs_to_exactly_one_group() -> None:
    # Given the groups' fields
    names = [name for group in GROUPS for name in group.model_fields]

    # Then no field is declared twice and Settings holds exactly the groups' fields
    assert len(names) == len(set(names))
    assert set(Settings.model_fields) == set(names)


def test_an_unknown_backend_is_refused_with_the_known_names() -> None:
    # Given settings naming a backend nobody registered
    settings = Settings(backend="docker")

    # When the backend is created, then the error names the setting and the known backends
    with pytest.raises(ValueError, match="EXEC_BACKEND='docker'") as caught:
        create_backend(settings)
    for name in BACKEND_FACTORIES:
        assert name in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"default_timeout_s": 30.0, "max_timeout_s": 20.0}, id="timeout-default-above-ceiling"),
        pytest.param({"default_memory_limit_mb": 8}, id="memory-default-below-minimum"),
        pytest.param({"async_poll_initial_s": 9, "async_poll_max_s": 5}, id="poll-initial-above-max"),
    ],
)
def test_defaults_outside_their_ceilings_fail_at_start(overrides: dict[str, object]) -> None:
    # When settings put a default outside its bounds, then they do not load
    with pytest.raises(ValidationError):
        Settings(**overrides)  # type: ignore[arg-type]


def test_settings_read_the_environment_with_the_exec_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given EXEC_ variables for fields of two different groups
    monkeypatch.setenv("EXEC_LOCAL_WARM_POOL_SIZE", "0")
    monkeypatch.setenv("EXEC_K8S_NAMESPACE", "judging")

    # When settings load, then each group's field carries its variable
    settings = Settings()
    assert settings.local_warm_pool_size == 0
    assert settings.k8s_namespace == "judging"
