"""The live view's HTTP server on 127.0.0.1: the page, the feeder's topology, and the run's steps as
Server-Sent Events.

Standard library only (`http.server` in a daemon thread, one thread per browser). Every stream
sends the latest step when it is new, at most `rate` times a second, so a fast run is sampled
rather than queued; a browser that stops reading blocks only its own thread (for at most the
socket timeout), never the run. `LiveView.close` sends each stream the final step and an `end`
event with the run's status, then stops the server.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files

from cosim.live.feed import LiveFeed

HOST = "127.0.0.1"
KEEPALIVE_S = 15.0  # an SSE comment when nothing new was sent for this long (proxies, dead browsers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, feed: LiveFeed, rate: float) -> None:
        super().__init__((HOST, port), _Handler)
        self.feed, self.interval = feed, 1.0 / rate
        self.page = files("cosim.live").joinpath("page.html").read_bytes()
        self.stopping = threading.Event()
        self.streams = 0
        self.streams_lock = threading.Condition()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # seconds a blocked write to a browser may take before its stream is dropped
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - no request log over the progress bar
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        feed = self.server.feed
        if path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", self.server.page)
        elif path == "/topology":
            self._send(200, "application/json", json.dumps(feed.topology).encode())
        elif path == "/snapshot":
            self._send(200, "application/json", feed.snapshot()[1].encode())
        elif path == "/events":
            self._stream()
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        """Server-Sent Events: `message` with each new snapshot, `end` with the run's status, then close."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        server, feed = self.server, self.server.feed
        with server.streams_lock:
            server.streams += 1
        try:
            sent, idle = -1, 0.0
            while True:
                ended = feed.status != "running"
                version, text = feed.snapshot()
                if version != sent:
                    self.wfile.write(f"id: {version}\ndata: {text}\n\n".encode())
                    sent, idle = version, 0.0
                elif idle >= KEEPALIVE_S:
                    self.wfile.write(b": keepalive\n\n")
                    idle = 0.0
                self.wfile.flush()
                if ended:
                    self.wfile.write(f"event: end\ndata: {json.dumps({'status': feed.status})}\n\n".encode())
                    self.wfile.flush()
                    return
                server.stopping.wait(server.interval)
                idle += server.interval
        except OSError:  # the browser went away or stopped reading (socket timeout)
            return
        finally:
            with server.streams_lock:
                server.streams -= 1
                server.streams_lock.notify_all()


class LiveView:
    """The running server of one run's live view: `url` to open, `close(status)` when the run has ended."""

    def __init__(self, feed: LiveFeed, port: int = 0, rate: float = 10.0) -> None:
        self.feed = feed
        self._server = _Server(port, feed, rate)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="live-view", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def close(self, status: str, grace_s: float = 2.0) -> None:
        """Tell the streams the run ended with `status`, give them `grace_s` to send it, stop the server."""
        server = self._server
        self.feed.finish(status)
        server.stopping.set()
        with server.streams_lock:
            server.streams_lock.wait_for(lambda: server.streams == 0, timeout=grace_s)
        server.shutdown()
        server.server_close()
        self._thread.join()
