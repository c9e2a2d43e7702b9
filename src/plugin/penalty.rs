//! The penalty box of one plugin: failures a client network causes in the plugin at a
//! stage are charged to it, and above a threshold its calls to the plugin at that stage
//! are not made for a cool-down (the plugin's `on_error` reply is given at once). Per
//! stage: a plugin that fails at RCPT for some client still greets it; the client meets
//! the refusal where it met the failure. Hostile input comes from
//! some clients: they lose the plugin, everyone else keeps it. Successful calls forgive
//! failures, so a plugin failing now and then for every client boxes nobody.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;

use super::stage::Stage;
use crate::clock::SharedClock;
use crate::config::PenaltyBoxConfig;

/// A client network: the address with the bits past the configured prefix cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientNet {
    addr: IpAddr,
    prefix: u8,
}

impl fmt::Display for ClientNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Whether a call to the plugin is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Call,
    /// The client is boxed: answer with the plugin's `on_error` reply.
    ShortCircuit,
}

/// What a charged call changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    Nothing,
    /// The client reached the threshold and is boxed from now on.
    Boxed,
}

#[derive(Debug, Default)]
struct Record {
    /// Failures, less what successes forgave.
    penalty: f64,
    /// Unix ms at which the cool-down ends, while boxed.
    boxed_until: Option<u64>,
}

#[derive(Debug)]
pub struct PenaltyBox {
    plugin: String,
    settings: PenaltyBoxConfig,
    clock: SharedClock,
    clients: Mutex<HashMap<(ClientNet, Stage), Record>>,
}

impl PenaltyBox {
    pub fn new(plugin: &str, settings: &PenaltyBoxConfig, clock: SharedClock) -> PenaltyBox {
        PenaltyBox { plugin: plugin.to_string(), settings: settings.clone(), clock, clients: Mutex::default() }
    }

