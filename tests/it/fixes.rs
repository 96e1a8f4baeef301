//! Fixes as ready-to-apply YAML (`fix_apply` in `trace`/`report` JSON, a ```yaml block in the
//! Markdown report, the YAML after `Fix:` in the table): on the example bundles, the YAML parses,
//! names the right objects, and — for RBAC — the added rule admits the request by Istio's rules
//! (`meshtrace_analysis::authz`).

use crate::common;
use common::run_in_repo as run;

use std::path::Path;

use serde_json::{Value, json};

fn trace_json(start: &str, bundle: &str) -> Value {
    let (code, out, err) = run(&["trace", start, "--bundle", bundle, "-o", "json"]);
    assert_eq!(code, 1, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// The YAML stream's documents, checked to be the same objects as `apply`.
fn documents(fix: &Value) -> Vec<Value> {
    let yaml = fix["yaml"].as_str().unwrap();
    let docs: Vec<Value> = yaml
        .split("---\n")
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    assert_eq!(&Value::from(docs.clone()), &fix["apply"], "{yaml}");
    docs
}

fn reference(doc: &Value) -> String {
    format!(
        "{}/{}/{}",
        doc["kind"].as_str().unwrap(),
        doc["metadata"]["namespace"].as_str().unwrap(),
        doc["metadata"]["name"].as_str().unwrap()
    )
}

#[test]
fn out_of_mesh_client_gets_the_http_gateway_pattern() {
    let t = trace_json(
        "10.134.1.22:48216",
        "testdata/bundles/odh-out-of-mesh-client",
    );
    let fix = &t["fix_apply"];
    let docs = documents(fix);
    let refs: Vec<String> = docs.iter().map(reference).collect();
    assert_eq!(
        refs,
        [
            "Gateway/aiproject/knative-http-gateway",
            "Service/aiproject/test-http",
            "VirtualService/aiproject/test-http-gateway"
        ]
    );
    // The HTTP server selects the same gateway pods as knative-local-gateway, on the container
    // port istio-ingressgateway's port 80 targets.
    assert_eq!(
        docs[0]["spec"]["selector"],
        json!({"knative": "ingressgateway"})
    );
    assert_eq!(
        docs[0]["spec"]["servers"][0],
        json!({"hosts": ["*.aiproject.svc.cluster.local"],
               "port": {"name": "http", "number": 8080, "protocol": "HTTP"}})
    );
    assert_eq!(
        docs[1]["spec"],
        json!({"type": "ExternalName",
               "externalName": "istio-ingressgateway.istio-system.svc.cluster.local"})
    );
    let vs = &docs[2]["spec"];
    assert_eq!(vs["gateways"], json!(["aiproject/knative-http-gateway"]));
    assert_eq!(
        vs["hosts"],
        json!(["test-http.aiproject.svc.cluster.local"])
    );
    assert_eq!(
        vs["http"][0],
        json!({"headers": {"request": {"set": {"Host": "test-predictor.aiproject.svc.cluster.local"}}},
               "route": [{"destination": {"host": "test-predictor.aiproject.svc.cluster.local",
                                          "port": {"number": 80}}}]})
    );
    let summary = fix["summary"].as_str().unwrap();
    assert!(
        summary.contains("http://test-http.aiproject.svc.cluster.local"),
        "{summary}"
    );
    // The text fix is still a plain string.
    assert!(t["fix"].as_str().unwrap().contains("plaintext"));
}

/// The denied request's facts as the authorization evaluation reads them.
fn seed003_facts() -> meshtrace_analysis::authz::RequestFacts {
    let log = std::fs::read_to_string(
        "testdata/bundles/kind-rbac-403/logs/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log",
    )
    .unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("211ebf7c-1bc2-4008-aa50-9730fa6300dc"))
        .unwrap();
    let line = line
        .split_once(' ')
        .map(|(_, l)| l)
        .filter(|l| l.starts_with('['))
        .unwrap_or(line);
    let rec = match meshtrace_parsers::detect::LineParser::auto().parse(line) {
        meshtrace_parsers::detect::LineOutcome::Record(r) => r.into_owned(),
        other => panic!("{other:?}"),
    };
    meshtrace_analysis::authz::RequestFacts::of(&rec, None)
}

#[test]
fn rbac_none_gets_a_rule_that_admits_the_request() {
    let facts = seed003_facts();
    assert_eq!(
        facts.path.as_deref(),
        Some("/v1/models/bert-emotion-model:predict")
    );
    for bundle in [
        "testdata/bundles/kind-rbac-403",
        "testdata/bundles/bugreport-rbac-403",
        "testdata/bundles/must-gather-ossm-403",
    ] {
        let t = trace_json("211ebf7c-1bc2-4008-aa50-9730fa6300dc", bundle);
        let fix = &t["fix_apply"];
        let docs = documents(fix);
        assert_eq!(docs.len(), 1, "{bundle}");
        let p = &docs[0];
        assert_eq!(
            reference(p),
            "AuthorizationPolicy/istio-system/allow-with-header",
            "{bundle}"
        );
        assert_eq!(p["apiVersion"], "security.istio.io/v1");
        // The policy as it is (selector, its rule), one rule added.
        assert_eq!(
            p["spec"]["selector"],
            json!({"matchLabels": {"app": "istio-ingressgateway"}})
        );
        let rules = p["spec"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2, "{bundle}");
        assert_eq!(
            rules[0]["when"][0]["key"], "request.headers[X-Test]",
            "{bundle}"
        );
        use meshtrace_analysis::authz::{Check, check_rule};
        // The original rule cannot be decided from the log (the header is not logged); the
        // added one admits this request, and only it.
        assert!(matches!(
            check_rule(&rules[0], &facts),
            Check::CannotTell(_)
        ));
        assert_eq!(check_rule(&rules[1], &facts), Check::Match, "{bundle}");
        let mut other = facts.clone();
        other.path = Some("/v1/models/other:predict".into());
        assert!(matches!(check_rule(&rules[1], &other), Check::Fail(_)));
        // The header is the likelier fix, and the summary says so first.
        let summary = fix["summary"].as_str().unwrap();
        assert!(
            summary.contains("rule 0 requires when[request.headers[X-Test]]")
                && summary.contains("prefer sending that"),
            "{summary}"
        );
    }
}

#[test]
fn table_and_markdown_print_the_yaml() {
    let (_, table, _) = run(&[
        "trace",
        "211ebf7c-1bc2-4008-aa50-9730fa6300dc",
        "--bundle",
        "testdata/bundles/kind-rbac-403",
    ]);
    let at = table.find("To apply (`kubectl apply -f -`)").unwrap();
    let yaml: String = table[at..]
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let doc: Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(doc["kind"], "AuthorizationPolicy");

    let (code, md, err) = run(&[
        "report",
        "10.134.1.22:48216",
        "--bundle",
        "testdata/bundles/odh-out-of-mesh-client",
    ]);
    assert_eq!(code, 1, "{err}");
    let fix = &md[md.find("## Fix").unwrap()..];
    let start = fix.find("```yaml\n").unwrap() + "```yaml\n".len();
    let end = start + fix[start..].find("\n```").unwrap();
    let docs: Vec<Value> = fix[start..end]
        .split("---\n")
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[1]["metadata"]["name"], "test-http");

    // `report -o json` carries the same object under the trace.
    let (_, out, _) = run(&[
        "report",
        "10.134.1.22:48216",
        "--bundle",
        "testdata/bundles/odh-out-of-mesh-client",
        "-o",
        "json",
    ]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(documents(&r["trace"]["fix_apply"]).len(), 3);
}

/// A bundle in `dir`: a client pod with a sidecar calling `httpbin.legacy`, whose pod has none,
/// through Istio's `*.cluster.local` ISTIO_MUTUAL default; `line` is the client sidecar's line.
fn non_mesh_bundle(dir: &Path, line: &str) {
    let w = |p: &str, s: &str| {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    w(
        "meshtrace-bundle.json",
        r#"{"version": 1, "collected_at": "2024-05-01T10:01:00Z", "collector": "test", "log_formats": {"default": "auto"}}"#,
    );
    let pod = |ns: &str, name: &str, ip: &str, containers: &[&str]| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns, "labels": {"app": name.split('-').next().unwrap()}},
               "spec": {"containers": containers.iter().map(|c| json!({"name": c, "image": "x"})).collect::<Vec<_>>()},
               "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
    };
    let pods = json!({"apiVersion": "v1", "kind": "List", "items": [
        pod("default", "sleep-7f8d9c6b5-abcde", "10.244.0.7", &["sleep", "istio-proxy"]),
        pod("legacy", "httpbin-5d4c8f7b9-fghij", "10.244.1.9", &["httpbin"]),
    ]});
    w("pods.json", &pods.to_string());
    w(
        "resources/legacy/services.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: httpbin\n  namespace: legacy\nspec:\n  clusterIP: 10.96.12.4\n  selector:\n    app: httpbin\n  ports:\n  - name: http\n    port: 8000\n    targetPort: 80\n",
    );
    w(
        "resources/istio-system/destinationrule-default.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: default\n  namespace: istio-system\nspec:\n  host: '*.cluster.local'\n  trafficPolicy:\n    tls:\n      mode: ISTIO_MUTUAL\n",
    );
    w(
        "logs/default/sleep-7f8d9c6b5-abcde/istio-proxy.log",
        &format!("{line}\n"),
    );
}

