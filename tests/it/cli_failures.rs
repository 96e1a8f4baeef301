//! `meshtrace failures` on the example bundles and scenario logs: every failure class present,
//! with the right counts, and nothing counted twice when the request id changes at a gateway.

use crate::common;

use std::path::Path;

use serde_json::Value;

fn run(args: &[&str]) -> (i32, String, String) {
    common::run_in_repo(args)
}

fn groups(args: &[&str]) -> (Value, Vec<(String, u64, String, u64)>) {
    let mut a = vec!["failures"];
    a.extend_from_slice(args);
    a.extend(["-o", "json"]);
    let (code, out, err) = run(&a);
    assert!(code == 0 || code == 1, "{args:?}: {err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"));
    assert_eq!(v["schema"], "meshtrace.failures/v1");
    assert_eq!(code == 1, !v["groups"].as_array().unwrap().is_empty());
    let g = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["cause"].as_str().unwrap().to_string(),
                g["status"].as_u64().unwrap_or(999),
                g["origin_role"].as_str().unwrap().to_string(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    (v, g)
}

fn owned(x: &[(&str, u64, &str, u64)]) -> Vec<(String, u64, String, u64)> {
    x.iter()
        .map(|(a, b, c, d)| (a.to_string(), *b, c.to_string(), *d))
        .collect()
}

#[test]
fn every_bundle_gives_its_failure_classes_and_counts() {
    type Want = &'static [(&'static str, u64, &'static str, u64)];
    let cases: &[(&str, Want)] = &[
        // Four client requests got 400; each crossed the gateway twice under two ids.
        ("rhoai-400-app-error", &[("app_error", 400, "predictor", 4)]),
        (
            "kind-rbac-403",
            &[("rbac_denied", 403, "ingress-gateway", 1)],
        ),
        (
            "kind-429-ratelimit",
            &[("rate_limited", 429, "ingress-gateway", 2)],
        ),
        (
            "odh-out-of-mesh-client",
            &[("missing_sidecar", 0, "local-gateway", 3)],
        ),
        (
            "activator-503-scale-from-zero",
            &[("activator_error", 503, "activator", 2)],
        ),
        (
            "seldon-canary-mesh-gateway",
            &[
                ("no_healthy_upstream", 503, "ingress-gateway", 1),
                ("upstream_reset", 503, "seldon-predictor", 1),
            ],
        ),
        (
            "agora-city-ingress-404",
            &[
                ("egress_blocked", 0, "predictor", 1),
                ("route_not_found", 404, "local-gateway", 1),
            ],
        ),
        (
            "broken-bundle",
            &[("rbac_denied", 403, "ingress-gateway", 1)],
        ),
    ];
    for (bundle, want) in cases {
        let path = format!("testdata/bundles/{bundle}");
        let (_, mut got) = groups(&["--bundle", &path]);
        got.sort();
        let mut want = owned(want);
        want.sort();
        assert_eq!(got, want, "{bundle}");
    }
}

#[test]
fn connection_failures_name_the_client_pod_and_its_sidecar() {
    let (v, _) = groups(&["--bundle", "testdata/bundles/odh-out-of-mesh-client"]);
    let g = &v["groups"][0];
    assert_eq!(g["kind"], "connection");
    assert_eq!(g["target"], "10.135.0.43:8081");
    assert_eq!(g["clients"][0]["pod"], "notebooks/analysis-wb-0");
    assert_eq!(g["clients"][0]["has_sidecar"], false);
}

