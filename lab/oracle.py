#!/usr/bin/env python3
"""Format oracle: make a real Envoy write the same requests in a TEXT and a JSON access log.

    python3 lab/oracle.py --envoy PATH --out DIR

Starts a tiny upstream (a Python HTTP server thread on 127.0.0.2) and Envoy (one HTTP listener on
127.0.0.1, a plaintext and a TLS filter chain) whose HTTP connection manager has TWO file access
logs: a TEXT format using every command operator meshtrace knows (plus some it does not), and a
`json_format` mapping one key per operator of that TEXT format. Sends a fixed, bounded list of
requests (statuses, sizes, delays, an upstream that is down, a TLS upstream that is plaintext, an
empty cluster, no route, a direct response, local rate limiting, fault injection, a malformed
request, a client that disconnects, TLS with SNI, odd paths and headers), waits until both logs
hold one line per request, stops Envoy and writes into DIR:

    text.log          the TEXT access log
    json.log          the JSON access log (same requests, same order)
    text-format.txt   the exact TEXT format string (ends with a newline, as configured)
    json-format.json  the exact json_format mapping
    envoy.yaml        the bootstrap Envoy ran with (validated with `envoy --mode validate`)
    cases.json        the requests sent (name, request id, what was sent)

Python 3.11 standard library only. Traffic stays on 127.0.0.x; every wait is bounded.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LISTEN_IP = "127.0.0.1"
UPSTREAM_IP = "127.0.0.2"
CLIENT_IP = "127.0.0.3"
HOST = "oracle.local"
SNI = "oracle.local"

# Every operator meshtrace's format compiler maps to a typed slot (parsers/src/format.rs,
# `Slot::from_operator`), several spellings of the same slot, and operators / headers it does not
# know (kept as named text fields). Fields are separated by literals the way Istio's default is.
TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%"
    # Other spellings of known slots.
    " cluster=%UPSTREAM_CLUSTER% flags_long=%RESPONSE_FLAGS_LONG%"
    ' path="%REQ(:PATH)%" path_first="%REQ(:PATH?X-ENVOY-ORIGINAL-PATH)%"'
    ' host="%REQ(HOST)%" authority_host="%REQ(:AUTHORITY?HOST)%"'
    ' host_authority="%REQ(HOST?:AUTHORITY)%" rid="%REQ(x-request-id)%"'
    ' epoch=%START_TIME(%s)% local="%START_TIME(%Y/%m/%d %H:%M:%S.%3f)%"'
    ' mixer="%DYNAMIC_METADATA(istio.mixer:status)%"'
    # Operators and headers meshtrace has no slot for.
    ' tenant="%REQ(X-TENANT)%" case=%REQ(X-ORACLE-CASE)% ctype="%RESP(CONTENT-TYPE)%"'
    ' attempts=%UPSTREAM_REQUEST_ATTEMPT_COUNT% ua10="%REQ(USER-AGENT):10%"'
    "\n"
)

# JSON values that are not a single operator (kept by meshtrace as text under their key).
JSON_EXTRA = {"summary": "%REQ(:METHOD)% %RESPONSE_CODE% %RESPONSE_FLAGS%"}

OPERATOR_RE = re.compile(r"%([A-Z0-9_]+(?:\([^)]*\))?(?::[0-9]+)?)%")


def operators(fmt: str) -> list[str]:
    return OPERATOR_RE.findall(fmt)


def json_mapping(fmt: str) -> dict[str, str]:
    """One key per operator of the TEXT format (key: the operator in snake_case)."""
    out: dict[str, str] = {}
    for op in operators(fmt):
        key = re.sub(r"[^a-z0-9]+", "_", op.lower()).strip("_")
        base, n = key, 2
        while key in out:
            key = f"{base}_{n}"
            n += 1
        out[key] = f"%{op}%"
    out.update(JSON_EXTRA)
    return out


# A self-signed P-256 certificate for oracle.local, made for this lab (not a secret: it only
# terminates TLS on loopback so %REQUESTED_SERVER_NAME% gets a value).
TLS_CERT = """-----BEGIN CERTIFICATE-----
MIIBnjCCAUSgAwIBAgIUONhEjueSbkEAMBtZvGoO92HaJ1UwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMb3JhY2xlLmxvY2FsMCAXDTI2MTIwMzA5NDIyMVoYDzIxMjYx
MTA5MDk0MjIxWjAXMRUwEwYDVQQDDAxvcmFjbGUubG9jYWwwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAT3vR64Uf9U6v3vl1HkY0vDV/TBUt+8aJH/RFU6IBfYkUpY
e+82QdMSOjd9B6U6FfAGtWynYYKIvvDlH3vlLQuJo2wwajAdBgNVHQ4EFgQUlc2l
NHv8c5mcnwAYcZurKczlVqowHwYDVR0jBBgwFoAUlc2lNHv8c5mcnwAYcZurKczl
VqowDwYDVR0TAQH/BAUwAwEB/zAXBgNVHREEEDAOggxvcmFjbGUubG9jYWwwCgYI
KoZIzj0EAwIDSAAwRQIhANCP7Pmd/m+ijc/5xBTmfxgM/onKq/WuzykmZI4H4FQ2
AiAw8sxp79h/nGS12ggeRKtGmpY4cprpxICppJs88DxB0w==
-----END CERTIFICATE-----
"""
TLS_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnxEkGtLrOAV5oZY0
jwZ8HpwgCWQU63LKl8ihmnJdOUOhRANCAAT3vR64Uf9U6v3vl1HkY0vDV/TBUt+8
aJH/RFU6IBfYkUpYe+82QdMSOjd9B6U6FfAGtWynYYKIvvDlH3vlLQuJ
-----END PRIVATE KEY-----
"""


