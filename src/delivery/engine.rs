//! What attempts share: the queue, the configuration and what is built from it
//! (routes, TLS, DNS, the connection pool), and the clock.

use std::sync::Arc;

use super::pool::Pool;
use super::routing::Router;
use crate::client::{self, ClientSettings};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::dns::SharedResolver;
use crate::queue::Queue;

pub struct Engine {
    pub queue: Arc<Queue>,
    pub config: Arc<Config>,
    pub router: Router,
    pub resolver: SharedResolver,
    pub pool: Pool,
    pub settings: Arc<ClientSettings>,
    pub max_recipients_per_transaction: usize,
    /// Every delivery decision that depends on the time reads it here.
    pub clock: SharedClock,
}

impl Engine {
    pub fn build(
        config: Arc<Config>,
        queue: Arc<Queue>,
        resolver: SharedResolver,
        clock: SharedClock,
    ) -> anyhow::Result<Arc<Engine>> {
        let tls = client::tls::build(&config.delivery, &config.origin)?;
        Ok(Arc::new(Engine {
            settings: Arc::new(ClientSettings::new(&config, tls)),
            router: Router::new(Arc::clone(&config))?,
            pool: Pool::new(&config.delivery),
            max_recipients_per_transaction: config.delivery.max_recipients_per_transaction,
            resolver,
            queue,
            config,
            clock,
        }))
    }
}
