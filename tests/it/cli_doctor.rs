//! `meshtrace doctor` on the example bundles: each reports what it was built around, the
//! healthy one nothing alarming.

use crate::common;

use std::path::Path;

fn doctor(bundle: &str) -> (i32, Vec<(String, String)>) {
    let out = common::meshtrace()
        .args([
            "doctor",
            "--bundle",
            &format!("testdata/bundles/{bundle}"),
            "-o",
            "json",
        ])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "meshtrace.doctor/v1");
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (out.status.code().unwrap_or(-1), f)
}

fn alarming(f: &[(String, String)]) -> Vec<&str> {
    f.iter()
        .filter(|(_, s)| s != "info")
        .map(|(id, _)| id.as_str())
        .collect()
}

#[test]
fn each_bundle_reports_its_misconfiguration() {
    for (bundle, want) in [
        ("odh-out-of-mesh-client", vec!["MT002"]),
        ("kind-rbac-403", vec!["MT005"]),
        ("broken-bundle", vec!["MT005"]),
        ("activator-503-scale-from-zero", vec!["MT010"]),
        ("seldon-canary-mesh-gateway", vec!["MT011"]),
    ] {
        let (code, f) = doctor(bundle);
        assert_eq!(alarming(&f), want, "{bundle}: {f:?}");
        assert_eq!(code, 1, "{bundle}");
    }
    let (code, f) = doctor("kind-429-ratelimit");
    assert!(
        f.iter().any(|(id, s)| id == "MT012" && s == "info"),
        "{f:?}"
    );
    assert_eq!(code, 0);
}

#[test]
fn healthy_bundle_has_nothing_alarming() {
    // Seed 000's configuration works (the 400 came from the model): info only.
    let (code, f) = doctor("rhoai-400-app-error");
    assert!(alarming(&f).is_empty(), "{f:?}");
    assert_eq!(code, 0);
}

#[test]
fn table_output_and_list() {
    let out = common::meshtrace()
        .args([
            "doctor",
            "--bundle",
            "testdata/bundles/odh-out-of-mesh-client",
        ])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[MT002]") && text.contains("Pod/notebooks/analysis-wb-0"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    let list = common::meshtrace()
        .args(["doctor", "--list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).lines().count() >= 12);
}
