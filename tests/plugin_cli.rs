//! The kubectl plugin's command line without a cluster: help with examples for the binary and
//! each subcommand, usage errors (exit 2), and clear errors (exit 1) when the kubeconfig or the
//! request file is wrong or the API server is unreachable. The commands against a real API
//! server are in the end-to-end suite (tests/e2e/plugin.rs).

use std::{
    net::TcpListener,
    path::Path,
    process::{Command, Output, Stdio},
};

fn plugin(args: &[&str], kubeconfig: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-cratedb_restore"));
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    if let Some(path) = kubeconfig {
        cmd.env("KUBECONFIG", path);
    }
    cmd.output().expect("run kubectl-cratedb_restore")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A kubeconfig for an API server address where nothing listens.
fn unreachable_kubeconfig(dir: &Path) -> std::path::PathBuf {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: ctx, context: {{cluster: c, user: u, namespace: from-context}}}}]
current-context: ctx
"
        ),
    )
    .unwrap();
    path
}

#[test]
fn help_explains_every_command_with_examples() {
    let out = plugin(&["--help"], None);
    assert!(out.status.success());
    let help = text(&out.stdout);
    // The command list: one line per command, its name first, the column as wide as the
    // longest name.
    let commands: Vec<String> = help
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands section")
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for command in [
        "status Show a CrateDB's restore",
        "plan Preview a restore request",
        "logs Follow the logs of the current restore run",
        "cancel Cancel",
        "snapshots List the snapshots",
    ] {
        assert!(
            commands.iter().any(|c| c.starts_with(command)),
            "{command:?} missing from the commands of --help: {commands:#?}\n{help}"
        );
    }
    for needle in [
        "Usage: kubectl cratedb-restore [OPTIONS] <COMMAND>",
        "Examples:",
        "Exit codes:",
        "3  the watched restore Failed",
        "--kubeconfig <PATH>",
        "--context <CONTEXT>",
        "-n, --namespace <NAMESPACE>",
        "-o, --output <OUTPUT>",
    ] {
        assert!(
            help.contains(needle),
            "{needle:?} missing from --help:\n{help}"
        );
    }
    for (command, needles) in [
        (
            "status",
            &[
                "--watch",
                "--timeout <TIMEOUT>",
                "status my-cluster --watch",
            ][..],
        ),
        (
            "plan",
            &[
                "--filename <FILE>",
                "--option <NAME=VALUE>",
                "dryRun=All",
                "plan my-cluster -f -",
            ][..],
        ),
        (
            "logs",
            &[
                "--tail <N>",
                "--since <SINCE>",
                "--pod-running-timeout",
                "logs my-cluster --tail 100",
            ][..],
        ),
    ] {
        let out = plugin(&[command, "--help"], None);
        assert!(out.status.success(), "{command} --help");
        let help = text(&out.stdout);
        assert!(help.contains("Examples:"), "{command}:\n{help}");
        for needle in needles {
            assert!(
                help.contains(needle),
                "{needle:?} missing from {command} --help:\n{help}"
            );
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["status"][..],
        &["status", "c", "--timeout", "5s"],
        &["status", "c", "--watch", "--timeout", "soon"],
        &["plan", "c"],
        &["plan", "c", "-f", "x.yaml", "--option", "no-value"],
        &["status", "c", "-o", "yaml"],
        &["logs", "c", "--tail", "many"],
        &["logs", "c", "-o", "json"],
        &["frobnicate"],
    ] {
        let out = plugin(args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn clear_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = unreachable_kubeconfig(dir.path());

    let out = plugin(
        &["--kubeconfig", "/nonexistent/kubeconfig", "status", "c"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: cannot read kubeconfig /nonexistent/kubeconfig"),
        "{}",
        text(&out.stderr)
    );

    let out = plugin(&["status", "c", "--context", "nope"], Some(&kubeconfig));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("\"nope\""),
        "{}",
        text(&out.stderr)
    );

    // The request file is read before the API server is asked anything.
    let out = plugin(
        &["plan", "c", "-f", "/nonexistent/request.yaml"],
        Some(&kubeconfig),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: cannot read /nonexistent/request.yaml"),
        "{}",
        text(&out.stderr)
    );
    let request = dir.path().join("request.yaml");
    std::fs::write(&request, "kind: Secret\n").unwrap();
    let out = plugin(
        &["plan", "c", "-f", request.to_str().unwrap()],
        Some(&kubeconfig),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the manifest is a Secret, not a CrateDB"),
        "{}",
        text(&out.stderr)
    );

    // Unreachable API server: the namespace is the kubeconfig context's.
    for args in [
        &["status", "c"][..],
        &["status", "c", "--watch"],
        &["logs", "c"],
    ] {
        let out = plugin(args, Some(&kubeconfig));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("error: CrateDB \"c\" in namespace \"from-context\": "),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
