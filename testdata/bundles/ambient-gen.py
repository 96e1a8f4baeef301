#!/usr/bin/env python3
"""Writes the three Istio ambient example bundles (ambient-l4-deny, ambient-hbone-blocked,
ambient-waypoint-bypass) from documented real ztunnel/waypoint lines; each README cites its
sources and says what was adapted. Run from the repository root: python3 testdata/bundles/ambient-gen.py"""
import json, os, textwrap

ROOT = os.path.dirname(os.path.abspath(__file__))

def pod(ns, name, ip, labels, sa="default", containers=("app",), node="node-1"):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                         "annotations": {"ambient.istio.io/redirection": "enabled"} if ns not in ("istio-system",) and "gateway.istio.io/managed" not in labels else {}},
            "spec": {"serviceAccountName": sa, "nodeName": node,
                     "containers": [{"name": c, "image": "example"} for c in containers]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}

def ztunnel_pod(name, ip, node):
    return pod("istio-system", name, ip, {"app": "ztunnel"}, sa="ztunnel",
               containers=("istio-proxy",), node=node)

def zline(ts, level, fields, error=None):
    parts = []
    for k, v in fields:
        if isinstance(v, int) or k in ("src.addr", "dst.addr", "dst.hbone_addr"):
            parts.append(f"{k}={v}")
        else:
            parts.append(f'{k}="{v}"')
    if error:
        parts.append(f'error="{error}"')
    return f"{ts}\t{level}\taccess\tconnection complete\t" + " ".join(parts)

def conn(src, src_wl, src_ns, src_sa, dst, hbone, svc, dst_wl, dst_ns, dst_sa, direction, sent, recv, dur):
    f = [("src.addr", src), ("src.workload", src_wl), ("src.namespace", src_ns)]
    if src_sa:
        f.append(("src.identity", f"spiffe://cluster.local/ns/{src_ns}/sa/{src_sa}"))
    f += [("dst.addr", dst), ("dst.hbone_addr", hbone), ("dst.service", svc),
          ("dst.workload", dst_wl), ("dst.namespace", dst_ns),
          ("dst.identity", f"spiffe://cluster.local/ns/{dst_ns}/sa/{dst_sa}"),
          ("direction", direction), ("bytes_sent", sent), ("bytes_recv", recv),
          ("duration", f"{dur}ms")]
    return f

def yaml_docs(objs):
    # JSON is valid YAML; one document per object keeps the files readable by any tool.
    return "\n---\n".join(json.dumps(o, indent=2) for o in objs) + "\n"

def write(bundle, rel, text):
    p = os.path.join(ROOT, bundle, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)

def manifest(bundle, notes):
    write(bundle, "meshtrace-bundle.json", json.dumps({
        "version": 1, "collected_at": "2026-08-04T09:00:00Z",
        "collector": "hand-made from documented lines (see README.md; testdata/bundles/ambient-gen.py)",
        "cluster": "kind, Istio ambient (ztunnel + waypoint)",
        "log_formats": {"default": "auto"}, "notes": notes}, indent=2) + "\n")

def namespace(name, labels):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}

def service(ns, name, ip, port, selector, labels=None):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "selector": selector,
                     "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]}}

# ---------------------------------------------------------------- ambient-l4-deny
B = "ambient-l4-deny"
pods = [pod("default", "reviews-v1-6584ddcf65-k78wz", "10.244.1.6", {"app": "reviews", "version": "v1"}, "bookinfo-reviews", node="node-1"),
        pod("default", "productpage-v1-d5789fdfb-c5w2c", "10.244.1.9", {"app": "productpage", "version": "v1"}, "bookinfo-productpage", node="node-2"),
        ztunnel_pod("ztunnel-4bx7k", "172.18.0.3", "node-1"), ztunnel_pod("ztunnel-9qkzm", "172.18.0.4", "node-2")]
write(B, "pods.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}, indent=2) + "\n")
write(B, "resources/default/namespace.yaml", yaml_docs([namespace("default", {"istio.io/dataplane-mode": "ambient"})]))
write(B, "resources/default/services.yaml", yaml_docs([service("default", "productpage", "10.96.12.40", 9080, {"app": "productpage"})]))
write(B, "resources/default/authorizationpolicies.yaml", yaml_docs([{
    "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
    "metadata": {"name": "productpage-deny-reviews", "namespace": "default"},
    "spec": {"selector": {"matchLabels": {"app": "productpage"}}, "action": "DENY",
             "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/default/sa/bookinfo-reviews"]}}]}]}}]))
