//! One payload line in, one verdict out: which format it is in, or why it is not an access log.
//!
//! [`LineParser`] holds the formats to try (the built-ins, or one given by the user) and
//! remembers which one matched last, so a homogeneous log costs one match per line. Lines that
//! are recognisably something else (pilot-agent, ztunnel, Envoy's own log, Go/zap JSON) are
//! classified instead of being reported as malformed.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::builtins::{ENVOY_GATEWAY_JSON_KEYS, ISTIO_JSON_KEYS, builtin_text, compiled_builtins};
use crate::envelope::rfc3339_prefix_len;
use crate::format::{FormatError, MatchOutcome, Mismatch, Segment, Slot, TextFormat};
use crate::json::{JsonError, scan_object};
use crate::record::RawRecord;

mod gate;
mod infer;
mod repair;
mod shape;
pub use infer::FORMAT_NAME as KEYS_BY_NAME_FORMAT;
pub use shape::FORMAT_NAME as TEXT_BY_SHAPE_FORMAT;

/// A JSON access-log encoding: which key carries which operator.
#[derive(Debug, Clone)]
pub struct JsonFormat {
    name: Arc<str>,
    /// Sorted by key for binary search.
    keys: Vec<JsonKey>,
    /// Name to report when a key only Envoy Gateway uses is present (auto dictionary only).
    alt_name: Option<Arc<str>>,
    /// Cheap "certainly a success" test.
    probe: Option<Arc<JsonProbe>>,
    /// The key carrying `%RESPONSE_CODE%`: a line without it is not a record of this format.
    code_key: Option<String>,
    /// Attached to every record: what was assumed to read it (keys read by their names).
    note: Option<Arc<str>>,
}

/// The JSON form of [`crate::format::SuccessProbe`]: `"<code key>":` followed by a 1xx–3xx
/// number and `"<flags key>":"-"` somewhere in an object line.
#[derive(Debug)]
struct JsonProbe {
    code: memchr::memmem::Finder<'static>,
    flags: memchr::memmem::Finder<'static>,
}

impl JsonProbe {
    fn of(keys: &[JsonKey]) -> Option<Arc<JsonProbe>> {
        let only = |slot: Slot| {
            let mut it = keys.iter().filter(|k| k.slot == Some(slot));
            match (it.next(), it.next()) {
                (Some(k), None) if !k.key.contains(['"', '\\']) => Some(k.key.as_str()),
                _ => None,
            }
        };
        let code = only(Slot::ResponseCode)?;
        let flags = only(Slot::ResponseFlags)?;
        Some(Arc::new(JsonProbe {
            code: memchr::memmem::Finder::new(format!("\"{code}\":").as_bytes()).into_owned(),
            flags: memchr::memmem::Finder::new(format!("\"{flags}\":\"-\"").as_bytes())
                .into_owned(),
        }))
    }

    fn is_success(&self, line: &[u8]) -> bool {
        // Each key exactly once: with a duplicate, which one the parser keeps is not ours to guess.
        let once = |f: &memchr::memmem::Finder<'_>| {
            let first = f.find(line)?;
            let after = first + f.needle().len();
            f.find(&line[after..]).is_none().then_some(first)
        };
        if line.first() != Some(&b'{') || once(&self.flags).is_none() {
            return false;
        }
        let Some(p) = once(&self.code) else {
            return false;
        };
        let r = &line[p + self.code.needle().len()..];
        r.len() > 3
            && matches!(r[0], b'1'..=b'3')
            && r[1].is_ascii_digit()
            && r[2].is_ascii_digit()
            && !r[3].is_ascii_digit()
            && r[3] != b'.'
    }
}

#[derive(Debug, Clone)]
struct JsonKey {
    key: String,
    slot: Option<Slot>,
    op: Arc<str>,
    alt: bool,
    /// `START_TIME(fmt)`: how the slot's value is written.
    time_fmt: Option<Arc<str>>,
}

impl JsonFormat {
    /// The dictionary used by auto-detection: Istio's keys and Envoy Gateway's keys.
    pub fn auto() -> JsonFormat {
        let mut keys: Vec<JsonKey> = Vec::new();
        for (k, op) in ISTIO_JSON_KEYS {
            keys.push(json_key(k, op, false));
        }
        for (k, op) in ENVOY_GATEWAY_JSON_KEYS {
            if !keys.iter().any(|e| e.key == *k) {
                keys.push(json_key(k, op, true));
            }
        }
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        JsonFormat {
            name: Arc::from("istio-json"),
            probe: JsonProbe::of(&keys),
            code_key: code_key_of(&keys),
            keys,
            alt_name: Some(Arc::from("envoy-gateway-json")),
            note: None,
        }
    }

    /// A custom JSON format given as Envoy's `json_format` mapping `{"key": "%OPERATOR%", …}`.
    /// Values that are not a single operator are kept as named text fields.
    pub fn from_mapping(name: &str, mapping: &str) -> Result<JsonFormat, FormatSpecError> {
        let mut keys = Vec::new();
        let mut bad = None;
        let mut unknown = None;
        scan_object(mapping, |k, v| {
            let op = match v {
                crate::json::JsonValue::Str(s) => s.into_owned(),
                _ => {
                    bad.get_or_insert_with(|| k.to_string());
                    return;
                }
            };
            // A single operator (its argument may hold `%`, as in `%START_TIME(%s)%`) is kept
            // under its operator; any other template under its key.
            let trimmed = op.trim();
            let compiled = match TextFormat::compile("k", trimmed) {
                Err(e @ FormatError::UnknownOperator(..)) => {
                    unknown.get_or_insert((k.to_string(), e));
                    return;
                }
                c => c.ok(),
            };
            let single = compiled.and_then(|f| {
                let c = f.commands().first()?;
                (f.commands().len() == 1 && trimmed.len() == c.text.len() + 2)
                    .then(|| (c.slot, c.text.clone(), c.time_fmt.clone()))
            });
            let (slot, opname, time_fmt) = match single {
                Some(s) => s,
                None => (None, Arc::from(k.as_ref()), None),
            };
            keys.push(JsonKey {
                key: k.into_owned(),
                slot,
                op: opname,
                alt: false,
                time_fmt,
            });
        })
        .map_err(|e| FormatSpecError::BadJsonMapping(e.to_string()))?;
        if let Some((k, e)) = unknown {
            return Err(FormatSpecError::BadJsonMapping(format!("key {k:?}: {e}")));
        }
        if let Some(k) = bad {
            return Err(FormatSpecError::BadJsonMapping(format!(
                "the value of key {k:?} must be a string such as \"%RESPONSE_CODE%\""
            )));
        }
        // One key per slot, as in TEXT formats: the first key (in mapping order) that maps to a
        // slot fills it; later keys for the same slot are kept as text under their operator.
        let mut claimed = [false; Slot::COUNT];
        for k in &mut keys {
            if let Some(slot) = k.slot {
                if claimed[slot as usize] {
                    k.slot = None;
                    k.time_fmt = None;
                } else {
                    claimed[slot as usize] = true;
                }
            }
        }
        if !keys.iter().any(|k| k.slot.is_some()) {
            return Err(FormatSpecError::BadJsonMapping(
                "no key maps to an operator meshtrace understands (e.g. \"%RESPONSE_CODE%\")"
                    .into(),
            ));
        }
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(JsonFormat {
            name: Arc::from(name),
            probe: JsonProbe::of(&keys),
            code_key: code_key_of(&keys),
            keys,
            alt_name: None,
            note: None,
        })
    }

    /// Name of the format.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entry for `key`. `hint` is where the previous key of the line was found: logs write
    /// their keys in one order on every line, and Istio's default JSON in sorted order, so the
    /// next few entries are tried before the binary search. Updated to this key's place.
    fn lookup(&self, key: &str, hint: &mut usize) -> Option<&JsonKey> {
        let near = self.keys.get(*hint..).unwrap_or(&[]).iter().take(4);
        for (i, e) in near.enumerate() {
            if e.key.len() == key.len() && e.key == key {
                *hint += i + 1;
                return Some(e);
            }
        }
        let i = self
            .keys
            .binary_search_by(|e| e.key.as_str().cmp(key))
            .ok()?;
        *hint = i + 1;
        self.keys.get(i)
    }

