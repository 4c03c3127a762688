//! The end-to-end suite on a REAL single-node Kubernetes 1.20 (`scripts/node-up.sh`): the chart
//! installed with helm from the project's own images, the webhook as Pods behind its Service,
//! restore Jobs as Pods, and the CrateDB simulator as the `crate` container of a StatefulSet
//! Pod, so that the Job's default superuser path (pod exec of `crash`) runs for real.
//!
//! What this module provides:
//! * [`Artifacts`]: the release binaries (`cargo build --release`, a no-op when fresh) and the
//!   four OCI images (`oci-image all`, skipped when newer than the binaries);
//! * [`Node`]: `node-up.sh` into a fresh state dir, torn down with `node-down.sh` when dropped
//!   (also while a panic unwinds) and by a watchdog process when the test process dies without
//!   doing it (abort, SIGKILL, Ctrl-C). Node processes are only ever stopped by the scripts,
//!   by the PIDs they recorded; the watchdog is stopped by its own PID;
//! * [`NodeEnv`]: the node plus kubectl, a kube-rs client, the helm release and the simulator
//!   clusters the scenarios create, with failure diagnostics.

pub mod day2;
pub mod lifecycle;
pub mod scenarios;

use std::{
    collections::BTreeMap,
    fs,
    io::{Read, Write},
    net::TcpStream,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use serde_json::{Value, json};

use crate::harness::{Kubectl, Run, Transcript, chart_dir, e2e_dir, helm, repo_root, tail};

/// Namespace of the CrateDB resources (listed in `restoreJob.namespaces`).
pub const NS: &str = "dbs";
/// Three more restore namespaces (the burst scenario spreads its clusters over all four).
pub const FLEET_NS: [&str; 3] = ["fleet-a", "fleet-b", "fleet-c"];
/// A namespace the restore Jobs have no rights in.
pub const NS_OTHER: &str = "other";
pub const RELEASE: &str = "e2e";
pub const RELEASE_NS: &str = "cratedb-restore-system";
pub const WEBHOOK_DEPLOYMENT: &str = "e2e-cratedb-restore-webhook";
pub const JOB_SA: &str = "cratedb-restore-job";
pub const JOB_SELECTOR: &str =
    "app.kubernetes.io/component=restore-job,restore.cloud.crate.io/cluster=";
pub const WEBHOOK_SELECTOR: &str = "app.kubernetes.io/component=webhook";

/// The image references `oci-image all` writes (workspace version 0.1.0).
pub const PRODUCT_REPOSITORY: &str = "localhost/cratedb-restore-e2e/cratedb-restore";
pub const SIM_IMAGE: &str = "localhost/cratedb-restore-e2e/cratedb-sim";
pub const BUSYBOX_IMAGE: &str = "localhost/cratedb-restore-e2e/busybox";
pub const IMAGE_TAG: &str = env!("CARGO_PKG_VERSION");

/// Every wait of the suite is bounded by one of these.
pub const POD_START: Duration = Duration::from_secs(120);
/// A restore run: the Job's default poll interval is 15 s, so even a 5 s restore takes ~20 s,
/// and the 40 s one of the resume scenario ~60 s.
pub const RESTORE_RUN: Duration = Duration::from_secs(180);

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Runs `cmd`, its output appended to `log`; the status and the time it took.
fn run_logged(cmd: &mut Command, log: &Path) -> (std::process::ExitStatus, Duration) {
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
    let started = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (status, started.elapsed())
}

// --- release binaries and images -------------------------------------------------------------

/// The cargo target directory this test binary was built in (`CARGO_TARGET_DIR` is followed,
/// since the binary sits in `<target>/<profile>/deps/`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// Where the suite keeps its images and logs between runs: `<target>/node-e2e/`.
pub fn work_dir() -> PathBuf {
    let dir = target_dir().join("node-e2e");
    fs::create_dir_all(&dir).expect("create <target>/node-e2e");
    dir
}

pub struct Artifacts {
    /// KUBE_APISERVER=..., KUBELET=..., ... from `scripts/build-kube.sh` (built once, cached).
    pub kube_binaries: Vec<(String, String)>,
    pub kube_time: Duration,
    pub images_dir: PathBuf,
    /// `cargo build --release` (a no-op when nothing changed).
    pub build_time: Duration,
    /// `oci-image all`, or `None` when the images were newer than the binaries.
    pub image_time: Option<Duration>,
}

impl Artifacts {
    /// The Kubernetes binaries, the release binaries of the workspace (webhook, Job, simulator,
    /// image tool), then the images. `cargo test` (1.95) holds no build lock while tests run
    /// (checked with a test that runs `cargo build --release` and `cargo build` in its own
    /// target dir: neither waits), so this builds into the same target dir as the tests.
    /// `.ci/run` builds release first, so there this is a freshness check of a second or two.
    pub fn prepare() -> Artifacts {
        let work = work_dir();
        // The five Kubernetes server binaries (and the node's Debian packages): cached after the
        // first build (~20 min on 2 cores), then ~1 s. Done here, not inside node-up.sh, whose
        // start timeout would otherwise include a first build.
        let log = work.join("build-kube.log");
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(e2e_dir().join("scripts/build-kube.sh"))
            .stdin(Stdio::null())
            .stderr(fs::File::create(&log).expect("build-kube.log"))
            .output()
            .expect("run build-kube.sh");
        assert!(
            out.status.success(),
            "tests/e2e/scripts/build-kube.sh failed ({}):\n{}",
            out.status,
            tail(&log, 30)
        );
        let kube_binaries: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let kube_time = started.elapsed();
        eprintln!("node: Kubernetes binaries ready in {}", secs(kube_time));

        let target = target_dir();
        let log = work.join("release-build.log");
        let _ = fs::remove_file(&log);
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!(
            "node: cargo build --release --workspace --bins (target {}, log {})",
            target.display(),
            log.display()
        );
        let mut build = Command::new(&cargo);
        build
            .args(["build", "--release", "--workspace", "--bins"])
            .current_dir(repo_root())
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_TERM_COLOR", "never");
        // Not the variables cargo sets for a test process: build scripts that watch them (ring
        // declares rerun-if-env-changed=CARGO_MANIFEST_DIR) would otherwise rebuild half the
        // tree here, and again in the next plain `cargo build --release`.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_EXE_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_MANIFEST_LINKS",
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&key.as_ref())
            {
                build.env_remove(key.as_ref());
            }
        }
        let (status, build_time) = run_logged(&mut build, &log);
        assert!(
            status.success(),
            "cargo build --release failed ({status}):\n{}",
            tail(&log, 40)
        );
        eprintln!("node: release binaries ready in {}", secs(build_time));

        let release = target.join("release");
        let images_dir = work.join("images");
        fs::create_dir_all(&images_dir).unwrap();
        let inputs = [
            "cratedb-restore-webhook",
            "cratedb-restore-job",
            "cratedb-sim",
            "oci-image",
        ]
        .map(|b| release.join(b));
        let tars = ["pause.tar", "busybox.tar", "product.tar", "simulator.tar"]
            .map(|t| images_dir.join(t));
        let stamp = images_dir.join("images.txt");
        let newest_input = inputs
            .iter()
            .map(|p| mtime(p).unwrap_or_else(|| panic!("{} was not built", p.display())))
            .max()
            .unwrap();
        let fresh = std::env::var_os("CRATEDB_E2E_REBUILD_IMAGES").is_none()
            && tars.iter().all(|t| t.is_file())
            && mtime(&stamp).is_some_and(|t| t > newest_input);
        let image_time = if fresh {
            eprintln!("node: images up to date in {}", images_dir.display());
            None
        } else {
            let log = work.join("images.log");
            let _ = fs::remove_file(&log);
            let started = Instant::now();
            let out = Command::new(release.join("oci-image"))
                .args(["all", "--out-dir"])
                .arg(&images_dir)
                .stdin(Stdio::null())
                .output()
                .expect("run oci-image");
            fs::write(&log, &out.stderr).unwrap();
            assert!(
                out.status.success(),
                "oci-image all failed ({}):\n{}",
                out.status,
                tail(&log, 30)
            );
            fs::write(&stamp, &out.stdout).unwrap();
            let took = started.elapsed();
            eprintln!(
                "node: images written in {}:\n{}",
                secs(took),
                String::from_utf8_lossy(&out.stdout).trim_end()
            );
            Some(took)
        };
        Artifacts {
            kube_binaries,
            kube_time,
            images_dir,
            build_time,
            image_time,
        }
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

// --- the node ----------------------------------------------------------------------------------

/// A running single node (`node-up.sh`). Dropping it runs `node-down.sh` (also during a panic);
/// a watchdog process does the same if this process dies first.
pub struct Node {
    /// The test's own directory: logs, token kubeconfigs, and `s/`, the node's state dir.
    pub dir: PathBuf,
    pub state: PathBuf,
    pub env: BTreeMap<String, String>,
    pub up_time: Duration,
    watchdog: Option<Child>,
    torn_down: bool,
    keep: bool,
}

/// Waits for the test process (by PID and start time, against PID reuse) and tears the node
/// down if it disappears without having done so. Parameters come from the environment, so no
/// state dir appears on its command line (node-check-clean.sh would count it as a leftover).
const WATCHDOG: &str = r#"
start_of() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0; s=${s##*) }; set -- $s; printf '%s' "${20}"; }
while [ "$(start_of "$WD_PID")" = "$WD_START" ]; do sleep 1; done
echo "$(date -Is) test process $WD_PID is gone without tearing the node down: node-down.sh" >>"$WD_LOG"
bash "$WD_DOWN" "$WD_STATE" >>"$WD_LOG" 2>&1
echo "$(date -Is) node-down.sh exited $?" >>"$WD_LOG"
"#;

fn process_start_time(pid: u32) -> String {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/self/stat");
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    rest.split_whitespace()
        .nth(19)
        .expect("starttime in /proc/PID/stat")
        .to_string()
}

/// Free and total bytes of the filesystem holding `path`.
fn disk_space(path: &Path) -> (u64, u64) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs writes into the zeroed struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    assert_eq!(rc, 0, "statvfs {}", path.display());
    (
        st.f_bavail as u64 * st.f_frsize as u64,
        st.f_blocks as u64 * st.f_frsize as u64,
    )
}

impl Node {
    pub fn up(artifacts: &Artifacts) -> Node {
        // The kubelet evicts and refuses Pods below NODE_EVICTION_DISK (512Mi) of free disk;
        // say so now instead of with a rollout timeout. 1 GiB above it leaves room for the
        // images (~150 MB unpacked), logs and a build running beside the suite.
        let (free, _) = disk_space(Path::new("/tmp"));
        let needed: u64 = (512 << 20) + (1 << 30);
        assert!(
            free > needed,
            "only {:.2} GiB free on the disk of /tmp: the kubelet evicts Pods below 512 MiB free (NODE_EVICTION_DISK), so the suite needs at least 1.5 GiB free; free some space",
            free as f64 / 1073741824.0,
        );
        let images_dir = &artifacts.images_dir;
        // Short: containerd's socket path below the state dir must fit a unix socket.
        let dir = tempfile::Builder::new()
            .prefix("crnode.")
            .tempdir_in("/tmp")
            .expect("test dir")
            .keep();
        let state = dir.join("s");
        let scripts = e2e_dir().join("scripts");
        let mut watchdog = Command::new("bash");
        watchdog
            .args(["-c", WATCHDOG])
            .env("WD_PID", std::process::id().to_string())
            .env("WD_START", process_start_time(std::process::id()))
            .env("WD_STATE", &state)
            .env("WD_DOWN", scripts.join("node-down.sh"))
            .env("WD_LOG", dir.join("watchdog.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own session: a Ctrl-C for the test does not reach it.
        unsafe {
            watchdog.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let watchdog = watchdog.spawn().expect("start the node watchdog");
        // From here on, the guard tears down whatever node-up.sh started, even half-way.
        let mut node = Node {
            dir: dir.clone(),
            state: state.clone(),
            env: BTreeMap::new(),
            up_time: Duration::ZERO,
            watchdog: Some(watchdog),
            torn_down: false,
            keep: std::env::var_os("CRATEDB_E2E_KEEP").is_some(),
        };
        let log = dir.join("node-up.log");
        eprintln!(
            "node: node-up.sh {} (log {})",
            state.display(),
            log.display()
        );
        let (status, took) = run_logged(
            Command::new("bash")
                .arg(scripts.join("node-up.sh"))
                .arg(&state)
                .env("IMAGES_DIR", images_dir)
                .envs(artifacts.kube_binaries.iter().map(|(k, v)| (k, v)))
                // Its own process group: a Ctrl-C does not stop it half-way (the watchdog
                // tears down what it started).
                .process_group(0),
            &log,
        );
        node.up_time = took;
        if !status.success() {
            node.keep = true;
            panic!(
                "node-up.sh failed ({status}) after {}:\n{}",
                secs(took),
                tail(&log, 40)
            );
        }
        let text = fs::read_to_string(state.join("env")).expect("node-up.sh wrote STATE_DIR/env");
        node.env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        eprintln!("node: up in {}", secs(took));
        node
    }

    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{key} missing in {}/env", self.state.display()))
    }

    pub fn kubeconfig(&self) -> PathBuf {
        PathBuf::from(self.get("KUBECONFIG"))
    }

    /// Keep the state dir (logs) after teardown.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// `node-down.sh` (with `--purge` unless kept), then the watchdog is stopped by its PID.
    /// Ok(output) when node-down.sh exited 0 (it found nothing left), else Err(output).
    pub fn down(&mut self) -> Result<String, String> {
        if self.torn_down {
            return Ok(String::new());
        }
        self.torn_down = true;
        let mut cmd = Command::new("bash");
        cmd.arg(e2e_dir().join("scripts/node-down.sh"))
            .arg(&self.state)
            .process_group(0);
        if !self.keep {
            cmd.arg("--purge");
        }
        let log = self.dir.join("node-down.log");
        let (status, took) = run_logged(&mut cmd, &log);
        let output = fs::read_to_string(&log).unwrap_or_default();
        eprintln!("node: node-down.sh exited {status} after {}", secs(took));
        self.stop_watchdog();
        if self.keep {
            eprintln!("node: logs kept in {}", self.dir.display());
        } else if status.success() {
            let _ = fs::remove_dir_all(&self.dir);
        }
        if status.success() {
            Ok(output)
        } else {
            Err(output)
        }
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut child) = self.watchdog.take() {
            // The watchdog leads its own process group (setsid): its `sleep` goes with it.
            // SAFETY: kill(2) on the process group we created.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.keep = true;
        }
        if let Err(output) = self.down() {
            eprintln!("node-down.sh reported leftovers:\n{output}");
        }
    }
}

/// `node-check-clean.sh`: Ok(its "clean" line) or Err(its LEFTOVER lines).
pub fn check_clean() -> Result<String, String> {
    let out = Command::new("bash")
        .arg(e2e_dir().join("scripts/node-check-clean.sh"))
        .stdin(Stdio::null())
        .output()
        .expect("run node-check-clean.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim_start().starts_with("clean") {
        Ok(text.trim().to_string())
    } else {
        Err(text)
    }
}

// --- the environment the scenarios share -------------------------------------------------------

pub struct Timings {
    pub artifacts: Artifacts,
    pub node_up: Duration,
    pub helm_install: Duration,
    pub webhook_ready: Duration,
}

/// Fields drop in order: the runtime and clients first, the node last.
pub struct NodeEnv {
    /// Secret values of the clusters deployed so far (diagnostics are redacted with them).
    pub secrets: std::sync::Mutex<Vec<String>>,
    /// A runtime for kube-rs calls, and an admin client (benches/node.rs polls with it).
    pub rt: tokio::runtime::Runtime,
    #[allow(dead_code)]
    pub admin: kube::Client,
    pub kubectl: Kubectl,
    pub transcript: Transcript,
    pub timings: Timings,
    pub node: Node,
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

impl NodeEnv {
    pub fn start() -> NodeEnv {
        assert!(
            is_root(),
            "the node suite needs root (network, mounts, cgroups, iptables): run it as root, or skip it explicitly with CRATEDB_E2E_NODE=skip"
        );
        let _ = rustls::crypto::ring::default_provider().install_default();
        helm();
        crate::harness::kubectl_binary();
        let artifacts = Artifacts::prepare();
        let node = Node::up(&artifacts);
        let node_up = node.up_time;
        let transcript = Transcript::default();
        let kubectl = Kubectl::new(
            &node.kubeconfig(),
            &node.dir.join("kubectl-cache"),
            transcript.clone(),
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let admin = rt.block_on(crate::harness::client_from(&node.kubeconfig()));
        let mut env = NodeEnv {
            secrets: Default::default(),
            rt,
            admin,
            kubectl,
            transcript,
            timings: Timings {
                artifacts,
                node_up,
                helm_install: Duration::ZERO,
                webhook_ready: Duration::ZERO,
            },
            node,
        };
        let setup = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut namespaces = vec![namespace(NS), namespace(NS_OTHER)];
            namespaces.extend(FLEET_NS.iter().map(|n| namespace(n)));
            env.kubectl.apply(&namespaces).ok();
            crate::harness::install_crd(&env.kubectl);
            let started = Instant::now();
            env.helm_install();
            env.timings.helm_install = started.elapsed();
            env.wait_webhook_serving();
            env.timings.webhook_ready = started.elapsed();
        }));
        if let Err(panic) = setup {
            eprintln!(
                "node: the chart setup failed\n{}",
                env.redact_known(&env.diagnostics())
            );
            env.keep_state();
            std::panic::resume_unwind(panic);
        }
        eprintln!(
            "node: chart installed in {}, webhook answering after {}",
            secs(env.timings.helm_install),
            secs(env.timings.webhook_ready)
        );
        env
    }

    /// `helm install` with only the image values and `restoreJob.namespaces`, as a user would.
    pub fn helm_install(&self) {
        self.helm(&[
            "install",
            RELEASE,
            &chart_dir().display().to_string(),
            "--namespace",
            RELEASE_NS,
            "--create-namespace",
            "--set",
            &format!("image.repository={PRODUCT_REPOSITORY}"),
            "--set",
            &format!("image.tag={IMAGE_TAG}"),
            "--set",
            "image.pullPolicy=Never",
            "--set",
            &format!("restoreJob.namespaces={{{NS},{}}}", FLEET_NS.join(",")),
        ])
        .ok();
    }

    /// helm with the node's kubeconfig and its own helm dirs; recorded for diagnostics.
    pub fn helm(&self, args: &[&str]) -> Run {
        let out = Command::new(helm())
            .args(args)
            .env("KUBECONFIG", self.node.kubeconfig())
            .env("HELM_CACHE_HOME", self.node.dir.join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.node.dir.join("helm/config"))
            .env("HELM_DATA_HOME", self.node.dir.join("helm/data"))
            .stdin(Stdio::null())
            .output()
            .expect("run helm");
        let run = Run {
            cmdline: format!("helm {}", args.join(" ")),
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.record(run.describe());
        run
    }

    /// `scripts/node-ctl.sh STATE stop|start NAMES`: stops node processes by their recorded
    /// PIDs, or starts them again with the command line node-up.sh used.
    #[track_caller]
    pub fn node_ctl(&self, action: &str, names: &[&str]) {
        let out = Command::new("bash")
            .arg(e2e_dir().join("scripts/node-ctl.sh"))
            .arg(&self.node.state)
            .arg(action)
            .args(names)
            .stdin(Stdio::null())
            .output()
            .expect("run node-ctl.sh");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.record(format!(
            "$ node-ctl.sh {action} {}
{text}",
            names.join(" ")
        ));
        assert!(
            out.status.success(),
            "node-ctl.sh {action} {names:?} failed ({}):\n{text}",
            out.status
        );
    }

    /// The webhook Deployment rolled out (Pods Ready through their probes) and the API server
    /// calling it through its Service: a request naming a missing Secret is denied by it.
    /// `kubectl rollout status` of the webhook Deployment: every Pod of its newest ReplicaSet
    /// Ready, the old ones gone.
    pub fn wait_webhook_rollout(&self) {
        self.kubectl
            .run(&[
                "rollout",
                "status",
                &format!("deployment/{WEBHOOK_DEPLOYMENT}"),
                "-n",
                RELEASE_NS,
                "--timeout=180s",
            ])
            .ok();
    }

    fn wait_webhook_serving(&self) {
        self.wait_webhook_rollout();
        let probe = json!({
            "apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
            "metadata": {"name": "probe", "namespace": NS},
            "spec": {"cluster": {"imageRegistry": "crate", "name": "probe", "version": "5.10.3",
                                 "restoreSnapshot": restore_request("no-such-secret", "snap")},
                     "nodes": {"data": [{"name": "hot", "replicas": 1}]}}
        });
        wait_until(
            "the API server calls the webhook through its Service",
            Duration::from_secs(60),
            || {
                let run = self.kubectl.run_stdin(
                    &["apply", "--dry-run=server", "-f", "-"],
                    &probe.to_string(),
                );
                run.stderr
                    .contains("Secret \"no-such-secret\" does not exist")
                    .then_some(())
            },
        );
    }

    pub fn record(&self, entry: String) {
        let mut transcript = self.transcript.lock().unwrap();
        if transcript.len() >= 12 {
            transcript.pop_front();
        }
        let mut entry = entry;
        if entry.len() > 3000 {
            entry.truncate(3000);
            entry.push_str("\n…");
        }
        transcript.push_back(entry);
    }

    /// `text` with every secret value of the deployed clusters replaced.
    pub fn redact_known(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in self.secrets.lock().unwrap().iter() {
            out = out.replace(value.as_str(), "<redacted>");
        }
        out
    }

    pub fn keep_state(&mut self) {
        self.node.keep();
    }

    /// Tears the node down and checks the machine: Err(what is left).
    pub fn teardown(mut self) -> Result<(), String> {
        let down = self.node.down();
        let clean = check_clean();
        match (down, clean) {
            (Ok(_), Ok(line)) => {
                eprintln!("node: node-check-clean.sh: {line}");
                Ok(())
            }
            (down, clean) => Err(format!(
                "teardown left things behind:\n--- node-down.sh ---\n{}\n--- node-check-clean.sh ---\n{}",
                down.unwrap_or_else(|e| e),
                clean.unwrap_or_else(|e| e)
            )),
        }
    }

    // --- kubectl helpers ---------------------------------------------------------------------

    pub fn apply(&self, objects: &[Value]) -> Run {
        self.kubectl.apply(objects)
    }

    /// `kubectl apply -f -` of one object (what a user does with a manifest).
    pub fn apply_one(&self, object: &Value) -> Run {
        self.kubectl
            .run_stdin(&["apply", "-f", "-"], &object.to_string())
    }

    pub fn get(&self, kind: &str, ns: &str, name: &str) -> Value {
        self.kubectl.get_json(&["get", kind, name, "-n", ns])
    }

    pub fn try_get(&self, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let run = self
            .kubectl
            .run(&["get", kind, name, "-n", ns, "-o", "json"]);
        run.status.success().then(|| run.json())
    }

    pub fn list(&self, kind: &str, ns: &str, selector: &str) -> Vec<Value> {
        let mut args = vec!["get", kind, "-n", ns];
        if !selector.is_empty() {
            args.extend(["-l", selector]);
        }
        self.kubectl.get_json(&args)["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The Pods of a Job (label `job-name`) in `dbs`.
    pub fn job_pods(&self, job: &str) -> Vec<Value> {
        self.job_pods_in(NS, job)
    }

    pub fn job_pods_in(&self, ns: &str, job: &str) -> Vec<Value> {
        self.list("pods", ns, &format!("job-name={job}"))
    }

    /// Events (events.k8s.io/v1) about the CrateDB resource `name` in `dbs`: (reason, note).
    pub fn events_of(&self, name: &str) -> Vec<(String, String)> {
        self.events_in(NS, name)
    }

    pub fn events_in(&self, ns: &str, name: &str) -> Vec<(String, String)> {
        let events = self
            .kubectl
            .get_json(&["get", "events.events.k8s.io", "-n", ns]);
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["regarding"]["kind"] == "CrateDB" && e["regarding"]["name"] == name)
            .map(|e| {
                let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (text("reason"), text("note"))
            })
            .collect()
    }

    /// A kube-rs client authenticating with `token` (for calls kubectl cannot make alone: its
    /// `patch` reads the object first, which a Role with only `patch` does not allow).
    pub fn client_with_token(&self, name: &str, token: &str) -> kube::Client {
        let ca = fs::read(self.node.get("KUBE_CA_FILE")).expect("KUBE_CA_FILE");
        let config = json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "node", "cluster": {
                "server": self.node.get("KUBE_API_URL"),
                "certificate-authority-data": crate::harness::b64(&ca)}}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": "node", "user": name}}],
            "current-context": name
        });
        let path = self.node.dir.join(format!("{name}.kubeconfig"));
        fs::write(&path, config.to_string()).unwrap();
        self.rt.block_on(crate::harness::client_from(&path))
    }

    /// A token of `namespace/service_account` from the TokenRequest API, and a kubectl using it
    /// with `--token` (the kubeconfig's admin token is overridden).
    pub fn kubectl_as(&self, namespace: &str, service_account: &str) -> (Kubectl, String) {
        let token = self.kubectl.token_for(namespace, service_account);
        let who = format!("system:serviceaccount:{namespace}:{service_account}");
        (self.kubectl.as_token(&who, &token), token)
    }

    /// Logs of the failing moment: Pods, Events, the webhook's, Jobs', simulators' logs, the
    /// node's own logs and the last commands.
    pub fn diagnostics(&self) -> String {
        let k = |args: &[&str]| {
            let run = self.kubectl.run(args);
            format!("{}{}", run.stdout, run.stderr)
        };
        let transcript: Vec<String> = {
            let all = self.transcript.lock().unwrap();
            all.iter()
                .skip(all.len().saturating_sub(6))
                .map(|e| e.chars().take(1500).collect())
                .collect()
        };
        let state = &self.node.state;
        let problems = |file: &str| {
            let text = fs::read_to_string(state.join(file)).unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with('E') || l.starts_with('W'))
                .collect();
            lines[lines.len().saturating_sub(15)..].join("\n")
        };
        format!(
            "==== pods ====\n{}\n==== events (last 40) ====\n{}\n==== webhook logs ====\n{}\n==== restore Job logs ====\n{}\n==== simulator logs ====\n{}\n==== kube-apiserver (errors, warnings) ====\n{}\n==== kube-controller-manager (errors, warnings) ====\n{}\n==== kubelet (errors, warnings) ====\n{}\n==== last commands ====\n{}\n==== node dir: {} ====",
            k(&["get", "pods", "-A", "-o", "wide"]),
            last_lines(&k(&["get", "events", "-A", "--sort-by=.lastTimestamp"]), 40),
            k(&[
                "logs",
                "-n",
                RELEASE_NS,
                "-l",
                WEBHOOK_SELECTOR,
                "--tail=30",
                "--prefix"
            ]),
            k(&[
                "logs",
                "-n",
                NS,
                "-l",
                "app.kubernetes.io/component=restore-job",
                "--tail=40",
                "--prefix"
            ]),
            k(&[
                "logs",
                "-n",
                NS,
                "-l",
                "app.kubernetes.io/component=cratedb",
                "--tail=15",
                "--prefix"
            ]),
            problems("kube-apiserver.log"),
            problems("kube-controller-manager.log"),
            problems("kubelet.log"),
            transcript.join("\n\n"),
            self.node.dir.display()
        )
    }
}

pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn wait_until<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    crate::harness::wait_until(what, timeout, f)
}

// --- CrateDB clusters made of a simulator Pod --------------------------------------------------

pub const BUCKET: &str = "backups";
pub const BASE_PATH: &str = "clusters/prod";

/// The secret values of one cluster (distinct per cluster, so a leak names its source).
#[derive(Clone)]
pub struct Secrets {
    pub system_password: String,
    pub access_key: String,
    pub secret_key: String,
}

impl Secrets {
    pub fn for_cluster(name: &str) -> Secrets {
        Secrets {
            system_password: format!("Sys-Pw-{name}-7f3a"),
            access_key: format!("AKIA-{name}-4c1d"),
            secret_key: format!("S3cr3t/K3y+{name}'9e2b"),
        }
    }

    pub fn values(&self) -> [&str; 3] {
        [&self.system_password, &self.access_key, &self.secret_key]
    }
}

/// What a scenario's cluster holds.
pub struct ClusterSpec {
    pub name: String,
    /// Its namespace (one of the restore namespaces).
    pub ns: String,
    /// The snapshot in the simulator's storage (cratedb-sim config JSON), or an array of them.
    pub snapshot: Value,
    /// Restore progress of the simulator: bytes per second per recovering shard.
    pub bytes_per_sec: u64,
    /// More objects (CronJobs, Deployments, ...) created with the cluster.
    pub extra: Vec<Value>,
}