ok_out = conn("10.244.1.6:45190", "reviews-v1-6584ddcf65-k78wz", "default", "bookinfo-reviews", "10.244.1.9:15008", "10.244.1.9:9080", "productpage.default.svc.cluster.local", "productpage-v1-d5789fdfb-c5w2c", "default", "bookinfo-productpage", "outbound", 211, 5483, 9)
deny_out = conn("10.244.1.6:45208", "reviews-v1-6584ddcf65-k78wz", "default", "bookinfo-reviews", "10.244.1.9:15008", "10.244.1.9:9080", "productpage.default.svc.cluster.local", "productpage-v1-d5789fdfb-c5w2c", "default", "bookinfo-productpage", "outbound", 0, 0, 0)
ok_in = conn("10.244.1.6:51822", "reviews-v1-6584ddcf65-k78wz", "default", "bookinfo-reviews", "10.244.1.9:15008", "10.244.1.9:9080", "productpage.default.svc.cluster.local", "productpage-v1-d5789fdfb-c5w2c", "default", "bookinfo-productpage", "inbound", 5483, 211, 8)
deny_in = conn("10.244.1.6:51830", "reviews-v1-6584ddcf65-k78wz", "default", "bookinfo-reviews", "10.244.1.9:15008", "10.244.1.9:9080", "productpage.default.svc.cluster.local", "productpage-v1-d5789fdfb-c5w2c", "default", "bookinfo-productpage", "inbound", 0, 0, 0)
write(B, "logs/istio-system/ztunnel-4bx7k/istio-proxy.log", "\n".join([
    "2026-08-04T08:55:10.101230Z\tinfo\txds{id=2}\tdelta ADS: received Workload: 12 resources",
    zline("2026-08-04T08:58:12.318402Z", "info", ok_out),
    zline("2026-08-04T08:58:40.541208Z", "error", deny_out, "http status: 401 Unauthorized"),
]) + "\n")
write(B, "logs/istio-system/ztunnel-9qkzm/istio-proxy.log", "\n".join([
    zline("2026-08-04T08:58:12.317977Z", "info", ok_in),
    "2026-08-04T08:58:40.540377Z\tinfo\tstate:proxy{wl=default/productpage-v1-d5789fdfb-c5w2c}:inbound{peer=10.244.1.6:51830}\tdeny policy match policy=\"default/productpage-deny-reviews\"",
    zline("2026-08-04T08:58:40.540401Z", "error", deny_in, "connection closed due to policy rejection: explicitly denied by: default/productpage-deny-reviews"),
]) + "\n")
manifest(B, "reviews (node-1) → productpage (node-2), no waypoint; an L4 DENY AuthorizationPolicy enforced by productpage's ztunnel.")

# ---------------------------------------------------------------- ambient-hbone-blocked
B = "ambient-hbone-blocked"
pods = [pod("default", "shell-56bd5dbdbf-gz6cq", "10.244.0.9", {"app": "shell"}, node="node-1"),
        pod("default", "echo-66d88ff694-pnk6h", "10.244.0.10", {"app": "echo"}, node="node-2"),
        ztunnel_pod("ztunnel-x5v2p", "172.18.0.3", "node-1"), ztunnel_pod("ztunnel-l8c4d", "172.18.0.4", "node-2")]
write(B, "pods.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}, indent=2) + "\n")
write(B, "resources/default/namespace.yaml", yaml_docs([namespace("default", {"istio.io/dataplane-mode": "ambient"})]))
write(B, "resources/default/services.yaml", yaml_docs([service("default", "echo", "10.96.88.17", 80, {"app": "echo"})]))
write(B, "resources/default/networkpolicies.yaml", yaml_docs([{
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "echo-ingress", "namespace": "default"},
    "spec": {"podSelector": {"matchLabels": {"app": "echo"}}, "policyTypes": ["Ingress"],
             "ingress": [{"ports": [{"port": 80, "protocol": "TCP"}]}]}}]))
