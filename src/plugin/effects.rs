//! Effects are grants: what a plugin's output asks for beyond its verdict, tags, score,
//! annotations and header changes needs the grant for it (`recipients`, `route`,
//! `body`), and an explicit next hop must also be one of the plugin's `next_hops`.
//! An output that asks for more is a failed call (`invalid-output`), naming the grant.

use super::chain::DataChanges;
use super::output::{Invalid, RecipientFate};
use super::shared::PluginShared;
use crate::config::{Grant, allowed_hop};
use crate::mail::{Mailbox, RouteChoice};

/// What one stage's changes ask of the plugin's grants.
pub trait Effects {
    fn check(&self, plugin: &PluginShared) -> Result<(), Invalid>;
}

fn needs(plugin: &PluginShared, grant: Grant, what: &str) -> Result<(), Invalid> {
    if plugin.grants.contains(&grant) {
        return Ok(());
    }
    Err(Invalid(format!("{what} needs the {:?} grant, which plugin {:?} lacks", grant.name(), plugin.name)))
}

/// `connect` and `helo` change nothing.
impl Effects for () {
    fn check(&self, _: &PluginShared) -> Result<(), Invalid> {
        Ok(())
    }
}

/// MAIL FROM: a new sender.
impl Effects for Option<Option<Mailbox>> {
    fn check(&self, plugin: &PluginShared) -> Result<(), Invalid> {
        match self {
            Some(_) => needs(plugin, Grant::Recipients, "replacing the sender"),
            None => Ok(()),
        }
    }
}

/// RCPT TO: the recipient's fate and added recipients.
impl Effects for (RecipientFate, Vec<Mailbox>) {
    fn check(&self, plugin: &PluginShared) -> Result<(), Invalid> {
        let (fate, added) = self;
        match fate {
            RecipientFate::Keep => {}
            RecipientFate::Rewrite(_) => needs(plugin, Grant::Recipients, "rewriting a recipient")?,
            RecipientFate::Drop => needs(plugin, Grant::Recipients, "dropping a recipient")?,
        }
        if !added.is_empty() {
            needs(plugin, Grant::Recipients, "adding recipients")?;
        }
        Ok(())
    }
}

impl Effects for DataChanges {
    fn check(&self, plugin: &PluginShared) -> Result<(), Invalid> {
        if self.new_body.is_some() {
            needs(plugin, Grant::Body, "replacing the body")?;
        }
        if !self.add_recipients.is_empty() {
            needs(plugin, Grant::Recipients, "adding recipients")?;
        }
        if !self.remove_recipients.is_empty() {
            needs(plugin, Grant::Recipients, "removing recipients")?;
        }
        match &self.route {
            None => Ok(()),
            Some(RouteChoice::Named(_)) => needs(plugin, Grant::Route, "choosing a route"),
            Some(RouteChoice::NextHop(hop)) => {
                needs(plugin, Grant::Route, "choosing a next hop")?;
                match allowed_hop(&plugin.next_hops, hop) {
                    Some(_) => Ok(()),
                    None => Err(Invalid(format!("next hop {hop:?} is not in plugin {:?}'s next_hops", plugin.name))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AllowedHop, OnError, Quotas, TlsMode};
    use crate::plugin::shared::LogLimiter;

    fn plugin(grants: &[Grant], next_hops: &[&str]) -> PluginShared {
        PluginShared {
            name: "p".into(),
            grants: grants.to_vec(),
            on_error: OnError::Tempfail,
            cpu_time: Default::default(),
            wall_time: Default::default(),
            memory_limit: 0,
            config: Default::default(),
            log_limiter: LogLimiter::new(1),
            peak_memory: Default::default(),
            next_hops: next_hops
                .iter()
                .map(|h| AllowedHop { hop: h.parse().unwrap(), tls: TlsMode::Required })
                .collect(),
            quotas: Quotas { kv_keys: 0, kv_bytes: 0, dns_lookups: 0 },
            quota_hits: Default::default(),
            http: None,
        }
    }

    fn spy() -> Mailbox {
        Mailbox::new("spy", "attacker.example")
    }

    #[test]
    fn recipient_changes_need_the_recipients_grant() {
        let bare = plugin(&[Grant::Config], &[]);
        let granted = plugin(&[Grant::Recipients], &[]);
        let add = (RecipientFate::Keep, vec![spy()]);
        let err = add.check(&bare).unwrap_err();
        assert!(err.0.contains("\"recipients\" grant"), "{err}");
        assert!(add.check(&granted).is_ok());
        assert!((RecipientFate::Keep, vec![]).check(&bare).is_ok(), "keeping needs nothing");
        assert!((RecipientFate::Drop, vec![]).check(&bare).is_err());
        assert!((RecipientFate::Rewrite(spy()), vec![]).check(&bare).is_err());
        assert!(Some(Some(spy())).check(&bare).is_err(), "a new sender");
        assert!(Some(None::<Mailbox>).check(&bare).is_err(), "the null sender is a new sender too");
        assert!(None::<Option<Mailbox>>.check(&bare).is_ok());
        assert!(Some(Some(spy())).check(&granted).is_ok());
    }

    #[test]
    fn data_changes_need_their_grants_and_headers_none() {
        let bare = plugin(&[], &[]);
        let headers = DataChanges {
            header_edits: vec![crate::plugin::output::HeaderEdit::Add("X-A".into(), "1".into())],
            ..DataChanges::default()
        };
        assert!(headers.check(&bare).is_ok());
        let body = DataChanges { new_body: Some(b"x".to_vec()), ..DataChanges::default() };
        assert!(body.check(&bare).unwrap_err().0.contains("\"body\""));
        assert!(body.check(&plugin(&[Grant::Body], &[])).is_ok());
        let remove = DataChanges { remove_recipients: vec![spy()], ..DataChanges::default() };
        assert!(remove.check(&bare).unwrap_err().0.contains("\"recipients\""));
        let named = DataChanges { route: Some(RouteChoice::Named("internal".into())), ..DataChanges::default() };
        assert!(named.check(&bare).unwrap_err().0.contains("\"route\""));
        assert!(named.check(&plugin(&[Grant::Route], &[])).is_ok());
    }

    #[test]
    fn a_next_hop_must_be_listed() {
        let hop = |text: &str| DataChanges { route: Some(RouteChoice::NextHop(text.into())), ..DataChanges::default() };
        let routed = plugin(&[Grant::Route], &["10.0.0.7:25", "mx.partner.example"]);
        assert!(hop("10.0.0.7:25").check(&routed).is_ok());
        assert!(hop("MX.partner.example").check(&routed).is_ok());
        assert!(hop("127.0.0.1:2525").check(&routed).unwrap_err().0.contains("next_hops"));
        assert!(hop("leak.attacker.example").check(&routed).is_err());
        assert!(hop("10.0.0.7:25").check(&plugin(&[], &["10.0.0.7:25"])).is_err(), "listed but not granted");
    }
}
