//! The pause image: our C source compiled statically, running as the sandbox process.

mod common;

use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use oci_image::images::pause;
use oci_image::layout::build;

#[test]
fn the_image_holds_only_a_static_pause_binary() {
    let built = build(&pause::image(pause::reference()).unwrap(), 0).unwrap();
    let got = common::unpack(&built);
    assert_eq!(
        got.reference,
        format!(
            "localhost/cratedb-restore-e2e/pause:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(
        got.config["config"]["Entrypoint"],
        serde_json::json!(["/pause"])
    );
    assert_eq!(got.config["config"]["User"], "65535:65535");
    let entries = common::entries(&got.layer);
    assert_eq!(entries.keys().collect::<Vec<_>>(), ["pause"]);
    assert_eq!(entries["pause"].mode, 0o755);
    assert_eq!((entries["pause"].uid, entries["pause"].gid), (0, 0));

    let dir = tempfile::tempdir().unwrap();
    common::extract(&got.layer, dir.path());
    let ldd = Command::new("ldd")
        .arg(dir.path().join("pause"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ldd.stdout).contains("not a dynamic executable")
            || String::from_utf8_lossy(&ldd.stderr).contains("not a dynamic executable"),
        "pause must be static: {ldd:?}"
    );
}

#[test]
fn building_twice_gives_the_same_digest() {
    let a = build(&pause::image(pause::reference()).unwrap(), 0).unwrap();
    // A fresh compilation, not the cached binary, must give the same bytes too.
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("pause");
    pause::compile(&fresh).unwrap();
    assert_eq!(
        std::fs::read(&fresh).unwrap(),
        std::fs::read(pause::binary().unwrap()).unwrap()
    );
    let b = build(&pause::image(pause::reference()).unwrap(), 0).unwrap();
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.archive, b.archive);
}

#[test]
fn pause_ignores_other_signals_and_exits_0_on_term_and_int() {
    let binary = pause::binary().unwrap();
    let version = Command::new(&binary).arg("-v").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));

    for stop in [libc::SIGTERM, libc::SIGINT] {
        let mut child = Command::new(&binary).stdin(Stdio::null()).spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        // Give it time to install its handlers before the first signal.
        sleep(Duration::from_millis(200));
        for ignored in [libc::SIGHUP, libc::SIGUSR1, libc::SIGPIPE, libc::SIGQUIT] {
            // SAFETY: signalling our own child by its pid.
            assert_eq!(unsafe { libc::kill(pid, ignored) }, 0);
        }
        sleep(Duration::from_millis(200));
        assert!(
            child.try_wait().unwrap().is_none(),
            "pause exited on a blocked signal"
        );
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, stop) }, 0);
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("pause did not exit on signal {stop}");
            }
            sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "signal {stop}");
    }
}
