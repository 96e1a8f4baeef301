//! JSON for machines: the records and skipped lines of `meshtrace.explain/v1`, serialised
//! straight from the parsed records into the output (no tree of values per record). The
//! analysis crate's report types carry `Serialize`; the field maps of records are written here,
//! the only layer that knows the document's shape.

use std::collections::{HashMap, HashSet};

use serde::ser::{Serialize, SerializeMap, Serializer};

use meshtrace_analysis::model::{LogLine, SkippedLine};
use meshtrace_analysis::redact::{MASK, is_secret_name};

use super::safe::mask;
use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat, Timelike};
use meshtrace_parsers::Slot;
use meshtrace_parsers::cluster::{ClusterName, Direction};
use meshtrace_parsers::details::{CodeDetails, RbacPolicy, TransportFailure, TransportFailureKind};
use meshtrace_parsers::record::RawRecord;

/// One entry of the document's `records`, serialised as it is written.
#[derive(Debug, Clone, Copy)]
pub struct RecordJson<'a>(pub &'a LogLine);

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let l = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("line", &l.line)?;
        m.serialize_entry("input", &*l.input)?;
        m.serialize_entry("format", l.record.format())?;
        if l.lines > 1 {
            m.serialize_entry("physical_lines", &l.lines)?;
        }
        if l.envelope != "none" {
            m.serialize_entry("envelope", l.envelope)?;
        }
        if !l.record.missing.is_empty() {
            let missing: Vec<&str> = l.record.missing.iter().map(|m| &**m).collect();
            m.serialize_entry("missing", &missing)?;
        }
        if !l.record.notes.is_empty() {
            let notes: Vec<&str> = l.record.notes.iter().map(|n| &**n).collect();
            m.serialize_entry("read_as", &notes)?;
        }
        m.serialize_entry("fields", &RecordFields(&l.record))?;
        m.end()
    }
}

/// [`RecordJson`] as one element of the checked records of `explain -o json` (see
/// [`super::compact::object_checked`]): the same bytes, written without the serde machinery
/// for what most records hold (their keys, strings, numbers, times and addresses); the rest
/// goes through the same `Serialize` code as [`RecordJson`]. Returns whether the sanitiser
/// would leave the element as it is.
pub(super) fn record_checked(
    l: &LogLine,
    keys: &mut super::safe::KeyChecks,
    out: &mut Vec<u8>,
) -> Result<bool, super::compact::Error> {
    super::compact::object_checked(out, keys, |o| {
        o.key("line");
        o.int(Some(l.line));
        o.key("input");
        o.str(&l.input);
        o.key("format");
        o.str(l.record.format());
        if l.lines > 1 {
            o.key("physical_lines");
            o.int(Some(l.lines));
        }
        if l.envelope != "none" {
            o.key("envelope");
            o.str(l.envelope);
        }
        if !l.record.missing.is_empty() {
            o.key("missing");
            o.strs(&l.record.missing);
        }
        if !l.record.notes.is_empty() {
            o.key("read_as");
            o.strs(&l.record.notes);
        }
        o.key("fields");
        o.object(|f| fields_checked(f, &l.record))
    })
}

/// A request of the document's `requests` as one checked element (see
/// [`super::compact::object_checked`]): the bytes and verdict of `RequestReport`'s own
/// `Serialize`, without the serde machinery for its keys, numbers and arrays.
pub(super) fn request_checked(
    r: &meshtrace_analysis::explain::RequestReport,
    keys: &mut super::safe::KeyChecks,
    out: &mut Vec<u8>,
) -> Result<bool, super::compact::Error> {
    super::compact::object_checked(out, keys, |o| {
        o.key("request_id");
        match &r.request_id {
            Some(id) => o.str(id),
            None => o.null(),
        }
        o.key("status");
        o.int(r.status);
        o.key("cause");
        o.value(&r.cause)?;
        o.key("origin_line");
        o.int(Some(r.origin_line));
        o.key("origin_input");
        o.str(&r.origin_input);
        o.key("lines");
        o.ints(&r.lines);
        o.key("hops");
        o.objects(&r.hops, |h, hop| {
            h.key("input");
            h.str(&hop.input);
            h.key("line");
            h.int(Some(hop.line));
            h.key("status");
            h.int(hop.status);
            h.key("hop");
            h.str(&hop.hop);
            Ok(())
        })?;
        o.key("summary");
        o.str(&r.summary);
        o.key("fix");
        o.str(&r.fix);
        o.key("evidence");
        o.strs(&r.evidence);
        if let Some(p) = &r.part_of {
            o.key("part_of");
            o.str(p);
        }
        Ok(())
    })
}