impl ClusterSpec {
    /// A cluster in `dbs` whose `doc.orders` (2 shards of `bytes_per_shard`) restores at
    /// `bytes_per_sec` per shard, nothing else around it.
    pub fn new(name: &str, bytes_per_shard: u64, bytes_per_sec: u64) -> ClusterSpec {
        ClusterSpec {
            name: name.into(),
            ns: NS.into(),
            snapshot: snapshot(bytes_per_shard),
            bytes_per_sec,
            extra: vec![],
        }
    }

    pub fn in_namespace(mut self, ns: &str) -> ClusterSpec {
        self.ns = ns.into();
        self
    }
}

/// `doc.orders` (2 shards) in snapshot `snap-1`, with the source cluster's users: a restore
/// of type `all` locks `system` out until the Job resets its password through crash.
pub fn snapshot(bytes_per_shard: u64) -> Value {
    json!({"name": "snap-1", "version": "5.6.0",
           "tables": [{"schema": "doc", "name": "orders", "shards": 2,
                       "bytes_per_shard": bytes_per_shard}],
           "users": [{"name": "system", "password": "source-cluster-password"}]})
}

pub fn secret_ref(secret: &str, key: &str) -> Value {
    json!({"secretKeyRef": {"name": secret, "key": key}})
}

/// `spec.cluster.restoreSnapshot` for an S3 restore whose credentials are in `secret`.
pub fn restore_request(secret: &str, snapshot: &str) -> Value {
    json!({
        "snapshot": snapshot,
        "type": "all",
        "accessKeyId": secret_ref(secret, "access-key-id"),
        "secretAccessKey": secret_ref(secret, "secret-access-key"),
        "bucket": secret_ref(secret, "bucket"),
        "basePath": secret_ref(secret, "base-path"),
    })
}

