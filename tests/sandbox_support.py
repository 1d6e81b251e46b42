"""A local sandbox host for tests: its own cgroup root and data dir, removed (and checked empty) after."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from functions.backends.local.backend import host_setup
from functions.backends.local.sandbox import HostSetup
from functions.settings import Settings


def sandbox_settings(**overrides: object) -> Settings:
    """Settings with a cgroup root and a data dir of their own (traversable by the sandbox uids)."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    suffix = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "local_cgroup_root": f"code-exec-test-{suffix}",
        "data_dir": Path("/tmp") / f"code-exec-test-{suffix}",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def assert_nothing_left(host: HostSetup, settings: Settings) -> None:
    """No cgroup, box or artifact survives the runs; then remove the test's own roots."""
    for parent in host.cgroups.parents:
        assert [child.name for child in parent.iterdir() if child.is_dir()] == []
        parent.rmdir()
    leftovers = [path.name for path in host.boxes.root.iterdir()]
    assert leftovers == []
    artifacts = settings.data_dir / "artifacts"
    assert not artifacts.exists() or list(artifacts.iterdir()) == []
    shutil.rmtree(settings.data_dir)


@contextmanager
def sandbox_host(**overrides: object) -> Iterator[HostSetup]:
    settings = sandbox_settings(**overrides)
    host = host_setup(settings)
    try:
        yield host
    finally:
        assert_nothing_left(host, settings)