    /// Parse one JSON line: a record, or why this valid JSON object is not one ([`JsonMiss`]).
    ///
    /// Every member is kept: keys of the format fill their slot (the first one per slot) or are
    /// kept as text under their operator; keys the format does not know are kept as text under
    /// their own name (`null` as `-`), however many there are — the line length is capped
    /// before this. A line of a known key set allocates nothing beyond the values it unescapes.
    pub fn parse<'a>(&self, line: &'a str) -> Result<Result<RawRecord<'a>, JsonMiss>, JsonError> {
        let mut rec = RawRecord::new(self.name.clone());
        let mut alt = false;
        let mut hint = 0;
        scan_object(line, |k, v| {
            let text = v.into_text().unwrap_or(Cow::Borrowed("-"));
            match self.lookup(&k, &mut hint) {
                Some(jk) => {
                    alt |= jk.alt;
                    match jk.slot {
                        Some(slot) if rec.get(slot).is_none() => {
                            rec.set(slot, text);
                            if let Some(tf) = &jk.time_fmt {
                                rec.set_time_format(tf.clone());
                            }
                        }
                        _ => rec.push_extra(jk.op.clone(), text),
                    }
                }
                None => rec.push_extra(Arc::from(k.as_ref()), text),
            }
        })?;
        if alt && let Some(n) = &self.alt_name {
            rec.set_format(n.clone());
        }
        if let Some(n) = &self.note {
            rec.notes.push(n.clone());
        }
        let typed = rec.slots().count();
        let key_field = [
            Slot::ResponseCode,
            Slot::ResponseFlags,
            Slot::UpstreamCluster,
            Slot::Method,
        ]
        .iter()
        .any(|s| rec.get(*s).is_some());
        let code_ok = self.code_key.is_none() || rec.get(Slot::ResponseCode).is_some();
        if typed >= 3 && key_field && code_ok {
            return Ok(Ok(rec));
        }
        // Not a record: name the keys (a second scan, only on this path).
        let mut keys = Vec::new();
        let _ = scan_object(line, |k, _| keys.push(k.into_owned()));
        // Several fields of the format, or its status key: an access log in another key set.
        if typed >= 3 || rec.get(Slot::ResponseCode).is_some() {
            let matched = rec.slots().map(|(s, _)| s.key().to_string()).collect();
            Ok(Err(JsonMiss::UnknownKeySet {
                keys,
                matched,
                code_key: self.code_key.clone(),
                auto: self.alt_name.is_some(),
            }))
        } else {
            Ok(Err(JsonMiss::NotAccessLog { keys }))
        }
    }
}

/// Why a valid JSON object is not a record of a [`JsonFormat`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonMiss {
    /// Too few keys of the format: another kind of JSON log (Go/zap, Knative components).
    NotAccessLog {
        /// The line's keys, in order.
        keys: Vec<String>,
    },
    /// Several keys of the format, but not a record of it (no response code): an access log
    /// whose keys do not match this key set — a custom `json_format`.
    UnknownKeySet {
        /// The line's keys, in order.
        keys: Vec<String>,
        /// The typed fields the format did recognise.
        matched: Vec<String>,
        /// The key the format expects the response code under, if it has one.
        code_key: Option<String>,
        /// The format is the built-in dictionary (Istio's and Envoy Gateway's keys).
        auto: bool,
    },
}

impl JsonMiss {
    /// The line's keys.
    pub fn keys(&self) -> &[String] {
        match self {
            JsonMiss::NotAccessLog { keys } | JsonMiss::UnknownKeySet { keys, .. } => keys,
        }
    }

    /// What was expected, for a [`Malformed`] line.
    pub fn expectation(&self) -> String {
        match self {
            JsonMiss::NotAccessLog { keys } => {
                format!("access-log keys (this line has {})", list_keys(keys))
            }
            JsonMiss::UnknownKeySet {
                keys,
                matched,
                code_key,
                auto,
            } => {
                let set = if *auto {
                    "a known JSON access-log key set (Istio's or Envoy Gateway's)"
                } else {
                    "the keys of the --log-format mapping"
                };
                let no_code = match code_key {
                    Some(c) if !matched.iter().any(|m| m == Slot::ResponseCode.key()) => {
                        format!("; no {c:?} with the response code")
                    }
                    _ => String::new(),
                };
                format!(
                    "{set}, but this line's keys do not match it (keys: {}; recognised: {}{no_code}); for a custom json_format pass its mapping: --log-format '{{\"<key>\":\"%OPERATOR%\",...}}' (e.g. '{{\"status\":\"%RESPONSE_CODE%\"}}') or --log-format @FILE",
                    list_keys(keys),
                    matched.join(", ")
                )
            }
        }
    }
}

/// A readable list of keys: the first eight, then how many more.
fn list_keys(keys: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = keys
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        s.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    s
}

/// The key that carries the response code (the first, in key order, if several).
fn code_key_of(keys: &[JsonKey]) -> Option<String> {
    keys.iter()
        .find(|k| k.slot == Some(Slot::ResponseCode))
        .map(|k| k.key.clone())
}

fn json_key(k: &str, op: &str, alt: bool) -> JsonKey {
    let f = TextFormat::compile("k", &format!("%{op}%")).ok();
    let slot = f.as_ref().and_then(|f| f.commands()[0].slot);
    JsonKey {
        key: k.to_string(),
        slot,
        op: Arc::from(op),
        alt,
        time_fmt: None,
    }
}

/// Error in a `--log-format` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatSpecError {
    /// Neither a built-in name, a format string nor a JSON mapping.
    #[error(
        "unknown log format {0:?}: use `auto`, a built-in ({1}), `json`, an Envoy format string with %OPERATORS%, or a JSON mapping {{\"key\": \"%OPERATOR%\"}}"
    )]
    Unknown(String, String),
    /// The format string did not compile.
    #[error("bad format string: {0}")]
    BadText(#[from] FormatError),
    /// The JSON mapping is not usable.
    #[error("bad JSON format mapping: {0}")]
    BadJsonMapping(String),
}

/// What to parse lines as.
#[derive(Debug, Clone)]
pub enum FormatSpec {
    /// Try the built-ins (text) and the JSON dictionaries.
    Auto,
    /// One TEXT format.
    Text(Arc<TextFormat>),
    /// One JSON encoding.
    Json(Arc<JsonFormat>),
}

impl FormatSpec {
    /// Parse a `--log-format` value.
    pub fn parse(spec: &str) -> Result<FormatSpec, FormatSpecError> {
        let t = spec.trim();
        if t.eq_ignore_ascii_case("auto") || t.is_empty() {
            return Ok(FormatSpec::Auto);
        }
        if t.eq_ignore_ascii_case("json")
            || t.eq_ignore_ascii_case("istio-json")
            || t.eq_ignore_ascii_case("envoy-gateway-json")
        {
            return Ok(FormatSpec::Json(Arc::new(JsonFormat::auto())));
        }
        if let Some(b) = builtin_text(t) {
            // Reuse the process-wide compiled built-ins.
            if let Some(f) = compiled_builtins().iter().find(|f| f.name() == b.name) {
                return Ok(FormatSpec::Text(f.clone()));
            }
            return Ok(FormatSpec::Text(Arc::new(TextFormat::compile(
                b.name, b.format,
            )?)));
        }
        if t.starts_with('{') {
            return Ok(FormatSpec::Json(Arc::new(JsonFormat::from_mapping(
                "custom-json",
                t,
            )?)));
        }
        if t.contains('%') {
            return Ok(FormatSpec::Text(Arc::new(TextFormat::compile(
                "custom", spec,
            )?)));
        }
        let names: Vec<&str> = crate::builtins::BUILTIN_TEXT
            .iter()
            .map(|b| b.name)
            .collect();
        Err(FormatSpecError::Unknown(spec.to_string(), names.join(", ")))
    }
}

