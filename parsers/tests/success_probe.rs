//! The cheap success test (`LineParser::is_plain_success`) that lets `failures` skip parsing
//! healthy lines: it must certify the common success lines of every built-in format and never
//! certify a line that parses as a failure (checked over every scenario log of `testdata/`).

use std::path::Path;

use meshtrace_parsers::envelope::strip_envelope;
use meshtrace_parsers::{FormatSpec, LineOutcome, LineParser};

const TEXT_200: &str = r#"[2024-06-03T09:12:31.399Z] "POST /v2/models/test/infer HTTP/1.1" 200 - via_upstream - "-" 164 212 36 35 "-" "python-requests/2.31.0" "2551d484-388a-46a7-8572-eaee186f959c" "test-predictor.aiproject.svc.cluster.local" "10.135.0.44:8012" outbound|80||test-predictor-00001.aiproject.svc.cluster.local 10.133.2.20:52214 172.31.71.187:80 10.133.2.20:52200 - default"#;

fn certified(spec: &str, line: &str) -> bool {
    let p = LineParser::new(&FormatSpec::parse(spec).unwrap());
    p.is_plain_success(line.as_bytes())
}

#[test]
fn table() {
    let rows: &[(&str, &str, bool)] = &[
        ("istio-1.23", TEXT_200, true),
        ("auto", TEXT_200, true),
        (
            "istio-1.23",
            &TEXT_200.replace("\" 200 - ", "\" 400 - "),
            false,
        ),
        (
            "istio-1.23",
            &TEXT_200.replace("\" 200 - ", "\" 503 UF,URX "),
            false,
        ),
        (
            "istio-1.23",
            &TEXT_200.replace("\" 200 - ", "\" 200 DC "),
            false,
        ),
        (
            "istio-1.23",
            &TEXT_200.replace("\" 200 - ", "\" 0 - "),
            false,
        ),
        (
            "istio-1.23",
            &TEXT_200.replace("\" 200 - ", "\" 2000 - "),
            false,
        ),
        (
            "istio-1.23",
            &TEXT_200.replace("\" 200 - ", "\" 204 -- "),
            false,
        ),
        (
            "istio-1.23",
            &format!("2024-06-03T09:12:31.4Z {TEXT_200}"),
            false,
        ),
        // Found by fuzzing: a quote inside the start time field; the parser reads the 503.
        (
            "istio-1.1",
            "[2025-01-30T12:10:13.GET /details/0 HTTP/1.1\" 200 - via_ET [2020-11-25T21:26:18.409Z] \"GET /status/418 HTTP/1.1\" 503 UF,URX up[202stream0-11-25T21:26:18_re.4set_be",
            false,
        ),
        (
            "istio-1.23",
            "[2025-01-30T12:10:13.GET /details/0 HTTP/1.1\" 200 - via_upstream - \"-\" [2020-11-25T21:26:18.409Z] \"GET /status/418 HTTP/1.1\" 503 UF,URX",
            false,
        ),
        // Another format with the same start (testdata/explain/fault-injected.log).
        (
            "istio-1.23",
            r#"[2024-05-01T22:10:00.283Z] "POST /v1/models/sklearn-iris:predict HTTP/1.1" 200 - via_upstream rid=a8c9e3a3-cfb7-44ee-ace8-4fbda41ce5dc trace=01e54072d85d05e0581f230e565cd1af attempts=1 dur=16"#,
            false,
        ),
        (
            "json",
            r#"{"start_time":"2024-06-03T09:12:31.399Z","response_code":200,"response_flags":"-","method":"POST"}"#,
            true,
        ),
        (
            "json",
            r#"{"start_time":"2024-06-03T09:12:31.399Z","response_code":503,"response_flags":"-"}"#,
            false,
        ),
        (
            "json",
            r#"{"start_time":"2024-06-03T09:12:31.399Z","response_code":200,"response_flags":"UF"}"#,
            false,
        ),
        (
            "json",
            r#"{"response_code":200.5,"response_flags":"-"}"#,
            false,
        ),
        (
            "json",
            r#"{"response_code":200,"response_flags":"-","response_code":503}"#,
            false,
        ),
        (
            "json",
            r#"{"log":"{\"response_code\":200,\"response_flags\":\"-\"}","stream":"stdout"}"#,
            false,
        ),
    ];
    for (spec, line, want) in rows {
        assert_eq!(certified(spec, line), *want, "{spec}: {line}");
    }
}

#[test]
fn never_certifies_a_failure_in_the_scenario_logs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/explain");
    let mut checked = 0;
    let mut certified_lines = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "log") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let mut p = LineParser::auto();
        for (i, raw) in text.lines().enumerate() {
            let sure = p.is_plain_success(raw.as_bytes());
            let (_, payload) = strip_envelope(raw);
            let outcome = p.parse(&payload);
            checked += 1;
            if sure {
                certified_lines += 1;
                match &outcome {
                    // A cut line is still certified only by its status and flags.
                    LineOutcome::Record(r) | LineOutcome::Truncated { record: r, .. } => assert!(
                        r.status().is_some_and(|s| s < 400) && r.flags().is_empty(),
                        "{}:{}",
                        path.display(),
                        i + 1
                    ),
                    other => panic!("{}:{} certified but {other:?}", path.display(), i + 1),
                }
            }
        }
    }
    assert!(checked > 100, "{checked}");
    assert!(certified_lines > 10, "{certified_lines}");
}
