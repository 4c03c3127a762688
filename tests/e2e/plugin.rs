//! The kubectl plugin `kubectl-cratedb_restore` against the real API server and the real
//! webhook: `plan` (a server-side dry run answered by the webhooks), `status` and
//! `status --output json` of a status.restore written as the restore Job writes it,
//! `status --watch` to its end (exit 0 for Succeeded, 3 for Failed, 4 on --timeout), and `logs`
//! as far as this mode goes: there is no kubelet and no Job controller, so no Pod ever runs;
//! `logs` is covered up to its clear error, and the real log path by the real-cluster suite.

use std::{
    fs,
    io::Write,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    harness::{Run, wait_until},
    scenarios::{DENIED, Env, NS, SECRET_VALUE, aws_restore, cratedb, restore_secret, with},
};

const NAME: &str = "plugin";

fn plugin_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-cratedb_restore"))
}

/// The plugin as a user runs it: this cluster's kubeconfig, no colours, no terminal.
fn command(env: &Env, args: &[&str]) -> Command {
    let mut cmd = Command::new(plugin_binary());
    cmd.arg("--kubeconfig")
        .arg(&env.cluster.kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

fn finish(env: &Env, args: &[&str], output: std::process::Output) -> Run {
    let run = Run {
        cmdline: format!("kubectl-cratedb_restore {}", args.join(" ")),
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let mut transcript = env.transcript.lock().unwrap();
    if transcript.len() >= 12 {
        transcript.pop_front();
    }
    transcript.push_back(run.describe());
    run
}

pub(crate) fn plugin(env: &Env, args: &[&str]) -> Run {
    let output = command(env, args)
        .output()
        .expect("run kubectl-cratedb_restore");
    finish(env, args, output)
}

fn plugin_stdin(env: &Env, args: &[&str], stdin: &str) -> Run {
    let mut child = command(env, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl-cratedb_restore");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    finish(env, args, output)
}

#[track_caller]
fn exits(run: &Run, code: i32) {
    assert_eq!(
        run.status.code(),
        Some(code),
        "exit code:\n{}",
        run.describe()
    );
}

#[track_caller]
fn has(text: &str, needle: &str, run: &Run) {
    assert!(
        text.contains(needle),
        "{needle:?} not found in:\n{}",
        run.describe()
    );
}

/// `status --watch` in the background, its stderr (plain lines: not a terminal) in a file.
struct Watch {
    child: Child,
    stderr: PathBuf,
    args: Vec<String>,
}

impl Watch {
    fn start(env: &Env, tag: &str, extra: &[&str]) -> Watch {
        let stderr = env.cluster.state.join(format!("plugin-watch-{tag}.stderr"));
        let mut args = vec!["-n", NS, "status", NAME, "--watch"];
        args.extend_from_slice(extra);
        let child = command(env, &args)
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start status --watch");
        Watch {
            child,
            stderr,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn lines(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn wait_for(&self, needle: &str) {
        wait_until(
            &format!("status --watch shows {needle:?}"),
            Duration::from_secs(30),
            || self.lines().contains(needle).then_some(()),
        );
    }

    /// Waits (bounded) for the exit.
    fn end(mut self, env: &Env) -> Run {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut output = self.child.wait_with_output().unwrap();
        output.stderr = fs::read(&self.stderr).unwrap_or_default();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        finish(env, &args, output)
    }
}

fn write_status(env: &Env, restore: &Value) {
    env.kubectl
        .patch(
            "cratedb",
            NAME,
            NS,
            &["--type=merge"],
            &json!({"status": {"restore": restore}}).to_string(),
        )
        .ok();
}

/// status.restore as the restore Job writes it while RESTORE runs.
fn running(run_id: &str, percent: f64, recovered: i64) -> Value {
    json!({
        "runId": run_id, "snapshot": "snap-plugin", "type": "tables", "phase": "Running",
        "jobName": format!("restore-{NAME}-{run_id}"),
        "repository": format!("restore_backup_{}", run_id.replace('-', "_")),
        "startedAt": "2024-11-24T10:00:00Z", "finishedAt": null,
        "message": format!("Please wait while cluster data is being restored... ({}%)", percent as u64),
        "serverVersion": "5.10.3",
        "progressPercent": percent.floor(),
        "progress": {"percent": percent, "recoveredBytes": recovered, "totalBytes": 1_048_576_000_i64,
                     "shardsTotal": 4, "shardsStarted": 1, "bytesPerSecond": 10_485_760.0,
                     "etaSeconds": 60},
        "plan": {"keyword": "TABLE \"doc\".\"orders\"", "relations": [{"schema": "doc", "table": "orders"}],
                 "partitions": [], "gcTables": [], "conflicts": [], "warnings": []},
        "steps": {
            "preflight": {"state": "Succeeded", "startedAt": "2024-11-24T10:00:00Z",
                          "finishedAt": "2024-11-24T10:00:01.500Z", "attempts": 1,
                          "message": "1 relation to restore, no conflicts"},
            "before_cluster_update": {"state": "Succeeded", "startedAt": "2024-11-24T10:00:01.500Z",
                                      "finishedAt": "2024-11-24T10:00:03Z", "attempts": 1},
            "before_restore_backup": {"state": "Succeeded", "startedAt": "2024-11-24T10:00:03Z",
                                      "finishedAt": "2024-11-24T10:00:04Z", "attempts": 1},
            "restore_backup_data": {"state": "Succeeded", "startedAt": "2024-11-24T10:00:04Z",
                                    "finishedAt": "2024-11-24T10:00:05Z", "attempts": 1,
                                    "message": "RESTORE sent"},
            "await_restore": {"state": "Running", "startedAt": "2024-11-24T10:00:05Z", "attempts": 1}
        },
        "notifications": [], "conditions": []
    })
}

fn ended(run_id: &str, phase: &str, message: &str) -> Value {
    let mut status = running(run_id, 100.0, 1_048_576_000);
    status["phase"] = json!(phase);
    status["message"] = json!(message);
    status["finishedAt"] = json!("2024-11-24T10:05:03Z");
    status["steps"]["await_restore"] = json!({"state": if phase == "Succeeded" { "Succeeded" } else { "Failed" },
        "startedAt": "2024-11-24T10:00:05Z", "finishedAt": "2024-11-24T10:05:00Z", "attempts": 1,
        "message": message});
    status
}

pub fn plugin_follows_a_restore_from_kubectl(env: &Env) {
    let secret = format!("restore-from-backup-{NAME}");
    env.apply(&restore_secret(&secret, NS)).ok();
    env.apply(&cratedb(NAME, NS, None)).ok();

    // --- plan: the webhook's answer to a dry run; nothing is stored --------------------------
    let fragment = env.cluster.state.join("plugin-request.yaml");
    fs::write(
        &fragment,
        format!(
            "# a restoreSnapshot fragment\n{}",
            serde_json::to_string_pretty(&with(
                aws_restore(&secret, "snap-plugin"),
                json!({"type": "tables", "tables": ["doc.orders", "sales.\"Q1\""]}),
            ))
            .unwrap()
        ),
    )
    .unwrap();
    let run = plugin(
        env,
        &["-n", NS, "plan", NAME, "-f", fragment.to_str().unwrap()],
    );
    exits(&run, 0);
    has(
        &run.stdout,
        &format!(
            "Restore request for CrateDB {NS}/{NAME}: admitted (server-side dry run; nothing was stored)\nPlanned:  RESTORE SNAPSHOT \"restore_backup_"
        ),
        &run,
    );
    has(
        &run.stdout,
        r#"."snap-plugin" TABLE "doc"."orders", "sales"."Q1" WITH (wait_for_completion = false)"#,
        &run,
    );
    has(
        &run.stdout,
        &format!(
            "Warning:  dry run: no restore Job was created; a real apply creates Job {NS}/restore-{NAME}-"
        ),
        &run,
    );
    assert!(!run.stdout.contains(SECRET_VALUE) && !run.stdout.contains("AKIAEXAMPLE"));

    // Restore options on the command line: the plan shows what they send.
    let run = plugin(
        env,
        &[
            "-n",
            NS,
            "plan",
            NAME,
            "-f",
            fragment.to_str().unwrap(),
            "--option",
            "table-rename-pattern=(.+)",
            "--option",
            "table-rename-replacement=restored_$1",
        ],
    );
    exits(&run, 0);
    has(
        &run.stdout,
        r#"TABLE "doc"."orders", "sales"."Q1" WITH (wait_for_completion = false, "#,
        &run,
    );
    has(
        &run.stdout,
        "table_rename_replacement = 'restored_$1'",
        &run,
    );
    has(
        &run.stdout,
        "Option:   restore.cloud.crate.io/table-rename-pattern=(.+)\nOption:   restore.cloud.crate.io/table-rename-replacement=restored_$1\n",
        &run,
    );
    let run = plugin(
        env,
        &[
            "-n",
            NS,
            "plan",
            NAME,
            "-f",
            fragment.to_str().unwrap(),
            "--option",
            "on-conflict=maybe",
        ],
    );
    exits(&run, 1);
    has(&run.stdout, ": denied (422 Invalid)", &run);
    has(
        &run.stdout,
        r#"metadata.annotations["restore.cloud.crate.io/on-conflict"]"#,
        &run,
    );

    // The same request as a whole manifest on stdin, with a restore option, as JSON.
    let mut manifest = cratedb(NAME, NS, Some(aws_restore(&secret, "snap-plugin")));
    manifest["metadata"]["annotations"] = json!({"restore.cloud.crate.io/on-conflict": "skip"});
    let run = plugin_stdin(
        env,
        &["-n", NS, "plan", NAME, "-f", "-", "-o", "json"],
        &manifest.to_string(),
    );
    exits(&run, 0);
    let answer = run.json();
    assert_eq!(answer["allowed"], true, "{}", run.describe());
    assert!(
        answer["planned"]
            .as_str()
            .is_some_and(|p| p.starts_with("RESTORE SNAPSHOT \"restore_backup_")
                && p.ends_with(r#"."snap-plugin" ALL WITH (wait_for_completion = false)"#)),
        "{}",
        run.describe()
    );
    assert_eq!(
        answer["warnings"][0],
        format!("planned: {}", answer["planned"].as_str().unwrap())
    );
    assert!(
        answer["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("on-conflict: skip: ")),
        "{}",
        run.describe()
    );
    assert_eq!(
        answer["options"],
        json!({"restore.cloud.crate.io/on-conflict": "skip"}),
        "the admitted object carries the option"
    );
    // A manifest for another CrateDB is refused before anything is sent.
    let run = plugin_stdin(
        env,
        &["-n", NS, "plan", "other", "-f", "-"],
        &manifest.to_string(),
    );
    exits(&run, 1);
    has(
        &run.stderr,
        "error: stdin: the manifest is for CrateDB \"plugin\", but the command names \"other\"",
        &run,
    );

    // Denials: the webhook's rule, with the field and the fix; exit 1.
    let run = plugin_stdin(
        env,
        &["-n", NS, "plan", NAME, "-f", "-"],
        &with(
            aws_restore(&secret, "snap-plugin"),
            json!({"type": "sections"}),
        )
        .to_string(),
    );
    exits(&run, 1);
    has(
        &run.stdout,
        &format!(
            "Restore request for CrateDB {NS}/{NAME}: denied (422 Invalid) (server-side dry run; nothing was stored)\n{DENIED}invalid restore request: spec.cluster.restoreSnapshot.sections: type sections needs at least one section; list some of tables"
        ),
        &run,
    );
    let bad_key = with(
        aws_restore(&secret, "snap-plugin"),
        json!({"bucket": {"secretKeyRef": {"name": secret, "key": "bukket"}}}),
    );
    let run = plugin_stdin(
        env,
        &["-n", NS, "plan", NAME, "-f", "-", "-o", "json"],
        &format!("restoreSnapshot: {bad_key}"),
    );
    exits(&run, 1);
    let answer = run.json();
    assert_eq!(answer["allowed"], false);
    assert_eq!(answer["denial"]["code"], 422);
    assert!(
        answer["denial"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!(
                r#"spec.cluster.restoreSnapshot.bucket: Secret "{secret}" has no key "bukket""#
            )),
        "{}",
        run.describe()
    );
    assert!(!run.stdout.contains(SECRET_VALUE));
    // A request file that is no request.
    let run = plugin_stdin(env, &["-n", NS, "plan", NAME, "-f", "-"], "type: all\n");
    exits(&run, 1);
    has(
        &run.stderr,
        "restoreSnapshot.snapshot is missing or empty",
        &run,
    );

    // Nothing of all this was stored: no request, no run id, no status, no Job, no lock.
    let stored = env.get("cratedb", NS, NAME);
    assert!(
        stored["spec"]["cluster"].get("restoreSnapshot").is_none(),
        "{stored:#}"
    );
    assert!(
        stored["metadata"].get("annotations").is_none_or(|a| a
            .get("restore.cloud.crate.io/run-id")
            .is_none()
            && a.get("restore.cloud.crate.io/on-conflict").is_none()
            && a.get("restore.cloud.crate.io/table-rename-pattern")
                .is_none()),
        "{stored:#}"
    );
    assert!(
        stored
            .get("status")
            .is_none_or(|s| s.get("restore").is_none()),
        "{stored:#}"
    );
    assert!(env.jobs_of(NS, NAME).is_empty());
    env.kubectl
        .run(&["get", "lease", &format!("cratedb-restore-{NAME}"), "-n", NS])
        .fails();

    // --- status ------------------------------------------------------------------------------
    let run = plugin(env, &["-n", NS, "status", NAME]);
    exits(&run, 0);
    assert_eq!(
        run.stdout,
        format!("CrateDB {NS}/{NAME}: no restore recorded (status.restore is empty)\n")
    );
    let run = plugin(env, &["-n", NS, "status", NAME, "-o", "json"]);
    exits(&run, 0);
    assert_eq!(
        run.json(),
        json!({"namespace": NS, "name": NAME, "restore": null})
    );
    let run = plugin(env, &["-n", NS, "status", "no-such-cluster"]);
    exits(&run, 1);
    has(
        &run.stderr,
        &format!("error: CrateDB \"no-such-cluster\" not found in namespace \"{NS}\""),
        &run,
    );
    // The namespace comes from the kubeconfig context (none here: "default") without -n.
    let run = plugin(env, &["status", NAME]);
    exits(&run, 1);
    has(&run.stderr, "not found in namespace \"default\"", &run);

    let run_id = "20241124100000-aaaaaa";
    write_status(env, &running(run_id, 40.0, 419_430_400));
    let run = plugin(env, &["-n", NS, "status", NAME]);
    exits(&run, 0);
    for line in [
        format!("CrateDB {NS}/{NAME}\n"),
        "Phase:     Running\n".to_string(),
        format!("Run:       {run_id}\n"),
        format!("Job:       restore-{NAME}-{run_id}\n"),
        "Snapshot:  snap-plugin (type tables)\n".to_string(),
        "Message:   Please wait while cluster data is being restored... (40%)\n".to_string(),
        "Progress:  40% · 400.00 MiB of 1000.00 MiB · 1/4 primary shards started · 10.00 MiB/s · ETA 1m\n".to_string(),
        "\nSTEP                          STATE      DURATION  MESSAGE\npreflight                     Succeeded      1.5s  1 relation to restore, no conflicts\nbefore_cluster_update         Succeeded      1.5s\nbefore_restore_backup         Succeeded      1.0s\nrestore_backup_data           Succeeded      1.0s  RESTORE sent\nawait_restore                 Running  ".to_string(),
        "\nrestore_system_user_password  -\n".to_string(),
        "\nreset_snapshot                -\n".to_string(),
        "\nPLAN\n  Restores:    TABLE \"doc\".\"orders\"\n  Relations:   doc.orders (1)\n".to_string(),
    ] {
        has(&run.stdout, &line, &run);
    }
    let run = plugin(env, &["-n", NS, "status", NAME, "--output", "json"]);
    exits(&run, 0);
    let doc = run.json();
    let restore = &doc["restore"];
    assert_eq!(restore["phase"], "Running");
    assert_eq!(restore["runId"], run_id);
    assert_eq!(restore["currentStep"], "await_restore");
    assert_eq!(restore["progress"]["recoveredBytes"], 419_430_400);
    assert_eq!(restore["progress"]["etaSeconds"], 60);
    assert_eq!(
        restore["plan"]["relations"],
        json!([{"schema": "doc", "table": "orders"}])
    );
    let steps = restore["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 14);
    assert_eq!(steps[0]["id"], "preflight");
    assert_eq!(steps[0]["durationSeconds"], 1.5);
    assert_eq!(steps[4]["state"], "Running");
    assert_eq!(steps[13]["id"], "reset_snapshot");
    assert_eq!(steps[13]["state"], Value::Null);

    // --- status --watch: every status write arrives; the end decides the exit code -----------
    let watch = Watch::start(env, "succeeded", &[]);
    watch.wait_for("Running · 40% · 400.00 MiB of 1000.00 MiB · 10.00 MiB/s · ETA 1m · [5/14] await_restore: Please wait while cluster data is being restored... (40%)");
    write_status(env, &running(run_id, 80.0, 838_860_800));
    watch.wait_for("Running · 80% · 800.00 MiB of 1000.00 MiB");
    write_status(
        env,
        &ended(run_id, "Succeeded", "The restore of snap-plugin succeeded"),
    );
    let run = watch.end(env);
    exits(&run, 0);
    assert_eq!(
        run.stdout,
        format!(
            "Restore of {NS}/{NAME} (run {run_id}): Succeeded after 5m3s\nThe restore of snap-plugin succeeded\n"
        )
    );
    // A run that has already ended: the result at once.
    let run = plugin(env, &["-n", NS, "status", NAME, "--watch", "-o", "json"]);
    exits(&run, 0);
    assert_eq!(run.json()["restore"]["phase"], "Succeeded");

    let failed_run = "20241124110000-bbbbbb";
    write_status(env, &running(failed_run, 10.0, 104_857_600));
    let watch = Watch::start(env, "failed", &[]);
    watch.wait_for("Running · 10%");
    let reason = "the restore did not finish within 1d (CRATEDB_OPERATOR_RESTORE_BACKUP_TIMEOUT): CrateDB is still restoring doc.orders";
    write_status(env, &ended(failed_run, "Failed", reason));
    let run = watch.end(env);
    exits(&run, 3);
    assert_eq!(
        run.stdout,
        format!("Restore of {NS}/{NAME} (run {failed_run}): Failed after 5m3s\n{reason}\n")
    );

    let slow_run = "20241124120000-cccccc";
    write_status(env, &running(slow_run, 5.0, 52_428_800));
    let run = plugin(
        env,
        &["-n", NS, "status", NAME, "--watch", "--timeout", "1s"],
    );
    exits(&run, 4);
    has(
        &run.stderr,
        &format!("timed out after 1.0s: the restore of {NS}/{NAME} is still Running"),
        &run,
    );

    // --- logs: up to the Pod (no kubelet here) ----------------------------------------------
    let job_name = format!("restore-{NAME}-{slow_run}");
    let run = plugin(env, &["-n", NS, "logs", NAME]);
    exits(&run, 1);
    has(
        &run.stderr,
        &format!("error: Job {NS}/{job_name} of the current restore run no longer exists"),
        &run,
    );
    env.kubectl
        .apply(&[json!({
            "apiVersion": "batch/v1", "kind": "Job",
            // As the webhook labels the Job of a run, so that it also holds the cluster's lock.
            "metadata": {"name": job_name, "namespace": NS,
                "labels": {"app.kubernetes.io/component": "restore-job",
                           "restore.cloud.crate.io/cluster": NAME,
                           "restore.cloud.crate.io/run-id": slow_run},
                "annotations": {"restore.cloud.crate.io/cluster": NAME}},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "restore", "image": "cratedb-restore:e2e"}]}}}
        })])
        .ok();
    let run = plugin(
        env,
        &["-n", NS, "logs", NAME, "--pod-running-timeout", "2s"],
    );
    exits(&run, 1);
    has(
        &run.stderr,
        &format!("error: Job {NS}/{job_name} has no running Pod after 2.0s: it has no Pod yet"),
        &run,
    );
    // A plan while this run holds the cluster: the webhook's overlap denial.
    let run = plugin(
        env,
        &["-n", NS, "plan", NAME, "-f", fragment.to_str().unwrap()],
    );
    exits(&run, 1);
    has(
        &run.stdout,
        &format!(
            "Restore request for CrateDB {NS}/{NAME}: denied (409 RestoreInProgress) (server-side dry run; nothing was stored)\n{DENIED}a restore of {NS}/{NAME} is already running (run {slow_run}, Job {job_name})"
        ),
        &run,
    );
    env.kubectl
        .run(&["delete", "job", &job_name, "-n", NS])
        .ok();

    let run = plugin(env, &["-n", "dbs2", "logs", "no-such-cluster"]);
    exits(&run, 1);
    has(&run.stderr, "CrateDB \"no-such-cluster\" not found", &run);
    env.apply(&cratedb("plugin-empty", NS, None)).ok();
    let run = plugin(env, &["-n", NS, "logs", "plugin-empty"]);
    exits(&run, 1);
    has(&run.stderr, "has no restore Job: no restore recorded", &run);
}
