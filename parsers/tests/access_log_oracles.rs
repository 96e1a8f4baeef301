//! Access-log parsing checked against third-party oracles (`testdata/peer`, see its SOURCES.md)
//! and the example logs in `testdata`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use meshtrace_parsers::assemble::{Assembler, Event};
use meshtrace_parsers::detect::{FormatSpec, LineOutcome, LineParser};
use meshtrace_parsers::format::Slot;
use meshtrace_parsers::record::RawRecord;

fn peer(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/peer")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!("oracle data missing: {} ({e}); third-party data vendored in testdata/peer, see its SOURCES.md", p.display())
    })
}

fn testdata(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[derive(Debug, Default)]
struct Parsed {
    records: Vec<(u64, u32, RawRecord<'static>)>,
    skipped: Vec<(u64, String)>,
    malformed: Vec<(u64, String)>,
}

fn assemble(text: &str, spec: &FormatSpec) -> Parsed {
    let mut a = Assembler::new(LineParser::new(spec), true);
    let mut p = Parsed::default();
    let mut sink = |e: Event<'_>| match e {
        Event::Record(l) => p.records.push((l.line, l.lines, l.record.into_owned())),
        Event::Skipped { line, kind } => p.skipped.push((line, kind.kind().to_string())),
        Event::Malformed { line, error, .. } => p.malformed.push((line, error.to_string())),
    };
    for (i, l) in text.lines().enumerate() {
        a.push(i as u64 + 1, l, &mut sink);
    }
    a.finish(&mut sink);
    p
}

/// Operator name as written in the oracle → our slot.
fn slot_for(op: &str) -> Slot {
    let (name, arg) = match op.find('(') {
        Some(i) => (&op[..i], Some(&op[i + 1..op.len() - 1])),
        None => (op, None),
    };
    Slot::from_operator(name, arg).unwrap_or_else(|| panic!("no slot for {op}"))
}

#[test]
fn istio_doc_samples_give_the_documented_fields() {
    let text = peer("istio.io/access-log-samples.txt");
    let expected: serde_json::Value =
        serde_json::from_str(&peer("istio.io/access-log-samples.expected.json")).unwrap();
    let parsed = assemble(&text, &FormatSpec::Auto);
    assert!(parsed.malformed.is_empty(), "{:?}", parsed.malformed);
    assert_eq!(parsed.records.len(), 4);
    for (n, exp) in expected["lines"].as_array().unwrap().iter().enumerate() {
        let (_, _, rec) = &parsed.records[n];
        let fields = exp["fields"].as_object().unwrap();
        assert_eq!(fields.len(), 24);
        for (op, v) in fields {
            assert_eq!(
                rec.get(slot_for(op)),
                Some(v.as_str().unwrap()),
                "line {} field {op}",
                n + 1
            );
        }
        // Every slot we filled is one the oracle lists: nothing invented.
        assert_eq!(rec.slots().count(), 24, "line {}", n + 1);
        assert!(rec.missing.is_empty());
    }
    // Typed view of line 1.
    let r = &parsed.records[0].2;
    assert_eq!(r.status(), Some(418));
    assert_eq!(
        r.start_time().unwrap().timestamp_millis(),
        1_606_339_578_409
    );
    assert_eq!(r.duration_ms(), Some(4));
    assert_eq!(
        r.upstream_cluster().unwrap().host(),
        Some("httpbin.foo.svc.cluster.local")
    );
    assert_eq!(r.upstream_host().unwrap().port(), Some(80));
}

#[test]
fn old_istio_lines_parse_with_the_old_builtin_and_right_fields() {
    let text = peer("istio.io/access-log-samples.txt");
    let parsed = assemble(&text, &FormatSpec::Auto);
    let (_, _, l3) = &parsed.records[2];
    assert_eq!(l3.format(), "istio-1.1");
    assert_eq!(l3.status(), Some(200));
    assert_eq!(l3.bytes_received(), Some(0));
    assert_eq!(l3.bytes_sent(), Some(599));
    assert_eq!(l3.duration_ms(), Some(214));
    assert_eq!(l3.upstream_service_time_ms(), Some(214));
    assert_eq!(l3.authority(), Some("httpbin.org"));
    assert_eq!(l3.get(Slot::UpstreamHost), Some("35.173.6.94:80"));
    assert_eq!(
        l3.get(Slot::UpstreamCluster),
        Some("outbound|80||httpbin.org")
    );
    assert_eq!(l3.get(Slot::UpstreamLocalAddress), Some("-"));
    assert_eq!(l3.get(Slot::DownstreamLocalAddress), Some("35.173.6.94:80"));
    assert_eq!(
        l3.get(Slot::DownstreamRemoteAddress),
        Some("172.30.109.82:55314")
    );
    assert_eq!(l3.get(Slot::RequestedServerName), Some("-"));
    assert_eq!(
        l3.get(Slot::ResponseCodeDetails),
        None,
        "1.1 has no details field"
    );
    let (_, _, l4) = &parsed.records[3];
    assert_eq!(l4.format(), "istio-1.1");
    assert_eq!(l4.status(), Some(0));
    assert!(l4.is_tcp());
    assert_eq!(l4.bytes_received(), Some(601));
    assert_eq!(l4.bytes_sent(), Some(17766));
    assert_eq!(l4.upstream_service_time_ms(), None);
    assert_eq!(l4.sni(), Some("www.google.com"));
    // Forced into the modern format they are refused, never mis-parsed.
    for line in text.lines().filter(|l| l.starts_with("[2019")) {
        let mut p = LineParser::new(&FormatSpec::parse("istio-1.23").unwrap());
        assert!(matches!(p.parse(line), LineOutcome::Malformed(_)), "{line}");
    }
}

#[test]
fn waypoint_log_all_sixteen_lines_parse() {
    let text = peer("kiali/tests/data/logs/waypoint.log");
    let parsed = assemble(&text, &FormatSpec::Auto);
    assert!(parsed.malformed.is_empty(), "{:?}", parsed.malformed);
    assert_eq!(parsed.records.len(), 16);
    for (_, _, r) in &parsed.records {
        assert_eq!(r.format(), "istio-1.23");
        assert!(r.status().is_some());
        assert!(r.request_id().is_some());
    }
    let r = &parsed.records[0].2;
    assert_eq!(
        r.get(Slot::UpstreamHost),
        Some("envoy://connect_originate/10.244.0.32:9080")
    );
    assert_eq!(r.upstream_host().unwrap().port(), Some(9080));
    assert_eq!(
        r.get(Slot::UpstreamLocalAddress),
        Some("envoy://internal_client_address/")
    );
    assert_eq!(
        r.upstream_cluster().unwrap().host(),
        Some("details.bookinfo.svc.cluster.local")
    );
}

#[test]
fn ztunnel_and_pilot_agent_logs_yield_no_records() {
    for f in [
        "kiali/tests/data/logs/ztunnel.log",
        "istio/tools/bug-report/pkg/testdata/input/ingress.log",
        "istio/tools/bug-report/pkg/testdata/input/format_txt.log",
        "istio/tools/bug-report/pkg/testdata/input/format_json.log",
    ] {
        let text = peer(f);
        let parsed = assemble(&text, &FormatSpec::Auto);
        assert!(
            parsed.records.is_empty(),
            "{f}: {:?}",
            parsed.records.first()
        );
        assert!(!parsed.skipped.is_empty(), "{f}");
    }
    let z = assemble(
        &peer("kiali/tests/data/logs/ztunnel.log"),
        &FormatSpec::Auto,
    );
    assert!(
        z.skipped.iter().all(|(_, k)| k == "ztunnel"),
        "{:?}",
        z.skipped
    );
    let j = assemble(
        &peer("istio/tools/bug-report/pkg/testdata/input/format_json.log"),
        &FormatSpec::Auto,
    );
    assert!(j.skipped.iter().all(|(_, k)| k == "json-log"));
}

#[test]
fn seed000_pasted_lines_rejoin_into_five_records() {
    let parsed = assemble(&testdata("explain/seed000-pasted.log"), &FormatSpec::Auto);
    assert!(parsed.malformed.is_empty(), "{:?}", parsed.malformed);
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    let lines: Vec<(u64, u32)> = parsed.records.iter().map(|(l, n, _)| (*l, *n)).collect();
    assert_eq!(lines, vec![(1, 3), (4, 3), (7, 3), (10, 3), (13, 3)]);
    let ids: Vec<&str> = parsed
        .records
        .iter()
        .map(|r| r.2.request_id().unwrap())
        .collect();
    assert_eq!(ids[0], "4791d0d3-e742-4eac-8c56-4c87eb22f1a9");
    assert!(
        ids[1..]
            .iter()
            .all(|i| *i == "f7beed8d-a4db-4aaa-9292-edbf3e186e29")
    );
    for (_, _, r) in &parsed.records {
        assert_eq!(r.status(), Some(400));
        assert_eq!(r.details().unwrap().base, "via_upstream");
        assert_eq!(r.user_agent(), Some("curl/8.6.0"));
        assert!(
            r.missing.iter().any(|m| &**m == "START_TIME"),
            "{:?}",
            r.missing
        );
        assert!(
            !r.missing.iter().any(|m| &**m != "START_TIME"),
            "{:?}",
            r.missing
        );
    }
    let gw = &parsed.records[0].2;
    assert_eq!(gw.method(), Some("GET"));
    assert_eq!(gw.protocol(), Some("HTTP/2"));
    assert_eq!(
        gw.get(Slot::UpstreamCluster),
        Some("outbound|80||knative-local-gateway.istio-system.svc.cluster.local")
    );
    assert_eq!(
        gw.get(Slot::DownstreamLocalAddress),
        Some("10.135.0.43:8443")
    );
    assert_eq!(gw.sni(), Some("test-aiproject.apps.mycluster.example.com"));
    assert_eq!(gw.route_name(), None);
    let act_in = &parsed.records[2].2;
    assert_eq!(act_in.get(Slot::UpstreamCluster), Some("inbound|8012||"));
    assert_eq!(
        act_in.get(Slot::UpstreamLocalAddress),
        Some("127.0.0.6:40375")
    );
    assert_eq!(act_in.route_name(), Some("default"));
    let fwd: Vec<&str> = parsed.records[3].2.forwarded_for().collect();
    assert_eq!(fwd, vec!["10.134.0.2", "10.135.0.43", "127.0.0.6"]);
}

#[test]
fn seed003_rbac_line() {
    let parsed = assemble(&testdata("explain/seed003-rbac.log"), &FormatSpec::Auto);
    assert_eq!(parsed.records.len(), 1);
    let r = &parsed.records[0].2;
    assert_eq!(r.status(), Some(403));
    let d = r.details().unwrap();
    assert_eq!(d.base, "rbac_access_denied_matched_policy");
    assert_eq!(
        d.rbac_policy,
        Some(meshtrace_parsers::details::RbacPolicy::None)
    );
    assert_eq!(r.upstream_service_time_ms(), None);
    assert_eq!(r.get(Slot::UpstreamHost), Some("-"));
}

/// Render a built-in format with the given values (operator text → value).
fn render(fmt: &str, values: &BTreeMap<&str, &str>) -> String {
    let f = meshtrace_parsers::TextFormat::compile("x", fmt).unwrap();
    let mut out = String::new();
    for seg in f.segments() {
        match seg {
            meshtrace_parsers::format::Segment::Literal(l) => out.push_str(l),
            meshtrace_parsers::format::Segment::Field(i) => {
                let c = &f.commands()[*i];
                out.push_str(values.get(&*c.text).copied().unwrap_or("-"));
            }
        }
    }
    out
}

fn sample_values() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("START_TIME", "2024-05-01T10:00:00.123Z"),
        ("REQ(:METHOD)", "POST"),
        ("REQ(X-ENVOY-ORIGINAL-PATH?:PATH)", "/v1/models/m:predict"),
        ("PROTOCOL", "HTTP/1.1"),
        ("RESPONSE_CODE", "503"),
        ("RESPONSE_FLAGS", "UF,URX"),
        (
            "RESPONSE_CODE_DETAILS",
            "upstream_reset_before_response_started{connection_failure,TLS_error:_268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED}",
        ),
        ("CONNECTION_TERMINATION_DETAILS", "-"),
        (
            "UPSTREAM_TRANSPORT_FAILURE_REASON",
            "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end",
        ),
        ("DYNAMIC_METADATA(istio.mixer:status)", "-"),
        ("BYTES_RECEIVED", "51"),
        ("BYTES_SENT", "91"),
        ("DURATION", "7"),
        ("RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)", "-"),
        ("REQ(X-FORWARDED-FOR)", "10.1.2.3"),
        ("REQ(USER-AGENT)", "python-requests/2.31.0"),
        ("REQ(X-REQUEST-ID)", "0f8fad5b-d9cb-469f-a165-70867728950e"),
        ("REQ(:AUTHORITY)", "sklearn-iris-predictor.kserve-test"),
        ("UPSTREAM_HOST", "10.244.1.17:8012"),
        (
            "UPSTREAM_CLUSTER_RAW",
            "outbound|80||sklearn-iris-predictor-00001.kserve-test.svc.cluster.local",
        ),
        (
            "UPSTREAM_CLUSTER",
            "outbound|80||sklearn-iris-predictor-00001.kserve-test.svc.cluster.local",
        ),
        ("UPSTREAM_LOCAL_ADDRESS", "10.244.0.9:51234"),
        ("DOWNSTREAM_LOCAL_ADDRESS", "10.244.0.9:8081"),
        ("DOWNSTREAM_REMOTE_ADDRESS", "10.244.2.4:40000"),
        (
            "REQUESTED_SERVER_NAME",
            "outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local",
        ),
        ("ROUTE_NAME", "-"),
    ])
}