/// [`RecordFields`] into an object of [`record_checked`].
fn fields_checked(
    f: &mut super::compact::Object<'_>,
    r: &RawRecord<'_>,
) -> Result<(), super::compact::Error> {
    for (slot, raw) in r.slots() {
        f.key(slot.key());
        let unset = raw == "-" || raw.is_empty();
        match slot {
            _ if unset && slot != Slot::ResponseFlags => f.null(),
            Slot::StartTime => {
                let mut buf = [0; 30];
                let t = r.start_time();
                if t.is_some() && r.time_format().is_none() && written_as_utc(raw) {
                    // What `rfc3339_utc` would write for it (the test of `written_as_utc`).
                    f.proven(raw)
                } else {
                    match t.as_ref().and_then(|t| rfc3339_utc(t, &mut buf)) {
                        Some(text) => f.proven(text),
                        None => f.value(&SlotValue { r, slot, raw })?,
                    }
                }
            }
            // Numbers as written when that is how they are written back (see
            // `Object::int_as_written`): three digits always fit a status (`u16`), nineteen a
            // count or a time (`u64`).
            Slot::ResponseCode => f.int_as_written(raw, 3, || r.status()),
            Slot::BytesReceived => f.int_as_written(raw, 19, || r.bytes_received()),
            Slot::BytesSent => f.int_as_written(raw, 19, || r.bytes_sent()),
            Slot::Duration => f.int_as_written(raw, 19, || r.duration_ms()),
            Slot::UpstreamServiceTime => f.int_as_written(raw, 19, || r.upstream_service_time_ms()),
            Slot::UpstreamHost
            | Slot::UpstreamLocalAddress
            | Slot::DownstreamLocalAddress
            | Slot::DownstreamRemoteAddress
                if ip_port_shaped(raw) =>
            {
                f.proven(raw)
            }
            // The usual shapes of these written directly (the same bytes as `SlotValue`'s,
            // which writes the others).
            Slot::ResponseFlags => f.str_seq(r.flags().iter().map(|fl| fl.short())),
            // Values that depend on nothing but their raw text, remembered by it
            // (`Object::memo`): records repeat them.
            Slot::ResponseCodeDetails => {
                f.memo(MEMO_DETAILS, raw.as_bytes(), |f| match r.details() {
                    Some(d)
                        if d.arg.is_none()
                            && d.reset_reason.is_none()
                            && d.transport_failure.is_none()
                            && d.rbac_policy.is_none() =>
                    {
                        f.object(|o| {
                            o.key("raw");
                            o.str(d.raw);
                            o.key("base");
                            o.str(d.base);
                            Ok(())
                        })
                    }
                    _ => f.value(&SlotValue { r, slot, raw }),
                })?
            }
            Slot::UpstreamCluster => f.memo(MEMO_CLUSTER, raw.as_bytes(), |f| {
                match r.upstream_cluster().as_ref().and_then(|c| istio(c, raw)) {
                    Some(c) => f.object(|o| {
                        o.key("raw");
                        o.str(raw);
                        o.key("name");
                        o.str(&c.name);
                        o.key("direction");
                        o.str(c.direction);
                        o.key("port");
                        o.int(Some(c.port));
                        o.key("subset");
                        match c.subset {
                            Some(s) => o.str(s),
                            None => o.null(),
                        }
                        o.key("host");
                        match c.host {
                            Some(h) => o.str(h),
                            None => o.null(),
                        }
                        Ok(())
                    }),
                    None => f.value(&SlotValue { r, slot, raw }),
                }
            })?,
            Slot::UpstreamTransportFailureReason => f.value(&SlotValue { r, slot, raw })?,
            // Client addresses: rarely the last few records' (a memo missed nearly always).
            Slot::XForwardedFor => f.str_seq(r.forwarded_for()),
            _ => {
                if !f.plain(raw) {
                    f.str(&mask(raw));
                }
            }
        }
    }
    if r.extras().next().is_some() {
        f.key("extra");
        f.value(&Extras(r))?;
    }
    Ok(())
}