#[test]
fn filters() {
    let b = "testdata/bundles/seldon-canary-mesh-gateway";
    let (_, g) = groups(&["--bundle", b, "--cause", "upstream_reset"]);
    assert_eq!(g, owned(&[("upstream_reset", 503, "seldon-predictor", 1)]));
    let (_, g) = groups(&["--bundle", b, "--status", "4xx"]);
    assert!(g.is_empty());
    let (_, g) = groups(&[
        "--bundle",
        "testdata/bundles/agora-city-ingress-404",
        "--status",
        "0",
    ]);
    assert_eq!(g, owned(&[("egress_blocked", 0, "predictor", 1)]));
    // The egress event happened at 10:02, the 404 at 10:31.
    let (_, g) = groups(&[
        "--bundle",
        "testdata/bundles/agora-city-ingress-404",
        "--since-time",
        "2024-06-06T10:30:00Z",
    ]);
    assert_eq!(g, owned(&[("route_not_found", 404, "local-gateway", 1)]));
    let (code, _, err) = run(&["failures", "--bundle", b, "--cause", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown cause \"nope\"") && err.contains("rbac_denied"),
        "{err}"
    );
    let (code, _, err) = run(&["failures", "--bundle", b, "--since", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'soon' for '--since"), "{err}");
}

#[test]
fn scenario_logs() {
    let (_, g) = groups(&["testdata/explain/rate-limited.log"]);
    assert!(
        g.iter()
            .all(|(c, s, _, _)| c == "rate_limited" && *s == 429),
        "{g:?}"
    );
    let (_, g) = groups(&["testdata/explain/seed000-pasted.log"]);
    assert_eq!(g, owned(&[("app_error", 400, "predictor", 1)]));
}

#[test]
fn table_snapshot() {
    let (code, out, _) = run(&[
        "failures",
        "--bundle",
        "testdata/bundles/agora-city-ingress-404",
    ]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(out);
}

/// Without a topology the origin's role may be unknown: the sentence names the proxy's log
/// instead of saying "at the unknown".
#[test]
fn an_unknown_origin_is_named_by_its_log() {
    let (code, out, _) = run(&["failures", "testdata/explain/egress-blocked.log"]);
    assert_eq!(code, 1);
    assert!(!out.contains("at the unknown"), "{out}");
    assert!(
        out.contains("at the proxy whose log is testdata/explain/egress-blocked.log"),
        "{out}"
    );
}

/// The OpenShift router's (HAProxy's) lines are requests too: each failed one is grouped by its
/// cause, status and Route, with the reading `explain` gives it; filters apply to them.
#[test]
fn router_lines_are_grouped_like_requests() {
    let log = "testdata/explain/openshift-router.log";
    let (v, g) = groups(&[log]);
    assert_eq!(
        (v["requests"].as_u64(), v["failed"].as_u64()),
        (Some(9), Some(7))
    );
    let mut got = g.clone();
    got.sort();
    let mut want = owned(&[
        ("app_error", 403, "OpenShift router", 1),
        ("downstream_disconnect", 408, "OpenShift router", 1),
        ("no_healthy_upstream", 503, "OpenShift router", 1),
        ("route_not_found", 503, "OpenShift router", 1),
        ("upstream_connect_failure", 503, "OpenShift router", 1),
        ("upstream_reset", 502, "OpenShift router", 1),
        ("upstream_timeout", 504, "OpenShift router", 1),
    ]);
    want.sort();
    assert_eq!(got, want);
    let timeout = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["cause"] == "upstream_timeout")
        .unwrap();
    assert_eq!(timeout["target"], "aiproject/slow");
    assert!(
        timeout["fix"]
            .as_str()
            .unwrap()
            .contains("oc annotate route slow -n aiproject haproxy.router.openshift.io/timeout="),
        "{timeout:#?}"
    );
    // Filters: only 5xx, only one cause.
    let (_, g) = groups(&[log, "--status", "5xx"]);
    assert_eq!(g.len(), 5, "{g:?}");
    let (_, g) = groups(&[log, "--cause", "upstream_timeout"]);
    assert_eq!(
        g,
        owned(&[("upstream_timeout", 504, "OpenShift router", 1)])
    );
}

/// A router log of 8 MiB or more is streamed: every line is a request, and the failed lines
/// past the 4 096 kept per log are said in a note, not silently dropped from the count.
#[test]
fn a_large_router_log_counts_every_request_and_says_what_it_did_not_keep() {
    let one = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/explain/openshift-router.log"),
    )
    .unwrap();
    let copies = (9 << 20) / one.len() + 1;
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("router.log");
    std::fs::write(&p, one.repeat(copies)).unwrap();
    let lines = one.lines().count() * copies;
    let failed = 7 * copies;
    let (v, _) = groups(&[p.to_str().unwrap()]);
    assert_eq!(v["requests"].as_u64(), Some(lines as u64));
    assert_eq!(v["failed"].as_u64(), Some(4096));
    let notes = v["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "{} more failed OpenShift router (HAProxy) line(s) were not counted",
            failed - 4096
        )),
        "{notes}"
    );
}

/// A load generator that sends one fixed x-request-id (real Envoy's logs,
/// `scripts/envoy-formats/fixed-id.sh`): its 40 requests are counted one by one (they were one
/// request, a success), and the group's example is traced at its own line.
#[test]
fn requests_that_reuse_an_id_are_counted_one_by_one() {
    let (v, g) = groups(&["testdata/explain/fixed-request-id.log"]);
    assert_eq!(v["requests"], 40);
    assert_eq!(v["failed"], 5);
    assert_eq!(g, owned(&[("upstream_connect_failure", 503, "unknown", 5)]));
    let example = &v["groups"][0]["example"];
    let hops = example["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1, "{example}");
    assert_eq!(hops[0]["evidence"]["line"], 6, "{example}");
    assert!(
        example["notes"]
            .to_string()
            .contains("many requests reuse it"),
        "{example}"
    );
}

/// A damaged line whose `%DURATION%` is near the largest number (real Envoy's front proxy line
/// of `fixed-request-id.log`, its duration changed): every command reads it without a panic
/// (its end overflowed the clock in `trace`'s correlation and `report`'s timeline, and the
/// waterfalls' and `explain`'s arithmetic).
#[test]
fn a_duration_near_the_largest_number_is_read_without_a_panic() {
    let line = std::fs::read_to_string("testdata/explain/fixed-request-id.log")
        .unwrap()
        .lines()
        .nth(5)
        .unwrap()
        .replace(" 13 98 0 - ", " 13 98 9223372036854775000 - ");
    assert!(line.contains(" 503 UF "), "{line}");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("huge.log");
    let twice = format!("{line}\n{}\n", line.replace(" 503 UF ", " 200 - "));
    std::fs::write(&path, twice).unwrap();
    let p = path.to_str().unwrap();
    let id = "5e1d9a70-2b3c-4d4e-8f60-7a8b9c0d1e2f";
    for args in [
        vec!["trace", id, p],
        vec!["trace", id, p, "-o", "json"],
        vec!["report", id, p],
        vec!["report", "--failures", p],
        vec!["explain", p],
        vec!["explain", p, "-o", "json"],
        vec!["failures", p],
    ] {
        let (code, _, err) = run(&args);
        assert!(code <= 1, "{args:?}: exit {code}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
