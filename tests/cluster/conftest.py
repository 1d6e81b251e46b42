"""The cluster suite's fixtures come from tests/cluster/fixtures.py, registered for every suite by
tests/conftest.py (`pytest_plugins`), so one session never starts two clusters."""