/// What [`super::compact::Object::memo`] remembers a record's value by: its raw text of
/// `%RESPONSE_CODE_DETAILS%` or `%UPSTREAM_CLUSTER%`.
const MEMO_DETAILS: u8 = 1;
const MEMO_CLUSTER: u8 = 2;

/// An address as Envoy writes an IPv4 one, `10.1.2.3:8080`: digits, dots and colons, starting
/// with a digit. Plain to the sanitiser (a name before a `:` is digits, never a secret name)
/// and free of escapes; the test of [`record_checked`] proves it on random such strings.
fn ip_port_shaped(v: &str) -> bool {
    let b = v.as_bytes();
    b.first().is_some_and(u8::is_ascii_digit)
        && b.len() <= 64
        && b.iter()
            .all(|c| c.is_ascii_digit() || *c == b'.' || *c == b':')
}

/// One entry of the document's `skipped`.
#[derive(Debug, Clone, Copy)]
pub struct SkippedJson<'a>(pub &'a SkippedLine);

impl Serialize for SkippedJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sk = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("line", &sk.line)?;
        m.serialize_entry("input", &*sk.input)?;
        m.serialize_entry("kind", &sk.kind)?;
        m.serialize_entry("reason", &sk.reason)?;
        if let Some(t) = &sk.text {
            m.serialize_entry("text", &*mask(t))?;
        }
        m.end()
    }
}

/// Typed fields of one record: only the operators its format has; unset values are null.
/// Secrets are masked: values of operators that log secret headers (`%REQ(AUTHORIZATION)%`,
/// `%REQ(COOKIE)%`, …) and secret query parameters, JWTs and credentials inside any value.
#[derive(Debug, Clone, Copy)]
pub struct RecordFields<'r, 'a>(pub &'r RawRecord<'a>);

impl Serialize for RecordFields<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(None)?;
        for (slot, raw) in r.slots() {
            m.serialize_entry(slot.key(), &SlotValue { r, slot, raw })?;
        }
        if r.extras().next().is_some() {
            m.serialize_entry("extra", &Extras(r))?;
        }
        m.end()
    }
}

/// The value of one typed slot.
struct SlotValue<'r, 'a> {
    r: &'r RawRecord<'a>,
    slot: Slot,
    raw: &'r str,
}

impl Serialize for SlotValue<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (r, raw) = (self.r, self.raw);
        let unset = raw == "-" || raw.is_empty();
        match self.slot {
            _ if unset && self.slot != Slot::ResponseFlags => s.serialize_unit(),
            Slot::StartTime => match r.start_time() {
                Some(t) => match rfc3339_utc(&t, &mut [0; 30]) {
                    Some(text) => s.serialize_str(text),
                    None => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
                },
                None => s.serialize_str(raw),
            },
            Slot::ResponseCode => r.status().serialize(s),
            Slot::ResponseFlags => s.collect_seq(r.flags().iter().map(|f| f.short())),
            Slot::ResponseCodeDetails => match r.details() {
                Some(d) => Details(&d).serialize(s),
                None => s.serialize_unit(),
            },
            Slot::UpstreamTransportFailureReason => match r.transport_failure() {
                Some(t) => Transport(&t).serialize(s),
                None => s.serialize_unit(),
            },
            Slot::BytesReceived => r.bytes_received().serialize(s),
            Slot::BytesSent => r.bytes_sent().serialize(s),
            Slot::Duration => r.duration_ms().serialize(s),
            Slot::UpstreamServiceTime => r.upstream_service_time_ms().serialize(s),
            Slot::XForwardedFor => s.collect_seq(r.forwarded_for()),
            Slot::UpstreamCluster => match r.upstream_cluster() {
                Some(c) => match istio(&c, raw) {
                    Some(i) => {
                        let mut m = s.serialize_map(Some(6))?;
                        m.serialize_entry("raw", raw)?;
                        m.serialize_entry("name", &i.name)?;
                        m.serialize_entry("direction", i.direction)?;
                        m.serialize_entry("port", &i.port)?;
                        m.serialize_entry("subset", &i.subset)?;
                        m.serialize_entry("host", &i.host)?;
                        m.end()
                    }
                    None => {
                        let mut m = s.serialize_map(Some(2))?;
                        m.serialize_entry("raw", raw)?;
                        m.serialize_entry("name", &c.to_string())?;
                        m.end()
                    }
                },
                None => s.serialize_unit(),
            },
            _ => s.serialize_str(&mask(raw)),
        }
    }
}

