//! Choosing a route by recipient domain.
//!
//! The WIT `route` is one choice per message, not per recipient: a message whose
//! recipients map to different routes (or some to none) cannot be split by the plugin,
//! so it gets no route choice and the server's own `[[route]]` rules apply. With
//! `split_by_route`, the plugin avoids such messages at RCPT time by answering
//! `452 4.5.3` to a recipient whose route differs from the first accepted recipient's;
//! RFC 5321 clients then send that recipient in a new transaction.

use crate::config::{Config, RouteChoice};
use crate::domain::split_address;

/// The route configured for `address`'s domain.
pub fn route_for<'c>(config: &'c Config, address: &str) -> Option<&'c RouteChoice> {
    let (_, domain) = split_address(address)?;
    config.routes.get(domain)
}

#[derive(Debug, PartialEq)]
pub enum Decision<'c> {
    /// No recipient has a configured route (or there are none).
    Default,
    /// Every recipient maps to this route.
    Chosen(&'c RouteChoice),
    /// Recipients map to different routes, or only some to one.
    Mixed,
}

/// The route for a message to `recipients`.
pub fn choose<'c>(config: &'c Config, recipients: &[&str]) -> Decision<'c> {
    let mut routes = recipients.iter().map(|r| route_for(config, r));
    let Some(first) = routes.next() else { return Decision::Default };
    if !routes.all(|r| r == first) {
        return Decision::Mixed;
    }
    first.map_or(Decision::Default, Decision::Chosen)
}

/// With `split_by_route`: whether `new` (the addresses a recipient became) must wait
/// for another transaction because the first accepted recipient routes elsewhere.
pub fn conflicts(config: &Config, accepted: &[&str], new: &[String]) -> bool {
    let (Some(first), Some(candidate)) = (accepted.first(), new.first()) else { return false };
    config.split_by_route && route_for(config, first) != route_for(config, candidate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::config;

    fn cfg(split: bool) -> Config {
        config(&format!(
            r#"
            routes = {{ "partner.example" = "partner-relay", "*.partner.example" = "partner-relay", "lab.example" = {{ next_hop = "lab-mx.example:2525" }} }}
            split_by_route = {split}
            "#
        ))
    }

    #[test]
    fn one_route_when_all_recipients_agree() {
        let c = cfg(false);
        let partner = RouteChoice::Named("partner-relay".into());
        assert_eq!(choose(&c, &["a@partner.example", "b@eu.partner.example"]), Decision::Chosen(&partner));
        assert_eq!(
            choose(&c, &["a@lab.example"]),
            Decision::Chosen(&RouteChoice::NextHop("lab-mx.example:2525".into()))
        );
    }

    #[test]
    fn mixed_or_unrouted_recipients_get_no_choice() {
        let c = cfg(false);
        assert_eq!(choose(&c, &["a@partner.example", "b@example.com"]), Decision::Mixed);
        assert_eq!(choose(&c, &["a@partner.example", "b@lab.example"]), Decision::Mixed);
        assert_eq!(choose(&c, &["a@example.com", "b@example.net"]), Decision::Default);
        assert_eq!(choose(&c, &[]), Decision::Default);
        assert_eq!(choose(&c, &["postmaster"]), Decision::Default);
    }

    #[test]
    fn split_by_route_defers_recipients_for_another_route() {
        let c = cfg(true);
        let new = |a: &str| vec![a.to_string()];
        assert!(!conflicts(&c, &[], &new("a@partner.example")), "the first recipient sets the route");
        assert!(!conflicts(&c, &["a@partner.example"], &new("b@partner.example")));
        assert!(conflicts(&c, &["a@partner.example"], &new("b@example.com")));
        assert!(conflicts(&c, &["a@example.com"], &new("b@partner.example")));
        assert!(!conflicts(&c, &["a@example.com"], &new("b@example.net")));
        assert!(!conflicts(&cfg(false), &["a@partner.example"], &new("b@example.com")), "off by default");
    }
}
