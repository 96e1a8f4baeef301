//! The cheap shape test run before any parsing: can this line be a record of one of the
//! parser's TEXT formats at all, read from the start or from one of the points where a pasted
//! line may begin?
//!
//! Each way of reading a format (its start, and each resume point of a cut line) becomes a
//! [`Gate`]: the bytes the line must begin with, then, field by field, the bytes a value may
//! begin with and the literal that must follow it — as far as a match needs to get to count
//! (four fields, and for a cut line the status code). These are exactly what the matcher of
//! [`crate::format`] checks first, so a line no gate lets through cannot be a record: the
//! parser skips matching it and only says why. Most lines that are not access logs fail on
//! their first byte or their first missing literal, in tens of nanoseconds.

use std::sync::Arc;

use memchr::memmem::Finder;

use crate::format::{Command, Segment, Slot, TextFormat};

/// Bytes a field's value may begin with (`None`: any).
type ByteSet = [bool; 256];

#[derive(Debug)]
enum Step {
    /// The value starting here must begin with one of these bytes (so it is not empty).
    First(Box<ByteSet>),
    /// This literal must occur from here on; reading continues after its first occurrence.
    Find(Box<Finder<'static>>),
}

/// One way a line may be read as a record of one format.
#[derive(Debug)]
struct Gate {
    prefix: Box<[u8]>,
    steps: Box<[Step]>,
}

impl Gate {
    fn pass(&self, line: &[u8]) -> bool {
        if !line.starts_with(&self.prefix) {
            return false;
        }
        let mut pos = self.prefix.len();
        for s in self.steps.iter() {
            match s {
                Step::First(set) => match line.get(pos) {
                    Some(&b) if set[usize::from(b)] => {}
                    _ => return false,
                },
                Step::Find(f) => match line.get(pos..).and_then(|r| f.find(r)) {
                    Some(i) => pos += i + f.needle().len(),
                    None => return false,
                },
            }
        }
        true
    }

    /// A key telling identical gates apart (several built-in formats share their tails).
    fn key(&self) -> Vec<u8> {
        let mut k = self.prefix.to_vec();
        for s in self.steps.iter() {
            match s {
                Step::First(set) => {
                    k.push(0);
                    k.extend(set.iter().map(|&b| u8::from(b)));
                }
                Step::Find(f) => {
                    k.push(1);
                    k.extend_from_slice(&(f.needle().len() as u64).to_le_bytes());
                    k.extend_from_slice(f.needle());
                }
            }
        }
        k
    }
}

/// The gates of a set of formats, indexed by the first byte of the lines they can let through.
#[derive(Debug, Default)]
pub(crate) struct Gates {
    start: Vec<Gate>,
    resume: Vec<Gate>,
    start_by_byte: Vec<Vec<u16>>,
    resume_by_byte: Vec<Vec<u16>>,
}

impl Gates {
    /// Gates for `formats`; `min_fields` is how many fields a line read from the start (or a
    /// cut line) must fill to count as a record, `resume_fields` how many leading fields a
    /// cut line may be missing (see [`TextFormat::resume_points`]).
    pub(crate) fn new(
        formats: &[Arc<TextFormat>],
        min_fields: usize,
        resume_fields: usize,
    ) -> Self {
        let mut start = Vec::new();
        let mut resume = Vec::new();
        for f in formats {
            start.push(gate(f, 0, 0, min_fields));
            for (seg, off) in f.resume_points(resume_fields) {
                // A cut line counts only with its status code: the gate reaches that field.
                let Some(code) = f.segments()[seg..]
                    .iter()
                    .filter(|s| matches!(s, Segment::Field(_)))
                    .position(|s| {
                        matches!(s, Segment::Field(c) if f.commands()[*c].slot == Some(Slot::ResponseCode))
                    })
                else {
                    continue;
                };
                resume.push(gate(f, seg, off, min_fields.max(code + 1)));
            }
        }
        let start = dedup(start);
        let resume = dedup(resume);
        Gates {
            start_by_byte: by_first_byte(&start),
            resume_by_byte: by_first_byte(&resume),
            start,
            resume,
        }
    }

    /// Could `line` be a record read from the start of one of the formats?
    pub(crate) fn could_start(&self, line: &[u8]) -> bool {
        pass_any(&self.start, &self.start_by_byte, line)
    }