/// Envoy's line for Istio mTLS sent to a plaintext server: the handshake reads an HTTP reply.
const ISTIO_MUTUAL_TO_PLAINTEXT: &str = r#"[2024-05-01T10:00:00.000Z] "GET /get HTTP/1.1" 503 UF,URX upstream_reset_before_response_started{connection_failure,TLS_error:_268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER} - "-" 0 190 3 - "-" "curl/8.4.0" "5f0c2a8e-1b7d-4c3e-9a6f-0d2e4b8c7a15" "httpbin.legacy:8000" "10.244.1.9:80" outbound|8000||httpbin.legacy.svc.cluster.local - 10.96.12.4:8000 10.244.0.7:51234 - default"#;

#[test]
fn non_mesh_destination_gets_a_destination_rule_disable() {
    let d = tempfile::tempdir().unwrap();
    non_mesh_bundle(d.path(), ISTIO_MUTUAL_TO_PLAINTEXT);
    let t = trace_json(
        "5f0c2a8e-1b7d-4c3e-9a6f-0d2e4b8c7a15",
        d.path().to_str().unwrap(),
    );
    assert_eq!(t["cause"], "missing_sidecar");
    let fix = &t["fix_apply"];
    let docs = documents(fix);
    assert_eq!(
        docs,
        [json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "httpbin-disable-mtls", "namespace": "legacy"},
            "spec": {"host": "httpbin.legacy.svc.cluster.local",
                     "trafficPolicy": {"tls": {"mode": "DISABLE"}}}
        })]
    );
    let summary = fix["summary"].as_str().unwrap();
    assert!(
        summary.contains("Do not set PeerAuthentication PERMISSIVE"),
        "{summary}"
    );

    // A DestinationRule for exactly that host already exists: it is the one to change.
    std::fs::write(
        d.path().join("resources/legacy/destinationrule-httpbin.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: httpbin\n  namespace: legacy\nspec:\n  host: httpbin\n  trafficPolicy:\n    tls:\n      mode: ISTIO_MUTUAL\n",
    )
    .unwrap();
    let t = trace_json(
        "5f0c2a8e-1b7d-4c3e-9a6f-0d2e4b8c7a15",
        d.path().to_str().unwrap(),
    );
    let docs = documents(&t["fix_apply"]);
    assert_eq!(reference(&docs[0]), "DestinationRule/legacy/httpbin");
    assert_eq!(docs[0]["spec"]["trafficPolicy"]["tls"]["mode"], "DISABLE");
}

#[test]
fn a_value_that_cannot_be_written_safely_gives_no_yaml() {
    // The denied request's path carries YAML syntax: no rule is built from it (the text fix
    // stays); the output is still one well-formed document.
    let d = tempfile::tempdir().unwrap();
    common::copy_dir(Path::new("testdata/bundles/kind-rbac-403"), d.path());
    let log = d
        .path()
        .join("logs/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log");
    let text = std::fs::read_to_string(&log).unwrap().replace(
        "POST /v1/models/bert-emotion-model:predict HTTP",
        "POST /v1/models/{evil:\"x\"}\\n---\\nkind:Secret HTTP",
    );
    std::fs::write(&log, text).unwrap();
    let t = trace_json(
        "211ebf7c-1bc2-4008-aa50-9730fa6300dc",
        d.path().to_str().unwrap(),
    );
    assert_eq!(t["cause"], "rbac_denied");
    assert!(t.get("fix_apply").is_none(), "{}", t["fix_apply"]);
    assert!(!t["fix"].as_str().unwrap().is_empty());
}
