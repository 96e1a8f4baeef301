//! SDS secrets: certificate chains and CA bundles with serial number and validity, SPIRE trust
//! domains. Validity is judged against a "now" the caller passes in.

use serde::Serialize;
use serde_json::Value;

use super::ConfigDump;
use super::der::{cert_fields, pem_certificates, unix_seconds};
use super::value::{arr, get, path, s};

/// What a secret holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SecretKind {
    /// A certificate chain and key (`tls_certificate`).
    #[serde(rename = "Cert Chain")]
    CertChain,
    /// A validation context (CA bundle).
    #[serde(rename = "CA")]
    Ca,
    /// Not known (e.g. still warming, no content).
    #[serde(rename = "")]
    Unknown,
}

impl SecretKind {
    /// `Cert Chain`, `CA` or empty, as istioctl prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::CertChain => "Cert Chain",
            SecretKind::Ca => "CA",
            SecretKind::Unknown => "",
        }
    }
}

/// The first certificate of a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// Not valid before (`YYYY-MM-DDTHH:MM:SSZ`).
    pub not_before: String,
    /// Not valid after.
    pub not_after: String,
    /// SPIFFE id (`spiffe://trust-domain/ns/…/sa/…`), if the certificate has one.
    pub spiffe_id: Option<String>,
}

impl CertInfo {
    /// Whether `now` (seconds since the Unix epoch) is within the validity period.
    pub fn valid_at(&self, now_unix: i64) -> bool {
        match (
            unix_seconds(&self.not_before),
            unix_seconds(&self.not_after),
        ) {
            (Some(a), Some(b)) => a <= now_unix && now_unix <= b,
            _ => false,
        }
    }

    /// The trust domain of the SPIFFE id.
    pub fn trust_domain(&self) -> Option<&str> {
        let rest = self.spiffe_id.as_deref()?.strip_prefix("spiffe://")?;
        Some(rest.split('/').next().unwrap_or(rest))
    }

    /// Seconds from `now` until expiry (negative when expired).
    pub fn expires_in(&self, now_unix: i64) -> Option<i64> {
        unix_seconds(&self.not_after).map(|t| t - now_unix)
    }
}

/// One secret (SPIRE trust bundles give one entry per trust domain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Secret {
    /// Resource name (`default`, `ROOTCA`, `kubernetes://ingress-certs`).
    pub name: String,
    /// Kind.
    pub kind: SecretKind,
    /// `ACTIVE` or `WARMING`.
    pub status: String,
    /// First certificate, if readable.
    pub cert: Option<CertInfo>,
    /// SPIFFE trust domain (SPIRE custom validator), if any.
    pub trust_domain: Option<String>,
}

impl Secret {
    /// Whether the certificate is valid at `now_unix` (false when there is none).
    pub fn valid_at(&self, now_unix: i64) -> bool {
        self.cert.as_ref().is_some_and(|c| c.valid_at(now_unix))
    }
}

fn first_cert(inline_b64: Option<&str>, inline_str: Option<&str>) -> Option<CertInfo> {
    let pem = match (inline_b64, inline_str) {
        (Some(b), _) => String::from_utf8(super::der::base64(b)?).ok()?,
        (None, Some(t)) => t.to_string(),
        _ => return None,
    };
    let der = pem_certificates(&pem).into_iter().next()?;
    let (serial, not_before, not_after) = cert_fields(&der)?;
    Some(CertInfo {
        serial,
        not_before,
        not_after,
        spiffe_id: super::der::spiffe_id(&der),
    })
}

fn data_source(v: Option<&Value>) -> Option<CertInfo> {
    let v = v?;
    first_cert(s(v, "inline_bytes"), s(v, "inline_string"))
}

fn read_secret(name: &str, status: &str, sec: Option<&Value>, out: &mut Vec<Secret>) {
    let Some(sec) = sec else {
        out.push(Secret {
            name: name.into(),
            kind: SecretKind::Unknown,
            status: status.into(),
            cert: None,
            trust_domain: None,
        });
        return;
    };
    if let Some(tc) = get(sec, "tls_certificate") {
        out.push(Secret {
            name: name.into(),
            kind: SecretKind::CertChain,
            status: status.into(),
            cert: data_source(get(tc, "certificate_chain")),
            trust_domain: None,
        });
    } else if let Some(vc) = get(sec, "validation_context") {
        let domains = path(vc, &["custom_validator_config", "typed_config"])
            .map(|t| arr(t, "trust_domains"))
            .unwrap_or(&[]);
        if domains.is_empty() {
            out.push(Secret {
                name: name.into(),
                kind: SecretKind::Ca,
                status: status.into(),
                cert: data_source(get(vc, "trusted_ca")),
                trust_domain: None,
            });
        }
        for d in domains {
            out.push(Secret {
                name: name.into(),
                kind: SecretKind::Ca,
                status: status.into(),
                cert: data_source(get(d, "trust_bundle")),
                trust_domain: s(d, "name").map(str::to_string),
            });
        }
    } else {
        out.push(Secret {
            name: name.into(),
            kind: SecretKind::Unknown,
            status: status.into(),
            cert: None,
            trust_domain: None,
        });
    }
}

pub(crate) fn read_section(sec: &Value, d: &mut ConfigDump) {
    for (key, status) in [
        ("static_secrets", "ACTIVE"),
        ("dynamic_active_secrets", "ACTIVE"),
        ("dynamic_warming_secrets", "WARMING"),
    ] {
        for x in arr(sec, key) {
            let name = s(x, "name")
                .or_else(|| get(x, "secret").and_then(|v| s(v, "name")))
                .unwrap_or("");
            read_secret(name, status, get(x, "secret"), &mut d.secrets);
        }
    }
}
