//! `meshtrace gather`: the must-gather mode. Collects the same bundle as `collect` under
//! `/must-gather` in the layout `oc adm must-gather --image=…` copies back (a `version` file, a
//! `timestamp` file, the bundle in `meshtrace/`), honours `MUST_GATHER_SINCE` and
//! `MUST_GATHER_SINCE_TIME`, and masks environment values so the output holds no secrets.
//! Run as `/usr/bin/gather` (a link to the binary) it behaves as `meshtrace gather`.

use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::commands::EXIT_OK;
use crate::commands::collect::LiveArgs;
use crate::source::limits::MAX_OBJECTS_BYTES;

/// Folder `oc adm must-gather` copies back from the gather pod (its `--source-dir` default).
pub const MUST_GATHER_DIR: &str = "/must-gather";
/// The bundle's folder under the destination.
pub const BUNDLE_DIR: &str = "meshtrace";
/// `oc adm must-gather --since` reaches the image as this variable (a Go duration, `2h0m0s`).
pub const SINCE_ENV: &str = "MUST_GATHER_SINCE";
/// `oc adm must-gather --since-time` reaches the image as this variable (RFC 3339).
pub const SINCE_TIME_ENV: &str = "MUST_GATHER_SINCE_TIME";
/// What replaces an environment variable's value in the gathered objects.
pub const MASKED: &str = "(masked by meshtrace gather)";

#[derive(Debug, clap::Args)]
pub struct GatherArgs {
    #[command(flatten)]
    pub live: LiveArgs,
    /// Folder to write into (the must-gather volume). The bundle goes to its `meshtrace/`
    /// folder, which must not exist or be empty.
    #[arg(long, value_name = "DIR", default_value = MUST_GATHER_DIR)]
    pub dest_dir: PathBuf,
    /// Skip the Envoy config dumps (port-forward / exec).
    #[arg(long)]
    pub no_config_dump: bool,
}

/// The process arguments, with `gather` inserted when the binary was started as `gather`
/// (`/usr/bin/gather` in the must-gather image links to `meshtrace`; `oc adm must-gather` runs
/// `/usr/bin/gather` without arguments, or the command given after `--`).
pub fn process_args() -> Vec<OsString> {
    with_gather_alias(std::env::args_os().collect())
}

fn with_gather_alias(mut args: Vec<OsString>) -> Vec<OsString> {
    let invoked_as_gather = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|n| n == "gather");
    if invoked_as_gather {
        args.insert(1, OsString::from("gather"));
    }
    args
}

/// A Go `time.Duration` string as `oc` passes it (`2h0m0s`, `90m`, `1.5h`, `300ms`), rounded up
/// to whole seconds (the log API counts whole seconds; rounding up loses no line).
pub fn parse_go_duration(s: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration such as 2h, 30m or 1h30m0s");
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || t.starts_with('-') {
        return Err(bad());
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let mut nanos: f64 = 0.0;
    let mut rest = t;
    // Each round consumes one `<number><unit>`: at most as many rounds as bytes.
    for _ in 0..t.len() {
        if rest.is_empty() {
            break;
        }
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, after) = rest.split_at(num_end);
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, tail) = after.split_at(unit_end);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        nanos += value * scale;
        rest = tail;
    }
    if !rest.is_empty() || !nanos.is_finite() || nanos > 1e9 * 1e12 {
        return Err(bad());
    }
    Ok(Duration::from_secs((nanos / 1e9).ceil() as u64))
}

/// The time window `oc adm must-gather --since/--since-time` asked for, when the command line
/// gave none.
fn window_from_env(live: &mut LiveArgs) -> Result<()> {
    if live.since.is_some() || live.since_time.is_some() {
        return Ok(());
    }
    if let Some(v) = std::env::var_os(SINCE_TIME_ENV).filter(|v| !v.is_empty()) {
        let v = v.to_string_lossy().into_owned();
        let t = v.trim().parse::<jiff::Timestamp>().map_err(|e| {
            anyhow::anyhow!(
                "{SINCE_TIME_ENV}={v:?} is not an RFC 3339 time such as 2024-06-03T09:10:00Z ({e}); pass --since-time to oc adm must-gather in that form"
            )
        })?;
        live.since_time = Some(t);
    } else if let Some(v) = std::env::var_os(SINCE_ENV).filter(|v| !v.is_empty()) {
        let v = v.to_string_lossy().into_owned();
        let d = parse_go_duration(&v).map_err(|e| {
            anyhow::anyhow!("{SINCE_ENV}: {e}; pass --since to oc adm must-gather in that form")
        })?;
        if !d.is_zero() {
            live.since = Some(d);
        }
    }
    Ok(())
}

