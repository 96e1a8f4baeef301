//! Envoy's `/config_dump?include_eds`, as istioctl gets it: a port-forward to the admin port
//! 15000 (WebSocket, `portforward.k8s.io`), falling back to exec `pilot-agent request GET
//! config_dump` in the `istio-proxy` container. Streamed to `config_dump/<ns>/<pod>.json`.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncWriteExt;

use super::error::CallError;
use super::kubeapi::Kube;
use super::logs::PodProblem;
use super::progress::Progress;
use super::writer;

const ADMIN_PORT: u16 = 15000;
const PATH: &str = "/config_dump?include_eds";

enum DumpError {
    Call(CallError),
    Failed(String),
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::Call(c) => c.fmt(f),
            DumpError::Failed(s) => f.write_str(s),
        }
    }
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
    let pf = {
        let _p = kube.permits.acquire().await;
        match tokio::time::timeout(timeout, port_forward(&api, pod, &path, progress)).await {
            Ok(r) => r,
            Err(_) => Err(DumpError::Failed(format!("no answer within {timeout:?}"))),
        }
    };
    let pf_err = match pf {
        Ok(n) => return Ok(n),
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            e
        }
    };
    let ex = {
        let _p = kube.permits.acquire().await;
        match tokio::time::timeout(timeout, exec(&api, pod, &path, progress)).await {
            Ok(r) => r,
            Err(_) => Err(DumpError::Failed(format!("no answer within {timeout:?}"))),
        }
    };
    let ex_err = match ex {
        Ok(n) => return Ok(n),
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            e
        }
    };
    let mut problems = Vec::new();
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
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| DumpError::Failed(format!("{}: {e}", parent.display())))?;
    }
    let f = tokio::fs::File::create(path)
        .await
        .map_err(|e| DumpError::Failed(format!("{}: {e}", path.display())))?;
    Ok(tokio::io::BufWriter::new(f))
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> DumpError + '_ {
    move |e| DumpError::Failed(format!("{}: {e}", path.display()))
}

async fn port_forward(
    api: &Api<Pod>,
    pod: &str,
    path: &Path,
    progress: &Progress,
) -> Result<u64, DumpError> {
    let mut pf = api
        .portforward(pod, &[ADMIN_PORT])
        .await
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
        let driver = tokio::spawn(conn);
        let req = http::Request::get(PATH)
            .header(http::header::HOST, "localhost")
            .body(Empty::<Bytes>::new())
            .map_err(|e| DumpError::Failed(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
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
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| DumpError::Failed(format!("cut after {n} bytes: {e}")))?;
            if let Ok(data) = frame.into_data() {
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
    api: &Api<Pod>,
    pod: &str,
    path: &Path,
    progress: &Progress,
) -> Result<u64, DumpError> {
    let ap = AttachParams::default()
        .container("istio-proxy")
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut proc = api
        .exec(
            pod,
            ["pilot-agent", "request", "GET", "config_dump?include_eds"],
            &ap,
        )
        .await
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
        let k = stdout
            .read(&mut buf)
            .await
            .map_err(|e| DumpError::Failed(format!("cut after {n} bytes: {e}")))?;
        if k == 0 {
            break;
        }
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