/// A line that is recognisably not an Envoy access-log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAccessLog {
    /// istio-agent / pilot-agent / istiod text log (`<ts>\t<level>\t…`).
    IstioLog {
        /// The log level.
        level: String,
    },
    /// ztunnel's L4 access log (`<ts>\tinfo\taccess\tconnection complete …`, or its JSON
    /// form): one connection, read by [`crate::ztunnel`].
    Ztunnel(Box<crate::ztunnel::Connection>),
    /// The endpoint picker's (Gateway API Inference Extension EPP) line about one request: the
    /// endpoint it picked or why it refused, read by [`crate::epp`].
    Epp(Box<crate::epp::Decision>),
    /// Knative's activator or queue-proxy line about a request it could not proxy (`error
    /// reverse proxying request`), read by [`crate::knative`].
    Knative(Box<crate::knative::ProxyError>),
    /// HAProxy's access-log line (the OpenShift router's, when its access log is on), read by
    /// [`crate::haproxy`].
    Router(Box<crate::haproxy::RouterLine>),
    /// Envoy's own application log (`[ts][thread][level][logger] …`).
    EnvoyLog {
        /// The log level.
        level: String,
    },
    /// A JSON log line without access-log fields (Go/zap, Knative components).
    JsonLog {
        /// The line's keys.
        keys: Vec<String>,
    },
    /// A key=value application log (logrus `time="…" level=… msg=…`, logfmt).
    KeyValueLog,
    /// A Kubernetes klog line (`I0501 10:00:00.123456   1 file.go:42] …`).
    Klog,
    /// A `#` comment line.
    Comment,
    /// What a terminal showed besides the log, pasted with it: a shell command and its prompt,
    /// kubectl's notices (`Defaulted container …`, `Found 2 pods, using pod/…`) and errors,
    /// `tail`'s file headers.
    Terminal {
        /// Which of these.
        what: &'static str,
    },
}

impl fmt::Display for NotAccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotAccessLog::IstioLog { level } => write!(
                f,
                "istio-agent/pilot-agent log line (level {level}), not an access log"
            ),
            NotAccessLog::Ztunnel(_) => {
                f.write_str("ztunnel L4 access log (ambient), not an Envoy HTTP record")
            }
            NotAccessLog::Epp(_) => {
                f.write_str("endpoint picker (EPP) log line about a request, not an access log")
            }
            NotAccessLog::Knative(e) => write!(
                f,
                "{} line about a request it could not proxy, not an access log",
                e.component.name()
            ),
            NotAccessLog::Router(_) => {
                f.write_str("HAProxy (OpenShift router) access-log line, not an Envoy record")
            }
            NotAccessLog::EnvoyLog { level } => write!(
                f,
                "Envoy application log line (level {level}), not an access log"
            ),
            NotAccessLog::JsonLog { keys } => write!(
                f,
                "JSON log line without access-log fields (keys: {})",
                list_keys(keys)
            ),
            NotAccessLog::KeyValueLog => {
                f.write_str("key=value application log line (logrus/logfmt), not an access log")
            }
            NotAccessLog::Klog => {
                f.write_str("klog line of a Kubernetes component, not an access log")
            }
            NotAccessLog::Comment => f.write_str("comment line"),
            NotAccessLog::Terminal { what } => {
                write!(f, "{what} pasted with the log, not an access log")
            }
        }
    }
}

impl NotAccessLog {
    /// Short stable identifier.
    pub fn kind(&self) -> &'static str {
        match self {
            NotAccessLog::IstioLog { .. } => "istio-log",
            NotAccessLog::Ztunnel(_) => "ztunnel",
            NotAccessLog::Epp(_) => "epp",
            NotAccessLog::Knative(_) => "knative",
            NotAccessLog::Router(_) => "haproxy",
            NotAccessLog::EnvoyLog { .. } => "envoy-log",
            NotAccessLog::JsonLog { .. } => "json-log",
            NotAccessLog::KeyValueLog => "kv-log",
            NotAccessLog::Klog => "klog",
            NotAccessLog::Comment => "comment",
            NotAccessLog::Terminal { .. } => "terminal",
        }
    }
}

/// A line that looked like it should be an access log but is not in any known format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Closest format tried.
    pub format: Option<String>,
    /// 0-based byte column of the failure.
    pub column: usize,
    /// What was expected there.
    pub expected: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.format {
            Some(n) => write!(
                f,
                "not an access log in a known format (closest: {n}, column {}: expected {})",
                self.column + 1,
                self.expected
            ),
            None => write!(f, "column {}: expected {}", self.column + 1, self.expected),
        }
    }
}

/// The verdict on one payload line.
// Records stay inline (no Box) so the per-line hot path does not allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum LineOutcome<'a> {
    /// A complete record (possibly with its start cut off: see `record.missing`).
    Record(RawRecord<'a>),
    /// The line ended before the format did.
    Truncated {
        /// What was there.
        record: RawRecord<'a>,
        /// Fields matched.
        fields: usize,
    },
    /// Not an access-log line.
    NotAccessLog(NotAccessLog),
    /// Unparseable.
    Malformed(Malformed),
    /// Empty or whitespace only.
    Blank,
}

/// Parses payload lines of one input, remembering the last format that matched.
#[derive(Debug, Clone)]
pub struct LineParser {
    text: Vec<Arc<TextFormat>>,
    json: Option<Arc<JsonFormat>>,
    fixed: bool,
    last: usize,
    /// The cheap shape test of the TEXT formats (see [`gate`]).
    gates: Arc<gate::Gates>,
    /// Off only in tests that check the gates change no verdict.
    gated: bool,
    /// A JSON format read from key names (auto-detection only), tried first once found.
    by_key_names: Option<Arc<JsonFormat>>,
    /// TEXT formats read from the shape of a line's fields (auto-detection only; at most
    /// [`MAX_BY_SHAPE`]), each with the note its records carry.
    by_shape: Vec<(Arc<TextFormat>, Arc<str>)>,
    /// Which of `by_shape` read the last record, if one did (tried first then).
    shape_last: Option<usize>,
    /// Formats read by shape from lines a built-in reads only as cut short, each with a hash
    /// of the first line that read so (at most [`MAX_SHAPE_VOTES`] formats).
    shape_votes: Vec<(Box<str>, u64)>,
}

/// Most formats counted by [`LineParser::shape_vote`].
const MAX_SHAPE_VOTES: usize = 16;

/// Most TEXT formats one parser reads by shape (see [`shape`]); a log whose lines would need
/// more is not one proxy's custom format.
const MAX_BY_SHAPE: usize = 4;

/// Longest line parsed as a possible access-log record.
pub const MAX_LINE_LEN: usize = 1 << 20;

/// Minimum fields a cut or truncated line must carry to count as a record.
const MIN_FIELDS: usize = 4;

/// Leading fields a pasted line may be missing (its cut-off start).
const RESUME_FIELDS: usize = 3;

fn gates_of(text: &[Arc<TextFormat>]) -> Arc<gate::Gates> {
    Arc::new(gate::Gates::new(text, MIN_FIELDS, RESUME_FIELDS))
}

impl LineParser {
    /// Auto-detect among the built-ins.
    pub fn auto() -> LineParser {
        let text = crate::builtins::BUILTIN_TEXT
            .iter()
            .zip(compiled_builtins())
            .filter(|(b, _)| b.detect)
            .map(|(_, f)| f.clone())
            .collect::<Vec<_>>();
        static AUTO_GATES: std::sync::OnceLock<Arc<gate::Gates>> = std::sync::OnceLock::new();
        let gates = AUTO_GATES.get_or_init(|| gates_of(&text)).clone();
        LineParser {
            text,
            json: Some(Arc::new(JsonFormat::auto())),
            fixed: false,
            last: 0,
            gates,
            gated: true,
            by_key_names: None,
            by_shape: Vec::new(),
            shape_last: None,
            shape_votes: Vec::new(),
        }
    }

    /// Use one format.
    pub fn new(spec: &FormatSpec) -> LineParser {
        match spec {
            FormatSpec::Auto => LineParser::auto(),
            FormatSpec::Text(t) => LineParser {
                text: vec![t.clone()],
                json: None,
                fixed: true,
                last: 0,
                gates: gates_of(std::slice::from_ref(t)),
                gated: true,
                by_key_names: None,
                by_shape: Vec::new(),
                shape_last: None,
                shape_votes: Vec::new(),
            },
            FormatSpec::Json(j) => LineParser {
                text: Vec::new(),
                json: Some(j.clone()),
                fixed: true,
                last: 0,
                gates: gates_of(&[]),
                gated: true,
                by_key_names: None,
                by_shape: Vec::new(),
                shape_last: None,
                shape_votes: Vec::new(),
            },
        }
    }

