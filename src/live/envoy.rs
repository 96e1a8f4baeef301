//! Envoy's `/config_dump?include_eds`, as istioctl gets it: a port-forward to the admin port
//! 15000 (WebSocket, `portforward.k8s.io`), falling back to exec `pilot-agent request GET
//! config_dump` in the `istio-proxy` container. Streamed to `config_dump/<ns>/<pod>.json` (0600),
//! at most [`bounds::MAX_DUMP_BYTES`]; opening the stream and every silence are bounded by
//! `--request-timeout`, the whole dump by its own timeout and the deadline.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncWriteExt;

use super::bounds::{self, Bound};
use super::error::CallError;
use super::kubeapi::Kube;
use super::logs::PodProblem;
use super::progress::Progress;
use super::{private, writer};

const ADMIN_PORT: u16 = 15000;
const PATH: &str = "/config_dump?include_eds";

enum DumpError {
    Call(CallError),
    Failed(String),
    /// Larger than meshtrace reads, or the bundle's byte budget is used up: the other way
    /// would fail the same.
    TooLarge(String),
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::Call(c) => c.fmt(f),
            DumpError::Failed(s) | DumpError::TooLarge(s) => f.write_str(s),
        }
    }
}

impl DumpError {
    fn deadline(&self) -> bool {
        matches!(self, DumpError::Call(CallError::TimedOut(t)) if matches!(t.bound, Bound::Deadline(_)))
    }
}

/// Count `n` more bytes of a dump against its cap and the bundle's budget.
fn room(kube: &Kube, written: u64, n: usize) -> Result<(), DumpError> {
    if written + n as u64 > bounds::MAX_DUMP_BYTES {
        return Err(DumpError::TooLarge(format!(
            "the config dump is larger than {}, which meshtrace does not read",
            bounds::bytes(bounds::MAX_DUMP_BYTES)
        )));
    }
    if kube.disk.take(n as u64) < n as u64 {
        return Err(DumpError::TooLarge(format!(
            "the logs and config dumps reached {} in all",
            bounds::bytes(bounds::MAX_BUNDLE_BYTES)
        )));
    }
    Ok(())
}

/// Fetch one pod's config dump. Returns its size, or the problems met (both ways failed).
pub(crate) async fn config_dump(
    kube: &Kube,
    ns: &str,
    pod: &str,
    dir: &Path,
    timeout: Duration,
    progress: &Progress,
) -> Result<u64, Vec<PodProblem>> {
    let path = writer::dump_path(dir, ns, pod).map_err(|e| vec![PodProblem::Other(e)])?;
    let api: Api<Pod> = Api::namespaced(kube.client.clone(), ns);
    let pf_call = format!("GET /api/v1/namespaces/{ns}/pods/{pod}/portforward?ports={ADMIN_PORT}");
    let pf = async {
        let _p = kube.permit(&pf_call).await.map_err(DumpError::Call)?;
        let whole = tokio::time::timeout(timeout, port_forward(kube, &api, pod, &path, progress));
        match kube.clock.until_deadline(&pf_call, whole).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(DumpError::Failed(format!(
                "no whole dump within {}",
                bounds::human(timeout)
            ))),
            Err(t) => Err(DumpError::Call(CallError::TimedOut(t))),
        }
    }
    .await;
    let pf_err = match pf {
        Ok(n) => return Ok(n),
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            e
        }
    };
    let ex_call = format!(
        "GET /api/v1/namespaces/{ns}/pods/{pod}/exec?command=pilot-agent&…&container=istio-proxy"
    );
    let ex = if matches!(pf_err, DumpError::TooLarge(_)) || pf_err.deadline() {
        Err(DumpError::Failed("not tried".into()))
    } else {
        async {
            let _p = kube.permit(&ex_call).await.map_err(DumpError::Call)?;
            let whole = tokio::time::timeout(timeout, exec(kube, &api, pod, &path, progress));
            match kube.clock.until_deadline(&ex_call, whole).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(DumpError::Failed(format!(
                    "no whole dump within {}",
                    bounds::human(timeout)
                ))),
                Err(t) => Err(DumpError::Call(CallError::TimedOut(t))),
            }
        }
        .await
    };
    let ex_err = match ex {
        Ok(n) => return Ok(n),
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            e
        }
    };
    let mut problems = Vec::new();
    let what = format!("the Envoy config dump of pod {ns}/{pod} was not collected");
    if let DumpError::TooLarge(why) = &pf_err {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(vec![PodProblem::Other(format!("{what}: {why}"))]);
    }
    for e in [&pf_err, &ex_err] {
        if e.deadline()
            && let DumpError::Call(CallError::TimedOut(t)) = e
        {
            return Err(vec![PodProblem::Cut(CallError::TimedOut(t.clone()), what)]);
        }
    }
    if let DumpError::TooLarge(why) = &ex_err {
        return Err(vec![PodProblem::Other(format!("{what}: {why}"))]);
    }
    let mut plain = Vec::new();
    for (err, resource, how) in [
        (&pf_err, "pods/portforward", "port-forward to 15000"),
        (&ex_err, "pods/exec", "exec pilot-agent"),
    ] {
        match err {
            DumpError::Call(CallError::Forbidden(_)) => problems.push(PodProblem::Forbidden {
                verb: "create",
                resource,
                ns: ns.to_string(),
                what: format!("the Envoy config dump of pod {pod} was not collected"),
            }),
            e => plain.push(format!("{how}: {e}")),
        }
    }
    if !plain.is_empty() {
        problems.push(PodProblem::Other(format!(
            "{ns}/{pod}: no Envoy config dump ({})",
            plain.join("; ")
        )));
    }
    Err(problems)
}

