//! Peak memory of a benchmarked child process.

use std::time::Duration;

/// Waits for `child` and returns its exit code and peak RSS in KiB. wait4 reports the rusage of
/// exactly this process (getrusage(RUSAGE_CHILDREN) would also count other children, such as
/// kubectl processes).
pub fn wait_with_rusage(child: std::process::Child) -> (i32, i64) {
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own un-waited child; wait4 writes into locals we own.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

/// Waits for `child` and returns its exit code and the high-water mark of its resident memory
/// after it started its program (`VmHWM`), in KiB. Unlike the rusage's `ru_maxrss`, which also
/// keeps what the process held between fork and exec — a copy of a large benchmark process's
/// pages — this is the program's own. Sampled every 10 ms; the mark only grows, so the last
/// sample misses at most the final 10 ms.
pub fn wait_with_peak(mut child: std::process::Child) -> (i32, i64) {
    let path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        {
            peak = peak.max(kib);
        }
        match child.try_wait() {
            Ok(Some(status)) => return (status.code().unwrap_or(-1), peak),
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => panic!("waiting for the child: {error}"),
        }
    }
}