# ---------------------------------------------------------------- a minimal YAML writer


def yaml_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(v)


def to_yaml(v, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            return pad + "{}\n"
        out = []
        for k, x in v.items():
            key = k if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", k) else json.dumps(k)
            if isinstance(x, (dict, list)) and x:
                out.append(f"{pad}{key}:\n{to_yaml(x, indent + 1)}")
            elif isinstance(x, dict):
                out.append(f"{pad}{key}: {{}}\n")
            elif isinstance(x, list):
                out.append(f"{pad}{key}: []\n")
            else:
                out.append(f"{pad}{key}: {yaml_scalar(x)}\n")
        return "".join(out)
    if isinstance(v, list):
        out = []
        for x in v:
            if isinstance(x, (dict, list)) and x:
                inner = to_yaml(x, indent + 1)
                out.append(f"{pad}- {inner.lstrip()}")
            else:
                out.append(f"{pad}- {yaml_scalar(x)}\n")
        return "".join(out)
    return pad + yaml_scalar(v) + "\n"


# ---------------------------------------------------------------- Envoy bootstrap


def free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def static_cluster(name: str, port: int | None, **extra) -> dict:
    endpoints = []
    if port is not None:
        endpoints = [
            {
                "lb_endpoints": [
                    {
                        "endpoint": {
                            "address": {
                                "socket_address": {"address": UPSTREAM_IP, "port_value": port}
                            }
                        }
                    }
                ]
            }
        ]
    c = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "0.25s",
        "load_assignment": {"cluster_name": name, "endpoints": endpoints},
    }
    c.update(extra)
    return c