pub fn cratedb(name: &str, restore: Option<Value>) -> Value {
    cratedb_in(NS, name, restore)
}

pub fn cratedb_in(ns: &str, name: &str, restore: Option<Value>) -> Value {
    let mut cr = json!({
        "apiVersion": "cloud.crate.io/v1", "kind": "CrateDB",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "cluster": {"imageRegistry": "crate", "name": format!("cluster-{name}"), "version": "5.10.3"},
            "nodes": {"data": [{"name": "hot", "replicas": 1}]}
        }
    });
    if let Some(r) = restore {
        cr["spec"]["cluster"]["restoreSnapshot"] = r;
    }
    cr
}

/// The labels crate-operator puts on a cluster's StatefulSets and Pods.
pub fn operator_labels(name: &str) -> Value {
    json!({"app.kubernetes.io/component": "cratedb",
           "app.kubernetes.io/managed-by": "crate-operator",
           "app.kubernetes.io/name": name,
           "app.kubernetes.io/part-of": "cratedb"})
}

/// A cluster deployed for a scenario.
pub struct SimCluster {
    pub name: String,
    pub ns: String,
    pub secrets: Secrets,
    pub pod: String,
}

impl SimCluster {
    pub fn restore_secret(&self) -> String {
        format!("restore-from-backup-{}", self.name)
    }

