//! Loopback HTTPS load on the real `cratedb-restore-webhook` binary: keep-alive connections at
//! concurrency 1, 8 and 32, then a new TLS connection per request. Prints requests per second,
//! p50/p99/p99.9 latency, errors, and the server's peak RSS. The load generator shares the
//! machine with the server, as it would in a small cluster node.
//!
//! `cargo bench --bench https_load` (BENCH_SECONDS=n per level, default 5)

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::json;
use tokio::net::TcpStream;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    /// Holds the certificate the webhook writes; removed with the server.
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    cert_pem: Vec<u8>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let dir = tempfile::Builder::new()
        .prefix("cratedb-restore-bench-")
        .tempdir()
        .unwrap();
    let cert = dir.path().join("cert.pem");
    let (port, health) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_cratedb-restore-webhook"))
        .args([
            "--self-signed",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--health-listen",
            &format!("127.0.0.1:{health}"),
        ])
        .arg("--self-signed-cert-out")
        .arg(&cert)
        .env_remove("KUBECONFIG")
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the webhook binary");
    // Owned from here on: a failed readiness wait kills the child and removes the directory.
    let mut server = Server {
        child,
        _dir: dir,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        cert_pem: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", health)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.contains("200 OK") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "webhook did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.cert_pem = std::fs::read(&cert).unwrap();
    server
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// A mutating review of a new restore: parsing, classification and a JSON patch, no API calls.
fn body() -> Bytes {
    let r = |k: &str| json!({"secretKeyRef": {"name": "restore", "key": k}});
    let rs = json!({"snapshot": "snap-2024", "tables": ["doc.orders", "sales.events"],
        "accessKeyId": r("a"), "secretAccessKey": r("b"), "bucket": r("c"), "basePath": r("d")});
    let obj = |rs: serde_json::Value| {
        json!({"apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
        "metadata": {"name": "c1", "namespace": "dbs", "uid": "u"},
        "spec": {"cluster": {"imageRegistry": "crate", "name": "c", "version": "5.10.3", "restoreSnapshot": rs},
                 "nodes": {"data": [{"name": "hot", "replicas": 3}]}}})
    };
    Bytes::from(serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "load", "kind": {"group": "cloud.crate.io", "version": "v1", "kind": "CrateDB"},
            "resource": {"group": "cloud.crate.io", "version": "v1", "resource": "cratedbs"},
            "name": "c1", "namespace": "dbs", "operation": "UPDATE", "userInfo": {},
            "object": obj(rs), "oldObject": obj(json!({"snapshot": ""}))}
    })).unwrap())
}

fn tls_config(cert_pem: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert_pem).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Result<Sender, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn send(sender: &mut Sender, body: &Bytes) -> Result<(), String> {
    let request = Request::post("/mutate")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let ok = response.status().is_success();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if ok && bytes.starts_with(b"{") {
        Ok(())
    } else {
        Err("bad answer".into())
    }
}

struct Outcome {
    hist: Histogram<u64>,
    errors: u64,
}

async fn worker(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    keep_alive: bool,
    until: Instant,
) -> Outcome {
    let body = body();
    let mut out = Outcome {
        hist: Histogram::new(3).unwrap(),
        errors: 0,
    };
    let mut sender: Option<Sender> = None;
    while Instant::now() < until {
        let started = Instant::now();
        if sender.is_none() || !keep_alive {
            match connect(addr, tls.clone()).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    out.errors += 1;
                    continue;
                }
            }
        }
        let result = send(sender.as_mut().unwrap(), &body).await;
        match result {
            Ok(()) => out
                .hist
                .record(started.elapsed().as_micros() as u64)
                .unwrap(),
            Err(_) => {
                out.errors += 1;
                sender = None;
            }
        }
    }
    out
}

async fn level(
    server: &Server,
    tls: Arc<rustls::ClientConfig>,
    concurrency: usize,
    keep_alive: bool,
    seconds: u64,
) {
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(worker(server.addr, tls.clone(), keep_alive, until)))
        .collect();
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let mut errors = 0;
    for t in tasks {
        let o = t.await.unwrap();
        hist.add(&o.hist).unwrap();
        errors += o.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{:<22} {:>5} {:>9} {:>10.0} {:>8.3} {:>8.3} {:>9.3} {:>7}",
        if keep_alive {
            "keep-alive"
        } else {
            "new connection each"
        },
        concurrency,
        hist.len(),
        hist.len() as f64 / elapsed,
        ms(0.5),
        ms(0.99),
        ms(0.999),
        errors
    );
}

fn main() {
    // cargo passes --bench; nothing else to parse.
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let server = start_server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tls = tls_config(&server.cert_pem);
    println!(
        "HTTPS load on 127.0.0.1 ({} cores, {seconds} s per level), POST /mutate of a new restore ({} bytes)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        body().len()
    );
    println!(
        "{:<22} {:>5} {:>9} {:>10} {:>8} {:>8} {:>9} {:>7}",
        "mode", "conc", "requests", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"
    );
    rt.block_on(async {
        // Warm-up.
        level(&server, tls.clone(), 8, true, 1).await;
        println!("{}", "-".repeat(86));
        for concurrency in [1, 8, 32] {
            level(&server, tls.clone(), concurrency, true, seconds).await;
        }
        for concurrency in [1, 8] {
            level(&server, tls.clone(), concurrency, false, seconds).await;
        }
    });
    match peak_rss_kib(server.child.id()) {
        Some(kib) => println!("server peak RSS (VmHWM): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("server peak RSS: unavailable (no /proc)"),
    }
}
