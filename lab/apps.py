"""The lab's applications, run as threads of lab/run.py (standard library only).

- `ModelApp`: the predictor's model server (KServe v2 protocol subset). Behaviour by model name:
  `test` answers 200 to a valid infer body and 400 to one without `inputs`; `crash` answers 500;
  `busy` answers 503; `slow` sleeps `slow_seconds` then answers 200. Once `dies` is set, an
  infer request is read and the connection closed without an answer, as when the kernel kills
  the model process mid-request (OOMKilled) and closes its sockets. Like uvicorn, bytes that
  are not an HTTP request (a TLS ClientHello from a sidecar that expects mTLS) get an immediate
  `400 Bad Request` and the connection is closed.
- `ActivatorApp`: Knative's activator in proxy mode: forwards every request to the revision's
  private Service (127.0.1.30:80, i.e. through its own sidecar's outbound listener), setting Host to
  the Service address, keeping the original in `K-Original-Host`, appending the peer to
  X-Forwarded-For (Go's ReverseProxy does); or answers 503 itself when told the revision has no
  ready endpoints.

Both log JSON lines (zap-like keys, as Knative components do) so log readers classify them as
application logs, not access logs.
"""

import datetime
import http.client
import http.server
import json
import socket
import socketserver
import threading
import time

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JsonLog:
    def __init__(self, path, logger, extra):
        self._f = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self.logger = logger
        self.extra = extra

    def log(self, severity, message, **kv):
        rec = {"severity": severity, "timestamp": _now(), "logger": self.logger, "message": message}
        rec.update(self.extra)
        rec.update(kv)
        with self._lock:
            self._f.write(json.dumps(rec) + "\n")
            self._f.flush()

    def close(self):
        with self._lock:
            self._f.close()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, app):
        self.app = app
        self.conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def close_all(self):
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _read_body(handler):
    te = handler.headers.get("Transfer-Encoding", "")
    if "chunked" in te.lower():
        out = b""
        for _ in range(100000):
            line = handler.rfile.readline(65537)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline(65537)
                break
            out += handler.rfile.read(size)
            handler.rfile.readline(65537)
        return out
    n = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(n) if n else b""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    sys_version = ""

    def log_message(self, fmt, *args):  # the apps write their own JSON lines
        pass

    def handle_one_request(self):
        try:
            first = self.rfile.peek(1)[:1]
        except (OSError, ValueError):
            self.close_connection = True
            return
        if first and not first.isalpha():
            # Not HTTP (a TLS ClientHello): answer like uvicorn/h11 and close.
            body = b"Invalid HTTP request received."
            try:
                self.wfile.write(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                self.wfile.flush()
            except OSError:
                pass
            self.server.app.on_garbage(self.client_address)
            self.close_connection = True
            return
        super().handle_one_request()

    def _send(self, status, body, ctype="application/json", extra=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def do_GET(self):
        self.server.app.handle(self)

    do_POST = do_GET
    do_DELETE = do_GET
    do_PUT = do_GET
    do_HEAD = do_GET
    do_PATCH = do_GET


class _App:
    def __init__(self, ip, port, log):
        self.ip = ip
        self.port = port
        self.log = log
        self.server = None
        self.thread = None

    def start(self):
        self.server = _Server((self.ip, self.port), _Handler, self)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server.close_all()
            self.server = None

    def on_garbage(self, peer):
        self.log.log("WARNING", "Invalid HTTP request received.", peer=f"{peer[0]}:{peer[1]}")


class ModelApp(_App):
    def __init__(self, ip, port, log_path, slow_seconds=3.0):
        super().__init__(
            ip,
            port,
            JsonLog(log_path, "kserve", {"knative.dev/key": "aiproject/test-predictor-00001", "container": "kserve-container"}),
        )
        self.slow_seconds = slow_seconds
        self.dies = threading.Event()

    def start(self):
        super().start()
        self.log.log("INFO", f"Starting uvicorn server on {self.ip}:{self.port} (model test loaded)")

    def stop(self):
        super().stop()
        self.log.log("INFO", "Shutting down model server")

    def handle(self, h):
        body = _read_body(h)
        rid = h.headers.get("x-request-id", "-")
        parts = [p for p in h.path.split("?")[0].split("/") if p]
        status, out = 404, {"error": f"path {h.path} not found"}
        if self.dies.is_set() and parts[-1:] == ["infer"]:
            # Killed mid-request: no answer, no log line; the kernel closes the socket.
            h.close_connection = True
            return
        if parts[:2] == ["v2", "health"]:
            status, out = 200, {}
        elif len(parts) >= 3 and parts[:2] == ["v2", "models"]:
            model = parts[2]
            op = parts[3] if len(parts) > 3 else ""
            if model == "slow" and op == "infer":
                time.sleep(self.slow_seconds)
                status, out = 200, {"model_name": "slow", "outputs": [{"name": "out", "shape": [1], "datatype": "FP32", "data": [0.5]}]}
            elif model == "crash" and op == "infer":
                status, out = 500, {"error": "RuntimeError: CUDA error: an illegal memory access was encountered"}
            elif model == "busy" and op == "infer":
                status, out = 503, {"error": "model busy: inference queue full"}
            elif model == "test" and op == "infer":
                try:
                    req = json.loads(body or b"{}")
                except ValueError:
                    req = None
                if isinstance(req, dict) and isinstance(req.get("inputs"), list):
                    status, out = 200, {
                        "model_name": "test",
                        "outputs": [{"name": "out", "shape": [1], "datatype": "FP32", "data": [0.92]}],
                    }
                else:
                    status, out = 400, {"error": "Invalid request: missing 'inputs' (KServe v2 protocol)"}
            elif model == "test" and op == "":
                status, out = 200, {"name": "test", "platform": "onnx", "inputs": [], "outputs": []}
            elif model == "test" and h.command == "DELETE":
                status, out = 200, {"unloaded": "test"}
        self.log.log("INFO" if status < 400 else "ERROR", f"{h.command} {h.path} -> {status}", request_id=rid)
        h._send(status, out)


class AuthzApp(_App):
    """An external authorizer on its raw HTTP port (Authorino's `:5001`): 200 for a request
    carrying `Authorization: Bearer <token>`, 401 with `WWW-Authenticate` otherwise."""

    def __init__(self, ip, port, log_path, token):
        super().__init__(ip, port, JsonLog(log_path, "authorino.service.auth", {"container": "authorino"}))
        self.token = token

    def handle(self, h):
        _read_body(h)
        rid = h.headers.get("x-request-id", "-")
        ok = h.headers.get("authorization", "") == f"Bearer {self.token}"
        self.log.log("INFO", "outgoing authorization response", authorized=ok, request_id=rid, path=h.path)
        if ok:
            h._send(200, b"", ctype="text/plain")
        else:
            h._send(401, b"", ctype="text/plain", extra=[("www-authenticate", 'Bearer realm="test-predictor"')])


class ActivatorApp(_App):
    def __init__(self, ip, port, log_path, upstream, answer_503=None):
        super().__init__(
            ip,
            port,
            JsonLog(log_path, "activator", {"knative.dev/controller": "activator", "knative.dev/pod": "activator"}),
        )
        self.upstream = upstream  # (ip, port) of the private Service
        self.answer_503 = answer_503 or threading.Event()

    def start(self):
        super().start()
        self.log.log("INFO", f"Activator listening on {self.ip}:{self.port}; revision aiproject/test-predictor-00001 clusterIP {self.upstream[0]}:{self.upstream[1]}")

    def handle(self, h):
        body = _read_body(h)
        rid = h.headers.get("x-request-id", "-")
        if self.answer_503.is_set():
            self.log.log(
                "ERROR",
                "Error while proxying request: context deadline exceeded (revision has no ready endpoints)",
                request_id=rid,
                **{"knative.dev/key": "aiproject/test-predictor-00001"},
            )
            h._send(503, "activator request timeout\n", ctype="text/plain; charset=utf-8")
            return
        own = {"host", "x-forwarded-for", "k-original-host"}
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() not in own}
        peer = h.client_address[0]
        xff = h.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{xff}, {peer}" if xff else peer
        headers["K-Original-Host"] = h.headers.get("Host", "")
        headers["Host"] = f"{self.upstream[0]}:{self.upstream[1]}"
        if body:
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(self.upstream[0], self.upstream[1], timeout=30, source_address=(self.ip, 0))
        try:
            conn.request(h.command, h.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            rheaders = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP and k.lower() not in ("content-type", "date", "server")]
            status, ctype = resp.status, resp.getheader("content-type", "application/octet-stream")
        except OSError as e:
            self.log.log("ERROR", f"Error proxying request: {e}", request_id=rid)
            status, data, ctype, rheaders = 502, b"activator: error proxying request\n", "text/plain", []
        finally:
            conn.close()
        try:
            h._send(status, data, ctype=ctype, extra=rheaders)
            self.log.log("INFO", f"proxied {h.command} {h.path} -> {status}", request_id=rid)
        except OSError as e:
            self.log.log("WARNING", f"client went away before the response ({status}) was written: {e}", request_id=rid)
            h.close_connection = True
