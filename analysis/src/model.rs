//! The evidence model: parsed log lines, lines that were not records, Kubernetes objects and
//! config dumps — what every analysis reads, whatever source it came from.

use std::collections::BTreeMap;
use std::sync::Arc;

use meshtrace_parsers::configdump::ConfigDump;
use meshtrace_parsers::record::RawRecord;
use serde::Serialize;
use serde_json::Value;

/// An access-log record and where it was read.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Input name.
    pub input: Arc<str>,
    /// 1-based first physical line.
    pub line: u64,
    /// Physical lines spanned.
    pub lines: u32,
    /// The envelope the line came in.
    pub envelope: &'static str,
    /// `namespace/pod` whose log this is, when the input says (bundle logs).
    pub pod: Option<Arc<str>>,
    /// The record.
    pub record: RawRecord<'static>,
}

/// A ztunnel connection line (Istio ambient) and where it was read.
#[derive(Debug, Clone)]
pub struct ConnLine {
    /// Input name.
    pub input: Arc<str>,
    /// 1-based line number.
    pub line: u64,
    /// `namespace/pod` whose log this is, when the input says (bundle logs).
    pub pod: Option<Arc<str>>,
    /// The connection.
    pub conn: meshtrace_parsers::ztunnel::Connection,
}

/// An endpoint picker's (EPP) line about one request and where it was read.
#[derive(Debug, Clone)]
pub struct EppLine {
    /// Input name.
    pub input: Arc<str>,
    /// 1-based line number.
    pub line: u64,
    /// `namespace/pod` whose log this is, when the input says (bundle logs).
    pub pod: Option<Arc<str>>,
    /// What the EPP logged.
    pub decision: meshtrace_parsers::epp::Decision,
}

/// A Knative activator or queue-proxy line about a request it could not proxy, and where it
/// was read.
#[derive(Debug, Clone)]
pub struct KnativeLine {
    /// Input name.
    pub input: Arc<str>,
    /// 1-based line number.
    pub line: u64,
    /// `namespace/pod` whose log this is, when the input says (bundle logs).
    pub pod: Option<Arc<str>>,
    /// What it logged.
    pub error: meshtrace_parsers::knative::ProxyError,
}

/// An HAProxy (OpenShift router) access-log line, and where it was read.
#[derive(Debug, Clone)]
pub struct RouterLine {
    /// Input name.
    pub input: Arc<str>,
    /// 1-based line number.
    pub line: u64,
    /// `namespace/pod` whose log this is, when the input says (bundle logs).
    pub pod: Option<Arc<str>>,
    /// What HAProxy logged.
    pub entry: meshtrace_parsers::haproxy::RouterLine,
}

/// A line that is not an access log.
#[derive(Debug, Clone)]
pub struct SkippedLine {
    /// Input name.
    pub input: Arc<str>,
    /// 1-based line number.
    pub line: u64,
    /// Stable kind (`istio-log`, `ztunnel`, …) or `malformed`.
    pub kind: String,
    /// Why it was skipped, or what was expected.
    pub reason: String,
    /// The line's text (for malformed lines), cut to a readable length.
    pub text: Option<String>,
}

/// Everything read from the inputs.
#[derive(Debug, Default)]
pub struct LogSet {
    /// Successful records counted but not kept (`LineFilter::Failed`).
    pub ok_records: u64,
    /// Inputs read with a filter (prefiltered or failures-only).
    pub filtered_inputs: usize,
    /// Records in input order.
    pub records: Vec<LogLine>,
    /// Lines that are not access logs, and malformed ones.
    pub skipped: Vec<SkippedLine>,
    /// ztunnel connection lines (also counted in `skipped` as kind `ztunnel`: they are not
    /// HTTP requests).
    pub connections: Vec<ConnLine>,
    /// Endpoint picker lines about requests (also counted in `skipped` as kind `epp`).
    pub epp: Vec<EppLine>,
    /// Knative activator and queue-proxy lines about requests they could not proxy (also
    /// counted in `skipped` as kind `knative`).
    pub knative: Vec<KnativeLine>,
    /// HAProxy (OpenShift router) access-log lines (also counted in `skipped` as kind
    /// `haproxy`).
    pub router: Vec<RouterLine>,
    /// Names of the inputs read, in order.
    pub inputs: Vec<String>,
    /// What reading left out of them on purpose (a bound reached), one sentence each.
    pub notes: Vec<String>,
}

