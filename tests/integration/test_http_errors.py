"""The bad-input table again, over real HTTP through the local server: the statuses, headers and JSON bodies
survive the event/response conversion. Nothing here reaches the sandbox."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer
from tests.http_support import http_call
from tests.unit.test_api_bad_requests import CASES, Case


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_over_http(local_server: RunningServer, case: Case) -> None:
    # When the bad request is sent over HTTP
    response = http_call(local_server.url, case.method, case.path, case.body, headers=case.headers)

    # Then the client sees what the handler decided
    body = response.json()
    assert (response.status, body["error"]) == (case.status, case.error), body
    assert case.says in body["message"]
    assert response.header("content-type") == "application/json"


def test_wrong_method_over_http_carries_allow(local_server: RunningServer) -> None:
    response = http_call(local_server.url, "GET", "/execute")

    assert (response.status, response.header("allow")) == (405, "POST")
