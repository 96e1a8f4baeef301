//! Just enough base64, PEM and DER to read an X.509 certificate's serial number and validity.
//! Bounds-checked everywhere: bad input gives `None`, never a panic.

/// Decode standard base64 (padding and whitespace tolerated).
pub(crate) fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The DER bytes of every `CERTIFICATE` block of a PEM text.
pub(crate) fn pem_certificates(pem: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(b) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[b + "-----BEGIN CERTIFICATE-----".len()..];
        let Some(e) = body.find("-----END CERTIFICATE-----") else {
            break;
        };
        if let Some(der) = base64(&body[..e]) {
            out.push(der);
        }
        rest = &body[e..];
        rest = rest.get("-----END CERTIFICATE-----".len()..).unwrap_or("");
    }
    out
}

/// One TLV at `pos`: (tag, content start, content end).
fn tlv(d: &[u8], pos: usize) -> Option<(u8, usize, usize)> {
    let tag = *d.get(pos)?;
    let first = *d.get(pos + 1)?;
    let (len, start) = if first < 0x80 {
        (first as usize, pos + 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for k in 0..n {
            len = (len << 8) | *d.get(pos + 2 + k)? as usize;
        }
        (len, pos + 2 + n)
    };
    let end = start.checked_add(len)?;
    (end <= d.len()).then_some((tag, start, end))
}

/// Serial (hex, sign padding removed), notBefore and notAfter (`YYYY-MM-DDTHH:MM:SSZ`).
pub(crate) fn cert_fields(der: &[u8]) -> Option<(String, String, String)> {
    let (t, cs, _) = tlv(der, 0)?;
    if t != 0x30 {
        return None;
    }
    let (t, ts, te) = tlv(der, cs)?;
    if t != 0x30 {
        return None;
    }
    let mut p = ts;
    let (mut tag, mut s, mut e) = tlv(der, p)?;
    if tag == 0xa0 {
        p = e;
        (tag, s, e) = tlv(der, p)?;
    }
    if tag != 0x02 {
        return None;
    }
    let mut serial = der.get(s..e)?;
    while serial.len() > 1 && serial[0] == 0 {
        serial = &serial[1..];
    }
    let serial: String = serial.iter().map(|b| format!("{b:02x}")).collect();
    p = e;
    // signature algorithm, issuer
    for _ in 0..2 {
        let (_, _, e2) = tlv(der, p)?;
        p = e2;
    }
    let (vt, vs, ve) = tlv(der, p)?;
    if vt != 0x30 || ve > te {
        return None;
    }
    let (t1, s1, e1) = tlv(der, vs)?;
    let (t2, s2, e2) = tlv(der, e1)?;
    let nb = asn1_time(t1, der.get(s1..e1)?)?;
    let na = asn1_time(t2, der.get(s2..e2)?)?;
    Some((serial, nb, na))
}

/// The SPIFFE id of a certificate (its `spiffe://` URI SAN), if any.
pub(crate) fn spiffe_id(der: &[u8]) -> Option<String> {
    let needle = b"spiffe://";
    let k = der.windows(needle.len()).position(|w| w == needle)?;
    // A URI SAN is `[6] IA5String` with a short length: tag 0x86, length, text.
    let len = *der.get(k.checked_sub(1)?)? as usize;
    if *der.get(k.checked_sub(2)?)? != 0x86 || len >= 0x80 {
        return None;
    }
    let text = der.get(k..k + len)?;
    String::from_utf8(text.to_vec()).ok()
}

fn asn1_time(tag: u8, b: &[u8]) -> Option<String> {
    let t = std::str::from_utf8(b).ok()?;
    if !t.bytes().take(12).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match tag {
        0x17 => {
            let yy: u32 = t.get(0..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, t.get(2..)?)
        }
        0x18 => (t.get(0..4)?.parse().ok()?, t.get(4..)?),
        _ => return None,
    };
    Some(format!(
        "{year:04}-{}-{}T{}:{}:{}Z",
        rest.get(0..2)?,
        rest.get(2..4)?,
        rest.get(4..6)?,
        rest.get(6..8)?,
        rest.get(8..10)?
    ))
}

/// Seconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn unix_seconds(t: &str) -> Option<i64> {
    let y: i64 = t.get(0..4)?.parse().ok()?;
    let m: i64 = t.get(5..7)?.parse().ok()?;
    let d: i64 = t.get(8..10)?.parse().ok()?;
    let hh: i64 = t.get(11..13)?.parse().ok()?;
    let mm: i64 = t.get(14..16)?.parse().ok()?;
    let ss: i64 = t.get(17..19)?.parse().ok()?;
    // days from civil (proleptic Gregorian)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2023-05-16T01:32:52Z"), Some(1_684_200_772));
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(cert_fields(&[0x30, 0x82, 0xff]), None);
        assert_eq!(cert_fields(&[]), None);
        assert_eq!(base64("a*b"), None);
    }
}