blocked = conn("10.244.0.9:58592", "shell-56bd5dbdbf-gz6cq", "default", "default", "10.244.0.10:15008", "10.244.0.10:80", "echo.default.svc.cluster.local", "echo-66d88ff694-pnk6h", "default", "default", "outbound", 0, 0, 10002)
write(B, "logs/istio-system/ztunnel-x5v2p/istio-proxy.log", "\n".join([
    zline("2024-07-26T17:18:00.953004Z", "error", blocked, "connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008: deadline has elapsed"),
]) + "\n")
write(B, "logs/istio-system/ztunnel-l8c4d/istio-proxy.log",
      "2024-07-26T17:17:02.004410Z\tinfo\txds{id=1}\tdelta ADS: received Workload: 9 resources\n")
manifest(B, "shell (node-1) → echo (node-2); echo's NetworkPolicy admits only port 80, so the HBONE tunnel on 15008 never opens.")

# ---------------------------------------------------------------- ambient-waypoint-bypass
B = "ambient-waypoint-bypass"
wp_labels = {"gateway.istio.io/managed": "istio.io-mesh-controller",
             "gateway.networking.k8s.io/gateway-name": "waypoint",
             "gateway.networking.k8s.io/gateway-class-name": "istio-waypoint"}
pods = [pod("bookinfo", "productpage-v1-87d54dd59-c7jts", "10.244.0.101", {"app": "productpage", "version": "v1"}, "bookinfo-productpage", node="node-1"),
        pod("bookinfo", "waypoint-5cb6c6977c-ln2h5", "10.244.0.105", wp_labels, "waypoint", containers=("istio-proxy",), node="node-1"),
        pod("bookinfo", "reviews-v2-6f9b55c5db-7nxdq", "10.244.0.114", {"app": "reviews", "version": "v2"}, "bookinfo-reviews", node="node-2"),
        ztunnel_pod("ztunnel-7rq2w", "172.18.0.3", "node-1"), ztunnel_pod("ztunnel-m4s9t", "172.18.0.4", "node-2")]