def bootstrap(listen_port: int, admin_port: int, up_port: int, down_port: int) -> dict:
    text_log = {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": "text.log",
            "log_format": {"text_format_source": {"inline_string": TEXT_FORMAT}},
        },
    }
    json_log = {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": "json.log",
            "log_format": {"json_format": json_mapping(TEXT_FORMAT)},
        },
    }
    rl_bucket = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": "oracle_rl",
        "token_bucket": {"max_tokens": 1, "tokens_per_fill": 1, "fill_interval": "3600s"},
        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
    }

    def route(prefix: str, name: str | None, action: dict, **extra) -> dict:
        r = {"match": {"prefix": prefix}}
        if name:
            r["name"] = name
        r.update(action)
        r.update(extra)
        return r

    routes = [
        route("/direct", "direct", {"direct_response": {"status": 418, "body": {"inline_string": "teapot\n"}}}),
        route("/timeout", "timeout", {"route": {"cluster": "upstream", "timeout": "0.5s"}}),
        route("/down-noretry", "down-noretry", {"route": {"cluster": "down"}}),
        route(
            "/down",
            "down-retry",
            {
                "route": {
                    "cluster": "down",
                    "retry_policy": {"retry_on": "connect-failure,reset", "num_retries": 2},
                }
            },
        ),
        route("/tls-upstream", "tls-upstream", {"route": {"cluster": "tls_upstream"}}),
        route("/empty", "empty-cluster", {"route": {"cluster": "empty"}}),
        route("/rewrite/", "rewrite", {"route": {"cluster": "upstream", "prefix_rewrite": "/status/"}}),
        route(
            "/ratelimit",
            "ratelimit",
            {"route": {"cluster": "upstream"}},
            typed_per_filter_config={"envoy.filters.http.local_ratelimit": rl_bucket},
        ),
        route("/size", None, {"route": {"cluster": "upstream"}}),
        route("/", "default", {"route": {"cluster": "upstream", "timeout": "5s"}}),
    ]
    hcm = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "oracle",
            "use_remote_address": True,
            "preserve_external_request_id": True,
            "access_log": [text_log, json_log],
            "route_config": {
                "name": "oracle_routes",
                "virtual_hosts": [
                    {
                        "name": "oracle",
                        "domains": [HOST, f"{HOST}:*"],
                        "routes": routes,
                    }
                ],
            },
            "http_filters": [
                {
                    "name": "envoy.filters.http.fault",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
                        "abort": {
                            "header_abort": {},
                            "percentage": {"numerator": 100, "denominator": "HUNDRED"},
                        },
                        "delay": {
                            "header_delay": {},
                            "percentage": {"numerator": 100, "denominator": "HUNDRED"},
                        },
                    },
                },
                {
                    "name": "envoy.filters.http.local_ratelimit",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                        "stat_prefix": "oracle_rl",
                    },
                },
                {
                    # Gives %DYNAMIC_METADATA(istio.mixer:status)% (Istio 1.3's Mixer field) a
                    # value on requests that reach the filter chain.
                    "name": "envoy.filters.http.set_metadata",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.set_metadata.v3.Config",
                        "metadata": [
                            {
                                "metadata_namespace": "istio.mixer",
                                "value": {"status": "UNAVAILABLE:quota check skipped"},
                            }
                        ],
                    },
                },
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                    },
                },
            ],
        },
    }
    downstream_tls = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "tls_certificates": [
                    {
                        "certificate_chain": {"inline_string": TLS_CERT},
                        "private_key": {"inline_string": TLS_KEY},
                    }
                ]
            },
        },
    }
    upstream_tls = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": "upstream.oracle.local",
        },
    }
    return {
        "admin": {"address": {"socket_address": {"address": LISTEN_IP, "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "oracle_listener",
                    "address": {"socket_address": {"address": LISTEN_IP, "port_value": listen_port}},
                    "listener_filters": [
                        {
                            "name": "envoy.filters.listener.tls_inspector",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
                            },
                        }
                    ],
                    "filter_chains": [
                        {
                            "name": "tls",
                            "filter_chain_match": {"transport_protocol": "tls"},
                            "transport_socket": downstream_tls,
                            "filters": [hcm],
                        },
                        {"name": "plaintext", "filters": [hcm]},
                    ],
                }
            ],
            "clusters": [
                static_cluster("upstream", up_port, alt_stat_name="upstream_alt_stat"),
                static_cluster("down", down_port),
                static_cluster("tls_upstream", up_port, transport_socket=upstream_tls),
                static_cluster("empty", None),
            ],
        },
    }


# ---------------------------------------------------------------- the upstream


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "oracle-upstream"
    sys_version = ""

    def log_message(self, *args):  # quiet
        pass

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(min(n, 1 << 20))
        # `/<kind>/<arg>` anywhere in the path (routes may put a prefix before it).
        parts = self.path.split("?")[0].split("/")
        kind, arg = "", ""
        for i, p in enumerate(parts):
            if p in ("status", "size", "delay", "reset"):
                kind, arg = p, parts[i + 1] if i + 1 < len(parts) else ""
                break
        status, body, ctype = 200, b"ok\n", "text/plain"
        if kind == "status" and arg.isdigit():
            status, body = int(arg), f"status {arg}\n".encode()
        elif kind == "size" and arg.isdigit():
            body = b"x" * min(int(arg), 1 << 20)
            ctype = "application/octet-stream"
        elif kind == "delay" and arg.isdigit():
            time.sleep(min(int(arg), 5000) / 1000)
            body, ctype = b'{"slept":true}\n', "application/json"
        elif kind == "reset":
            # Close without answering: Envoy sees the upstream connection terminate.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if status in (204, 304) or self.command == "HEAD" or status < 200:
            body = b""
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # Envoy gave up on this upstream request (a delayed answer past its timeout, a
            # fault): what it logs is the point, not this answer.
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_PURGE = handle_any


