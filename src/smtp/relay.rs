//! Relay control: who may send mail to which recipients. Never an open relay.

use crate::config::RelayConfig;
use crate::mail::Mailbox;

use super::replies;
use crate::wire::Reply;

/// Decides whether `recipient` may be accepted. `trusted` is a client inside
/// `relay.networks` (or authenticated); `source_route` is an RFC 5321 source route in
/// the RCPT path.
pub fn check_recipient(
    relay: &RelayConfig,
    hostname: &str,
    trusted: bool,
    recipient: &Mailbox,
    source_route: bool,
) -> Result<(), Reply> {
    // RFC 5321 §4.5.1: postmaster must always be reachable.
    if recipient.is_postmaster() && (recipient.domain.is_empty() || recipient.domain.eq_ignore_ascii_case(hostname)) {
        return Ok(());
    }
    if trusted {
        return Ok(());
    }
    if source_route || recipient.has_relay_tricks() {
        return Err(replies::ROUTED_ADDRESS_DENIED);
    }
    if relay.domains.matches(&recipient.domain) {
        return Ok(());
    }
    Err(replies::RELAY_DENIED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DomainList, NetworkList};

    fn relay() -> RelayConfig {
        RelayConfig { networks: NetworkList::default(), domains: DomainList(vec!["example.com".parse().unwrap()]) }
    }

    fn check(trusted: bool, address: &str, routed: bool) -> Result<(), u16> {
        let mailbox = Mailbox::parse(address).unwrap();
        check_recipient(&relay(), "relay.example.test", trusted, &mailbox, routed).map_err(|r| r.code)
    }

    #[test]
    fn outsiders_reach_only_our_domains() {
        assert_eq!(check(false, "user@example.com", false), Ok(()));
        assert_eq!(check(false, "user@EXAMPLE.com", false), Ok(()));
        assert_eq!(check(false, "user@example.org", false), Err(554));
        assert_eq!(check(false, "user@sub.example.com", false), Err(554));
        assert_eq!(check(false, "user@[192.0.2.1]", false), Err(554));
        assert_eq!(check(true, "user@example.org", false), Ok(()));
    }

    #[test]
    fn open_relay_tricks_are_refused() {
        for tricky in
            ["user%example.org@example.com", "example.org!user@example.com", "\"user@example.org\"@example.com"]
        {
            assert_eq!(check(false, tricky, false), Err(554), "{tricky}");
        }
        assert_eq!(check(false, "user@example.com", true), Err(554));
    }

    #[test]
    fn postmaster_always_works() {
        assert_eq!(check(false, "postmaster", false), Ok(()));
        assert_eq!(check(false, "Postmaster@relay.example.test", false), Ok(()));
        assert_eq!(check(false, "postmaster@example.org", false), Err(554));
    }
}