/// An Istio cluster name as a record's JSON writes it: its canonical name (`raw` itself when
/// written that way), and `None` for an empty subset or host.
struct IstioCluster<'a> {
    name: std::borrow::Cow<'a, str>,
    direction: &'static str,
    port: u16,
    subset: Option<&'a str>,
    host: Option<&'a str>,
}

/// [`IstioCluster`] of `c` (parsed from `raw`); `None` for the other kinds of names.
fn istio<'a>(c: &ClusterName<'a>, raw: &'a str) -> Option<IstioCluster<'a>> {
    let ClusterName::Istio {
        direction,
        port,
        subset,
        host,
    } = *c
    else {
        return None;
    };
    Some(IstioCluster {
        name: if written_canonically(raw, direction, port, subset, host) {
            std::borrow::Cow::Borrowed(raw)
        } else {
            std::borrow::Cow::Owned(c.to_string())
        },
        direction: direction.as_str(),
        port,
        subset: (!subset.is_empty()).then_some(subset),
        host: (!host.is_empty()).then_some(host),
    })
}

/// Is `raw`, read as RFC 3339 without error, written as [`rfc3339_utc`] writes the time it
/// reads as? `YYYY-MM-DDTHH:MM:SS` with a fraction of 3, 6 or 9 digits whose last three are
/// not all zero (or none), then `Z`; seconds below 60. Envoy's default `%START_TIME%` is
/// written so, and is then copied instead of read and written again.
fn written_as_utc(raw: &str) -> bool {
    let b = raw.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let fraction = match b.len() {
        20 => true,
        24 | 27 | 30 => {
            b[19] == b'.' && digits(20..b.len() - 1) && &b[b.len() - 4..b.len() - 1] != b"000"
        }
        _ => return false,
    };
    fraction
        && b[b.len() - 1] == b'Z'
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[17] < b'6'
}

/// A time as `to_rfc3339_opts(SecondsFormat::AutoSi, true)` writes it, without chrono's
/// formatting machinery or an allocation, when it is in UTC in years 0–9999 and not a leap
/// second (every time Envoy writes); `None` for the others, which chrono then writes.
fn rfc3339_utc<'b>(t: &DateTime<FixedOffset>, buf: &'b mut [u8; 30]) -> Option<&'b str> {
    let nanos = t.nanosecond();
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    if t.offset().local_minus_utc() != 0 || nanos >= 1_000_000_000 {
        return None;
    }
    let (fraction, width) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (nanos / 1_000_000, 3)
    } else if nanos.is_multiple_of(1_000) {
        (nanos / 1_000, 6)
    } else {
        (nanos, 9)
    };
    let mut n = 0;
    for (before, v, w) in [
        (None, year, 4),
        (Some(b'-'), t.month(), 2),
        (Some(b'-'), t.day(), 2),
        (Some(b'T'), t.hour(), 2),
        (Some(b':'), t.minute(), 2),
        (Some(b':'), t.second(), 2),
        (Some(b'.'), fraction, width),
    ] {
        if w == 0 {
            continue;
        }
        if let Some(c) = before {
            buf[n] = c;
            n += 1;
        }
        let mut v = v;
        for k in (n..n + w).rev() {
            buf[k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        n += w;
    }
    buf[n] = b'Z';
    std::str::from_utf8(&buf[..=n]).ok()
}

/// Is an Istio cluster name written exactly as its canonical form `direction|port|subset|host`
/// (then the name is the raw text, with no string built)?
fn written_canonically(
    raw: &str,
    direction: Direction,
    port: u16,
    subset: &str,
    host: &str,
) -> bool {
    let mut parts = raw.split('|');
    parts.next() == Some(direction.as_str())
        && parts.next() == Some(itoa::Buffer::new().format(port))
        && parts.next() == Some(subset)
        && parts.next() == Some(host)
        && parts.next().is_none()
}

/// `response_code_details`, parsed.
struct Details<'r, 'a>(&'r CodeDetails<'a>);

impl Serialize for Details<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("raw", d.raw)?;
        m.serialize_entry("base", d.base)?;
        if let Some(a) = d.arg {
            m.serialize_entry("arg", a)?;
        }
        if let Some(rr) = d.reset_reason {
            m.serialize_entry("reset_reason", rr)?;
        }
        if let Some(t) = &d.transport_failure {
            m.serialize_entry("transport_failure", &Transport(t))?;
        }
        if let Some(p) = &d.rbac_policy {
            m.serialize_entry("rbac_policy", &Rbac(p))?;
        }
        m.end()
    }
}

