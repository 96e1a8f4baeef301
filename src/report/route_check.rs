//! `meshtrace route-check`'s printer: the decisions at every hop as text, or the
//! `meshtrace.route-check/v1` document as JSON or YAML.

use std::io::Write;

use anyhow::Result;

use super::Line;
use crate::routesim::{PredictedPath, Request};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RcOutput {
    /// Step-by-step text.
    Table,
    /// The same, with every route and virtual host tried (the text shows the closest ten).
    Wide,
    /// `meshtrace.route-check/v1` JSON.
    Json,
    /// The same as YAML.
    Yaml,
}

/// Print a predicted path in the chosen format.
pub fn write(
    out: &mut dyn Write,
    format: RcOutput,
    req: &Request,
    path: &PredictedPath,
    routed: bool,
) -> Result<()> {
    match format {
        RcOutput::Json | RcOutput::Yaml => {
            let doc = serde_json::json!({
                "schema": "meshtrace.route-check/v1",
                "request": req,
                "hops": path.hops,
                "end": path.end,
                "routed": routed,
            });
            return super::write_json_or_yaml(out, format == RcOutput::Yaml, &doc);
        }
        RcOutput::Table => write_text(out, req, path, CANDIDATES_SHOWN)?,
        RcOutput::Wide => write_text(out, req, path, usize::MAX)?,
    }
    out.flush()?;
    Ok(())
}

/// Routes and virtual hosts tried listed per hop by `-o table`.
const CANDIDATES_SHOWN: usize = 10;

fn write_text(
    out: &mut dyn Write,
    req: &Request,
    path: &PredictedPath,
    shown: usize,
) -> Result<()> {
    writeln!(
        out,
        "{} {}{} Host: {}{}",
        Line(&req.method),
        Line(&req.path),
        if req.headers.is_empty() {
            String::new()
        } else {
            format!(
                " [{}]",
                req.headers
                    .iter()
                    .map(|(k, v)| format!("{}: {}", Line(k), Line(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        Line(&req.host),
        req.port.map(|p| format!(" → port {p}")).unwrap_or_default()
    )?;
    for (i, h) in path.hops.iter().enumerate() {
        writeln!(
            out,
            "\nHop {} · {} · Host {}{}",
            i + 1,
            Line(&h.proxy),
            Line(&h.request.host),
            h.request
                .port
                .map(|p| format!(" · port {p}"))
                .unwrap_or_default()
        )?;
        if let Some(n) = &h.note {
            writeln!(out, "  ↳ {}", Line(n))?;
        }
        for s in &h.steps {
            writeln!(
                out,
                "  {} {:<13} {}",
                if s.ok { "✓" } else { "✗" },
                Line(&s.stage),
                Line(&s.decision)
            )?;
        }
        if !h.candidates.is_empty() {
            writeln!(out, "  Tried (closest first):")?;
            for c in h.candidates.iter().take(shown) {
                writeln!(out, "    - {}: {}", Line(&c.name), Line(&c.why))?;
            }
            if h.candidates.len() > shown {
                writeln!(
                    out,
                    "    … and {} more (-o wide lists them all)",
                    h.candidates.len() - shown
                )?;
            }
        }
    }
    let summary: Vec<String> = path
        .hops
        .iter()
        .map(|h| {
            let port = h.request.port.map(|p| format!(":{p}")).unwrap_or_default();
            let pod = h.proxy.rsplit('/').next().unwrap_or(&h.proxy);
            format!("{}{port}", Line(pod))
        })
        .collect();
    writeln!(out, "\nPredicted path: {}", summary.join(" → "))?;
    writeln!(out, "End: {}", Line(&path.end))?;
    Ok(())
}
