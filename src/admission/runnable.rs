//! Admit only what can run (SPEC A25): a restore Job needs its ServiceAccount (and the Role the
//! chart binds to it) in the CrateDB resource's namespace. Without it the Job would be admitted,
//! then never get a Pod, and the cluster would stay locked for nothing.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::{Api, Client};

use super::{budget::Budget, error::AdmissionError};

/// The chart value that creates the restore Jobs' ServiceAccount and Role in a namespace.
pub const NAMESPACES_VALUE: &str = "restoreJob.namespaces";

/// The denial when the account is missing (or cannot even be looked up, which the chart's
/// webhook RBAC allows exactly in the restore namespaces).
pub fn missing_account(namespace: &str, account: &str, why: &str) -> AdmissionError {
    AdmissionError::CannotRun(format!(
        "restores cannot run in namespace {namespace:?}: the restore Job's ServiceAccount {account:?} {why}; add {namespace:?} to the chart value {NAMESPACES_VALUE} (helm upgrade ... --set '{NAMESPACES_VALUE}={{{namespace}}}'), which creates the account and its Role there"
    ))
}

pub async fn check_job_account(
    client: &Client,
    budget: &Budget,
    namespace: &str,
    account: &str,
) -> Result<(), AdmissionError> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let action = format!("read ServiceAccount {account:?} in namespace {namespace:?}");
    match budget.limit(&action, api.get_opt(account)).await? {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(missing_account(namespace, account, "does not exist")),
        Err(kube::Error::Api(status)) if status.code == 403 => Err(missing_account(
            namespace,
            account,
            "cannot be looked up (the webhook has no rights in this namespace)",
        )),
        Err(error) => Err(AdmissionError::kubernetes(action)(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_denial_names_the_account_and_the_chart_value() {
        let err = missing_account("team-b", "cratedb-restore-job", "does not exist");
        assert_eq!((err.code(), err.reason()), (422, "JobCannotRun"));
        assert_eq!(
            err.to_string(),
            r#"restores cannot run in namespace "team-b": the restore Job's ServiceAccount "cratedb-restore-job" does not exist; add "team-b" to the chart value restoreJob.namespaces (helm upgrade ... --set 'restoreJob.namespaces={team-b}'), which creates the account and its Role there"#
        );
    }
}