    /// The CrateDB resource with a restore of snapshot `snap-1` (type `all`) requested.
    pub fn restore_manifest(&self) -> Value {
        self.restore_manifest_with(json!({}))
    }

    /// The same with fields of `restoreSnapshot` replaced (`{"type": "tables", ...}`).
    pub fn restore_manifest_with(&self, fields: Value) -> Value {
        let mut request = restore_request(&self.restore_secret(), "snap-1");
        for (k, v) in fields
            .as_object()
            .expect("an object of restoreSnapshot fields")
        {
            request[k] = v.clone();
        }
        cratedb_in(&self.ns, &self.name, Some(request))
    }
}

impl NodeEnv {
    /// ConfigMap (simulator config), StatefulSet `crate-data-hot-<name>` (one Pod, container
    /// `crate`), Service `crate-discovery-<name>`, Secrets `user-system-<name>` and
    /// `restore-from-backup-<name>`, the CrateDB resource (no restore yet) and `spec.extra`;
    /// returns once the simulator Pod is Ready.
    pub fn deploy_cluster(&self, spec: ClusterSpec) -> SimCluster {
        self.deploy_clusters(vec![spec]).remove(0)
    }

    /// [`Self::deploy_cluster`] for several clusters at once: everything applied in one go,
    /// then each simulator Pod waited for.
    pub fn deploy_clusters(&self, specs: Vec<ClusterSpec>) -> Vec<SimCluster> {
        let mut objects = Vec::new();
        let mut clusters = Vec::new();
        for spec in specs {
            let (mut of_cluster, cluster) = self.cluster_objects(spec);
            objects.append(&mut of_cluster);
            clusters.push(cluster);
        }
        self.apply(&objects).ok();
        for cluster in &clusters {
            self.wait_pod_ready_in(&cluster.ns, &cluster.pod);
        }
        clusters
    }

