"""The node agent's log endpoint: what a kubelet serves so that `pods/log` works through the apiserver.

The apiserver proxies GET pods/{name}/log to https://<node InternalIP>:<kubeletEndpoint port>
/containerLogs/{namespace}/{pod}/{container}. A container's log is its stdout followed by its stderr
(a kubelet interleaves them; the runner writes its report to stdout only).
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

# A `follow=true` reader waits at most this long for the container to finish.
FOLLOW_WAIT_S = 3600.0

LogKey = tuple[str, str, str]  # namespace, pod, container


@dataclass
class _Entry:
    pod_uid: str
    data: bytearray = field(default_factory=bytearray)
    done: threading.Event = field(default_factory=threading.Event)


class LogStore:
    """Container logs of the pods this node runs, kept until the pod is deleted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[LogKey, _Entry] = {}

    def open(self, key: LogKey, pod_uid: str) -> None:
        with self._lock:
            self._entries[key] = _Entry(pod_uid=pod_uid)

    def finish(self, key: LogKey, data: bytes) -> None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None:
            entry.data += data
            entry.done.set()

    def forget_pod(self, namespace: str, pod_uid: str) -> None:
        with self._lock:
            for key in [k for k, e in self._entries.items() if k[0] == namespace and e.pod_uid == pod_uid]:
                self._entries.pop(key).done.set()

    def read(self, key: LogKey, *, follow: bool) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        if follow:
            entry.done.wait(FOLLOW_WAIT_S)
        return bytes(entry.data)


def _tail(data: bytes, query: dict[str, list[str]]) -> bytes:
    """Honour tailLines and limitBytes, the two options a log reader commonly sets."""
    if "tailLines" in query:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-int(query["tailLines"][0]) :]) if int(query["tailLines"][0]) else b""
    if "limitBytes" in query:
        data = data[: int(query["limitBytes"][0])]
    return data


def _handler_for(store: LogStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            if len(parts) != 4 or parts[0] != "containerLogs":
                self._reply(HTTPStatus.NOT_FOUND, b"only /containerLogs/{namespace}/{pod}/{container}\n")
                return
            query = parse_qs(url.query)
            follow = query.get("follow", ["false"])[0] == "true"
            data = store.read((parts[1], parts[2], parts[3]), follow=follow)
            if data is None:
                self._reply(HTTPStatus.NOT_FOUND, f"no container {'/'.join(parts[1:])}\n".encode())
                return
            self._reply(HTTPStatus.OK, _tail(data, query))

        def _reply(self, status: HTTPStatus, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - stdlib signature
            # Quiet: one line per log request would drown the agent's own log.
            return

    return Handler


def serve_logs(store: LogStore, port: int, cert: Path, key: Path) -> ThreadingHTTPServer:
    """Serve the store over TLS on 127.0.0.1:`port` in a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(store))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="logs", daemon=True).start()
    return server
