//! Peak RSS of a benchmarked child process.

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
