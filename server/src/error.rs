//! Errors of the server crate that reach an embedder.

/// Why [`crate::run`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listener could not be used.
    #[error("cannot listen: {0}")]
    Bind(std::io::Error),
    /// The cluster settings are unusable.
    #[error(transparent)]
    Cluster(crate::cluster::ClusterSetupError),
    /// NATS could not be configured.
    #[error("cannot use NATS: {0}")]
    Nats(async_nats::ConnectError),
    /// The operating system's random source failed (for a generated secret or token).
    #[error("cannot read the OS random source: {0}")]
    Random(getrandom::Error),
    /// The lobby's player-token settings are unusable.
    #[error(transparent)]
    PlayerAuth(crate::http::identity::PlayerAuthError),
    /// The HTTP server failed while serving.
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}
