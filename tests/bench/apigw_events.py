"""API Gateway REST (v1 payload) proxy events, shaped like the ones Lambda receives from a deployed stage."""

from __future__ import annotations

import json
from typing import Any


def rest_proxy_event(
    method: str, path: str, *, body: Any = None, stage: str = "dev", api_key: str = "probe-key"
) -> dict[str, Any]:
    encoded_body = None if body is None else json.dumps(body)
    headers = {
        "Accept": "application/json",
        "Host": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
        "User-Agent": "curl/8.5.0",
        "X-Amzn-Trace-Id": "Root=1-67891233-abcdef012345678912345678",
        "X-Api-Key": api_key,
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": path,
            "httpMethod": method,
            "extendedRequestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "26/Nov/2026:05:00:00 +0000",
            "path": f"/{stage}{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": "abcdef1234",
            "requestTimeEpoch": 1795669200000,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {
                "sourceIp": "203.0.113.10",
                "userAgent": "curl/8.5.0",
                "apiKey": api_key,
                "apiKeyId": "abcd1234",
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
            },
            "domainName": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
            "apiId": "abcdef1234",
        },
        "body": encoded_body,
        "isBase64Encoded": False,
    }