    /// The network `ip` is charged as (an IPv4-mapped IPv6 address as IPv4).
    pub fn net(&self, ip: IpAddr) -> ClientNet {
        let ip = ip.to_canonical();
        let prefix = match ip {
            IpAddr::V4(_) => *self.settings.ipv4_prefix.get_ref(),
            IpAddr::V6(_) => *self.settings.ipv6_prefix.get_ref(),
        };
        let addr = match ip {
            IpAddr::V4(v4) => {
                IpAddr::V4((u32::from(v4) & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)).into())
            }
            IpAddr::V6(v6) => {
                IpAddr::V6((u128::from(v6) & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)).into())
            }
        };
        ClientNet { addr, prefix }
    }

    /// Whether `client`'s call is made; a client whose cool-down is over is let back.
    pub fn admit(&self, client: ClientNet, stage: Stage) -> Admission {
        if !self.settings.enabled {
            return Admission::Call;
        }
        let now = self.clock.now_ms();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let key = (client, stage);
        let Some(until) = clients.get(&key).and_then(|r| r.boxed_until) else { return Admission::Call };
        if now < until {
            return Admission::ShortCircuit;
        }
        clients.remove(&key);
        drop(clients);
        self.left(key);
        Admission::Call
    }

    /// Charges a call `client` made: a failure adds a point, a success forgives part of
    /// one. Calls of a boxed client are not charged (it is not calling).
    pub fn charge(&self, client: ClientNet, stage: Stage, failed: bool) -> Charge {
        if !self.settings.enabled {
            return Charge::Nothing;
        }
        let key = (client, stage);
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if !failed {
            if let Some(record) = clients.get_mut(&key) {
                record.penalty -= 1.0 / f64::from(*self.settings.forgive_after.get_ref());
                if record.penalty <= 0.0 && record.boxed_until.is_none() {
                    clients.remove(&key);
                }
            }
            return Charge::Nothing;
        }
        let now = self.clock.now_ms();
        if !clients.contains_key(&key) && clients.len() >= *self.settings.max_clients.get_ref() {
            let left = self.prune(&mut clients, now);
            drop(clients);
            for key in left {
                self.left(key);
            }
            clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            if clients.len() >= *self.settings.max_clients.get_ref() {
                return Charge::Nothing;
            }
        }
        let record = clients.entry(key).or_default();
        if record.boxed_until.is_some() {
            return Charge::Nothing;
        }
        record.penalty += 1.0;
        if record.penalty < f64::from(*self.settings.threshold.get_ref()) {
            return Charge::Nothing;
        }
        let cool_down = self.settings.cool_down.get();
        record.penalty = 0.0;
        record.boxed_until = Some(now.saturating_add(cool_down.as_millis() as u64));
        drop(clients);
        tracing::warn!(plugin = %self.plugin, client = %client, %stage, ?cool_down, "client entered the penalty box");
        metrics::counter!("sluice_plugin_penalties_total", "plugin" => self.plugin.clone()).increment(1);
        Charge::Boxed
    }

    /// Drops what no longer holds a client back: boxes whose cool-down is over, and
    /// penalties of clients not boxed (the table is full: someone is spreading failures
    /// over many networks). Returns the clients let out of the box.
    fn prune(&self, clients: &mut HashMap<(ClientNet, Stage), Record>, now: u64) -> Vec<(ClientNet, Stage)> {
        let mut left = Vec::new();
        clients.retain(|key, record| match record.boxed_until {
            Some(until) if until <= now => {
                left.push(*key);
                false
            }
            Some(_) => true,
            None => false,
        });
        left
    }

    fn left(&self, (client, stage): (ClientNet, Stage)) {
        tracing::info!(plugin = %self.plugin, client = %client, %stage, "client left the penalty box");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;

    const RCPT: Stage = Stage::RcptTo;

    fn penalty_box(clock: &std::sync::Arc<ManualClock>) -> PenaltyBox {
        PenaltyBox::new("p", &PenaltyBoxConfig::default(), clock.clone())
    }

    fn net(b: &PenaltyBox, ip: &str) -> ClientNet {
        b.net(ip.parse().unwrap())
    }

    #[test]
    fn clients_are_charged_by_network() {
        let b = penalty_box(&ManualClock::at_ms(0));
        assert_eq!(net(&b, "192.0.2.77").to_string(), "192.0.2.0/24");
        assert_eq!(net(&b, "::ffff:192.0.2.1"), net(&b, "192.0.2.200"));
        assert_ne!(net(&b, "192.0.2.1"), net(&b, "192.0.3.1"));
        assert_eq!(net(&b, "2001:db8:1:2:3:4:5:6").to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn repeated_failures_box_the_client_until_the_cool_down_ends() {
        let clock = ManualClock::at_ms(1_000);
        let b = penalty_box(&clock);
        let (hostile, other) = (net(&b, "192.0.2.1"), net(&b, "198.51.100.1"));
        for _ in 0..4 {
            assert_eq!(b.charge(hostile, RCPT, true), Charge::Nothing);
            assert_eq!(b.admit(hostile, RCPT), Admission::Call);
        }
        assert_eq!(b.charge(hostile, RCPT, true), Charge::Boxed);
        assert_eq!(b.admit(hostile, RCPT), Admission::ShortCircuit);
        assert_eq!(b.admit(other, RCPT), Admission::Call, "another network is not boxed");
        assert_eq!(b.admit(hostile, Stage::Connect), Admission::Call, "nor another stage");
        clock.advance(Duration::from_secs(59));
        assert_eq!(b.admit(hostile, RCPT), Admission::ShortCircuit);
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.admit(hostile, RCPT), Admission::Call, "the cool-down is over");
        assert_eq!(b.charge(hostile, RCPT, true), Charge::Nothing, "it starts again from nothing");
    }

    #[test]
    fn occasional_failures_for_every_client_box_nobody() {
        let b = penalty_box(&ManualClock::at_ms(0));
        let clients: Vec<ClientNet> = (0..4).map(|i| net(&b, &format!("10.0.{i}.1"))).collect();
        for call in 0..10_000 {
            for &client in &clients {
                assert_eq!(b.admit(client, RCPT), Admission::Call, "call {call}");
                assert_eq!(b.charge(client, RCPT, call % 100 == 99), Charge::Nothing, "call {call}");
            }
        }
        // Even a burst of them, while successes come in between, stays under the bar.
        for _ in 0..20 {
            for _ in 0..9 {
                b.charge(clients[0], RCPT, false);
            }
            assert_eq!(b.charge(clients[0], RCPT, true), Charge::Nothing);
        }
    }

    #[test]
    fn disabled_charges_nothing() {
        let settings = PenaltyBoxConfig { enabled: false, ..PenaltyBoxConfig::default() };
        let b = PenaltyBox::new("p", &settings, ManualClock::at_ms(0));
        let client = net(&b, "192.0.2.1");
        for _ in 0..100 {
            assert_eq!(b.charge(client, RCPT, true), Charge::Nothing);
        }
        assert_eq!(b.admit(client, RCPT), Admission::Call);
    }

    #[test]
    fn a_full_table_keeps_the_boxed_clients() {
        let clock = ManualClock::at_ms(0);
        let settings = PenaltyBoxConfig { max_clients: toml::Spanned::new(0..0, 2), ..PenaltyBoxConfig::default() };
        let b = PenaltyBox::new("p", &settings, clock.clone());
        let hostile = net(&b, "192.0.2.1");
        for _ in 0..5 {
            b.charge(hostile, RCPT, true);
        }
        b.charge(net(&b, "198.51.100.1"), RCPT, true);
        // A third network: the unboxed penalty makes room, the box stays.
        b.charge(net(&b, "203.0.113.1"), RCPT, true);
        assert_eq!(b.admit(hostile, RCPT), Admission::ShortCircuit);
        assert_eq!(b.clients.lock().unwrap().len(), 2);
    }
}
