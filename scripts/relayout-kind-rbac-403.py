"""Re-lay testdata/bundles/kind-rbac-403 as istioctl bug-report (bugreport-rbac-403) and as an
OpenShift Service Mesh must-gather (must-gather-ossm-403): same objects and log lines, each file
where the real tool writes it (see the READMEs of both bundles). Run from anywhere:
python3 scripts/relayout-kind-rbac-403.py (needs PyYAML)."""
import json, os, re, shutil, yaml, datetime

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "testdata", "bundles", "kind-rbac-403")
OUT = os.path.join(HERE, "..", "testdata", "bundles")

def load_objects():
    pods = json.load(open(f"{SRC}/pods.json"))["items"]
    objs = []
    for root, _, files in os.walk(f"{SRC}/resources"):
        for f in sorted(files):
            for d in yaml.safe_load_all(open(os.path.join(root, f))):
                if d:
                    objs.append(d)
    return pods, objs

pods, objs = load_objects()
core_kinds = {"Service", "Endpoints", "ConfigMap", "Namespace", "Pod", "Event"}
istio_cm = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "istio", "namespace": "istio-system",
                 "labels": {"app": "istio", "istio.io/rev": "default", "release": "istio"}},
    "data": {"mesh": "accessLogFile: /dev/stdout\ndefaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n  tracing:\n    zipkin:\n      address: zipkin.istio-system:9411\nenablePrometheusMerge: true\nrootNamespace: istio-system\ntrustDomain: cluster.local\n",
             "meshNetworks": "networks: {}"},
}
namespaces = [{"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}},
               "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
              for n in ["default", "istio-system", "knative-serving"]]
core = [o for o in objs if o["kind"] in core_kinds]
crs = [o for o in objs if o["kind"] not in core_kinds]

def dump_list(items):
    return yaml.safe_dump({"apiVersion": "v1", "items": items, "kind": "List",
                           "metadata": {"resourceVersion": ""}}, sort_keys=False, width=1000)

def logs_of(ns, pod):
    p = f"{SRC}/logs/{ns}/{pod}/istio-proxy.log"
    return open(p).read() if os.path.exists(p) else None

# ---------- istioctl bug-report ----------
br = f"{OUT}/bugreport-rbac-403"
root = f"{br}/bug-report"
shutil.rmtree(root, ignore_errors=True)  # (the README beside it stays)
def w(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write(text)
w(f"{root}/cluster/k8s-resources", dump_list(namespaces + pods + core + [istio_cm]))
w(f"{root}/cluster/crs", dump_list(crs))
w(f"{root}/cluster/secrets",
  "NAMESPACE         NAME                          TYPE                 DATA   AGE\n"
  "istio-system      istio-ca-secret               istio.io/ca-root     5      2d\n")
w(f"{root}/cluster/events",
  "NAMESPACE   LAST SEEN   TYPE     REASON    OBJECT                                                        SUBOBJECT   SOURCE   MESSAGE\n"
  "default     4m          Normal   Created   pod/bert-model-predictor-00001-deployment-7d8c9b5f4-lq8zt   spec.containers{kserve-container}   kubelet, kind-control-plane   Created container kserve-container\n")
w(f"{root}/cluster/cluster-context", "kind-kind\nhttps://127.0.0.1:40129\n")
w(f"{root}/versions", "CLI version: 1.20.3\n\nThe following Istio control plane revisions/versions were found in the cluster:\nRevision default:\n&version.MeshInfo{\n    {\n        Component: \"pilot\",\n        Info:      version.BuildInfo{Version:\"1.20.3\"},\n    },\n}\n")
for p in pods:
    ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
    if not any(c["name"] == "istio-proxy" for c in p["spec"]["containers"]):
        continue
    text = logs_of(ns, name)
    d = f"{root}/proxies/{ns}/{name}"
    w(f"{d}/istio-proxy.log", text if text is not None else "")
    # /clusters (text) and netstat as istioctl writes them; meshtrace does not read them.
    w(f"{d}/clusters", "outbound|80||knative-local-gateway.istio-system.svc.cluster.local::observability_name::outbound|80||knative-local-gateway.istio-system.svc.cluster.local\noutbound|80||knative-local-gateway.istio-system.svc.cluster.local::10.244.0.9:8081::health_flags::healthy\n")
    w(f"{d}/netstat", "Active Internet connections (servers and established)\nProto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name\ntcp        0      0 0.0.0.0:15021           0.0.0.0:*               LISTEN      -\n")
w(f"{root}/istio/istio-system/istiod-7d4885fc54-8jtbd/discovery.log",
  "2024-04-25T20:11:05.270370Z\tinfo\tads\tADS: new connection for node:istio-ingressgateway-5c7d8b7f9-x2k4p.istio-system-1\n")

# ---------- OSSM must-gather ----------
mg = f"{OUT}/must-gather-ossm-403"
shutil.rmtree(f"{mg}/must-gather.local.5526120966283337337", ignore_errors=True)
top = f"{mg}/must-gather.local.5526120966283337337/quay-io-maistra-istio-must-gather-sha256-5f3e9a0d1c2b"
w(f"{top}/timestamp", "2024-04-25 20:23:02.41 +0000 UTC m=+0.047\n2024-04-25 20:24:40.95 +0000 UTC m=+98.590\n")
w(f"{top}/version", "openshift-service-mesh/must-gather\n2.5.2\n")

RES = {"Service": ("core", "services"), "Endpoints": ("core", "endpoints"),
       "ConfigMap": ("core", "configmaps"), "Pod": ("core", "pods"),
       "Gateway": ("networking.istio.io", "gateways"),
       "VirtualService": ("networking.istio.io", "virtualservices"),
       "AuthorizationPolicy": ("security.istio.io", "authorizationpolicies"),
       "InferenceService": ("serving.kserve.io", "inferenceservices")}
LISTKIND = {"Service": "ServiceList", "Endpoints": "EndpointsList", "ConfigMap": "ConfigMapList",
            "Pod": "PodList"}
by = {}
for o in pods + objs + [istio_cm]:
    by.setdefault((o["metadata"]["namespace"], o["kind"]), []).append(o)
# Lists for `ns/<x>` inspections (core kinds and the Istio kinds of the namespace), single
# objects for the CRD inspections - the two shapes oc adm inspect writes.
single = {"AuthorizationPolicy", "InferenceService"}
for (ns, kind), items in sorted(by.items()):
    group, res = RES[kind]
    if kind in single:
        for o in items:
            w(f"{top}/namespaces/{ns}/{group}/{res}/{o['metadata']['name']}.yaml",
              yaml.safe_dump(o, sort_keys=False, width=1000))
    elif kind == "Service" and ns == "default":
        for o in items:
            w(f"{top}/namespaces/{ns}/core/services/{o['metadata']['name']}.yaml",
              yaml.safe_dump(o, sort_keys=False, width=1000))
    else:
        av = "v1" if group == "core" else f"{group}/{items[0]['apiVersion'].split('/')[-1]}"
        w(f"{top}/namespaces/{ns}/{group}/{res}.yaml",
          yaml.safe_dump({"apiVersion": av, "items": items,
                          "kind": LISTKIND.get(kind, kind + "List"),
                          "metadata": {"resourceVersion": "48213"}}, sort_keys=False, width=1000))
for n in namespaces:
    w(f"{top}/namespaces/{n['metadata']['name']}/{n['metadata']['name']}.yaml",
      yaml.safe_dump(n, sort_keys=False, width=1000))
w(f"{top}/namespaces/default/core/secrets.yaml",
  "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: storage-config\n    namespace: default\n  type: Opaque\nkind: SecretList\nmetadata:\n  resourceVersion: \"48213\"\n")

TIME = re.compile(r"^\[?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\]?")
def timestamped(text):
    out = []
    for line in text.splitlines():
        m = TIME.match(line)
        t = datetime.datetime.fromisoformat(m.group(1)) if m else None
        # kubelet's own time: when the line was written (after the request for access logs).
        dur = re.search(r'" \d+ \d+ (\d+) ', line)
        if t and dur:
            t += datetime.timedelta(milliseconds=int(dur.group(1)) + 1)
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "417Z" if t else "2024-04-25T20:23:00.000000000Z"
        out.append(f"{stamp} {line}")
    return "\n".join(out) + "\n"

for p in pods:
    ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
    d = f"{top}/namespaces/{ns}/pods/{name}"
    w(f"{d}/{name}.yaml", yaml.safe_dump(p, sort_keys=False, width=1000))
    for c in p["spec"]["containers"]:
        text = logs_of(ns, name) if c["name"] == "istio-proxy" else None
        if text is None:
            text = ""
        w(f"{d}/{c['name']}/{c['name']}/logs/current.log", timestamped(text) if text.strip() and c["name"] == "istio-proxy" else text)
        w(f"{d}/{c['name']}/{c['name']}/logs/previous.log", "")
    if any(c["name"] == "istio-proxy" for c in p["spec"]["containers"]):
        w(f"{d}/proxy_stats", "cluster_manager.cds.update_success: 4\n")
w(f"{top}/namespaces/istio-system/controlplane/synchronization",
  '[{"cluster_id":"Kubernetes","proxy":"istio-ingressgateway-5c7d8b7f9-x2k4p.istio-system"}]\n')
w(f"{top}/cluster-scoped-resources/apiextensions.k8s.io/customresourcedefinitions/authorizationpolicies.security.istio.io.yaml",
  "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: authorizationpolicies.security.istio.io\nspec:\n  group: security.istio.io\n")
print("ok")