    fn cluster_objects(&self, spec: ClusterSpec) -> (Vec<Value>, SimCluster) {
        let name = spec.name.as_str();
        let ns = spec.ns.as_str();
        let secrets = Secrets::for_cluster(name);
        self.secrets
            .lock()
            .unwrap()
            .extend(secrets.values().map(str::to_string));
        let config = json!({
            "server_version": "5.10.3",
            "cluster_name": format!("cluster-{name}"),
            "users": [{"name": "system", "password": secrets.system_password}],
            "storages": [{"type": "s3", "bucket": BUCKET, "base_path": BASE_PATH,
                          "access_key": secrets.access_key, "secret_key": secrets.secret_key,
                          "snapshots": match spec.snapshot {
                              Value::Array(several) => several,
                              one => vec![one],
                          }}],
            "progress": {"mode": "wall_clock", "bytes_per_sec": spec.bytes_per_sec}
        });
        let labels = operator_labels(name);
        let mut pod_labels = labels.clone();
        pod_labels["cratedb-node-name"] = json!("hot");
        let sts = format!("crate-data-hot-{name}");
        let mut objects = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": format!("cratedb-sim-{name}"), "namespace": ns},
                   "data": {"sim.json": config.to_string()}}),
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": format!("user-system-{name}"), "namespace": ns, "labels": labels},
                   "stringData": {"password": secrets.system_password}}),
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": format!("restore-from-backup-{name}"), "namespace": ns},
                   "stringData": {"access-key-id": secrets.access_key,
                                  "secret-access-key": secrets.secret_key,
                                  "bucket": BUCKET, "base-path": BASE_PATH}}),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": format!("crate-discovery-{name}"), "namespace": ns, "labels": labels},
                   "spec": {"type": "ClusterIP", "selector": labels,
                            "ports": [{"name": "psql", "port": 5432, "targetPort": 5432},
                                      {"name": "http", "port": 4200, "targetPort": 4200}]}}),
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": sts, "namespace": ns, "labels": labels},
            "spec": {
                "replicas": 1,
                "serviceName": format!("crate-discovery-{name}"),
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 5,
                        "containers": [{
                            "name": "crate",
                            "image": format!("{SIM_IMAGE}:{IMAGE_TAG}"),
                            "imagePullPolicy": "Never",
                            "args": ["--pg-listen", "0.0.0.0:5432",
                                     "--http-listen", "0.0.0.0:5050",
                                     "--http-sql-listen", "0.0.0.0:4200",
                                     "--config", "/etc/cratedb-sim/sim.json"],
                            "ports": [{"name": "psql", "containerPort": 5432},
                                      {"name": "http", "containerPort": 4200},
                                      {"name": "sidecar", "containerPort": 5050}],
                            "readinessProbe": {"tcpSocket": {"port": 5432}, "periodSeconds": 1},
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/cratedb-sim"}]
                        }],
                        "volumes": [{"name": "config",
                                     "configMap": {"name": format!("cratedb-sim-{name}")}}]
                    }
                }
            }}),
            cratedb_in(ns, name, None),
        ];
        objects.extend(spec.extra);
        let cluster = SimCluster {
            name: name.to_string(),
            ns: ns.to_string(),
            secrets,
            pod: format!("{sts}-0"),
        };
        (objects, cluster)
    }

    #[track_caller]
    pub fn wait_pod_ready(&self, pod: &str) {
        self.wait_pod_ready_in(NS, pod)
    }

    #[track_caller]
    pub fn wait_pod_ready_in(&self, ns: &str, pod: &str) {
        wait_until(&format!("pod {ns}/{pod} Ready"), POD_START, || {
            let p = self.try_get("pod", ns, pod)?;
            let ready = p["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            ready.then_some(())
        });
    }

    pub fn pod_ip_in(&self, ns: &str, pod: &str) -> String {
        self.get("pod", ns, pod)["status"]["podIP"]
            .as_str()
            .unwrap_or_else(|| panic!("pod {pod} has no IP"))
            .to_string()
    }

    /// The simulator's statement log (`GET /_sim/statements` on its CrateDB HTTP port, from the
    /// host through the pod network): `seq`, `frontend`, `user`, `sql`, `outcome`, ...
    pub fn statements(&self, cluster: &SimCluster) -> Vec<Value> {
        let ip = self.pod_ip_in(&cluster.ns, &cluster.pod);
        let body = http_get(&format!("{ip}:4200"), "/_sim/statements")
            .unwrap_or_else(|e| panic!("GET http://{ip}:4200/_sim/statements: {e}"));
        serde_json::from_str::<Vec<Value>>(&body)
            .unwrap_or_else(|e| panic!("statement log is not a JSON array ({e}): {body}"))
    }
}