    /// Could `line` be a record of one of the formats whose beginning was cut off?
    pub(crate) fn could_resume(&self, line: &[u8]) -> bool {
        pass_any(&self.resume, &self.resume_by_byte, line)
    }
}

fn pass_any(gates: &[Gate], by_byte: &[Vec<u16>], line: &[u8]) -> bool {
    let Some(&b) = line.first() else {
        return false;
    };
    by_byte
        .get(usize::from(b))
        .is_some_and(|ix| ix.iter().any(|&i| gates[usize::from(i)].pass(line)))
}

fn dedup(gates: Vec<Gate>) -> Vec<Gate> {
    let mut seen = std::collections::HashSet::new();
    gates.into_iter().filter(|g| seen.insert(g.key())).collect()
}

fn by_first_byte(gates: &[Gate]) -> Vec<Vec<u16>> {
    let mut out = vec![Vec::new(); 256];
    for (i, g) in gates.iter().enumerate().take(usize::from(u16::MAX)) {
        let first = match (g.prefix.first(), g.steps.first()) {
            (Some(&b), _) => {
                let mut set = [false; 256];
                set[usize::from(b)] = true;
                set
            }
            (None, Some(Step::First(set))) => **set,
            _ => [true; 256],
        };
        for (b, list) in out.iter_mut().enumerate() {
            if first[b] {
                list.push(i as u16);
            }
        }
    }
    out
}

/// The gate of reading `f` from segment `seg` (`off` bytes into it when it is a literal) until
/// `fields` fields are filled, or to the end of the format when it has fewer.
fn gate(f: &TextFormat, seg: usize, off: usize, fields: usize) -> Gate {
    let segs = f.segments();
    let mut prefix: &[u8] = &[];
    let mut i = seg;
    if let Some(Segment::Literal(l)) = segs.get(i) {
        prefix = l.as_bytes().get(off..).unwrap_or(&[]);
        i += 1;
    }
    let mut steps = Vec::new();
    let mut filled = 0;
    while let Some(s) = segs.get(i) {
        match s {
            Segment::Field(c) => {
                filled += 1;
                if let Some(set) = first_bytes(&f.commands()[*c]) {
                    steps.push(Step::First(Box::new(set)));
                }
                if filled >= fields {
                    break;
                }
            }
            Segment::Literal(l) => {
                steps.push(Step::Find(Box::new(Finder::new(l.as_bytes()).into_owned())))
            }
        }
        i += 1;
    }
    Gate {
        prefix: prefix.into(),
        steps: steps.into(),
    }
}

/// Bytes a value of this operator may begin with, as its syntactic check in the matcher
/// (`Slot::accepts`, the timestamp check) requires; `None` when it may begin with anything or
/// be empty.
fn first_bytes(c: &Command) -> Option<ByteSet> {
    if c.time_format().is_some() {
        return None;
    }
    let mut set = [false; 256];
    let mut allow = |pred: &dyn Fn(u8) -> bool| {
        for b in 0..=255u8 {
            if pred(b) {
                set[usize::from(b)] = true;
            }
        }
    };
    match c.slot? {
        Slot::ResponseCode | Slot::StartTime => allow(&|b| b.is_ascii_digit()),
        Slot::BytesReceived | Slot::BytesSent | Slot::Duration | Slot::UpstreamServiceTime => {
            allow(&|b| b.is_ascii_digit() || b == b'-')
        }
        Slot::Method => allow(&|b| b.is_ascii_uppercase() || b == b'-' || b == b'_'),
        Slot::Protocol => allow(&|b| b == b'H' || b == b'-'),
        _ => return None,
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first-byte sets must never refuse a value the matcher accepts.
    #[test]
    fn first_byte_sets_agree_with_the_matchers_checks() {
        let f = TextFormat::compile(
            "t",
            "[%START_TIME%] %RESPONSE_CODE% %BYTES_SENT% %DURATION% %REQ(:METHOD)% %PROTOCOL% %BYTES_RECEIVED% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
        )
        .unwrap();
        let tails = [
            "",
            "0",
            "00",
            "200",
            "-",
            "ET",
            "TTP/1.1",
            "024-05-01T10:00:00.000Z",
            "xyz",
            " ",
        ];
        for c in f.commands() {
            let (Some(set), Some(slot)) = (first_bytes(c), c.slot) else {
                continue;
            };
            for b in 0..=127u8 {
                if set[usize::from(b)] {
                    continue;
                }
                for t in tails {
                    let v = format!("{}{t}", char::from(b));
                    let accepted = if slot == Slot::StartTime {
                        crate::format::looks_like_timestamp(&v)
                    } else {
                        slot.accepts(&v)
                    };
                    assert!(!accepted, "{slot:?} accepts {v:?} but its gate refuses it");
                }
            }
        }
    }

    use crate::detect::{FormatSpec, LineParser};

    /// Real lines of every kind the repository holds (access logs of each format, pasted and
    /// wrapped lines, Envoy/istio-agent/klog/ztunnel noise, malformed lines).
    const CORPUS: &[&[u8]] = &[
        include_bytes!("../../../testdata/explain/junk-and-noise.log"),
        include_bytes!("../../../testdata/explain/seed000-pasted.log"),
        include_bytes!("../../../testdata/explain/seed003-rbac.log"),
        include_bytes!("../../../testdata/explain/fault-injected.log"),
        include_bytes!("../../../testdata/explain/mtls-mismatch.log"),
        include_bytes!("../../../testdata/explain/upstream-timeout.log"),
        include_bytes!("../../../testdata/explain/egress-blocked.log"),
        include_bytes!("../../../testdata/explain/protocol-error.log"),
        include_bytes!("../../../testdata/lab/format-oracle/text.log"),
        include_bytes!("../../../testdata/peer/kiali/tests/data/logs/ztunnel.log"),
        include_bytes!("../../../testdata/peer/kiali/tests/data/logs/waypoint.log"),
        include_bytes!(
            "../../../testdata/bundles/rhoai-400-app-error/logs/istio-system/istio-ingressgateway-64694db8d5-zmcc7/istio-proxy.log"
        ),
        include_bytes!(
            "../../../testdata/bundles/kind-429-ratelimit/logs/default/ratelimit-5b9c8d7f6-m2n4p/ratelimit.log"
        ),
        include_bytes!(
            "../../../testdata/lab/model-down/logs/knative-serving/activator-6f9c8d7b5-m4n8p/activator.log"
        ),
    ];

    /// Every line of the corpus, each cut at its start and at its end at several places (pasted
    /// fragments), and some junk.
    fn lines() -> Vec<String> {
        let mut out = Vec::new();
        for bytes in CORPUS {
            let text = String::from_utf8_lossy(bytes);
            for l in text.lines() {
                out.push(l.to_string());
                let cuts: Vec<usize> = (1..l.len()).filter(|&i| l.is_char_boundary(i)).collect();
                for &c in cuts.iter().step_by(7) {
                    out.push(l[c..].to_string());
                    out.push(l[..c].to_string());
                }
            }
        }
        for j in [
            "a",
            "[",
            "[2",
            "]",
            "\"",
            "GET",
            "GET /",
            "- - -",
            "{",
            "0",
            "200 - via_upstream",
            "hello world this is not a log",
            "[2024-05-01 10:00:00.000][12][info][main] started",
        ] {
            out.push(j.to_string());
        }
        out
    }

    fn same_verdicts(spec: &FormatSpec) {
        let mut gated = LineParser::new(spec);
        let mut plain = LineParser::new(spec);
        plain.gated = false;
        for l in lines() {
            let a = format!("{:?}", gated.parse(&l));
            let b = format!("{:?}", plain.parse(&l));
            assert_eq!(a, b, "different verdict with the gate on {l:?}");
        }
    }

    #[test]
    fn the_gate_changes_no_verdict_in_auto_detection() {
        same_verdicts(&FormatSpec::Auto);
    }

    #[test]
    fn the_gate_changes_no_verdict_with_a_given_format() {
        same_verdicts(
            &FormatSpec::parse(include_str!(
                "../../../testdata/explain/fault-injected.format"
            ))
            .unwrap(),
        );
        same_verdicts(
            &FormatSpec::parse(include_str!(
                "../../../testdata/lab/format-oracle/text-format.txt"
            ))
            .unwrap(),
        );
        for b in crate::builtins::BUILTIN_TEXT {
            same_verdicts(&FormatSpec::parse(b.name).unwrap());
        }
    }

    #[test]
    fn junk_is_refused_before_any_matching() {
        let p = LineParser::auto();
        for j in [
            "a",
            "hello world this is not a log",
            "\0\0\0\0",
            "request connection foo",
        ] {
            assert!(!p.gates.could_start(j.as_bytes()), "{j:?}");
            assert!(!p.gates.could_resume(j.as_bytes()), "{j:?}");
        }
        // A pasted line that lost its `[START_TIME] "` is still a candidate.
        assert!(p.gates.could_resume(
            b"GET / HTTP/2\" 400 - via_upstream - \"-\" 0 32 26 24 \"10.134.0.2\" \"curl\""
        ));
    }
}
