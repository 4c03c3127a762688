//! Exit codes of `kubectl-cratedb_restore` (listed in its `--help`). `3` is the same code the
//! restore Job exits with when the restore failed, so a script can treat both alike.

use crate::status::Phase;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked: a status was shown, a watched restore succeeded, a
    /// planned request was admitted, the logs were followed to the end.
    Ok = 0,
    /// It could not: the CrateDB or its Job does not exist, the API refused or failed, the
    /// planned request was denied.
    Error = 1,
    /// Wrong command line (clap's code for usage errors).
    Usage = 2,
    /// The watched restore ended `Failed`.
    RestoreFailed = 3,
    /// `--timeout` passed before the watched restore ended.
    Timeout = 4,
    /// The watched restore was cancelled (`cancel`), and what it changed was undone.
    Cancelled = 5,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// How `status --watch` ends for a phase: `None` while the run is still going.
    pub fn for_phase(phase: Option<Phase>) -> Option<Exit> {
        match phase? {
            Phase::Succeeded => Some(Exit::Ok),
            Phase::Failed => Some(Exit::RestoreFailed),
            Phase::Cancelled => Some(Exit::Cancelled),
            Phase::Pending | Phase::Running => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::error::ExitStatus;

    #[test]
    fn watch_ends_only_on_terminal_phases_with_the_jobs_codes() {
        assert_eq!(Exit::for_phase(Some(Phase::Succeeded)), Some(Exit::Ok));
        assert_eq!(
            Exit::for_phase(Some(Phase::Failed)).map(Exit::code),
            Some(ExitStatus::Failed.code()),
            "the Job's exit code for a failed restore"
        );
        assert_eq!(Exit::for_phase(Some(Phase::Running)), None);
        assert_eq!(Exit::for_phase(Some(Phase::Pending)), None);
        assert_eq!(Exit::for_phase(None), None);
        assert_eq!(
            [
                Exit::Ok,
                Exit::Error,
                Exit::Usage,
                Exit::RestoreFailed,
                Exit::Timeout
            ]
            .map(Exit::code),
            [0, 1, 2, 3, 4]
        );
    }
}