#[test]
fn every_builtin_round_trips_and_is_auto_detected() {
    let values = sample_values();
    for b in meshtrace_parsers::builtins::BUILTIN_TEXT {
        let line = render(b.format, &values);
        // Explicit format.
        let mut p = LineParser::new(&FormatSpec::parse(b.name).unwrap());
        let LineOutcome::Record(r) = p.parse(&line) else {
            panic!("{}: {line}", b.name)
        };
        assert_eq!(r.status(), Some(503), "{}", b.name);
        assert_eq!(r.flags().to_string(), "UF,URX");
        assert_eq!(r.request_id(), Some("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert_eq!(r.user_agent(), Some("python-requests/2.31.0"));
        // Auto-detection picks a format with the same layout.
        let mut auto = LineParser::auto();
        let LineOutcome::Record(r2) = auto.parse(&line) else {
            panic!("auto {}: {line}", b.name)
        };
        let expect = if b.name == "istio-1.9" {
            "istio-1.23"
        } else {
            b.name
        };
        assert_eq!(r2.format(), expect);
        // Same fields either way.
        let a: Vec<_> = r.slots().collect();
        let c: Vec<_> = r2.slots().collect();
        assert_eq!(a, c, "{}", b.name);
    }
}

#[test]
fn prefixes_and_envelopes() {
    let line = render(
        meshtrace_parsers::builtins::BUILTIN_TEXT[0].format,
        &sample_values(),
    );
    let esc = line.replace('\\', "\\\\").replace('"', "\\\"");
    let inputs = [
        format!("2024-05-01T10:00:00.130425815Z {line}"),
        format!("2024-05-01T10:00:00.130425815+00:00 stdout F {line}"),
        format!(
            "{{\"log\":\"{esc}\\n\",\"stream\":\"stdout\",\"time\":\"2024-05-01T10:00:00.13Z\"}}"
        ),
        format!("{line}\r"),
    ];
    for input in &inputs {
        let p = assemble(input, &FormatSpec::Auto);
        assert_eq!(p.records.len(), 1, "{input}");
        assert_eq!(p.records[0].2.status(), Some(503));
        assert!(p.records[0].2.missing.is_empty());
    }
}

#[test]
fn json_variants() {
    let istio = r#"{"authority":"bert-model.default.example.com","bytes_received":0,"bytes_sent":19,"connection_termination_details":null,"downstream_local_address":"127.0.0.1:8080","downstream_remote_address":"127.0.0.1:44576","duration":0,"method":"POST","path":"/v1/models/bert-emotion-model:predict","protocol":"HTTP/1.1","request_id":"211ebf7c-1bc2-4008-aa50-9730fa6300dc","requested_server_name":null,"response_code":403,"response_code_details":"rbac_access_denied_matched_policy[none]","response_flags":"-","route_name":null,"start_time":"2024-04-25T20:21:43.725Z","upstream_cluster":"outbound|80||knative-local-gateway.istio-system.svc.cluster.local","upstream_host":null,"upstream_local_address":null,"upstream_service_time":null,"upstream_transport_failure_reason":null,"user_agent":"curl/8.4.0","x_forwarded_for":"10.244.0.6"}"#;
    let eg = r#"{":authority":"www.example.com","bytes_received":0,"bytes_sent":0,"connection_termination_details":null,"downstream_local_address":"10.244.0.12:10080","downstream_remote_address":"172.18.0.1:40412","duration":1,"method":"GET","protocol":"HTTP/1.1","requested_server_name":null,"response_code":429,"response_code_details":"local_rate_limited","response_flags":"RL","route_name":"httproute/default/backend/rule/0/match/0/www_example_com","start_time":"2024-05-01T10:00:00.000Z","upstream_cluster":"httproute/default/backend/rule/0","upstream_host":null,"upstream_local_address":null,"upstream_transport_failure_reason":null,"user-agent":"curl/8.4.0","x-envoy-origin-path":"/get","x-envoy-upstream-service-time":null,"x-forwarded-for":"172.18.0.1","x-request-id":"4a7e8b1c-2f3d-4e5f-8a9b-0c1d2e3f4a5b"}"#;
    let p = assemble(&format!("{istio}\n{eg}\n"), &FormatSpec::Auto);
    assert_eq!(p.records.len(), 2, "{:?}", p);
    let (a, b) = (&p.records[0].2, &p.records[1].2);
    assert_eq!(a.format(), "istio-json");
    assert_eq!(a.status(), Some(403));
    assert_eq!(a.duration_ms(), Some(0));
    assert_eq!(a.get(Slot::UpstreamHost), Some("-"));
    assert_eq!(a.upstream_host(), None);
    assert_eq!(
        a.details().unwrap().base,
        "rbac_access_denied_matched_policy"
    );
    assert_eq!(b.format(), "envoy-gateway-json");
    assert_eq!(b.path(), Some("/get"));
    assert_eq!(b.request_id(), Some("4a7e8b1c-2f3d-4e5f-8a9b-0c1d2e3f4a5b"));
    assert_eq!(b.authority(), Some("www.example.com"));
    assert_eq!(b.status(), Some(429));
    // Custom JSON mapping.
    let spec = FormatSpec::parse(r#"{"ts":"%START_TIME%","code":"%RESPONSE_CODE%","rid":"%REQ(X-REQUEST-ID)%","flags":"%RESPONSE_FLAGS%","tenant":"%REQ(X-TENANT)%"}"#).unwrap();
    let p = assemble(
        r#"{"ts":"2024-05-01T10:00:00Z","code":"404","rid":"abc","flags":"NR","tenant":"t1"}"#,
        &spec,
    );
    let r = &p.records[0].2;
    assert_eq!(
        (r.status(), r.request_id(), r.extra("REQ(X-TENANT)")),
        (Some(404), Some("abc"), Some("t1"))
    );
    assert_eq!(r.format(), "custom-json");
}

#[test]
fn custom_text_format_from_meshconfig() {
    // A MeshConfig accessLogFormat with extra operators and a START_TIME(fmt).
    let fmt = "[%START_TIME(%Y-%m-%d %H:%M:%S)%] %REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% rid=%REQ(X-REQUEST-ID)% tries=%UPSTREAM_REQUEST_ATTEMPT_COUNT% cluster=%UPSTREAM_CLUSTER%\n";
    let spec = FormatSpec::parse(fmt).unwrap();
    let p = assemble(
        "[2024-05-01 10:00:00] GET /healthz 503 UH rid=xyz tries=1 cluster=outbound|80||a.b.svc.cluster.local\n",
        &spec,
    );
    assert_eq!(p.records.len(), 1, "{p:?}");
    let r = &p.records[0].2;
    assert_eq!(r.format(), "custom");
    assert_eq!(r.status(), Some(503));
    assert_eq!(r.extra("UPSTREAM_REQUEST_ATTEMPT_COUNT"), Some("1"));
    assert_eq!(r.start_time().unwrap().timestamp(), 1_714_557_600);
    assert_eq!(r.path(), Some("/healthz"));
}

#[test]
fn malformed_lines_are_reported_with_column_and_expectation() {
    let input = "[2024-05-01T10:00:00.123Z] \"GET / HTTP/1.1\" abc - via_upstream - \"-\" 0 0 1 1 \"-\" \"c\" \"id\" \"h\" \"u\" c a b c - -\nhello world\n";
    let p = assemble(input, &FormatSpec::Auto);
    assert_eq!(p.records.len(), 0);
    assert_eq!(p.malformed.len(), 2);
    assert_eq!(p.malformed[0].0, 1);
    assert!(
        p.malformed[0].1.contains("RESPONSE_CODE") && p.malformed[0].1.contains("column 45"),
        "{}",
        p.malformed[0].1
    );
}

#[test]
fn nothing_is_lost_around_bad_lines() {
    let good = render(
        meshtrace_parsers::builtins::BUILTIN_TEXT[0].format,
        &sample_values(),
    );
    let input = format!(
        "{good}\n\u{0}\u{1}garbage\n{good}\n2020-06-29T23:37:27.335928Z\tinfo\tsds ready\n{good}\n"
    );
    let p = assemble(&input, &FormatSpec::Auto);
    assert_eq!(
        p.records.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 3, 5]
    );
    assert_eq!(p.malformed.len(), 1);
    assert_eq!(p.skipped, vec![(4, "istio-log".to_string())]);
}