/// Where the lines read from an input go: a [`LogSet`] keeps them; a streaming analysis
/// passes them on (see `crate::settle`).
pub trait LineSink {
    /// An access-log record.
    fn record(&mut self, line: LogLine);
    /// A line that is not an access-log record, or a malformed one.
    fn skipped(&mut self, line: SkippedLine);
    /// Successful records counted but not kept.
    fn ok_records(&mut self, n: u64);
    /// A ztunnel connection line. A sink that does not keep connections counts it as a
    /// skipped line of kind `ztunnel`, as it always did.
    fn connection(&mut self, line: ConnLine, skipped: SkippedLine) {
        let _ = line;
        self.skipped(skipped);
    }
    /// An endpoint picker line. A sink that does not keep them counts it as a skipped line of
    /// kind `epp`.
    fn epp(&mut self, line: EppLine, skipped: SkippedLine) {
        let _ = line;
        self.skipped(skipped);
    }
    /// A Knative proxy error line. A sink that does not keep them counts it as a skipped line
    /// of kind `knative`.
    fn knative(&mut self, line: KnativeLine, skipped: SkippedLine) {
        let _ = line;
        self.skipped(skipped);
    }
    /// An HAProxy (OpenShift router) access-log line. A sink that does not keep them counts it
    /// as a skipped line of kind `haproxy`.
    fn router(&mut self, line: RouterLine, skipped: SkippedLine) {
        let _ = line;
        self.skipped(skipped);
    }
}

impl LineSink for LogSet {
    fn record(&mut self, line: LogLine) {
        self.records.push(line);
    }
    fn skipped(&mut self, line: SkippedLine) {
        self.skipped.push(line);
    }
    fn ok_records(&mut self, n: u64) {
        self.ok_records += n;
    }
    fn connection(&mut self, line: ConnLine, skipped: SkippedLine) {
        self.connections.push(line);
        self.skipped.push(skipped);
    }
    fn epp(&mut self, line: EppLine, skipped: SkippedLine) {
        self.epp.push(line);
        self.skipped.push(skipped);
    }
    fn knative(&mut self, line: KnativeLine, skipped: SkippedLine) {
        self.knative.push(line);
        self.skipped.push(skipped);
    }
    fn router(&mut self, line: RouterLine, skipped: SkippedLine) {
        self.router.push(line);
        self.skipped.push(skipped);
    }
}

impl LogSet {
    /// Malformed lines only.
    pub fn malformed(&self) -> impl Iterator<Item = &SkippedLine> {
        self.skipped.iter().filter(|s| s.kind == "malformed")
    }
}

/// Did this record fail (so `LineFilter::Failed` keeps it)?
pub fn is_failed(r: &RawRecord<'_>) -> bool {
    match r.status() {
        None => true,
        Some(0) => {
            !(r.is_tcp()
                && r.flags().is_empty()
                && r.details().is_none_or(|d| d.base == "via_upstream"))
        }
        Some(s) => s >= 400 || !r.flags().is_empty(),
    }
}

/// A Kubernetes object of any kind, as read from the bundle.
#[derive(Debug, Clone)]
pub struct Object {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// Where it was read (`resources/x.yaml#2`).
    pub source: String,
    /// The whole object.
    pub value: Value,
}

impl Object {
    /// An object from its JSON, if it has a kind and a name.
    pub fn from_value(value: Value, source: String) -> Option<Object> {
        let kind = value.get("kind")?.as_str()?.to_string();
        let name = value.pointer("/metadata/name")?.as_str()?.to_string();
        Some(Object {
            api_version: value
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            kind,
            namespace: value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            name,
            source,
            value,
        })
    }

    /// `kind/namespace/name` (or `kind/name` for cluster-scoped objects).
    pub fn reference(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    /// `spec`, or null.
    pub fn spec(&self) -> &Value {
        self.value.get("spec").unwrap_or(&Value::Null)
    }

    /// A string label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.value
            .pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    }

    /// A string annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.value
            .pointer("/metadata/annotations")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    }

    /// The string at a JSON pointer (`/spec/host`).
    pub fn str_at(&self, ptr: &str) -> Option<&str> {
        self.value.pointer(ptr).and_then(Value::as_str)
    }

    /// The strings of the list at a JSON pointer (`/spec/hosts`); empty when there is none.
    pub fn strings_at(&self, ptr: &str) -> Vec<String> {
        strings(self.value.pointer(ptr))
    }

    /// The string entries of the map at a JSON pointer (`/spec/selector/matchLabels`); empty
    /// when there is none.
    pub fn string_map(&self, ptr: &str) -> BTreeMap<String, String> {
        self.value
            .pointer(ptr)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `status.conditions` entry of this type (`Ready`), if any.
    pub fn condition(&self, kind: &str) -> Option<&Value> {
        self.value
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
            })
    }
}

/// The strings of a JSON list (other items skipped); empty when `v` is not a list.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The Envoy config dump of one pod of a bundle.
#[derive(Debug, Clone)]
pub struct PodDump {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Path inside the bundle.
    pub path: String,
    /// The parsed dump.
    pub dump: ConfigDump,
}

/// A configuration object cited as evidence.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Cited {
    /// `kind/namespace/name`.
    pub object: String,
    /// Why it matters for this request.
    pub why: String,
}
