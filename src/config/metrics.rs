//! `[metrics]`: the Prometheus and health endpoint.

use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where to serve `/metrics`, `/healthz` and `/readyz` over plain HTTP. Off when unset.
    pub listen: Option<SocketAddr>,
}