/// Masks the value of every `env` entry (`{name, value}`) in a Kubernetes object, wherever
/// the pod template sits (Pods, Knative Services and Revisions, InferenceServices,
/// SeldonDeployments…). `valueFrom` references name a Secret or ConfigMap key, not its value,
/// and are kept. Returns how many values were masked. Depth is bounded by the JSON parser.
pub fn mask_env_values(v: &mut Value) -> usize {
    let mut n = 0;
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "env"
                    && let Value::Array(items) = child
                {
                    for item in items.iter_mut() {
                        if let Value::Object(e) = item
                            && e.contains_key("name")
                            && let Some(val) = e.get_mut("value")
                            && val.as_str().is_some_and(|s| !s.is_empty())
                        {
                            *val = Value::String(MASKED.to_string());
                            n += 1;
                        }
                    }
                } else {
                    n += mask_env_values(child);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                n += mask_env_values(item);
            }
        }
        _ => {}
    }
    n
}

/// Mask the environment values in every JSON file of the bundle outside `logs/` and
/// `config_dump/` (what `collect` writes: `pods.json` and `resources/…`). Returns the count and
/// the files that could not be masked (one sentence each).
fn mask_bundle(bundle: &Path) -> (usize, Vec<String>) {
    let mut files = vec![bundle.join("pods.json")];
    let mut dirs = vec![bundle.join("resources")];
    // Bounded: the bundle was just written by `collect` (one folder per namespace).
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                dirs.push(e.path());
            } else if ft.is_file() && e.path().extension().is_some_and(|x| x == "json") {
                files.push(e.path());
            }
        }
    }
    let mut masked = 0;
    let mut problems = Vec::new();
    for f in files {
        match mask_file(&f) {
            Ok(n) => masked += n,
            Err(e) => problems.push(format!("{}: {e:#}", f.display())),
        }
    }
    (masked, problems)
}