# ---------------------------------------------------------------- the client


def raw_request(
    port: int,
    data: bytes,
    tls: bool = False,
    close_after: float | None = None,
    timeout: float = 6.0,
) -> bytes:
    """Send raw bytes, read the answer until EOF (or close early after `close_after` s)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((CLIENT_IP, 0))
    s.connect((LISTEN_IP, port))
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname=SNI)
    try:
        s.sendall(data)
        if close_after is not None:
            time.sleep(close_after)
            return b""
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < (4 << 20):
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def build(method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}"]
    for k, v in headers:
        lines.append(f"{k}: {v}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8") + body


LONG_UA = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 "
    + " ".join(f"ext{i}/1.{i} (compatible; oracle; +https://example.invalid/{i})" for i in range(40))
)


def cases() -> list[dict]:
    """The requests: (name, method, path, extra headers, body, options)."""
    c: list[dict] = []

    def add(name, method="GET", path="/status/200", headers=None, body=b"", rid=True, **opts):
        n = len(c) + 1
        h = [("Host", opts.pop("host", HOST)), ("User-Agent", opts.pop("ua", "oracle-client/1.0"))]
        if rid:
            h.append(("X-Request-Id", f"oracle-{n:02d}-{name}"))
        h.append(("X-Oracle-Case", name))
        h.extend(headers or [])
        h.append(("Connection", "close"))
        c.append({"name": name, "method": method, "path": path, "headers": h, "body": body, **opts})

    add("ok-get")
    add("post-201", "POST", "/status/201", body=b'{"prompt":"hello"}', headers=[("Content-Type", "application/json")])
    add("not-found-404", path="/status/404")
    add("app-error-500", path="/status/500")
    add("unavailable-503", path="/status/503")
    add("head", "HEAD", "/status/200")
    add("put-large", "PUT", "/size/20000", body=b"y" * 5000)
    add("delete-204", "DELETE", "/status/204")
    add("options", "OPTIONS", "/status/200")
    add("patch", "PATCH", "/status/202", body=b"p")
    add("custom-method", "PURGE", "/status/200")
    add("delay", path="/delay/250")
    add("route-timeout", path="/timeout/delay/2000")
    add("upstream-down-retry", path="/down/x")
    add("upstream-down", path="/down-noretry/x")
    add("upstream-tls-to-plaintext", path="/tls-upstream/x")
    add("no-healthy-upstream", path="/empty/x")
    add("upstream-reset", path="/reset")
    add("no-route", path="/status/200", host="unknown.example")
    add("direct-response", path="/direct")
    add("ratelimit-first", path="/ratelimit/status/200")
    add("ratelimit-limited", path="/ratelimit/status/200")
    add("fault-abort", headers=[("x-envoy-fault-abort-request", "503")])
    add("fault-delay", headers=[("x-envoy-fault-delay-request", "150")])
    add("rewrite", path="/rewrite/200?from=rewrite")
    add("encoded-path", path="/status/200/a%20b%22c%27d?q=%22x%22&e=%E2%82%AC")
    add("quote-in-path", path='/status/200/"quoted"/x?y="z"')
    add("long-path", path="/status/200/" + "/".join(f"seg{i:03d}" for i in range(300)))
    add("long-user-agent", ua=LONG_UA)
    add("quote-in-user-agent", ua='curl/8.5 "quoted" agent')
    add("quote-space-quote-in-tenant", headers=[("X-Tenant", 'a" "b')])
    add("quote-space-quote-in-user-agent", ua='agent" "with" "quotes')
    add("utf8-tenant", headers=[("X-Tenant", "tenant é 日本")])
    add("xff", headers=[("X-Forwarded-For", "203.0.113.7, 198.51.100.2")])
    add("no-request-id", rid=False)
    add("http10", version="HTTP/1.0")
    add("malformed-header", raw=b"GET /status/200 HTTP/1.1\r\nHost: oracle.local\r\nX-Oracle-Case: malformed-header\r\nBad Header Line\r\n\r\n")
    add("client-disconnect", path="/delay/1500", close_after=0.4)
    add("tls-sni", tls=True)
    add("tls-sni-404", path="/status/404", tls=True)
    return c


# ---------------------------------------------------------------- run


def wait_ready(admin_port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"envoy exited early with code {proc.returncode}")
        try:
            with socket.create_connection((LISTEN_IP, admin_port), timeout=1) as s:
                s.sendall(b"GET /ready HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
                got = b""
                for _ in range(16):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                if b"LIVE" in got:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("envoy did not become ready")


def count_lines(p: Path) -> int:
    try:
        return p.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--envoy", required=True, help="path to the envoy binary")
    ap.add_argument("--out", required=True, help="directory to write the logs and formats into")
    args = ap.parse_args()
    envoy = os.path.abspath(args.envoy)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    version = subprocess.run([envoy, "--version"], capture_output=True, text=True, timeout=30).stdout
    version = version.split("version:", 1)[-1].strip()
    up_port = free_port(UPSTREAM_IP)
    down_port = free_port(UPSTREAM_IP)  # nothing listens there
    listen_port = free_port(LISTEN_IP)
    admin_port = free_port(LISTEN_IP)

    work = Path(tempfile.mkdtemp(prefix="meshtrace-oracle-"))
    cfg = to_yaml(bootstrap(listen_port, admin_port, up_port, down_port))
    (work / "envoy.yaml").write_text(cfg)
    base = [envoy, "-c", "envoy.yaml", "--disable-hot-restart", "--concurrency", "1"]
    v = subprocess.run(base + ["--mode", "validate", "-l", "error"], cwd=work, capture_output=True, text=True, timeout=60)
    if v.returncode != 0:
        sys.stderr.write(v.stdout + v.stderr)
        raise SystemExit("envoy --mode validate rejected the bootstrap")

    server = http.server.ThreadingHTTPServer((UPSTREAM_IP, up_port), Upstream)
    server.daemon_threads = True
    st = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    st.start()

    stderr = open(work / "envoy.stderr", "wb")
    proc = subprocess.Popen(
        base + ["--file-flush-interval-msec", "100", "-l", "warning"],
        cwd=work,
        stdout=stderr,
        stderr=stderr,
    )
    sent = []
    try:
        wait_ready(admin_port, proc)
        for case in cases():
            data = case.get("raw") or build(
                case["method"], case["path"], case["headers"], case["body"], case.get("version", "HTTP/1.1")
            )
            resp = raw_request(listen_port, data, tls=case.get("tls", False), close_after=case.get("close_after"))
            status = resp.split(b"\r\n", 1)[0].decode("latin-1") if resp else "(closed by client)"
            rid = next((v for k, v in case["headers"] if k == "X-Request-Id"), None)
            sent.append({"name": case["name"], "request_id": rid, "response": status})
            print(f"{case['name']:<28} {status}", file=sys.stderr)
        # The client that disconnected is logged once Envoy notices; wait for one line per case.
        want = len(sent)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if count_lines(work / "text.log") >= want and count_lines(work / "json.log") >= want:
                break
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        stderr.close()
        server.shutdown()
        server.server_close()

    got = (count_lines(work / "text.log"), count_lines(work / "json.log"))
    if got != (len(sent), len(sent)):
        sys.stderr.write((work / "envoy.stderr").read_text(errors="replace")[-4000:])
        raise SystemExit(f"expected {len(sent)} lines in each log, got {got}")

    for name in ("text.log", "json.log", "envoy.yaml"):
        (out / name).write_bytes((work / name).read_bytes())
    (out / "text-format.txt").write_text(TEXT_FORMAT)
    (out / "json-format.json").write_text(json.dumps(json_mapping(TEXT_FORMAT), indent=2) + "\n")
    (out / "cases.json").write_text(json.dumps({"envoy": version, "cases": sent}, indent=2, ensure_ascii=False) + "\n")
    for p in work.iterdir():
        p.unlink()
    work.rmdir()
    print(f"wrote {len(sent)} requests to {out} ({version})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
