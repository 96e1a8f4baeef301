//! `trace` with config dumps in the bundle: the gateway's custom access-log format is read from
//! its config dump (so its lines parse without `--log-format`), and a `route_not_found` verdict
//! cites the route configuration and the virtual hosts that did not match. The bundle is a copy
//! of `rhoai-400-app-error` made in a temporary folder, with its own gateway log.

use crate::common;
use common::copy_dir;

use std::path::Path;

const SRC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/bundles/rhoai-400-app-error"
);
const GW: &str = "istio-ingressgateway-64694db8d5-zmcc7";
const CUSTOM: &str = "[%START_TIME%] %REQ(X-REQUEST-ID)% \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% authority=%REQ(:AUTHORITY)% up=%UPSTREAM_HOST% cluster=%UPSTREAM_CLUSTER% local=%DOWNSTREAM_LOCAL_ADDRESS% remote=%DOWNSTREAM_REMOTE_ADDRESS% sni=%REQUESTED_SERVER_NAME% dur=%DURATION%\n";
const ID: &str = "11111111-2222-3333-4444-555555555555";

/// A bundle: the example's pods, resources and config dumps (gateway format made custom), no
/// manifest, and one gateway log line in the custom format.
fn bundle(dir: &Path, with_dumps: bool) {
    let src = Path::new(SRC);
    std::fs::copy(src.join("pods.json"), dir.join("pods.json")).unwrap();
    copy_dir(&src.join("resources"), &dir.join("resources"));
    if with_dumps {
        copy_dir(&src.join("config_dump"), &dir.join("config_dump"));
        let p = dir.join(format!("config_dump/istio-system/{GW}.json"));
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        fn set_format(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(o) => {
                    if let Some(s) = o.get_mut("inline_string") {
                        *s = serde_json::Value::String(CUSTOM.into());
                    }
                    o.values_mut().for_each(set_format);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(set_format),
                _ => {}
            }
        }
        set_format(&mut v);
        std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    }
    let logs = dir.join(format!("logs/istio-system/{GW}"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("istio-proxy.log"),
        format!(
            "[2024-06-03T09:12:31.402Z] {ID} \"GET / HTTP/2\" 404 NR route_not_found authority=nope.apps.mycluster.example.com up=- cluster=- local=10.135.0.43:8443 remote=10.134.0.2:56558 sni=nope.apps.mycluster.example.com dur=0\n"
        ),
    )
    .unwrap();
}

fn trace(dir: &Path) -> (i32, String, String) {
    let out = common::meshtrace()
        .args(["trace", ID, "--bundle", dir.to_str().unwrap(), "-o", "json"])
        .output()
        .expect("run meshtrace");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn custom_format_from_the_dump_and_nr_cites_the_route_config() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), true);
    let (code, out, err) = trace(dir.path());
    assert_eq!(code, 1, "{err}\n{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cause"], "route_not_found", "{v:#}");
    let cites = v["citations"].as_array().unwrap();
    let rc = cites
        .iter()
        .find(|c| {
            c["object"].as_str().unwrap().starts_with(&format!(
                "RouteConfiguration/istio-system/{GW}:https.443.https.knative-ingress-gateway"
            ))
        })
        .unwrap_or_else(|| panic!("{cites:#?}"));
    let why = rc["why"].as_str().unwrap();
    assert!(
        why.contains("no virtual host matches Host \"nope.apps.mycluster.example.com\""),
        "{why}"
    );
    assert!(
        why.contains("test-predictor-aiproject.apps.mycluster.example.com:443"),
        "{why}"
    );
}

#[test]
fn without_the_dump_the_custom_lines_are_not_understood() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), false);
    let (code, _, err) = trace(dir.path());
    assert_eq!(code, 2, "{err}");
}