    /// Is `line` (a payload without envelope) certainly a successful request (status 1xx–3xx,
    /// no response flags) in the format that matched last? A cheap test that never parses:
    /// `false` means "parse it to know", never "it failed".
    pub fn is_plain_success(&self, line: &[u8]) -> bool {
        if line.first() == Some(&b'{') {
            return self
                .json
                .as_ref()
                .and_then(|j| j.probe.as_ref())
                .is_some_and(|p| p.is_success(line));
        }
        if let Some(i) = self.shape_last {
            return self
                .by_shape
                .get(i)
                .and_then(|(f, _)| f.success_probe())
                .is_some_and(|p| p.is_success(line));
        }
        let last = self.last.min(self.text.len().saturating_sub(1));
        self.text
            .get(last)
            .and_then(|f| f.success_probe())
            .is_some_and(|p| p.is_success(line))
    }

    /// Classify one payload line (envelope already removed). A line no format reads is tried
    /// once more repaired (see the `repair` module); a record read that way carries a note saying what
    /// was put back.
    pub fn parse<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let out = self.parse_once(line);
        if let LineOutcome::Record(rec) | LineOutcome::Truncated { record: rec, .. } = &out
            && markdown_in_values(rec)
            && let Some(fixed) = repair::markdown_residue(line)
            && let LineOutcome::Record(clean) = self.parse_once(&fixed)
        {
            let mut clean = clean.into_owned();
            clean.notes.push(Arc::from(format!(
                "line repaired before reading: {}",
                repair::MARKDOWN_RESIDUE
            )));
            return LineOutcome::Record(clean);
        }
        if !matches!(out, LineOutcome::Malformed(_)) {
            return out;
        }
        let Some((fixed, what)) = repair::repair(line) else {
            return out;
        };
        // A repaired line may still be cut short (pasted lines often are): it is read as the
        // undamaged cut line would be.
        match self.parse_once(&fixed) {
            LineOutcome::Record(rec) => {
                let mut rec = rec.into_owned();
                rec.notes.push(Arc::from(what));
                LineOutcome::Record(rec)
            }
            LineOutcome::Truncated { record, fields } => {
                let mut record = record.into_owned();
                record.notes.push(Arc::from(what));
                LineOutcome::Truncated { record, fields }
            }
            _ => out,
        }
    }

    fn parse_once<'a>(&mut self, line: &'a str) -> LineOutcome<'a> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            return LineOutcome::Blank;
        }
        // No access-log record comes near this (Envoy caps headers far below it); refusing at
        // once keeps a runaway line linear instead of re-scanning it per format.
        if line.len() > MAX_LINE_LEN {
            return LineOutcome::Malformed(Malformed {
                format: None,
                column: MAX_LINE_LEN,
                expected: format!(
                    "a line shorter than {} bytes (this one has {})",
                    MAX_LINE_LEN,
                    line.len()
                ),
            });
        }
        let first = line.as_bytes()[0];
        if first == b'{'
            && let Some(j) = &self.json
        {
            let j = j.clone();
            if let Some(rec) = self.by_key_names_first(line) {
                return LineOutcome::Record(rec);
            }
            let parsed = j.parse(line);
            if matches!(parsed, Ok(Err(_)))
                && let Some(rec) = self.read_by_key_names(line)
            {
                return LineOutcome::Record(rec);
            }
            return match parsed {
                Ok(Ok(rec)) => LineOutcome::Record(rec),
                Ok(Err(JsonMiss::NotAccessLog { keys })) => {
                    match keys.iter().any(|k| k == "src.addr" || k == "dst.addr") {
                        true => crate::ztunnel::parse_json(line)
                            .map(|c| NotAccessLog::Ztunnel(Box::new(c))),
                        false => None,
                    }
                    .or_else(|| {
                        keys.iter()
                            .any(|k| k == "x-request-id")
                            .then(|| crate::epp::parse_json(line))
                            .flatten()
                            .map(|d| NotAccessLog::Epp(Box::new(d)))
                    })
                    .or_else(|| {
                        keys.iter()
                            .any(|k| k == "logger" || k == "knative.dev/controller")
                            .then(|| crate::knative::parse_json(line))
                            .flatten()
                            .map(|e| NotAccessLog::Knative(Box::new(e)))
                    })
                    .map_or(
                        LineOutcome::NotAccessLog(NotAccessLog::JsonLog { keys }),
                        LineOutcome::NotAccessLog,
                    )
                }
                Ok(Err(miss)) => LineOutcome::Malformed(Malformed {
                    format: None,
                    column: 0,
                    expected: miss.expectation(),
                }),
                Err(e) => LineOutcome::Malformed(Malformed {
                    format: Some(j.name().to_string()),
                    column: e.column,
                    expected: e.expected.to_string(),
                }),
            };
        }
        // A log read by the shape of its fields: that reading first.
        if self.shape_last.is_some() {
            if let Some(rec) = self.by_shape_known(line) {
                return LineOutcome::Record(rec);
            }
            self.shape_last = None;
        }
        // The format that matched last time first: a log's lines are nearly all in one format,
        // and a line it reads in full passes the shape test below (which checks only what
        // the matcher checks first), so that test is left for the other lines.
        let last = self.last.min(self.text.len().saturating_sub(1));
        let mut tried = match self.text.get(last).map(|f| f.match_line(line)) {
            Some(MatchOutcome::Full(rec)) => return LineOutcome::Record(rec),
            other => other,
        };
        // The cheap shape test: most lines that are not access logs cannot be read as a
        // record of any format, from their start or as a cut line, and are only classified.
        let bytes = line.as_bytes();
        let could_resume = |p: &LineParser| !p.gated || p.gates.could_resume(bytes);
        if self.gated && !self.gates.could_start(bytes) {
            if let Some(rec) = crate::agentgateway::parse(line) {
                return LineOutcome::Record(rec);
            }
            if let Some(rec) = self.read_by_shape(line) {
                return LineOutcome::Record(rec);
            }
            if let Some(n) = recognise_other(line) {
                return LineOutcome::NotAccessLog(n);
            }
            if could_resume(self)
                && let Some(out) = self.resume(line)
            {
                return out;
            }
            return LineOutcome::Malformed(self.why_not(line));
        }
        // The format that matched last time (tried above), then the others.
        let order = std::iter::once(last).chain((0..self.text.len()).filter(|&i| i != last));
        let mut best_trunc: Option<(RawRecord<'a>, usize, usize)> = None;
        let mut best_mis: Option<(usize, Mismatch)> = None;
        // A format the line does not even start like is the closest only when every format
        // refuses it so (then the first tried); see `refuses_at_once`.
        let mut first_refusal: Option<(usize, Mismatch)> = None;
        let mut started = false;
        for i in order {
            let Some(f) = self.text.get(i) else { break };
            let refused = refuses_at_once(f, line);
            started |= !refused;
            let tried = if i == last { tried.take() } else { None };
            let outcome = tried.unwrap_or_else(|| f.match_line(line));
            match outcome {
                MatchOutcome::Full(rec) => {
                    self.last = i;
                    return LineOutcome::Record(rec);
                }
                MatchOutcome::Truncated {
                    mut record,
                    fields_matched,
                    stopped_at,
                } => {
                    if best_trunc
                        .as_ref()
                        .is_none_or(|(_, n, _)| fields_matched > *n)
                    {
                        record.missing = f.slots_from(stopped_at);
                        best_trunc = Some((record, fields_matched, i));
                    }
                }
                MatchOutcome::Mismatch(m) if refused => {
                    first_refusal.get_or_insert((i, m));
                }
                MatchOutcome::Mismatch(m) => {
                    if best_mis.as_ref().is_none_or(|(_, b)| {
                        (m.fields_matched, m.column) > (b.fields_matched, b.column)
                    }) {
                        best_mis = Some((i, m));
                    }
                }
            }
        }
        if !started {
            best_mis = first_refusal;
        }
        if let Some((record, fields, i)) = best_trunc
            && fields >= MIN_FIELDS
        {
            // A log whose every line ends at the same operator is a custom format that leaves
            // the rest out, not lines cut short: once two lines read by shape alike, it is read
            // that way, every field kept.
            if let Some(rec) = self.by_shape_known(line) {
                return LineOutcome::Record(rec);
            }
            if self.shape_vote(line)
                && let Some(rec) = self.read_by_shape(line)
            {
                return LineOutcome::Record(rec);
            }
            self.last = i;
            return LineOutcome::Truncated { record, fields };
        }
        if let Some(rec) = crate::agentgateway::parse(line) {
            return LineOutcome::Record(rec);
        }
        if let Some(rec) = self.read_by_shape(line) {
            return LineOutcome::Record(rec);
        }
        if let Some(n) = recognise_other(line) {
            return LineOutcome::NotAccessLog(n);
        }
        // Paste mode: the beginning of the line (e.g. `[START_TIME] "`) was cut off.
        if could_resume(self)
            && let Some(out) = self.resume(line)
        {
            return out;
        }
        LineOutcome::Malformed(self.malformed(best_mis))
    }

    /// A custom JSON log whose key names were read before: try that reading first.
    fn by_key_names_first<'a>(&self, line: &'a str) -> Option<RawRecord<'a>> {
        match self.by_key_names.as_ref()?.parse(line) {
            Ok(Ok(rec)) => Some(rec),
            _ => None,
        }
    }

    /// A JSON line no known key set fits, read by its key names when they say enough (see
    /// [`infer`]); auto-detection only: a `--log-format` given is never second-guessed.
    fn read_by_key_names<'a>(&mut self, line: &'a str) -> Option<RawRecord<'a>> {
        if self.fixed {
            return None;
        }
        let f = Arc::new(infer::infer(line)?);
        let rec = match f.parse(line) {
            Ok(Ok(rec)) => rec,
            _ => return None,
        };
        self.by_key_names = Some(f);
        Some(rec)
    }

    /// A TEXT line read by a format found earlier from the shape of a line's fields.
    fn by_shape_known<'a>(&mut self, line: &'a str) -> Option<RawRecord<'a>> {
        for (i, (f, note)) in self.by_shape.iter().enumerate() {
            if let MatchOutcome::Full(mut rec) = f.match_line(line) {
                rec.notes.push(note.clone());
                self.shape_last = Some(i);
                return Some(rec);
            }
        }
        None
    }

    /// Has another line that a built-in reads only as cut short read by shape as this one
    /// does (see [`LineParser::parse_once`])? Counts this line's vote.
    fn shape_vote(&mut self, line: &str) -> bool {
        if self.fixed || !line.starts_with('[') {
            return false;
        }
        let Some(f) = shape::infer(line) else {
            return false;
        };
        // The same line may be parsed more than once (a reader that tries to join a cut line
        // with the next one parses it again): only another line counts as a second vote.
        let this = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            line.hash(&mut h);
            h.finish()
        };
        let source = f.source();
        match self.shape_votes.iter().find(|(s, _)| &**s == source) {
            Some(&(_, first)) => first != this,
            None => {
                if self.shape_votes.len() < MAX_SHAPE_VOTES {
                    self.shape_votes.push((source.into(), this));
                }
                false
            }
        }
    }

    /// A TEXT line no known format reads, read by the shape of its fields when they say
    /// enough (see [`shape`]); auto-detection only: a `--log-format` given is never
    /// second-guessed. The format found is kept for the lines that follow.
    fn read_by_shape<'a>(&mut self, line: &'a str) -> Option<RawRecord<'a>> {
        if self.fixed || !line.starts_with('[') {
            return None;
        }
        if let Some(rec) = self.by_shape_known(line) {
            return Some(rec);
        }
        if self.by_shape.len() >= MAX_BY_SHAPE {
            return None;
        }
        let f = Arc::new(shape::infer(line)?);
        let note: Arc<str> = Arc::from(format!(
            "no built-in format fits this line; read by the shape of its fields as `{}` (if \
             that is wrong, pass the proxy's access-log format with --log-format)",
            f.source().trim_end()
        ));
        self.by_shape.push((f, note));
        self.by_shape_known(line)
    }

    /// Why a line that is no record is not one: what the format closest to matching expected.
    fn malformed(&self, best_mis: Option<(usize, Mismatch)>) -> Malformed {
        match best_mis {
            Some((i, m)) => Malformed {
                format: if self.fixed {
                    None
                } else {
                    self.text.get(i).map(|f| f.name().to_string())
                },
                column: m.column,
                expected: m.expected,
            },
            None => Malformed {
                format: None,
                column: 0,
                expected: "an access-log line".into(),
            },
        }
    }

    /// [`LineParser::malformed`] for a line the gates refused: the same verdict as matching
    /// every format, without matching when none of them can get past its first literal.
    fn why_not(&self, line: &str) -> Malformed {
        let last = self.last.min(self.text.len().saturating_sub(1));
        let order = std::iter::once(last).chain((0..self.text.len()).filter(|&i| i != last));
        if !self.text.is_empty() && self.text.iter().all(|f| refuses_at_once(f, line)) {
            // Every format fails at column 1 with no field matched: the first tried is closest.
            if let Some(f) = self.text.get(last)
                && let MatchOutcome::Mismatch(m) = f.match_line(line)
            {
                return self.malformed(Some((last, m)));
            }
        }
        let mut best_mis: Option<(usize, Mismatch)> = None;
        for i in order {
            let Some(f) = self.text.get(i) else { break };
            // A format the line does not even start like is no closer than one it does start
            // like that ended early (`ACCESS [` is not what a cut `[2024-…` line missed).
            if refuses_at_once(f, line) {
                continue;
            }
            if let MatchOutcome::Mismatch(m) = f.match_line(line)
                && best_mis.as_ref().is_none_or(|(_, b)| {
                    (m.fields_matched, m.column) > (b.fields_matched, b.column)
                })
            {
                best_mis = Some((i, m));
            }
        }
        self.malformed(best_mis)
    }

    fn resume<'a>(&mut self, line: &'a str) -> Option<LineOutcome<'a>> {
        let mut best: Option<(LineOutcome<'a>, usize, usize)> = None;
        for (i, f) in self.text.iter().enumerate() {
            for (seg, off) in f.resume_points(RESUME_FIELDS) {
                match f.match_from(line, seg, off) {
                    MatchOutcome::Full(mut rec) if rec.get(Slot::ResponseCode).is_some() => {
                        rec.missing = f.slots_before(seg);
                        let n = rec.slots().count();
                        if best.as_ref().is_none_or(|(_, b, _)| n > *b) {
                            best = Some((LineOutcome::Record(rec), n + 1000, i));
                        }
                        break;
                    }
                    MatchOutcome::Truncated {
                        mut record,
                        fields_matched,
                        stopped_at,
                    } if fields_matched >= MIN_FIELDS
                        && record.get(Slot::ResponseCode).is_some() =>
                    {
                        let mut missing = f.slots_before(seg);
                        missing.extend(f.slots_from(stopped_at));
                        record.missing = missing;
                        if best.as_ref().is_none_or(|(_, b, _)| fields_matched > *b) {
                            best = Some((
                                LineOutcome::Truncated {
                                    record,
                                    fields: fields_matched,
                                },
                                fields_matched,
                                i,
                            ));
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
        best.map(|(o, _, i)| {
            self.last = i;
            o
        })
    }
}

/// Does a value the verdict reads start with a Markdown mark a paste may have added (`**` bold,
/// `[` of a link), or the cluster hold a table's escaped `\\|`? A first-byte test of a few
/// values: cheap enough for every line read.
fn markdown_in_values(r: &RawRecord<'_>) -> bool {
    const READ: [Slot; 7] = [
        Slot::ResponseCodeDetails,
        Slot::ResponseFlags,
        Slot::UpstreamCluster,
        Slot::UpstreamHost,
        Slot::DownstreamLocalAddress,
        Slot::DownstreamRemoteAddress,
        Slot::Authority,
    ];
    READ.iter().any(|s| {
        r.get(*s)
            .is_some_and(|v| v.starts_with("**") || (v.starts_with('[') && v.contains("](http")))
    }) || r
        .get(Slot::UpstreamCluster)
        .is_some_and(|v| v.contains("\\|"))
}

/// Recognise lines that are not access logs.
pub fn recognise_other(line: &str) -> Option<NotAccessLog> {
    if let Some(what) = terminal_line(line) {
        return Some(NotAccessLog::Terminal { what });
    }
    if line.starts_with('#') {
        return Some(NotAccessLog::Comment);
    }
    let n = rfc3339_prefix_len(line);
    // ztunnel's connection lines, tab-separated as written or space-separated as pasted, with
    // or without their time and whatever a viewer put before them (`ztunnel::parse_text`).
    if memchr::memmem::find(line.as_bytes(), b"access").is_some()
        && let Some(c) = crate::ztunnel::parse_text(line)
    {
        return Some(NotAccessLog::Ztunnel(Box::new(c)));
    }
    // HAProxy's access log (the OpenShift router): `ip:port [DD/Mon/YYYY:…] frontend …`.
    if memchr::memchr(b'[', line.as_bytes()).is_some()
        && let Some(r) = crate::haproxy::parse(line)
    {
        return Some(NotAccessLog::Router(Box::new(r)));
    }
    if n > 0 && line.as_bytes().get(n) == Some(&b'\t') {
        let rest = &line[n + 1..];
        let level = rest.split('\t').next().unwrap_or("");
        let after = rest.get(level.len() + 1..).unwrap_or("");
        if after.starts_with("access\t") && after.contains("connection") {
            return Some(NotAccessLog::Ztunnel(Box::default()));
        }
        if matches!(
            level,
            "debug" | "info" | "warn" | "warning" | "error" | "fatal" | "none" | "trace"
        ) {
            return Some(NotAccessLog::IstioLog {
                level: level.to_string(),
            });
        }
    }
    // logrus / logfmt: `time="2024-…" level=info msg="…"` or `level=info ts=… msg=…`.
    if (line.starts_with("time=") || line.starts_with("level=") || line.starts_with("ts="))
        && (line.starts_with("level=") || line.contains(" level="))
        && line.contains("msg=")
    {
        return Some(NotAccessLog::KeyValueLog);
    }
    // klog: `I0501 10:00:00.123456    1 file.go:42] message`.
    let b = line.as_bytes();
    if b.len() > 22
        && matches!(b[0], b'I' | b'W' | b'E' | b'F')
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5] == b' '
        && b[8] == b':'
        && b[11] == b':'
        && line.get(14..).is_some_and(|r| r.contains("] "))
    {
        return Some(NotAccessLog::Klog);
    }
    if let Some(rest) = line.strip_prefix('[') {
        // [2024-04-25 20:21:43.725][15][warning][config] ...
        if crate::format::looks_like_timestamp(rest)
            && let Some(close) = rest.find(']')
            && rest[close + 1..].starts_with('[')
        {
            let parts: Vec<&str> = rest[close + 1..].splitn(4, ']').collect();
            let level = parts
                .get(1)
                .map(|p| p.trim_start_matches('['))
                .unwrap_or("");
            return Some(NotAccessLog::EnvoyLog {
                level: level.to_string(),
            });
        }
    }
    None
}

/// Commands whose line, after a shell prompt, is a command typed at a terminal; the first four
/// are recognised without a prompt as well (nobody's access log starts with them).
const COMMANDS: &[&str] = &[
    "kubectl",
    "oc",
    "istioctl",
    "stern",
    "kubetail",
    "curl",
    "grep",
    "egrep",
    "rg",
    "cat",
    "zcat",
    "tail",
    "head",
    "less",
    "jq",
    "awk",
    "sed",
    "docker",
    "crictl",
    "podman",
    "helm",
    "meshtrace",
    "k",
    "sort",
    "uniq",
    "wc",
    "watch",
    "for",
];

/// What a terminal printed besides a log, when `line` is that: a command typed after a prompt
/// (`$ `, `> `, `% `, `user@host:~$ `, `[root@host ~]# `, `PS C:\> `), kubectl's notices and
/// errors, `tail`'s `==> file <==` headers.
fn terminal_line(line: &str) -> Option<&'static str> {
    let t = line.trim_start();
    // kubectl's own notices on standard error (`kubectl logs` of a pod with several containers,
    // of a Deployment) and its errors.
    if t.starts_with("Defaulted container \"")
        || t.strip_prefix("Found ").is_some_and(|r| {
            let digits = r.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && r[digits..].starts_with(" pods, using ")
        })
        || t.starts_with("If you don't see a command prompt, try pressing enter.")
    {
        return Some("a kubectl notice");
    }
    if t.starts_with("Error from server (")
        || t.starts_with("error: ")
        || t.starts_with("Unable to retrieve container logs for ")
        || t.starts_with("unable to retrieve container logs for ")
    {
        return Some("a kubectl error");
    }
    if t.starts_with("==> ") && t.trim_end().ends_with(" <==") {
        return Some("a tail file header");
    }
    let command = |rest: &str| {
        let word = rest.trim_start().split([' ', '\t']).next().unwrap_or("");
        COMMANDS.contains(&word) && rest.trim_start().len() > word.len()
    };
    let bare = t.split([' ', '\t']).next().unwrap_or("");
    if matches!(bare, "kubectl" | "oc" | "istioctl" | "stern") && command(t) {
        return Some("a shell command");
    }
    // A prompt: one of `$ > % #` ending the first word (or a bracketed `[user@host dir]`), or
    // PowerShell's `PS …> `.
    let after_prompt = if let Some(r) = t.strip_prefix("PS ") {
        r.find("> ").map(|i| &r[i + 2..])
    } else {
        let end = if t.starts_with('[') {
            t.find("] ")
                .map(|i| i + 1)
                .or_else(|| t.find(']').map(|i| i + 1))
        } else {
            t.find(' ')
        };
        end.and_then(|e| {
            let (prompt, rest) = t.split_at(e);
            let prompt = prompt.trim_end();
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            let mark = prompt.as_bytes().last()?;
            let ends = matches!(mark, b'$' | b'>' | b'%' | b'#') || prompt.ends_with(']');
            let rest = if prompt.ends_with(']') {
                rest.trim_start().strip_prefix(['$', '#', '>', '%'])?
            } else {
                rest
            };
            ends.then_some(rest)
        })
    };
    match after_prompt {
        Some(rest) if command(rest) => Some("a shell command"),
        _ => None,
    }
}

/// Does `line` not even start like format `f`: its first literal is neither a prefix of the
/// line nor the line a prefix of it (`ACCESS [` for a line `[2024-…`). Such a format is not the
/// closest one when another format got further.
fn refuses_at_once(f: &TextFormat, line: &str) -> bool {
    match f.segments().first() {
        Some(Segment::Literal(l)) => !line.starts_with(l.as_str()) && !l.starts_with(line),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines real Envoy 1.40 wrote with custom formats (testdata/explain/envoy-custom-formats.log).
    const FRONT: &str = r#"[2026-12-06T19:48:23.841Z] "POST /v1/models/down:predict HTTP/1.1" 503 UF upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused} 13 98 0 - "-" "curl/7.88.1" "7d0c1a2e-0004-4000-8000-000000000004" "models.example.com" "127.0.0.54:18083""#;
    const MODEL: [&str; 2] = [
        r#"[2026-12-06T19:48:23.814Z] "POST /v1/models/granite:predict HTTP/1.1" 200 - via_upstream - "-" 13 14 0 0 "-" "curl/7.88.1" "7d0c1a2e-0001-4000-8000-000000000001" "models.example.com" "127.0.0.53:18082" app 127.0.0.1:36638 127.0.0.52:18081 127.0.0.1:37452"#,
        r#"[2026-12-06T19:48:23.824Z] "POST /v1/models/bad:predict HTTP/1.1" 400 - via_upstream - "-" 13 21 0 0 "-" "curl/7.88.1" "7d0c1a2e-0002-4000-8000-000000000002" "models.example.com" "127.0.0.53:18082" app 127.0.0.1:36644 127.0.0.52:18081 127.0.0.1:37452"#,
    ];

    #[test]
    fn a_custom_text_format_is_read_by_shape_and_says_so() {
        let mut p = LineParser::auto();
        let LineOutcome::Record(r) = p.parse(FRONT) else {
            panic!("read by shape")
        };
        assert_eq!(r.format(), shape::FORMAT_NAME);
        assert_eq!(r.status(), Some(503));
        assert_eq!(r.get(Slot::UpstreamHost), Some("127.0.0.54:18083"));
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("%RESPONSE_CODE_DETAILS% %BYTES_RECEIVED%"))
        );
        // A format given is never second-guessed.
        let spec = FormatSpec::parse("envoy").unwrap();
        assert!(matches!(
            LineParser::new(&spec).parse(FRONT),
            LineOutcome::Malformed(_)
        ));
    }

    #[test]
    fn lines_ending_alike_early_are_a_custom_format_not_cut_lines() {
        let mut p = LineParser::auto();
        // One line alone reads as an Istio line cut short (a paste may end anywhere), however
        // often it is parsed...
        assert!(matches!(p.parse(MODEL[0]), LineOutcome::Truncated { .. }));
        assert!(matches!(p.parse(MODEL[0]), LineOutcome::Truncated { .. }));
        // ...a second one ending at the same operator makes it the proxy's format.
        let LineOutcome::Record(r) = p.parse(MODEL[1]) else {
            panic!("read by shape")
        };
        assert_eq!(r.format(), shape::FORMAT_NAME);
        assert_eq!(
            r.get(Slot::DownstreamRemoteAddress),
            Some("127.0.0.1:37452")
        );
        assert!(r.missing.is_empty());
        // From then on the first line reads that way too.
        let LineOutcome::Record(r) = p.parse(MODEL[0]) else {
            panic!("read by shape")
        };
        assert_eq!(r.get(Slot::UpstreamCluster), Some("app"));
        // And the cheap success test knows that format.
        assert!(p.is_plain_success(MODEL[0].as_bytes()));
        assert!(!p.is_plain_success(MODEL[1].as_bytes()));
    }

    #[test]
    fn what_a_terminal_printed_besides_the_log() {
        // (line, what it is), from terminals pasted into issues and tutorials.
        let cases: &[(&str, Option<&str>)] = &[
            (
                "$ kubectl logs -n istio-system deploy/istio-ingressgateway --tail=3",
                Some("a shell command"),
            ),
            (
                "> kubectl -n security-profiles-operator logs --selector name=spod -c bpf-recorder",
                Some("a shell command"),
            ),
            (
                "minsoub@DESKTOP-CQM34B1:/mnt/c/DevPJT/bcheck-eks-setup-pjt$ kubectl logs -n bcheck-ns deployments.apps/aws-load-balancer-controller",
                Some("a shell command"),
            ),
            (
                "[root@bastion ~]# oc logs -n istio-system istio-ingressgateway-5f7b8d4c9-abcde",
                Some("a shell command"),
            ),
            ("[root@bastion ~]$ kubectl logs x", Some("a shell command")),
            (
                "PS C:\\Users\\me> kubectl logs pod/x -c istio-proxy",
                Some("a shell command"),
            ),
            (
                "% stern -n aiproject test-predictor",
                Some("a shell command"),
            ),
            (
                "kubectl logs deployment/my-app --since 5m",
                Some("a shell command"),
            ),
            (
                "$ curl -v http://test-predictor.aiproject.svc.cluster.local/v2/models/test",
                Some("a shell command"),
            ),
            (
                "Defaulted container \"istio-proxy\" out of: istio-proxy, istio-init (init)",
                Some("a kubectl notice"),
            ),
            (
                "Found 2 pods, using pod/web-74f55b4568-5pfzg",
                Some("a kubectl notice"),
            ),
            (
                "Error from server (BadRequest): container \"istio-proxy\" in pod \"x\" is waiting to start: PodInitializing",
                Some("a kubectl error"),
            ),
            (
                "error: a container name must be specified for pod x, choose one of: [a b]",
                Some("a kubectl error"),
            ),
            (
                "==> /var/log/containers/istio-proxy.log <==",
                Some("a tail file header"),
            ),
            // Not a terminal's line.
            (
                "curl/8.6.0\" \"55f053ed-7217-46a7-a211-e20229fc1eaa\" \"x\"",
                None,
            ),
            ("cat is a word", None),
            ("$ ", None),
            ("$ kubectl", None),
            ("Found pods, using pod/x", None),
            (
                "[2024-06-03T09:00:00.069Z] \"GET / HTTP/1.1\" 200 - via_upstream",
                None,
            ),
            ("> something else", None),
            ("kubectl", None),
        ];
        for (line, want) in cases {
            assert_eq!(terminal_line(line), *want, "{line}");
            assert_eq!(
                recognise_other(line).map(|n| n.kind() == "terminal"),
                want.map(|_| true),
                "{line}"
            );
        }
    }

    #[test]
    fn spec_parsing() {
        assert!(matches!(FormatSpec::parse("auto"), Ok(FormatSpec::Auto)));
        assert!(matches!(
            FormatSpec::parse("istio-1.3"),
            Ok(FormatSpec::Text(_))
        ));
        assert!(matches!(FormatSpec::parse("json"), Ok(FormatSpec::Json(_))));
        assert!(matches!(
            FormatSpec::parse("%RESPONSE_CODE% %DURATION%"),
            Ok(FormatSpec::Text(_))
        ));
        assert!(matches!(
            FormatSpec::parse(r#"{"code":"%RESPONSE_CODE%"}"#),
            Ok(FormatSpec::Json(_))
        ));
        let e = FormatSpec::parse("nginx").unwrap_err().to_string();
        assert!(e.contains("istio-1.23") && e.contains("nginx"), "{e}");
        assert!(FormatSpec::parse(r#"{"code":200}"#).is_err());
        assert!(FormatSpec::parse(r#"{"code":"%FOO%"}"#).is_err());
    }

    /// What a JSON line becomes.
    #[derive(Debug)]
    enum Want {
        /// A record with these (slot key or extra name → value) fields and this format name.
        Record(&'static str, &'static [(&'static str, &'static str)]),
        /// Skipped as another kind of JSON log.
        JsonLog,
        /// Reported malformed, the message holding these words.
        Malformed(&'static [&'static str]),
    }

    fn field_of<'r>(r: &'r RawRecord<'_>, name: &str) -> Option<&'r str> {
        Slot::ALL
            .iter()
            .find(|s| s.key() == name)
            .and_then(|s| r.get(*s))
            .or_else(|| r.extra(name))
    }

    #[test]
    fn json_lines() {
        let istio = r#""start_time":"2024-05-01T10:00:00.000Z","method":"GET","path":"/","protocol":"HTTP/1.1","response_code":503,"response_flags":"UF","request_id":"r1""#;
        let twelve = format!(
            "{{{istio},{}}}",
            (1..=12)
                .map(|i| if i == 7 {
                    format!("\"k{i}\":null")
                } else {
                    format!("\"k{i}\":\"v{i}\"")
                })
                .collect::<Vec<_>>()
                .join(",")
        );
        let custom = r#"{"ts":"%START_TIME(%s)%","code":"%RESPONSE_CODE%","when":"%START_TIME%","rid":"%REQ(X-REQUEST-ID)%","id2":"%REQ(X-REQUEST-ID)%","flags":"%RESPONSE_FLAGS%","m":"%REQ(:METHOD)% %REQ(:PATH)%"}"#;
        let rows: Vec<(&str, String, Want)> = vec![
            // Every unknown key is kept under its own name (only 8 were, and the 8th name took
            // every later value); an unknown null is kept as `-`.
            (
                "auto",
                twelve,
                Want::Record(
                    "istio-json",
                    &[
                        ("response_code", "503"),
                        ("k1", "v1"),
                        ("k7", "-"),
                        ("k8", "v8"),
                        ("k9", "v9"),
                        ("k12", "v12"),
                    ],
                ),
            ),
            // A custom json_format on auto-detection: some keys match Istio's, the status is
            // under another key. Was an `istio-json` record with status `-` (a bogus failure),
            // then a malformed line; its key names say enough to read it (see `infer`).
            (
                "auto",
                r#"{"start_time":"2024-05-01T10:00:00.000Z","method":"GET","path":"/","protocol":"HTTP/1.1","status":503,"flags":"UF","rid":"r1"}"#.into(),
                Want::Record(
                    "json-keys-by-name",
                    &[("response_code", "503"), ("response_flags", "UF"), ("rid", "r1")],
                ),
            ),
            // The same keys with a status that is no number: not read by key names.
            (
                "auto",
                r#"{"start_time":"2024-05-01T10:00:00.000Z","method":"GET","path":"/","protocol":"HTTP/1.1","status":"fail","flags":"UF","rid":"r1"}"#.into(),
                Want::Malformed(&[
                    "known JSON access-log key set",
                    "status",
                    "response_code",
                    "--log-format",
                    "%OPERATOR%",
                ]),
            ),
            (
                "json",
                r#"{"start_time":"2024-05-01T10:00:00.000Z","method":"GET","protocol":"HTTP/1.1","duration":3}"#.into(),
                Want::Malformed(&["known JSON access-log key set", "--log-format"]),
            ),
            (
                "auto",
                r#"{"response_code":503,"my_flags":"UF","my_id":"r1","my_cluster":"c"}"#.into(),
                Want::Malformed(&["known JSON access-log key set", "recognised: response_code)"]),
            ),
            // Other JSON logs stay skipped.
            (
                "auto",
                r#"{"level":"info","ts":1714557600.1,"msg":"starting","method":"GET"}"#.into(),
                Want::JsonLog,
            ),
            // A custom mapping: `%START_TIME(%s)%` is one operator (its argument holds `%`) and
            // fills the slot with its time format; a second key of a slot is kept by operator;
            // a template of several operators is kept under its key.
            (
                custom,
                r#"{"ts":"1714557600","code":404,"when":"2024-05-01T10:00:00.000Z","rid":"a","id2":"b","flags":"NR","m":"GET /x"}"#.into(),
                Want::Record(
                    "custom-json",
                    &[
                        ("start_time", "1714557600"),
                        ("START_TIME", "2024-05-01T10:00:00.000Z"),
                        ("request_id", "a"),
                        ("REQ(X-REQUEST-ID)", "b"),
                        ("m", "GET /x"),
                    ],
                ),
            ),
            // The mapping's status key missing: not a record of it.
            (
                custom,
                r#"{"ts":"1714557600","when":"2024-05-01T10:00:00.000Z","rid":"a","flags":"NR","m":"GET /x"}"#.into(),
                Want::Malformed(&["--log-format mapping", "\"code\""]),
            ),
        ];
        for (spec, line, want) in &rows {
            let mut p = LineParser::new(&FormatSpec::parse(spec).unwrap());
            let out = p.parse(line);
            match (want, &out) {
                (Want::Record(name, fields), LineOutcome::Record(r)) => {
                    assert_eq!(r.format(), *name, "{line}");
                    for (k, v) in *fields {
                        assert_eq!(field_of(r, k), Some(*v), "{line}: {k}");
                    }
                }
                (Want::JsonLog, LineOutcome::NotAccessLog(NotAccessLog::JsonLog { .. })) => {}
                (Want::Malformed(words), LineOutcome::Malformed(m)) => {
                    let msg = m.to_string();
                    for w in *words {
                        assert!(msg.contains(w), "{line}: {w:?} not in {msg}");
                    }
                }
                _ => panic!("{line}: want {want:?}, got {out:?}"),
            }
        }
    }

    #[test]
    fn json_with_custom_key_names_is_read_by_them_and_says_so() {
        // Key names of custom json_formats seen in issue threads (envoyproxy/envoy#33640's
        // `status`/`request_uri`/`upstream`, `resp_flags`/`resp_code_details`/`x_request_id`):
        // read without --log-format, the mapping used noted on every record.
        let log = [
            r#"{"timestamp":"2024-05-01T10:00:00.000Z","method":"POST","req_path":"/v1/models/m:predict","status":503,"resp_flags":"UF,URX","resp_code_details":"upstream_reset_before_response_started{connection_failure}","upstream":"10.0.0.9:8012","duration_ms":12,"x_request_id":"r1","tenant":"a"}"#,
            r#"{"timestamp":"2024-05-01T10:00:01.000Z","method":"POST","req_path":"/v1/models/m:predict","status":200,"resp_flags":"-","resp_code_details":"via_upstream","upstream":"10.0.0.9:8012","duration_ms":9,"x_request_id":"r2","tenant":"a"}"#,
            r#"{"level":"info","ts":1714557600.1,"msg":"starting","method":"GET"}"#,
        ];
        let mut p = LineParser::auto();
        let LineOutcome::Record(r) = p.parse(log[0]) else {
            panic!("not a record")
        };
        assert_eq!(r.format(), "json-keys-by-name");
        assert_eq!(r.status(), Some(503));
        assert_eq!(r.request_id(), Some("r1"));
        assert_eq!(r.path(), Some("/v1/models/m:predict"));
        assert_eq!(r.extra("tenant"), Some("a"));
        let note = r.notes.first().expect("mapping noted");
        for w in [
            "status → %RESPONSE_CODE%",
            "resp_flags → %RESPONSE_FLAGS%",
            "kept as text: tenant",
            "--log-format",
        ] {
            assert!(note.contains(w), "{w:?} not in {note}");
        }
        // The reading is kept for the next lines; other JSON logs stay skipped.
        let LineOutcome::Record(r) = p.parse(log[1]) else {
            panic!("not a record")
        };
        assert_eq!((r.status(), r.notes.len()), (Some(200), 1));
        assert!(matches!(
            p.parse(log[2]),
            LineOutcome::NotAccessLog(NotAccessLog::JsonLog { .. })
        ));
        // A format given is never second-guessed.
        let mut fixed = LineParser::new(&FormatSpec::parse("json").unwrap());
        assert!(!matches!(fixed.parse(log[0]), LineOutcome::Record(_)));
    }

    #[test]
    fn json_keeps_every_unknown_key_under_its_name() {
        // Regression: the reader kept 8 unknown key names and filed every later value under
        // the 8th. A line's unknown keys are bounded only by the line length cap.
        let extra: Vec<String> = (0..200).map(|i| format!("\"x{i}\":\"{i}\"")).collect();
        let line = format!(
            r#"{{"response_code":200,"method":"GET","response_flags":"-",{}}}"#,
            extra.join(",")
        );
        let mut p = LineParser::auto();
        let LineOutcome::Record(r) = p.parse(&line) else {
            panic!("not a record")
        };
        assert_eq!(r.extras().count(), 200);
        for (i, (k, v)) in r.extras().enumerate() {
            assert_eq!((k, v), (format!("x{i}").as_str(), i.to_string().as_str()));
        }
    }

    #[test]
    fn json_with_custom_keys_is_reported_not_a_failed_request() {
        // Regression: a json_format with its own keys was labelled istio-json and every line
        // became a failed request with status `-`.
        let log = r#"{"@timestamp":"2024-05-01T10:00:00.000Z","start_time":"2024-05-01T10:00:00.000Z","method":"POST","path":"/v1/models/m:predict","protocol":"HTTP/1.1","http_status":200,"bytes_sent":10,"duration":4,"user_agent":"curl"}"#;
        let mut p = LineParser::auto();
        match p.parse(log) {
            LineOutcome::Malformed(m) => {
                let msg = m.to_string();
                assert!(msg.contains("http_status"), "{msg}");
                assert!(msg.contains("--log-format '{"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        // With its mapping it is read.
        let spec = FormatSpec::parse(r#"{"start_time":"%START_TIME%","method":"%REQ(:METHOD)%","path":"%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%","protocol":"%PROTOCOL%","http_status":"%RESPONSE_CODE%"}"#).unwrap();
        let LineOutcome::Record(r) = LineParser::new(&spec).parse(log) else {
            panic!("not a record")
        };
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.extra("@timestamp"), Some("2024-05-01T10:00:00.000Z"));
    }

    #[test]
    fn other_logs() {
        assert_eq!(
            recognise_other(
                "2024-04-12T10:17:44.080629Z\tinfo\taccess\tconnection complete\tsrc.addr=1"
            )
            .map(|n| n.kind()),
            Some("ztunnel")
        );
        assert_eq!(
            recognise_other("2020-06-29T23:37:27.335928Z\tinfo\tparsed scheme: \"\""),
            Some(NotAccessLog::IstioLog {
                level: "info".into()
            })
        );
        assert_eq!(
            recognise_other("[2024-04-25 20:21:43.725][15][warning][config] x"),
            Some(NotAccessLog::EnvoyLog {
                level: "warning".into()
            })
        );
        assert_eq!(
            recognise_other("[2024-04-25T20:21:43.725Z] \"GET / HTTP/1.1\" 200"),
            None
        );
        assert_eq!(
            recognise_other(
                r#"time="2024-04-23T21:34:49Z" level=debug msg="cache key: ratelimit_path current: 11""#
            ),
            Some(NotAccessLog::KeyValueLog)
        );
        assert_eq!(
            recognise_other("I0501 10:00:00.123456       1 controller.go:42] Reconciled"),
            Some(NotAccessLog::Klog)
        );
        assert_eq!(recognise_other("I0501 is not a klog line at all"), None);
    }
}