async fn create(path: &Path) -> Result<tokio::io::BufWriter<tokio::fs::File>, DumpError> {
    let f = private::create_file(path)
        .map_err(|e| DumpError::Failed(super::writer::write_failure(path, &e)))?;
    Ok(tokio::io::BufWriter::new(tokio::fs::File::from_std(f)))
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> DumpError + '_ {
    move |e| DumpError::Failed(super::writer::write_failure(path, &e))
}

async fn port_forward(
    kube: &Kube,
    api: &Api<Pod>,
    pod: &str,
    path: &Path,
    progress: &Progress,
) -> Result<u64, DumpError> {
    let call = format!(
        "GET /api/v1/namespaces/{}/pods/{pod}/portforward?ports={ADMIN_PORT}",
        api.namespace().unwrap_or_default()
    );
    let mut pf = kube
        .clock
        .call(&call, api.portforward(pod, &[ADMIN_PORT]))
        .await
        .map_err(|t| DumpError::Call(CallError::TimedOut(t)))?
        .map_err(|e| DumpError::Call(CallError::from_kube(e)))?;
    let stream = pf
        .take_stream(ADMIN_PORT)
        .ok_or_else(|| DumpError::Failed("port-forward gave no stream".into()))?;
    let port_error = pf.take_error(ADMIN_PORT);
    let result = async {
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| DumpError::Failed(e.to_string()))?;
        let admin = format!("GET {PATH} (Envoy admin, through `{call}`)");
        let driver = tokio::spawn(conn);
        let req = http::Request::get(PATH)
            .header(http::header::HOST, "localhost")
            .body(Empty::<Bytes>::new())
            .map_err(|e| DumpError::Failed(e.to_string()))?;
        let resp = kube
            .clock
            .call(&admin, sender.send_request(req))
            .await
            .map_err(|t| DumpError::Call(CallError::TimedOut(t)))?
            .map_err(|e| DumpError::Failed(e.to_string()))?;
        if !resp.status().is_success() {
            driver.abort();
            return Err(DumpError::Failed(format!(
                "Envoy admin answered {}",
                resp.status()
            )));
        }
        let mut body = resp.into_body();
        let mut file = create(path).await?;
        let mut n: u64 = 0;
        while let Some(frame) = kube
            .clock
            .read(&admin, body.frame())
            .await
            .map_err(|t| DumpError::Call(CallError::TimedOut(t)))?
        {
            let frame =
                frame.map_err(|e| DumpError::Failed(format!("cut after {n} bytes: {e}")))?;
            if let Ok(data) = frame.into_data() {
                room(kube, n, data.len())?;
                file.write_all(&data).await.map_err(write_err(path))?;
                n += data.len() as u64;
                progress.add_bytes(data.len() as u64);
            }
        }
        file.flush().await.map_err(write_err(path))?;
        driver.abort();
        Ok(n)
    }
    .await;
    match result {
        Ok(n) => {
            pf.abort();
            Ok(n)
        }
        Err(e) => {
            // The error channel says why the port could not be reached.
            let why = match port_error {
                Some(f) => tokio::time::timeout(Duration::from_secs(2), f)
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            pf.abort();
            Err(match why {
                Some(w) if !w.is_empty() => DumpError::Failed(w),
                _ => e,
            })
        }
    }
}

async fn exec(
    kube: &Kube,
    api: &Api<Pod>,
    pod: &str,
    path: &Path,
    progress: &Progress,
) -> Result<u64, DumpError> {
    let call = format!(
        "GET /api/v1/namespaces/{}/pods/{pod}/exec?command=pilot-agent&…&container=istio-proxy",
        api.namespace().unwrap_or_default()
    );
    let ap = AttachParams::default()
        .container("istio-proxy")
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut proc = kube
        .clock
        .call(
            &call,
            api.exec(
                pod,
                ["pilot-agent", "request", "GET", "config_dump?include_eds"],
                &ap,
            ),
        )
        .await
        .map_err(|t| DumpError::Call(CallError::TimedOut(t)))?
        .map_err(|e| DumpError::Call(CallError::from_kube(e)))?;
    let mut stdout = proc
        .stdout()
        .ok_or_else(|| DumpError::Failed("exec gave no stdout".into()))?;
    let mut stderr = proc.stderr();
    let status = proc.take_status();
    let mut file = create(path).await?;
    let mut n: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        use tokio::io::AsyncReadExt;
        let k = kube
            .clock
            .read(&call, stdout.read(&mut buf))
            .await
            .map_err(|t| DumpError::Call(CallError::TimedOut(t)))?
            .map_err(|e| DumpError::Failed(format!("cut after {n} bytes: {e}")))?;
        if k == 0 {
            break;
        }
        room(kube, n, k)?;
        file.write_all(&buf[..k]).await.map_err(write_err(path))?;
        n += k as u64;
        progress.add_bytes(k as u64);
    }
    file.flush().await.map_err(write_err(path))?;
    let mut err_text = String::new();
    if let Some(se) = stderr.as_mut() {
        use tokio::io::AsyncReadExt;
        let mut limited = se.take(4096);
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            limited.read_to_string(&mut err_text),
        )
        .await;
    }
    let st = match status {
        Some(f) => tokio::time::timeout(Duration::from_secs(5), f)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let _ = proc.join().await;
    if let Some(st) = st
        && st.status.as_deref() == Some("Failure")
    {
        return Err(DumpError::Failed(format!(
            "pilot-agent failed: {}{}",
            st.message.as_deref().unwrap_or("no message"),
            if err_text.trim().is_empty() {
                String::new()
            } else {
                format!(" ({})", err_text.trim())
            }
        )));
    }
    if n == 0 {
        return Err(DumpError::Failed(format!(
            "pilot-agent wrote nothing{}",
            if err_text.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", err_text.trim())
            }
        )));
    }
    Ok(n)
}
