//! The config-dump model on real dumps from `testdata/peer/istio` (istioctl test inputs, see
//! testdata/peer/SOURCES.md): every input parses, the typed values are the ones in the file,
//! the large legacy productpage dump parses, and malformed JSON is reported with its JSON path.

use meshtrace_parsers::configdump::{
    Action, ClusterChoice, ConfigDump, DumpError, LogFormat, PathMatch, RouteSource, TlsMode,
    json_path_at,
};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/peer/istio");

fn load(rel: &str) -> ConfigDump {
    let text = std::fs::read_to_string(format!("{PEER}/{rel}"))
        .unwrap_or_else(|e| panic!("{rel}: {e} (needs testdata/peer, see its SOURCES.md)"));
    ConfigDump::parse(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_peer_input_parses() {
    for rel in [
        "istioctl/pkg/proxyconfig/testdata/config_dump.json",
        "istioctl/pkg/describe/testdata/describe/http_config.json",
        "istioctl/pkg/describe/testdata/describe/tls_config.json",
        "istioctl/pkg/writer/compare/testdata/configdump.json",
        "istioctl/pkg/writer/compare/testdata/configdump_diff.json",
        "istioctl/pkg/writer/envoy/configdump/testdata/configdump.json",
        "istioctl/pkg/writer/envoy/configdump/testdata/ecds/configdump.json",
        "istioctl/pkg/writer/envoy/configdump/testdata/endpoint/configdump.json",
        "istioctl/pkg/writer/envoy/configdump/testdata/secret/istio/config_dump.json",
        "istioctl/pkg/writer/envoy/configdump/testdata/secret/spire/config_dump.json",
        "istioctl/pkg/writer/envoy/configdump/testdata/routes/empty-gateway/configdump.json",
        "istioctl/pkg/authz/testdata/configdump.yaml",
        "legacy-2020-285c0509/istioctl/pkg/writer/envoy/configdump/testdata/configdump.json",
        "legacy-2020-285c0509/istioctl/pkg/writer/envoy/clusters/testdata/clusters.json",
    ] {
        let d = load(rel);
        assert!(!d.sections.is_empty(), "{rel}: no section");
        assert!(d.warnings.is_empty(), "{rel}: {:?}", d.warnings);
    }
}

#[test]
fn large_legacy_productpage_dump_parses() {
    let d = load("legacy-2020-285c0509/istioctl/cmd/testdata/authz/productpage_config_dump.json");
    // 58 clusters, 40 listeners, 16 route configs (2 static + 14 RDS; SOURCES.md says 18).
    assert_eq!(d.clusters.len(), 58);
    assert_eq!(d.listeners.len(), 40);
    assert_eq!(d.route_configs.len(), 16);
    assert_eq!(
        d.bootstrap
            .as_ref()
            .and_then(|b| b.istio_version.as_deref()),
        Some("1.1.1")
    );
    // Istio 1.1 mounted workload certificates under /etc/certs: still ISTIO_MUTUAL.
    let reviews = d
        .cluster("outbound|9080||reviews.default.svc.cluster.local")
        .expect("reviews cluster");
    assert_eq!(reviews.tls_mode(), TlsMode::IstioMutual);
}

#[test]
fn authz_listeners_dump_counts() {
    let d = load("istioctl/pkg/authz/testdata/configdump.yaml");
    // SOURCES.md: 2 static + 27 dynamic listeners.
    assert_eq!(d.listeners.len(), 29);
    assert!(d.listeners.iter().any(|l| l.name == "0.0.0.0_9080"));
    let inbound = d
        .listeners
        .iter()
        .find(|l| l.name == "virtualInbound")
        .expect("virtualInbound");
    assert!(
        inbound.filter_chains.iter().any(|c| c
            .tls
            .as_ref()
            .is_some_and(|t| t.mode == TlsMode::IstioMutual)),
        "sidecar inbound mTLS chains are ISTIO_MUTUAL"
    );
}

#[test]
fn describe_http_config_routes_and_metadata() {
    let d = load("istioctl/pkg/describe/testdata/describe/http_config.json");
    let rc = d.route_config("http.8080").expect("http.8080");
    let vh = &rc.virtual_hosts[0];
    assert_eq!(vh.name, "*:80");
    let r = &vh.routes[0];
    assert_eq!(r.path, PathMatch::Path("/productpage".into()));
    assert_eq!(
        r.istio_config.as_deref(),
        Some("/apis/networking.istio.io/v1alpha3/namespaces/default/virtual-service/bookinfo")
    );
    match &r.action {
        Action::Route { cluster, .. } => assert_eq!(
            cluster,
            &ClusterChoice::Cluster("outbound|9080||productpage.default.svc.cluster.local".into())
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn compare_dump_access_log_format_per_listener() {
    let d = load("istioctl/pkg/writer/compare/testdata/configdump.json");
    let logs = d.access_logs();
    assert!(
        !logs.is_empty(),
        "the waypoint listeners carry an access log"
    );
    assert!(logs.iter().any(|(_, a)| matches!(
        &a.format,
        LogFormat::Text(t) if t.contains("%RESPONSE_CODE%") && t.contains("%UPSTREAM_CLUSTER%")
    )));
    assert!(
        d.listeners
            .iter()
            .any(|l| l.filter_chains.iter().any(|c| matches!(
                c.http.as_ref().map(|h| &h.routes),
                Some(RouteSource::Rds(_) | RouteSource::Inline(_))
            )))
    );
}

#[test]
fn secrets_validity_uses_the_given_now() {
    let d = load("istioctl/pkg/writer/envoy/configdump/testdata/secret/istio/config_dump.json");
    let default = d.secrets.iter().find(|s| s.name == "default").unwrap();
    let cert = default.cert.as_ref().unwrap();
    assert_eq!(cert.not_after, "2023-05-16T01:32:52Z");
    // 2023-05-15T12:00:00Z: valid; 2024: expired.
    assert!(default.valid_at(1_684_152_000));
    assert!(!default.valid_at(1_704_067_200));
    assert!(cert.expires_in(1_704_067_200).unwrap() < 0);
}

#[test]
fn malformed_json_names_the_path() {
    let text = "{\"configs\": [{\"@type\": \"t/envoy.admin.v3.ClustersConfigDump\",\n \"dynamic_active_clusters\": [{\"cluster\": {\"name\": \"a\"}}, {\"cluster\": {\"name\": }}]}]}";
    match ConfigDump::parse(text) {
        Err(DumpError::Syntax { path, line, .. }) => {
            assert_eq!(path, "$.configs[0].dynamic_active_clusters[1].cluster.name");
            assert_eq!(line, 2);
        }
        other => panic!("{other:?}"),
    }
    let e = ConfigDump::parse("{\"configs\": {}}").unwrap_err();
    assert!(e.to_string().contains("$.configs"), "{e}");
    let e = ConfigDump::parse("[1,2]").unwrap_err();
    assert!(e.to_string().contains('$'), "{e}");
}

#[test]
fn truncated_dump_is_an_error_not_a_panic() {
    let text = std::fs::read_to_string(format!(
        "{PEER}/istioctl/pkg/proxyconfig/testdata/config_dump.json"
    ))
    .unwrap();
    for cut in (0..text.len()).step_by(997) {
        let Some(part) = text.get(..cut) else {
            continue;
        };
        if let Err(e) = ConfigDump::parse(part) {
            assert!(e.to_string().contains('$'), "{e}");
        }
    }
    assert_eq!(json_path_at("{\"a\": [1, {\"b\": ", 15), "$.a[1].b");
}

#[test]
fn unknown_sections_and_fields_are_tolerated() {
    let d = ConfigDump::parse(
        r#"{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.SomethingNew","x":1},
        {"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","dynamic_listeners":[
        {"name":"l","active_state":{"listener":{"name":"l","future_field":{"a":[1]},
        "address":{"socket_address":{"address":"0.0.0.0","port_value":"8443"}},
        "filter_chains":[{"filters":[{"name":"envoy.filters.network.unknown"}]}]}}}]}]}"#,
    )
    .unwrap();
    assert_eq!(d.sections, ["SomethingNew", "ListenersConfigDump"]);
    assert_eq!(d.listeners[0].port(), Some(8443));
    assert_eq!(d.listeners[0].protocol(), "UNKNOWN");
}

#[test]
fn mutated_dumps_never_panic() {
    let text = std::fs::read_to_string(format!(
        "{PEER}/istioctl/pkg/proxyconfig/testdata/config_dump.json"
    ))
    .unwrap();
    let bytes = text.as_bytes();
    let mut parsed = 0;
    // Deterministic mutations: letters/digits swapped (JSON stays valid: odd values, odd keys),
    // structural characters replaced (JSON breaks: errors, never panics).
    for (n, pos) in (0..bytes.len()).step_by(53).enumerate() {
        let mut m = bytes.to_vec();
        m[pos] = match (m[pos], n % 4) {
            (b'a'..=b'z', _) => b'Q',
            (b'0'..=b'9', 0) => b'9',
            (b'0'..=b'9', _) => b'0',
            (_, 0) => b'{',
            (_, 1) => b']',
            (_, 2) => b'"',
            _ => b'7',
        };
        let Ok(t) = String::from_utf8(m) else {
            continue;
        };
        match ConfigDump::parse(&t) {
            Ok(d) => {
                parsed += 1;
                let _ = d.access_logs();
                for s in &d.secrets {
                    let _ = s.valid_at(0);
                }
            }
            Err(e) => assert!(e.to_string().contains('$'), "{e}"),
        }
    }
    assert!(
        parsed > 100,
        "most letter/digit mutations keep the JSON valid"
    );
}