/// The statements of a log whose SQL starts with `prefix`.
pub fn with_prefix<'a>(log: &'a [Value], prefix: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|s| {
            s["sql"]
                .as_str()
                .is_some_and(|q| q.trim_start().to_uppercase().starts_with(prefix))
        })
        .collect()
}

/// A plain HTTP/1.0 GET: the body of a 200 answer.
pub fn http_get(addr: &str, path: &str) -> Result<String, String> {
    let addr: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {raw}"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("{head}\n{body}"));
    }
    Ok(body.to_string())
}

// --- the test ----------------------------------------------------------------------------------

/// The whole node suite: artifacts, node up, chart, every scenario (or those whose name contains
/// one of the comma-separated parts of `CRATEDB_E2E_NODE_ONLY`), teardown, and a check that the machine is clean. A failing scenario
/// prints diagnostics and the others still run; the node is torn down in every case.
pub fn run() {
    if std::env::var("CRATEDB_E2E_NODE").as_deref() == Ok("skip") {
        eprintln!("node: SKIPPED (CRATEDB_E2E_NODE=skip)");
        return;
    }
    let started = Instant::now();
    let mut env = NodeEnv::start();
    let setup = started.elapsed();
    let only = std::env::var("CRATEDB_E2E_NODE_ONLY").ok();
    let mut failed = Vec::new();
    let mut times = Vec::new();
    // The lifecycle scenarios last: the final one uninstalls the chart.
    for (name, scenario) in scenarios::ALL.iter().chain(day2::ALL).chain(lifecycle::ALL) {
        // Several filters may be given, separated by commas.
        if only
            .as_deref()
            .is_some_and(|f| !f.split(',').any(|part| name.contains(part)))
        {
            continue;
        }
        let t = Instant::now();
        eprintln!("node scenario {name} ...");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&env)));
        let took = t.elapsed();
        times.push((*name, took));
        match outcome {
            Ok(()) => eprintln!("node scenario {name} ... ok ({})", secs(took)),
            Err(_) => {
                eprintln!(
                    "node scenario {name} ... FAILED ({})\n{}",
                    secs(took),
                    env.redact_known(&env.diagnostics())
                );
                failed.push(*name);
            }
        }
    }
    let scenarios_time = started.elapsed() - setup;
    if !failed.is_empty() {
        env.keep_state();
    }
    let t = &env.timings;
    let summary = format!(
        "node suite: kube binaries {}, release build {}, images {}, node-up {}, helm install {} (webhook answering {}), setup {} in all; scenarios {}:\n{}",
        secs(t.artifacts.kube_time),
        secs(t.artifacts.build_time),
        t.artifacts
            .image_time
            .map_or("up to date".to_string(), secs),
        secs(t.node_up),
        secs(t.helm_install),
        secs(t.webhook_ready),
        secs(setup),
        secs(scenarios_time),
        times
            .iter()
            .map(|(n, d)| format!("  {n}: {}", secs(*d)))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        !times.is_empty(),
        "CRATEDB_E2E_NODE_ONLY={only:?} matches no scenario"
    );
    let teardown_started = Instant::now();
    let teardown = env.teardown();
    eprintln!(
        "{summary}\nnode suite: teardown {}, {} in all",
        secs(teardown_started.elapsed()),
        secs(started.elapsed())
    );
    if let Err(leftovers) = teardown {
        panic!("{leftovers}");
    }
    assert!(failed.is_empty(), "failed node scenarios: {failed:?}");
}

