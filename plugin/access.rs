//! The Kubernetes API as the user's kubeconfig allows it: one client, the namespace, the CrateDB
//! resource and readable errors.

use kube::{
    Api, Client, Config,
    api::{ApiResource, DynamicObject},
    config::{KubeConfigOptions, Kubeconfig},
};

use cratedb_restore::resource::CrateDB;

use crate::cli::Global;

pub struct Target {
    pub client: Client,
    pub namespace: String,
}

impl Target {
    pub async fn connect(global: &Global) -> Result<Target, String> {
        let options = KubeConfigOptions {
            context: global.context.clone(),
            ..Default::default()
        };
        let config = match (&global.kubeconfig, &global.context) {
            (Some(path), _) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
            }
            (None, Some(context)) => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| format!("kubeconfig context {context:?}: {e}"))?,
            (None, None) => Config::infer().await.map_err(|e| {
                format!(
                    "no Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster): {e}"
                )
            })?,
        };
        let namespace = global
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))?;
        Ok(Target { client, namespace })
    }

    pub fn cratedbs(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &ApiResource::erase::<CrateDB>(&()),
        )
    }

    /// The CrateDB `name`, or a message that says it does not exist.
    pub async fn cratedb(&self, name: &str) -> Result<DynamicObject, String> {
        self.cratedbs()
            .get(name)
            .await
            .map_err(|e| self.describe(e, &format!("CrateDB {name:?}")))
    }

    /// A readable message for an API error about `what`.
    pub fn describe(&self, error: kube::Error, what: &str) -> String {
        match error {
            kube::Error::Api(status) if status.code == 404 => format!(
                "{what} not found in namespace {:?} ({})",
                self.namespace, status.message
            ),
            kube::Error::Api(status) => format!(
                "{what} in namespace {:?}: {} ({} {})",
                self.namespace, status.message, status.code, status.reason
            ),
            other => format!(
                "{what} in namespace {:?}: {}",
                self.namespace,
                with_causes(&other)
            ),
        }
    }
}

/// An error with its chain of causes (`client error (Connect): tcp connect error: Connection
/// refused`): kube's own message alone often says only which layer failed.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
