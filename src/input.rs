//! Reading log inputs (files or stdin) line by line into parsed records, skips and errors.
//!
//! Inputs are streamed with a reused buffer; invalid UTF-8 is replaced, never fatal. A file that
//! cannot be opened is an error naming it; everything else becomes a record, a skipped line or
//! a malformed line with its file and line number.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meshtrace_parsers::assemble::{Assembler, Event};
use meshtrace_parsers::detect::{FormatSpec, LineParser};
use meshtrace_parsers::record::RawRecord;

/// Where lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl InputSource {
    /// The name used in messages and output (`-` reads stdin, shown as `<stdin>`).
    pub fn name(&self) -> String {
        match self {
            InputSource::Stdin => "<stdin>".into(),
            InputSource::File(p) => p.display().to_string(),
        }
    }

    /// From a command-line argument.
    pub fn from_arg(a: &str) -> InputSource {
        if a == "-" {
            InputSource::Stdin
        } else {
            InputSource::File(PathBuf::from(a))
        }
    }
}

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
    /// Records in input order.
    pub records: Vec<LogLine>,
    /// Lines that are not access logs, and malformed ones.
    pub skipped: Vec<SkippedLine>,
    /// Names of the inputs read, in order.
    pub inputs: Vec<String>,
}

impl LogSet {
    /// Malformed lines only.
    pub fn malformed(&self) -> impl Iterator<Item = &SkippedLine> {
        self.skipped.iter().filter(|s| s.kind == "malformed")
    }
}

/// Error reading an input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading failed part-way.
    #[error("error reading {path} after line {line}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Last line read.
        line: u64,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Read one input into `set`.
pub fn read_input(
    source: &InputSource,
    spec: &FormatSpec,
    set: &mut LogSet,
) -> Result<(), InputError> {
    let name = source.name();
    let reader: Box<dyn Read> = match source {
        InputSource::Stdin => Box::new(std::io::stdin().lock()),
        InputSource::File(p) => Box::new(open(p)?),
    };
    set.inputs.push(name.clone());
    read_from(reader, &name, spec, set)
}

fn open(p: &Path) -> Result<std::fs::File, InputError> {
    std::fs::File::open(p).map_err(|source| InputError::Open {
        path: p.display().to_string(),
        source,
    })
}

/// Read lines from any reader into `set`, attributing them to `name`.
pub fn read_from(
    reader: impl Read,
    name: &str,
    spec: &FormatSpec,
    set: &mut LogSet,
) -> Result<(), InputError> {
    read_pod_log(reader, name, None, spec, set)
}

/// Read a pod's log: like [`read_from`], recording which pod wrote the lines.
pub fn read_pod_log(
    reader: impl Read,
    name: &str,
    pod: Option<Arc<str>>,
    spec: &FormatSpec,
    set: &mut LogSet,
) -> Result<(), InputError> {
    let input: Arc<str> = Arc::from(name);
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut asm = Assembler::new(LineParser::new(spec), true);
    let mut buf = Vec::with_capacity(1024);
    let mut lineno = 0u64;
    let mut sink = |e: Event<'_>| collect(e, &input, pod.as_ref(), set);
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {
                lineno += 1;
                let text = String::from_utf8_lossy(&buf);
                asm.push(lineno, &text, &mut sink);
            }
            Err(source) => {
                asm.finish(&mut sink);
                return Err(InputError::Read {
                    path: name.to_string(),
                    line: lineno,
                    source,
                });
            }
        }
    }
    asm.finish(&mut sink);
    Ok(())
}

fn collect(e: Event<'_>, input: &Arc<str>, pod: Option<&Arc<str>>, set: &mut LogSet) {
    match e {
        Event::Record(l) => set.records.push(LogLine {
            input: input.clone(),
            line: l.line,
            lines: l.lines,
            envelope: l.envelope.name(),
            pod: pod.cloned(),
            record: l.record.into_owned(),
        }),
        Event::Skipped { line, kind } => set.skipped.push(SkippedLine {
            input: input.clone(),
            line,
            kind: kind.kind().to_string(),
            reason: kind.to_string(),
            text: None,
        }),
        Event::Malformed { line, text, error } => {
            let mut t: String = text.chars().take(200).collect();
            if t.len() < text.len() {
                t.push('…');
            }
            set.skipped.push(SkippedLine {
                input: input.clone(),
                line,
                kind: "malformed".into(),
                reason: error.to_string(),
                text: Some(t),
            })
        }
    }
}
