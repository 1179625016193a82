//! The API client: from `--kubeconfig` when given, else the in-cluster service account, else
//! `$KUBECONFIG` / `~/.kube/config`.

use std::path::Path;

use ::kube::config::{KubeConfigOptions, Kubeconfig};
use ::kube::{Client, Config};

use super::KubeError;

/// Builds the client podgate talks to the API server with.
///
/// Order: the kubeconfig file `kubeconfig` when given (its current context); else the
/// in-cluster configuration (`KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted service account
/// token); else `$KUBECONFIG` or `~/.kube/config`. The error names every place tried.
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, KubeError> {
    crate::source::init_tls();
    let config = match kubeconfig {
        Some(path) => from_file(path).await?,
        None => match Config::incluster() {
            Ok(config) => config,
            Err(in_cluster) => Config::from_kubeconfig(&KubeConfigOptions::default())
                .await
                .map_err(|local| {
                    KubeError::Config(format!(
                        "not in a cluster ({in_cluster}) and no usable kubeconfig \
                         ($KUBECONFIG or ~/.kube/config: {local}); pass --kubeconfig"
                    ))
                })?,
        },
    };
    Client::try_from(config).map_err(|e| KubeError::Api {
        context: "building the Kubernetes client".to_string(),
        source: e,
    })
}

async fn from_file(path: &Path) -> Result<Config, KubeError> {
    let kc = Kubeconfig::read_from(path)
        .map_err(|e| KubeError::Config(format!("--kubeconfig {}: {e}", path.display())))?;
    Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeError::Config(format!("--kubeconfig {}: {e}", path.display())))
}
