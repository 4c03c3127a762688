//! Identity of one restore run (SPEC A2): its id, and the names and labels derived from it.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use rand::Rng;

use crate::repository::repository_name;

/// Label keys and values shared by the webhook (which creates and finds restore Jobs) and the
/// chart (which selects them in NOTES.txt and RBAC).
pub mod labels {
    pub const NAME: &str = "app.kubernetes.io/name";
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    /// The CrateDB resource a restore Job belongs to (its name, shortened to fit a label value).
    pub const CLUSTER: &str = "restore.cloud.crate.io/cluster";
    pub const RUN_ID: &str = "restore.cloud.crate.io/run-id";

    pub const NAME_VALUE: &str = "cratedb-restore";
    pub const COMPONENT_VALUE: &str = "restore-job";
    pub const PART_OF_VALUE: &str = "cratedb";
    pub const MANAGED_BY_VALUE: &str = "cratedb-restore-webhook";
}

/// The full CrateDB resource name, kept on the Job because a label value may be shortened.
pub const CLUSTER_ANNOTATION: &str = "restore.cloud.crate.io/cluster";

/// A new run id: UTC start time plus randomness, e.g. `20261125082542-3fa9c1`. Sorts by time,
/// stays unique when two requests arrive in the same second, and fits in names and labels.
pub fn new_run_id(now: Timestamp) -> String {
    let suffix: u32 = rand::rng().random_range(0..0x100_0000);
    format!("{}-{suffix:06x}", now.strftime("%Y%m%d%H%M%S"))
}

/// Whether a string can be a run id we issued (it becomes part of names and labels).
pub fn is_valid_run_id(run_id: &str) -> bool {
    !run_id.is_empty()
        && run_id.len() <= 40
        && run_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !run_id.starts_with('-')
        && !run_id.ends_with('-')
}

/// Everything named after one run of one CrateDB resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    pub namespace: String,
    pub cluster: String,
    pub run_id: String,
}

impl RunIdentity {
    pub fn new(namespace: &str, cluster: &str, run_id: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            cluster: cluster.to_string(),
            run_id: run_id.to_string(),
        }
    }

    /// `restore-<cluster>-<run id>`, shortened to the 63 characters a Job name may have (its
    /// Pods carry it in a label).
    pub fn job_name(&self) -> String {
        const MAX: usize = 63;
        let fixed = "restore-".len() + 1 + self.run_id.len();
        let room = MAX.saturating_sub(fixed);
        let cluster = shorten(&self.cluster, room);
        format!("restore-{cluster}-{}", self.run_id)
    }

    pub fn repository(&self) -> String {
        repository_name(&self.run_id)
    }

    /// The Lease that serialises restores of one cluster (SPEC A3).
    pub fn lock_name(&self) -> String {
        format!(
            "cratedb-restore-{}",
            shorten(&self.cluster, 253 - "cratedb-restore-".len())
        )
    }

    /// The label value that names the cluster: the name itself when it fits.
    pub fn cluster_label(&self) -> String {
        cluster_label_value(&self.cluster)
    }

    pub fn job_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (labels::NAME.into(), labels::NAME_VALUE.into()),
            (labels::COMPONENT.into(), labels::COMPONENT_VALUE.into()),
            (labels::PART_OF.into(), labels::PART_OF_VALUE.into()),
            (labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into()),
            (labels::INSTANCE.into(), self.cluster_label()),
            (labels::CLUSTER.into(), self.cluster_label()),
            (labels::RUN_ID.into(), self.run_id.clone()),
        ])
    }

    /// Selects every restore Job of this cluster.
    pub fn cluster_selector(&self) -> String {
        format!(
            "{}={},{}={}",
            labels::COMPONENT,
            labels::COMPONENT_VALUE,
            labels::CLUSTER,
            self.cluster_label()
        )
    }
}

/// A label value is at most 63 characters and must end alphanumerically; longer names keep a
/// prefix and gain a hash of the whole name so that different clusters stay distinct.
pub fn cluster_label_value(cluster: &str) -> String {
    if cluster.len() <= 63 {
        return cluster.to_string();
    }
    let hash = fnv1a(cluster.as_bytes());
    let prefix = shorten(cluster, 63 - 9);
    format!("{prefix}-{hash:08x}")
}

fn shorten(name: &str, max: usize) -> String {
    let cut: String = name.chars().take(max).collect();
    cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time_and_are_valid_names() {
        let a = new_run_id("2026-11-25T08:25:42Z".parse().unwrap());
        let b = new_run_id("2026-11-25T08:25:43Z".parse().unwrap());
        assert!(a.starts_with("20261125082542-"), "{a}");
        assert_eq!(a.len(), 21);
        assert!(a < b);
        assert!(is_valid_run_id(&a));
        for bad in ["", "UPPER", "a_b", "-a", "a-", &"x".repeat(41)] {
            assert!(!is_valid_run_id(bad), "{bad}");
        }
    }

    #[test]
    fn names_fit_kubernetes_limits() {
        let run = RunIdentity::new("ns", "my-cluster", "20261125082542-3fa9c1");
        assert_eq!(run.job_name(), "restore-my-cluster-20261125082542-3fa9c1");
        assert_eq!(run.repository(), "restore_backup_20261125082542_3fa9c1");
        assert_eq!(run.lock_name(), "cratedb-restore-my-cluster");
        let long = RunIdentity::new("ns", &"c".repeat(100), "20261125082542-3fa9c1");
        assert_eq!(long.job_name().len(), 63);
        assert!(long.job_name().ends_with("-20261125082542-3fa9c1"));
        let label = long.cluster_label();
        assert_eq!(label.len(), 63);
        assert_ne!(label, cluster_label_value(&"c".repeat(101)));
        let dashes = RunIdentity::new(
            "ns",
            &format!("{}-{}", "a".repeat(33), "b".repeat(10)),
            "r1",
        );
        assert!(!dashes.job_name().contains("--"), "{}", dashes.job_name());
    }

    #[test]
    fn labels_select_the_cluster() {
        let run = RunIdentity::new("ns", "c1", "r1");
        let labels = run.job_labels();
        assert_eq!(labels[labels::CLUSTER], "c1");
        assert_eq!(labels[labels::RUN_ID], "r1");
        assert_eq!(
            run.cluster_selector(),
            "app.kubernetes.io/component=restore-job,restore.cloud.crate.io/cluster=c1"
        );
    }
}