fn mask_file(path: &Path) -> Result<usize> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).context("cannot read it to mask environment values"),
    };
    let mut text = Vec::new();
    file.take(MAX_OBJECTS_BYTES + 1)
        .read_to_end(&mut text)
        .context("cannot read it to mask environment values")?;
    if text.len() as u64 > MAX_OBJECTS_BYTES {
        // Better no objects than objects with secrets in a must-gather.
        std::fs::remove_file(path).context("cannot remove it")?;
        bail!(
            "over {} MiB, so its environment values could not be masked: removed",
            MAX_OBJECTS_BYTES >> 20
        );
    }
    let mut v: Value = serde_json::from_slice(&text)
        .context("not JSON, so its environment values could not be masked")?;
    let n = mask_env_values(&mut v);
    if n > 0 {
        let f = crate::live::private::create_file(path).context("cannot rewrite it")?;
        let mut w = std::io::BufWriter::new(f);
        serde_json::to_writer_pretty(&mut w, &v).context("cannot rewrite it")?;
        std::io::Write::flush(&mut w).context("cannot rewrite it")?;
    }
    Ok(n)
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    let mut f = crate::live::private::create_file(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

const README: &str = "\
meshtrace must-gather

meshtrace/   an evidence bundle (see docs/bundle.md of meshtrace): the serving path's pods,
             Services and mesh objects, the proxies' access logs and Envoy config dumps.
             Environment values of the objects are masked.
version      the product (line 1) and its version (line 2)
timestamp    when gathering started (line 1) and ended (line 2), UTC

Read it with meshtrace, e.g. from the folder oc adm must-gather wrote:
  meshtrace failures --bundle must-gather.local.*/*/meshtrace
  meshtrace trace <x-request-id> --bundle must-gather.local.*/*/meshtrace
";

/// Run `gather`.
pub fn run(mut a: GatherArgs) -> Result<i32> {
    window_from_env(&mut a.live)?;
    let scoped = a.live.all_namespaces
        || !a.live.namespace.is_empty()
        || !a.live.pod.is_empty()
        || !a.live.selector.is_empty();
    if !scoped {
        // `/usr/bin/gather` without arguments: the pod's own namespace is a temporary one, so
        // the default gathering is every namespace's serving path.
        a.live.all_namespaces = true;
    }
    let dest = &a.dest_dir;
    let bundle = dest.join(BUNDLE_DIR);
    if std::fs::read_dir(&bundle).is_ok_and(|mut it| it.next().is_some()) {
        bail!(
            "{} exists and is not empty: choose another --dest-dir",
            bundle.display()
        );
    }
    crate::live::private::create_dir_all(dest).with_context(|| {
        format!(
            "cannot create {}; choose another --dest-dir",
            dest.display()
        )
    })?;
    write_text(
        &dest.join("version"),
        &format!("meshtrace\n{}\n", env!("CARGO_PKG_VERSION")),
    )?;
    let started = now();
    write_text(&dest.join("timestamp"), &format!("{started}\n"))?;
    write_text(&dest.join("README.txt"), README)?;

    let mut opts = a.live.options(!a.no_config_dump);
    opts.collector = format!("meshtrace {} (must-gather)", env!("CARGO_PKG_VERSION"));
    let result = crate::live::collect(&opts, &bundle);
    // The end time is written whatever happened: `oc adm must-gather` copies what is there.
    let ended = write_text(&dest.join("timestamp"), &format!("{started}\n{}\n", now()));
    let summary = result.context("gathering from the cluster failed")?;
    ended?;
    crate::commands::collect::report_summary(&summary);
    let (masked, problems) = mask_bundle(&bundle);
    for p in &problems {
        crate::report::warn(format!("not masked: {p}"));
    }
    if masked > 0 {
        crate::report::warn(format!(
            "{masked} environment value(s) in the gathered objects were masked"
        ));
    }
    crate::report::write_collect_summary(
        &mut crate::report::stdout(),
        &bundle.display().to_string(),
        &summary,
    )?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("2h0m0s"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "-5m",
            "5",
            "5x",
            "m",
            "1h30",
            "1e9h",
            "9999999999999999h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn started_as_gather() {
        let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            with_gather_alias(a(&["/usr/bin/gather", "-n", "ns"])),
            a(&["/usr/bin/gather", "gather", "-n", "ns"])
        );
        assert_eq!(with_gather_alias(a(&["gather"])), a(&["gather", "gather"]));
        assert_eq!(
            with_gather_alias(a(&["/usr/bin/meshtrace", "gather"])),
            a(&["/usr/bin/meshtrace", "gather"])
        );
        assert_eq!(
            with_gather_alias(a(&["/opt/gatherer", "x"])),
            a(&["/opt/gatherer", "x"])
        );
    }

    #[test]
    fn env_values_masked_everywhere_references_kept() {
        let mut v = json!({"items": [
            {"kind": "Pod", "spec": {
                "containers": [{"name": "kserve-container", "env": [
                    {"name": "AWS_SECRET_ACCESS_KEY", "value": "hunter2"},
                    {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    {"name": "EMPTY", "value": ""}
                ]}],
                "initContainers": [{"name": "storage-initializer", "env": [{"name": "TOKEN", "value": "t0k"}]}]
            }},
            {"kind": "Service", "apiVersion": "serving.knative.dev/v1",
             "spec": {"template": {"spec": {"containers": [{"env": [{"name": "X", "value": "y"}]}]}}}}
        ]});
        assert_eq!(mask_env_values(&mut v), 3);
        let s = v.to_string();
        for secret in ["hunter2", "t0k", "\"y\""] {
            assert!(!s.contains(secret), "{secret} left in {s}");
        }
        assert!(s.contains("secretKeyRef"));
        assert_eq!(
            v.pointer("/items/0/spec/containers/0/env/0/value"),
            Some(&json!(MASKED))
        );
    }
}