/// The policy an RBAC denial names.
struct Rbac<'r, 'a>(&'r RbacPolicy<'a>);

impl Serialize for Rbac<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            RbacPolicy::None => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("matched", "none")?;
                m.end()
            }
            RbacPolicy::Policy {
                namespace,
                name,
                rule,
            } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("namespace", namespace)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("rule", rule)?;
                m.end()
            }
            RbacPolicy::Other(o) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("id", o)?;
                m.end()
            }
        }
    }
}

/// A transport failure reason, parsed and explained.
struct Transport<'r, 'a>(&'r TransportFailure<'a>);

impl Serialize for Transport<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let kind = match t.kind {
            TransportFailureKind::Tls => "tls",
            TransportFailureKind::ConnectError => "connect_error",
            TransportFailureKind::Other => "other",
        };
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("raw", t.raw)?;
        m.serialize_entry("kind", kind)?;
        m.serialize_entry("reason", &t.reason)?;
        m.serialize_entry("openssl_code", &t.openssl_code)?;
        m.serialize_entry("meaning", &t.explain())?;
        m.end()
    }
}

/// Operators without a slot, in format order. A name given twice keeps its first place and
/// its last value (one key per name, as a JSON object must have).
struct Extras<'r, 'a>(&'r RawRecord<'a>);

