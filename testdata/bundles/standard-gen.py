#!/usr/bin/env python3
"""Writes the KServe Standard-mode example bundles (kserve-standard-*): objects shaped as Open Data
Hub's KServe and odh-model-controller create them, logs of containers that write no access log,
and the `curl -v` transcript the user pasted. Sources: each bundle's README.md.

    python3 testdata/bundles/standard-gen.py        # rewrites the bundles next to this script
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "aiproject"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def dump(path, obj):
    write(path, json.dumps(obj, indent=2) + "\n")


def isvc(name, timeout=None):
    ann = {
        "serving.kserve.io/deploymentMode": "RawDeployment",
        "security.opendatahub.io/enable-auth": "true",
        "openshift.io/display-name": name,
    }
    spec = {
        "predictor": {
            "model": {
                "modelFormat": {"name": "vLLM"},
                "runtime": f"{name}-runtime",
                "storageUri": "oci://registry.redhat.io/rhelai1/modelcar-granite-3-1-8b-instruct:1.5",
            }
        }
    }
    if timeout is not None:
        spec["predictor"]["timeout"] = timeout
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": NS,
            "annotations": ann,
            "labels": {"networking.kserve.io/visibility": "exposed", "opendatahub.io/dashboard": "true"},
        },
        "spec": spec,
        "status": {
            "deploymentMode": "RawDeployment",
            "url": f"https://{name}-{NS}.apps.rhoai.example.com",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def proxy_container(upstream_timeout=None):
    # Open Data Hub's KServe (pkg/controller/v1beta1/inferenceservice/reconcilers/deployment,
    # generateOauthProxyContainer): the kube-rbac-proxy sidecar and its flags.
    args = [
        "--secure-listen-address=:8443",
        "--proxy-endpoints-port=8643",
        "--upstream=http://localhost:8080",
        "--auth-header-fields-enabled=true",
        "--tls-cert-file=/etc/tls/private/tls.crt",
        "--tls-private-key-file=/etc/tls/private/tls.key",
        "--config-file=/etc/kube-rbac-proxy/config-file.yaml",
        "--v=4",
    ]
    if upstream_timeout:
        args.append(f"--upstream-timeout={upstream_timeout}")
    return {
        "name": "kube-rbac-proxy",
        "image": "registry.redhat.io/rhoai/odh-kube-auth-proxy-rhel9@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "args": args,
        "ports": [{"containerPort": 8443, "name": "https"}, {"containerPort": 8643, "name": "proxy"}],
    }


def pod_spec(name, upstream_timeout=None):
    return {
        "serviceAccountName": "default",
        "automountServiceAccountToken": True,
        "containers": [
            {
                "name": "kserve-container",
                "image": "registry.redhat.io/rhaiis/vllm-cuda-rhel9@sha256:1111111111111111111111111111111111111111111111111111111111111111",
                "args": ["--port=8080", "--model=/mnt/models", f"--served-model-name={name}"],
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
            },
            proxy_container(upstream_timeout),
        ],
        "volumes": [
            {"name": "proxy-tls", "secret": {"secretName": f"{name}-predictor-serving-cert"}},
            {"name": f"{name}-kube-rbac-proxy-sar-config", "configMap": {"name": f"{name}-kube-rbac-proxy-sar-config"}},
        ],
    }


def labels(name):
    return {
        "app": f"isvc.{name}-predictor",
        "component": "predictor",
        "serving.kserve.io/inferenceservice": name,
    }


def pod(name, podname, ip, upstream_timeout=None):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": podname,
            "namespace": NS,
            "labels": {**labels(name), "pod-template-hash": podname.split("-")[-2]},
            "annotations": {"service.beta.openshift.io/serving-cert-secret-name": f"{name}-predictor-serving-cert"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "-".join(podname.split("-")[:-1]), "controller": True}],
        },
        "spec": {**pod_spec(name, upstream_timeout), "nodeName": "worker-1"},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "kserve-container", "ready": True, "restartCount": 0},
                {"name": "kube-rbac-proxy", "ready": True, "restartCount": 0},
            ],
        },
    }


def resources(name, cluster_ip, route_timeout, upstream_timeout=None):
    docs = [
        isvc(name),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"{name}-predictor", "namespace": NS, "labels": labels(name)},
            "spec": {
                "selector": {"matchLabels": {"app": f"isvc.{name}-predictor"}},
                "template": {"metadata": {"labels": labels(name)}, "spec": pod_spec(name, upstream_timeout)},
            },
        },
        {
            # KServe RawDeployment Service; with auth the http port is replaced by https 8443
            # (opendatahub-io/kserve#419).
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": f"{name}-predictor",
                "namespace": NS,
                "labels": labels(name),
                "annotations": {"service.beta.openshift.io/serving-cert-secret-name": f"{name}-predictor-serving-cert"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": cluster_ip,
                "clusterIPs": [cluster_ip],
                "selector": {"app": f"isvc.{name}-predictor"},
                "ports": [{"name": "https", "port": 8443, "targetPort": 8443, "protocol": "TCP"}],
            },
        },
        {
            # odh-model-controller's KserveRawRouteReconciler: named after the InferenceService,
            # reencrypt + Redirect when auth is on, target port `https`, the timeout annotation
            # (30 s per component unless the InferenceService sets it).
            "apiVersion": "route.openshift.io/v1",
            "kind": "Route",
            "metadata": {
                "name": name,
                "namespace": NS,
                "labels": {"inferenceservice-name": name},
                "annotations": {"haproxy.router.openshift.io/timeout": route_timeout},
            },
            "spec": {
                "host": f"{name}-{NS}.apps.rhoai.example.com",
                "to": {"kind": "Service", "name": f"{name}-predictor", "weight": 100},
                "port": {"targetPort": "https"},
                "tls": {"termination": "reencrypt", "insecureEdgeTerminationPolicy": "Redirect"},
                "wildcardPolicy": "None",
            },
            "status": {
                "ingress": [
                    {
                        "host": f"{name}-{NS}.apps.rhoai.example.com",
                        "routerName": "default",
                        "conditions": [{"type": "Admitted", "status": "True"}],
                    }
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-kube-rbac-proxy-sar-config", "namespace": NS},
            "data": {
                "config-file.yaml": (
                    "authorization:\n  resourceAttributes:\n"
                    f"    namespace: \"{NS}\"\n    apiGroup: \"serving.kserve.io\"\n"
                    "    apiVersion: \"v1beta1\"\n    resource: \"inferenceservices\"\n"
                    f"    name: \"{name}\"\n    verb: \"get\""
                )
            },
            "immutable": True,
        },
    ]
    return {"apiVersion": "v1", "kind": "List", "items": docs}


def manifest(notes):
    return {
        "version": 1,
        "collected_at": "2026-12-03T10:20:00Z",
        "collector": "hand-made from documented behaviour (see README.md; testdata/bundles/standard-gen.py)",
        "cluster": "OpenShift 4.19, OpenShift AI 3.0 (KServe Standard mode, no service mesh)",
        "log_formats": {"default": "auto"},
        "notes": notes,
    }


def rbac_403():
    b = os.path.join(HERE, "kserve-standard-rbac-proxy-403")
    name, podname, ip = "granite", "granite-predictor-6b8d9c7f5-x2k9p", "10.131.0.37"
    dump(os.path.join(b, "meshtrace-bundle.json"), manifest(
        "A pipeline's ServiceAccount calls the granite model through its Route; kube-rbac-proxy's "
        "SubjectAccessReview (get inferenceservices/granite) is denied and it answers 403. No proxy "
        "on this path writes an access log."))
    dump(os.path.join(b, "pods.json"), {"apiVersion": "v1", "kind": "List", "items": [pod(name, podname, ip)]})
    dump(os.path.join(b, "resources", NS, "granite.json"), resources(name, "172.30.119.40", "30s"))
    write(os.path.join(b, "logs", NS, podname, "kube-rbac-proxy.log"),
          "I1203 10:02:11.512074       1 main.go:366] Starting TCP socket on :8443\n"
          "I1203 10:02:11.512209       1 main.go:373] Listening securely on :8443\n"
          "I1203 10:15:02.418223       1 auth.go:117] Forbidden (user=system:serviceaccount:aiproject:pipeline-runner-dspa, verb=get, resource=inferenceservices, subresource=). Reason: \"\".\n")
    write(os.path.join(b, "logs", NS, podname, "kserve-container.log"),
          "INFO 12-03 10:03:40 [api_server.py:1351] Starting vLLM API server 0 on http://0.0.0.0:8080\n"
          "INFO:     Started server process [1]\n"
          "INFO:     Waiting for application startup.\n"
          "INFO:     Application startup complete.\n"
          "INFO:     127.0.0.1:45122 - \"POST /v1/completions HTTP/1.1\" 200 OK\n")
    write(os.path.join(HERE, "..", "curl", os.path.basename(b) + ".txt"),
          "$ curl -v -H \"Authorization: Bearer $TOKEN\" https://granite-aiproject.apps.rhoai.example.com/v1/completions -H 'Content-Type: application/json' -d '{\"model\": \"granite\", \"prompt\": \"Hello\"}'\n"
          "*   Trying 10.0.140.21:443...\n"
          "* Connected to granite-aiproject.apps.rhoai.example.com (10.0.140.21) port 443 (#0)\n"
          "* SSL connection using TLSv1.3 / TLS_AES_128_GCM_SHA256\n"
          "> POST /v1/completions HTTP/1.1\n"
          "> Host: granite-aiproject.apps.rhoai.example.com\n"
          "> User-Agent: curl/7.76.1\n"
          "> Accept: */*\n"
          "> Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IlJFREFDVEVEIn0.REDACTED.REDACTED\n"
          "> Content-Type: application/json\n"
          "> Content-Length: 40\n"
          ">\n"
          "< HTTP/1.1 403 Forbidden\n"
          "< content-type: text/plain; charset=utf-8\n"
          "< x-content-type-options: nosniff\n"
          "< date: Thu, 03 Dec 2026 10:15:02 GMT\n"
          "< content-length: 114\n"
          "< set-cookie: 5c3a1f0e8b7d6c4a2e9f1b3d5a7c9e0f=0f1e2d3c4b5a69788796a5b4c3d2e1f0; path=/; HttpOnly; Secure; SameSite=None\n"
          "<\n"
          "Forbidden (user=system:serviceaccount:aiproject:pipeline-runner-dspa, verb=get, resource=inferenceservices, subresource=)\n"
          "* Connection #0 to host granite-aiproject.apps.rhoai.example.com left intact\n")


def router_504():
    b = os.path.join(HERE, "kserve-standard-router-504")
    name, podname, ip = "granite", "granite-predictor-7c4f8d9b6-q8w2n", "10.128.2.44"
    dump(os.path.join(b, "meshtrace-bundle.json"), manifest(
        "A long completion through the granite model's Route: the OpenShift router gives up after "
        "the Route's 30s timeout and answers 504, while the model is still generating. "
        "No proxy on this path writes an access log."))
    dump(os.path.join(b, "pods.json"), {"apiVersion": "v1", "kind": "List", "items": [pod(name, podname, ip, "600s")]})
    dump(os.path.join(b, "resources", NS, "granite.json"), resources(name, "172.30.88.12", "30s", "600s"))
    write(os.path.join(b, "logs", NS, podname, "kube-rbac-proxy.log"),
          "I1203 09:58:20.100413       1 main.go:366] Starting TCP socket on :8443\n"
          "I1203 09:58:20.100612       1 main.go:373] Listening securely on :8443\n")
    write(os.path.join(b, "logs", NS, podname, "kserve-container.log"),
          "INFO 12-03 09:59:02 [api_server.py:1351] Starting vLLM API server 0 on http://0.0.0.0:8080\n"
          "INFO:     Application startup complete.\n"
          "INFO 12-03 10:11:05 [logger.py:43] Received request cmpl-6f0c2a9e1b7d4c3e8a5f2b1d0e9c8a7b-0: prompt: 'Summarise the attached contract', params: SamplingParams(n=1, max_tokens=4096), prompt_token_ids: None, lora_request: None.\n"
          "INFO:     127.0.0.1:52344 - \"POST /v1/completions HTTP/1.1\" 200 OK\n")
    write(os.path.join(HERE, "..", "curl", os.path.basename(b) + ".txt"),
          "$ time curl -v -H \"Authorization: Bearer $TOKEN\" https://granite-aiproject.apps.rhoai.example.com/v1/completions -H 'Content-Type: application/json' -d @long-prompt.json\n"
          "*   Trying 10.0.140.21:443...\n"
          "* Connected to granite-aiproject.apps.rhoai.example.com (10.0.140.21) port 443 (#0)\n"
          "> POST /v1/completions HTTP/1.1\n"
          "> Host: granite-aiproject.apps.rhoai.example.com\n"
          "> User-Agent: curl/7.76.1\n"
          "> Accept: */*\n"
          "> Authorization: Bearer sha256~REDACTED\n"
          "> Content-Type: application/json\n"
          "> Content-Length: 18342\n"
          ">\n"
          "* Mark bundle as not supporting multiuse\n"
          "< HTTP/1.1 504 Gateway Time-out\n"
          "< content-length: 92\n"
          "< cache-control: no-cache\n"
          "< content-type: text/html\n"
          "<\n"
          "<html><body><h1>504 Gateway Time-out</h1>\n"
          "The server didn't respond in time.\n"
          "</body></html>\n"
          "* Connection #0 to host granite-aiproject.apps.rhoai.example.com left intact\n"
          "\n"
          "real\t0m30.214s\n")


if __name__ == "__main__":
    rbac_403()
    router_504()