// --- streams ---------------------------------------------------------------------------------

/// A long-running kubectl (`logs -f`, `get -w`) whose stdout is collected by a thread; stopped
/// by its PID when dropped.
pub struct Stream {
    child: Child,
    args: String,
    out: std::sync::Arc<std::sync::Mutex<String>>,
    err: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(
    mut from: impl Read + Send + 'static,
) -> (
    std::sync::Arc<std::sync::Mutex<String>>,
    std::thread::JoinHandle<()>,
) {
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = out.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (out, reader)
}

impl Stream {
    pub fn start(kubeconfig: &Path, args: &[&str]) -> Stream {
        Stream::spawn(
            Command::new(crate::harness::kubectl_binary()),
            kubeconfig,
            args,
        )
    }

    /// The kubectl plugin, as `kubectl cratedb-restore ARGS` runs it (no terminal, no colours).
    pub fn plugin(kubeconfig: &Path, args: &[&str]) -> Stream {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-cratedb_restore"));
        command.env("NO_COLOR", "1");
        let mut stream = Stream::spawn(command, kubeconfig, args);
        stream.args = format!("(plugin) {}", stream.args);
        stream
    }

    fn spawn(mut command: Command, kubeconfig: &Path, args: &[&str]) -> Stream {
        let mut child = command
            .env("KUBECONFIG", kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        let (out, r1) = collect(child.stdout.take().unwrap());
        let (err, r2) = collect(child.stderr.take().unwrap());
        Stream {
            child,
            args: args.join(" "),
            out,
            err,
            readers: vec![r1, r2],
        }
    }

    /// What it is and what it printed so far (for failure messages).
    pub fn describe(&self) -> String {
        format!(
            "kubectl {}: {} bytes on stdout; stderr: {}",
            self.args,
            self.out.lock().unwrap().len(),
            self.err.lock().unwrap()
        )
    }

    pub fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    pub fn stderr_text(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Whether kubectl has exited by itself.
    pub fn ended(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The exit code once it has exited by itself (after all its output is collected).
    pub fn exit_code(&mut self) -> Option<i32> {
        let status = self.child.try_wait().ok()??;
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Some(status.code().unwrap_or(-1))
    }

    /// The JSON documents printed so far (`get -w -o json` prints one per change).
    pub fn documents(&self) -> Vec<Value> {
        let text = self.text();
        serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .collect()
    }

    /// Stops kubectl (by its PID) and returns everything it printed.
    pub fn stop(mut self) -> String {
        self.halt();
        self.text()
    }

    fn halt(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.halt();
    }
}