impl Serialize for Extras<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let extras: Vec<(&str, &str)> = self.0.extras().collect();
        let unique = if extras.len() <= 16 {
            extras
                .iter()
                .enumerate()
                .all(|(i, (k, _))| extras[..i].iter().all(|(k2, _)| k2 != k))
        } else {
            let mut seen = HashSet::with_capacity(extras.len());
            extras.iter().all(|(k, _)| seen.insert(*k))
        };
        // Later values of a name replace earlier ones.
        let last: HashMap<&str, &str> = if unique {
            HashMap::new()
        } else {
            extras.iter().copied().collect()
        };
        let mut written: HashSet<&str> = HashSet::new();
        let mut m = s.serialize_map(None)?;
        for &(k, v) in &extras {
            let v = if unique {
                v
            } else if written.insert(k) {
                last.get(k).copied().unwrap_or(v)
            } else {
                continue;
            };
            if is_secret_name(k) && v != "-" && !v.is_empty() {
                m.serialize_entry(k, MASK)?;
            } else {
                m.serialize_entry(k, &*mask(v))?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{FixedOffset, NaiveDate, TimeZone};
    use meshtrace_parsers::cluster::parse_cluster_name;

    use super::*;

    /// UTC times of every precision, across the whole range of years, are written as chrono
    /// writes them; the others are left to chrono.
    #[test]
    fn utc_times_are_written_as_chrono_writes_them() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let last = NaiveDate::from_ymd_opt(9999, 12, 31)
            .unwrap()
            .and_hms_opt(23, 59, 59)
            .unwrap()
            .and_utc()
            .timestamp();
        for i in 0..200_000u64 {
            let secs = if i < 10 {
                [0, 1, 59, 86_399, 951_782_400, last, last - 1, 1, 2, 3][i as usize]
            } else {
                (next() % (last as u64 + 1)) as i64
            };
            let nanos = match i % 4 {
                0 => 0,
                1 => (next() % 1000) as u32 * 1_000_000,
                2 => (next() % 1_000_000) as u32 * 1_000,
                _ => (next() % 1_000_000_000) as u32,
            };
            let t = utc.timestamp_opt(secs, nanos).unwrap();
            let want = t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
            assert_eq!(rfc3339_utc(&t, &mut [0; 30]), Some(want.as_str()));
            // The record writer copies these without a check.
            assert!(
                super::super::safe::json_string_untouched(want.as_bytes())
                    && !super::super::compact::needs_escape(want.as_bytes()),
                "{want}"
            );
        }
        // Before year 0, an offset, a leap second: chrono writes these.
        let bc = utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(rfc3339_utc(&bc, &mut [0; 30]), None);
        let east = FixedOffset::east_opt(3600).unwrap();
        let t = east.with_ymd_and_hms(2024, 6, 3, 9, 0, 0).unwrap();
        assert_eq!(rfc3339_utc(&t, &mut [0; 30]), None);
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc()
            .fixed_offset();
        assert_eq!(rfc3339_utc(&leap, &mut [0; 30]), None);
    }

    /// A start time copied as it is (`written_as_utc`) is what `rfc3339_utc` writes for the
    /// time it reads as; every time `rfc3339_utc` writes is copied so; and near misses (a
    /// fraction ending in zeros, a leap second, a lower-case `z`, an offset, a day that does
    /// not exist) are not.
    #[test]
    fn start_times_copied_as_written_are_written_so() {
        use meshtrace_parsers::record::parse_rfc3339;
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let mut copied = 0;
        for i in 0..200_000u64 {
            let mut d = |n: u64| next() % n;
            let fraction = match i % 5 {
                0 => String::new(),
                1 => format!(".{:03}", d(1000)),
                2 => format!(".{:06}", d(1_000_000)),
                3 => format!(".{:09}", d(1_000_000_000)),
                _ => format!(".{:0w$}", d(1000) * 1000, w = [6, 9][d(2) as usize]),
            };
            let raw = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}Z",
                d(10_000),
                d(14),
                d(33),
                d(25),
                d(61),
                d(62),
            );
            let Some(t) = parse_rfc3339(&raw) else {
                continue;
            };
            let written = rfc3339_utc(&t, &mut [0; 30]).map(str::to_owned);
            if written_as_utc(&raw) {
                copied += 1;
                assert_eq!(written.as_deref(), Some(raw.as_str()), "{raw}");
            } else if let Some(w) = &written {
                assert_ne!(w, &raw);
            }
            if let Some(w) = &written {
                assert!(written_as_utc(w), "{w}");
            }
        }
        assert!(copied > 50_000, "{copied}");
        for raw in [
            "2024-06-03T09:00:00.000Z",
            "2024-06-03T09:00:00.069000Z",
            "2016-12-31T23:59:60.500Z",
            "2024-06-03T09:00:00.069z",
            "2024-06-03T09:00:00.069+00:00",
            "2024-06-03 09:00:00.069Z",
            "2024-06-03T09:00:00.0691Z",
        ] {
            assert!(!written_as_utc(raw), "{raw}");
        }
    }

    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// The files under `testdata/` with one of these extensions.
    fn test_logs(extensions: &[&str]) -> Vec<std::path::PathBuf> {
        fn walk(dir: &std::path::Path, ext: &[&str], out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, ext, out);
                } else if p.extension().is_some_and(|x| ext.iter().any(|e| x == *e)) {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        walk(&root, extensions, &mut out);
        out
    }

    /// Both writers of a record, and their verdicts.
    fn both(l: &LogLine) -> ((String, bool), (String, bool)) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut keys = super::super::safe::KeyChecks::default();
        let ca = super::super::compact::to_vec_checked(&mut a, &mut keys, &RecordJson(l)).unwrap();
        let mut keys = super::super::safe::KeyChecks::default();
        let cb = record_checked(l, &mut keys, &mut b).unwrap();
        let text = |v: Vec<u8>| String::from_utf8(v).unwrap();
        ((text(a), ca), (text(b), cb))
    }

    #[test]
    fn the_record_writer_writes_what_record_json_writes_for_every_test_log() {
        let files = test_logs(&["log", "txt"]);
        let (mut records, mut clean) = (0, 0);
        for f in &files {
            let mut set = meshtrace_analysis::model::LogSet::default();
            let _ = crate::source::input::read_log_file(
                f,
                "t.log",
                None,
                &meshtrace_parsers::detect::FormatSpec::Auto,
                &mut set,
                &crate::source::input::LineFilter::All,
            );
            // Several records in one KeyChecks, as a spool writes them.
            let mut keys = super::super::safe::KeyChecks::default();
            for l in &set.records {
                let (want, got) = both(l);
                assert_eq!(got, want, "{}:{}", f.display(), l.line);
                let mut again = Vec::new();
                let c = record_checked(l, &mut keys, &mut again).unwrap();
                assert_eq!((String::from_utf8(again).unwrap(), c), want);
                records += 1;
                clean += usize::from(c);
            }
        }
        assert!(
            records > 1_000 && clean > 500,
            "{records} records, {clean} clean"
        );
    }

    #[test]
    fn the_record_writer_writes_what_record_json_writes_for_random_records() {
        use std::borrow::Cow;
        let values = [
            "-",
            "",
            "GET",
            "/v2/models/x/infer?token=abc&x=1",
            "a\"b\\c",
            "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
            "x\u{202e}y",
            "tab\there",
            "10.1.2.3:8080",
            "10.1.2.3",
            ":80",
            "[2001:db8::1]:443",
            "0.0.0.0:0",
            "envoy://connect_originate/10.0.0.1:9080",
            "503",
            "12",
            "UF,URX",
            "upstream_reset_before_response_started{connection_failure,TLS_error:_268435703}",
            "rbac_access_denied_matched_policy[ns[default]-policy[deny]-rule[0]]",
            "outbound|80||x.svc.cluster.local",
            "outbound_.80_._.x.svc.cluster.local",
            "outbound|8080|v1|reviews.default.svc.cluster.local",
            "outbound|080||x.svc.cluster.local",
            "inbound|8012||",
            "via_upstream",
            "downstream_remote_disconnect{unbalanced",
            "NR",
            "2024-06-03T09:00:00.069Z",
            "2024-06-03T09:00:00+02:00",
            "1.2.3.4,5.6.7.8",
            "héllo wörld",
            // Numbers as written and not (`Object::int_as_written`): a leading zero or sign,
            // the largest that fit and the first that do not.
            "0",
            "007",
            "+5",
            "200",
            "0200",
            "65535",
            "65536",
            "1e3",
            "9999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
        ];
        let slots = meshtrace_parsers::Slot::ALL;
        let mut next = xorshift(0x0123_4567_89ab_cdef);
        // One KeyChecks for every record too, as a spool writes them: values remembered from
        // earlier records (`Object::memo`), clean or not, are written as they were.
        let mut shared = super::super::safe::KeyChecks::default();
        for round in 0..3_000 {
            let mut r = RawRecord::new(std::sync::Arc::from("istio-1.23"));
            for slot in slots {
                if !next().is_multiple_of(3) {
                    let v = values[(next() % values.len() as u64) as usize];
                    r.set(slot, Cow::Borrowed(v));
                }
            }
            for k in ["authorization", "x-custom", "x-custom"] {
                if next().is_multiple_of(4) {
                    let v = values[(next() % values.len() as u64) as usize];
                    r.push_extra(std::sync::Arc::from(k), Cow::Borrowed(v));
                }
            }
            if round % 7 == 0 {
                r.missing.push(std::sync::Arc::from("%ROUTE_NAME%"));
                r.notes.push(std::sync::Arc::from("keys read by name"));
            }
            let l = LogLine {
                input: std::sync::Arc::from(if round % 5 == 0 {
                    "a \"b\".log"
                } else {
                    "a.log"
                }),
                line: round + 1,
                lines: if round % 11 == 0 { 2 } else { 1 },
                envelope: if round % 13 == 0 { "cri" } else { "none" },
                pod: None,
                record: r.into_owned(),
            };
            let (want, got) = both(&l);
            assert_eq!(got, want, "round {round}");
            let mut again = Vec::new();
            let c = record_checked(&l, &mut shared, &mut again).unwrap();
            assert_eq!(
                (String::from_utf8(again).unwrap(), c),
                want,
                "round {round}"
            );
        }
        let hits: usize = shared.memos.iter().map(|m| m.hits).sum();
        assert!(hits > 1_000, "{hits}");
    }

    /// Both writers of a request, and their verdicts.
    fn both_requests(
        r: &meshtrace_analysis::explain::RequestReport,
        keys: (
            &mut super::super::safe::KeyChecks,
            &mut super::super::safe::KeyChecks,
        ),
    ) -> ((String, bool), (String, bool)) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ca = super::super::compact::to_vec_checked(&mut a, keys.0, r).unwrap();
        let cb = request_checked(r, keys.1, &mut b).unwrap();
        let text = |v: Vec<u8>| String::from_utf8(v).unwrap();
        ((text(a), ca), (text(b), cb))
    }

    #[test]
    fn the_request_writer_writes_what_request_report_writes() {
        use meshtrace_analysis::explain::{HopRef, RequestReport};
        // Every request explained from the test logs, one document's keys for each writer.
        let files = test_logs(&["log"]);
        let mut set = meshtrace_analysis::model::LogSet::default();
        for f in &files {
            let _ = crate::source::input::read_log_file(
                f,
                &f.display().to_string(),
                None,
                &meshtrace_parsers::detect::FormatSpec::Auto,
                &mut set,
                &crate::source::input::LineFilter::All,
            );
        }
        let report = meshtrace_analysis::explain::explain(&set);
        let (mut ka, mut kb) = Default::default();
        let mut clean = 0;
        for r in &report.requests {
            let (want, got) = both_requests(r, (&mut ka, &mut kb));
            assert_eq!(got, want);
            clean += usize::from(got.1);
        }
        assert!(
            report.requests.len() > 300 && clean > 100,
            "{} requests, {clean} clean",
            report.requests.len()
        );
        // Every shape: absent ids and statuses, no hops, a continuation, strings to escape or mask.
        let texts = [
            "the proxy handling 10.0.0.1:8080 → outbound|80||a.svc.cluster.local",
            "a\"b",
            "Authorization: Bearer abc",
            "x\u{202e}y",
            "",
            "Nothing to fix.",
        ];
        let mut next = xorshift(0x5151_7171_9191_b1b1);
        let mut pick = move || texts[(next() % texts.len() as u64) as usize];
        let (mut ka, mut kb) = Default::default();
        for round in 0..2_000u64 {
            let hops = (0..round % 3)
                .map(|i| HopRef {
                    input: std::sync::Arc::from(pick()),
                    line: i,
                    status: (i % 2 == 0).then_some(503),
                    hop: std::sync::Arc::from(pick()),
                })
                .collect();
            let r = RequestReport {
                request_id: (round % 4 != 0).then(|| pick().to_string()),
                status: (round % 5 != 0).then_some(200 + (round % 400) as u16),
                cause: if round % 2 == 0 {
                    meshtrace_analysis::causes::Cause::Ok
                } else {
                    meshtrace_analysis::causes::Cause::RbacDenied
                },
                origin_line: round,
                origin_input: std::sync::Arc::from(pick()),
                lines: (0..round % 4).collect(),
                hops,
                summary: pick().to_string(),
                fix: pick().to_string(),
                evidence: (0..round % 3).map(|_| pick().to_string()).collect(),
                part_of: (round % 6 == 0).then(|| pick().to_string()),
            };
            let (want, got) = both_requests(&r, (&mut ka, &mut kb));
            assert_eq!(got, want, "round {round}");
        }
    }

    /// What the record writer copies without a check is what the checks pass.
    #[test]
    fn ip_port_shaped_values_and_written_times_are_plain_to_the_sanitiser() {
        let mut next = xorshift(0xfeed_face_cafe_beef);
        let alphabet = b"0123456789.:";
        let mut shaped = 0;
        for _ in 0..50_000 {
            let len = 1 + (next() % 24) as usize;
            let v: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                .collect();
            if !ip_port_shaped(&v) {
                continue;
            }
            shaped += 1;
            assert!(
                super::super::safe::json_string_untouched(v.as_bytes()),
                "{v}"
            );
            assert!(!super::super::compact::needs_escape(v.as_bytes()), "{v}");
            assert_eq!(mask(&v), v, "{v}");
        }
        assert!(shaped > 10_000, "{shaped}");
        assert!(!ip_port_shaped(":80") && !ip_port_shaped("") && !ip_port_shaped("a1:2"));
    }

    /// A cluster name is taken as written only when it is its own canonical form.
    #[test]
    fn cluster_names_are_taken_as_written_only_when_canonical() {
        let names = [
            (
                "outbound|80||knative-local-gateway.istio-system.svc.cluster.local",
                true,
            ),
            ("inbound|8012||", true),
            ("outbound|9080|v1|reviews.default.svc.cluster.local", true),
            ("inbound-vip|80|http|svc.ns.svc.cluster.local", true),
            ("outbound|080||x.svc", false),
            ("outbound|80||x.svc;", false),
            ("outbound_.80_._.x.ns.svc.cluster.local", false),
            (
                "outbound_.9080_.v1_.reviews.default.svc.cluster.local",
                false,
            ),
            ("outbound|80||x|y", false),
        ];
        for (raw, canonical) in names {
            let Some(
                c @ ClusterName::Istio {
                    direction,
                    port,
                    subset,
                    host,
                },
            ) = parse_cluster_name(raw)
            else {
                // Not an Istio name: nothing to decide.
                continue;
            };
            let taken = written_canonically(raw, direction, port, subset, host);
            assert_eq!(taken, canonical, "{raw}");
            if taken {
                assert_eq!(c.to_string(), raw);
            } else {
                assert_ne!(
                    c.to_string(),
                    raw,
                    "{raw}: canonical, yet not taken as written"
                );
            }
        }
    }
}