write(B, "pods.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}, indent=2) + "\n")
write(B, "resources/bookinfo/namespace.yaml", yaml_docs([namespace("bookinfo", {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint"})]))
write(B, "resources/bookinfo/services.yaml", yaml_docs([service("bookinfo", "reviews", "10.109.78.110", 9080, {"app": "reviews"}),
                                                         service("bookinfo", "productpage", "10.102.76.216", 9080, {"app": "productpage"})]))
write(B, "resources/bookinfo/waypoint.yaml", yaml_docs([{
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
    "metadata": {"name": "waypoint", "namespace": "bookinfo", "labels": {"istio.io/waypoint-for": "service"}},
    "spec": {"gatewayClassName": "istio-waypoint",
             "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}}]))
write(B, "resources/bookinfo/authorizationpolicies.yaml", yaml_docs([{
    "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
    "metadata": {"name": "reviews-only-via-waypoint", "namespace": "bookinfo"},
    "spec": {"selector": {"matchLabels": {"app": "reviews"}}, "action": "ALLOW",
             "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/bookinfo/sa/waypoint"]}}]}]}}]))
via_out = conn("10.244.0.101:36754", "productpage-v1-87d54dd59-c7jts", "bookinfo", "bookinfo-productpage", "10.244.0.105:15008", "10.109.78.110:9080", "reviews.bookinfo.svc.cluster.local", "waypoint-5cb6c6977c-ln2h5", "bookinfo", "waypoint", "outbound", 296, 696, 5)
via_in = conn("10.244.0.105:43712", "waypoint-5cb6c6977c-ln2h5", "bookinfo", "waypoint", "10.244.0.114:15008", "10.244.0.114:9080", "reviews.bookinfo.svc.cluster.local", "reviews-v2-6f9b55c5db-7nxdq", "bookinfo", "bookinfo-reviews", "inbound", 612, 380, 3)
byp_out = conn("10.244.0.101:51906", "productpage-v1-87d54dd59-c7jts", "bookinfo", "bookinfo-productpage", "10.244.0.114:15008", "10.244.0.114:9080", "reviews.bookinfo.svc.cluster.local", "reviews-v2-6f9b55c5db-7nxdq", "bookinfo", "bookinfo-reviews", "outbound", 0, 0, 1)
byp_in = conn("10.244.0.101:49084", "productpage-v1-87d54dd59-c7jts", "bookinfo", "bookinfo-productpage", "10.244.0.114:15008", "10.244.0.114:9080", "reviews.bookinfo.svc.cluster.local", "reviews-v2-6f9b55c5db-7nxdq", "bookinfo", "bookinfo-reviews", "inbound", 0, 0, 0)
write(B, "logs/istio-system/ztunnel-7rq2w/istio-proxy.log", "\n".join([
    zline("2024-07-02T13:41:03.676150Z", "info", via_out),
    zline("2024-07-02T13:41:09.208311Z", "error", byp_out, "http status: 401 Unauthorized"),
]) + "\n")
write(B, "logs/istio-system/ztunnel-m4s9t/istio-proxy.log", "\n".join([
    zline("2024-07-02T13:41:03.675420Z", "info", via_in),
    zline("2024-07-02T13:41:09.207902Z", "error", byp_in, "connection closed due to policy rejection: allow policies exist, but none allowed"),
]) + "\n")
write(B, "logs/bookinfo/waypoint-5cb6c6977c-ln2h5/istio-proxy.log",
      '[2024-07-02T13:41:03.672Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 358 3 3 "-" "Go-http-client/1.1" '
      '"e615c813-c295-9960-b327-a30483a5a57d" "reviews:9080" "envoy://connect_originate/10.244.0.114:9080" '
      'inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local envoy://internal_client_address/ 10.109.78.110:9080 '
      '10.244.0.101:36754 - default\n')
manifest(B, "productpage → reviews: once through the namespace's waypoint (request e615c813-…), once straight to the reviews pod IP (bypass), refused by reviews' ztunnel whose ALLOW policy admits only the waypoint.")

# ---------------------------------------------------------------- inference-epp-unreachable
B = "inference-epp-unreachable"
RID = "5b0c8f3e-7d1a-4e2b-9c6f-1a2b3c4d5e6f"
pods = [pod("default", "inference-gateway-istio-7c9d8f6b5-qx2lm", "10.244.0.21",
            {"gateway.networking.k8s.io/gateway-name": "inference-gateway",
             "gateway.networking.k8s.io/gateway-class-name": "istio"}, "inference-gateway-istio",
            containers=("istio-proxy",)),
        pod("default", "qwen-vllm-6d5f7c8b9-m2k4p", "10.244.1.31", {"app": "qwen-vllm"}, containers=("vllm",))]
write(B, "pods.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}, indent=2) + "\n")
write(B, "resources/default/services.yaml", yaml_docs([
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "qwen-pool-epp", "namespace": "default"},
     "spec": {"type": "ClusterIP", "clusterIP": "10.96.41.7", "clusterIPs": ["10.96.41.7"],
              "selector": {"app": "qwen-pool-epp"},
              "ports": [{"name": "grpc-ext-proc", "port": 9002, "targetPort": 9002, "protocol": "TCP", "appProtocol": "http2"}]}}]))
write(B, "resources/default/inference.yaml", yaml_docs([
    {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
     "metadata": {"name": "qwen-pool", "namespace": "default"},
     "spec": {"selector": {"matchLabels": {"app": "qwen-vllm"}}, "targetPorts": [{"number": 8000}],
              "endpointPickerRef": {"name": "qwen-pool-epp", "port": {"number": 9002}, "failureMode": "FailClose"}}},
    {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
     "metadata": {"name": "qwen-route", "namespace": "default"},
     "spec": {"parentRefs": [{"name": "inference-gateway"}],
              "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                         "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "qwen-pool"}],
                         "timeouts": {"request": "60s"}}]}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "qwen-pool-epp", "namespace": "default"},
     "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "qwen-pool-epp"}}},
     "status": {"replicas": 0, "availableReplicas": 0}}]))
write(B, "logs/default/inference-gateway-istio-7c9d8f6b5-qx2lm/istio-proxy.log",
      '[2026-03-23T09:14:02.118Z] "POST /v1/completions HTTP/1.1" 500 - ext_proc_error_gRPC_error_14 - "-" 112 0 3 - "-" '
      f'"curl/8.5.0" "{RID}" "10.244.0.21" "-" - - 10.244.0.21:80 10.244.0.1:51234 - -\n')
manifest(B, "Istio Gateway API gateway → InferencePool qwen-pool; the endpoint picker Deployment is scaled to zero, so the gateway's ext_proc call fails with gRPC 14 and it answers 500.")
