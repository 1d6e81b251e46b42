"""A local stand-in for the EKS DescribeCluster API, reached through the SDK's AWS_ENDPOINT_URL_EKS.

The Kubernetes backend asks EKS for the cluster's endpoint and CA when it is built; tests and the bundle
benchmark answer that here so nothing leaves the machine.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAKE_CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
CLUSTER_ENDPOINT = "https://127.0.0.1:6443"


def stub_handler(cluster_name: str, region: str) -> type[BaseHTTPRequestHandler]:
    class EksStub(BaseHTTPRequestHandler):
        """GET /clusters/<name> -> DescribeCluster's JSON; 404 for any other cluster."""

        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1]
            body = {
                "cluster": {
                    "name": name,
                    "arn": f"arn:aws:eks:{region}:123456789012:cluster/{name}",
                    "endpoint": CLUSTER_ENDPOINT,
                    "certificateAuthority": {"data": base64.b64encode(FAKE_CA_PEM).decode()},
                    "status": "ACTIVE",
                }
            }
            payload = json.dumps(body).encode()
            self.send_response(200 if name == cluster_name else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
            del format, args

    return EksStub


@contextmanager
def eks_stub(cluster_name: str, region: str) -> Iterator[str]:
    """Serve DescribeCluster on 127.0.0.1 (a free port); yields the endpoint URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), stub_handler(cluster_name, region))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
