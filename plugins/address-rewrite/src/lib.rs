//! address-rewrite: sender masquerading, recipient aliases and catch-alls, and a route
//! chosen by recipient domain. See `plugins/README.md` for the configuration.
//!
//! The decisions live in plain modules tested on the host; this file only turns them
//! into hook results.

pub mod config;
pub mod domain;
pub mod masquerade;
pub mod recipients;
pub mod route;

use sluice_plugin::prelude::*;

use crate::config::{Config, RouteChoice};
use crate::recipients::Reason;
use crate::route::Decision;

/// Read and checked once per instance; problems are logged then, a config that does
/// nothing among them.
static CONFIG: PluginConfig<Config> = PluginConfig::new(|value| {
    let (config, mut warnings) = config::parse(value);
    if config.is_empty() {
        warnings.push("no masquerade, aliases, catch_all or routes: the plugin does nothing".into());
    }
    (config, warnings)
});

/// What to do with one RCPT TO, decided without bindings.
#[derive(Debug, PartialEq)]
pub struct RcptPlan {
    pub action: PlanAction,
    pub add: Vec<String>,
    pub reason: Option<Reason>,
}

#[derive(Debug, PartialEq)]
pub enum PlanAction {
    Keep,
    Rewrite(String),
    /// Every target is already a recipient of this transaction.
    Drop,
    /// Routes differ from the first recipient's (`split_by_route`).
    Defer,
}

/// Plans RCPT TO for `address`, given the recipients accepted so far.
pub fn plan_recipient(config: &Config, address: &str, accepted: &[&str]) -> RcptPlan {
    let expansion = recipients::expand(config, address);
    let targets = match &expansion {
        Some(e) => e.targets.clone(),
        None => vec![address.to_string()],
    };
    let reason = expansion.map(|e| e.reason);
    if route::conflicts(config, accepted, &targets) {
        return RcptPlan { action: PlanAction::Defer, add: Vec::new(), reason };
    }
    let mut fresh = targets.into_iter().filter(|t| !accepted.iter().any(|a| a.eq_ignore_ascii_case(t)));
    let action = match fresh.next() {
        None => PlanAction::Drop,
        Some(first) if first.eq_ignore_ascii_case(address) => PlanAction::Keep,
        Some(first) => PlanAction::Rewrite(first),
    };
    RcptPlan { action, add: fresh.collect(), reason }
}

pub struct AddressRewrite;

impl Plugin for AddressRewrite {
    fn describe() -> PluginInfo {
        sluice_plugin::plugin_info!(Stage::MailFrom, Stage::RcptTo, Stage::Data).reusable()
    }

    fn mail_from(_session: &Session, txn: &Transaction) -> MailFromResult {
        let sender = txn.sender.as_deref().unwrap_or("");
        match masquerade::masquerade(CONFIG.get(), sender) {
            Some(new) => {
                sluice_plugin::log::info(&format!("masquerade sender {sender} -> {new}"));
                MailFromResult::from(
                    Outcome::proceed()
                        .tag("address-rewrite:masquerade")
                        .annotate("masquerade", format!("{sender} -> {new}")),
                )
                .with_sender(new)
            }
            None => Outcome::proceed().into(),
        }
    }

    fn rcpt_to(_session: &Session, txn: &Transaction, rcpt: &Recipient) -> RcptToResult {
        let accepted: Vec<&str> = txn.recipients.iter().map(|r| r.address.as_str()).collect();
        let plan = plan_recipient(CONFIG.get(), &rcpt.address, &accepted);
        let mut outcome = Outcome::proceed();
        let targets = plan.add.join(", ");
        match plan.reason {
            Some(Reason::Alias) => outcome = outcome.tag("address-rewrite:alias"),
            Some(Reason::CatchAll) => outcome = outcome.tag("address-rewrite:catch-all"),
            None => {}
        }
        let result = match plan.action {
            PlanAction::Defer => {
                let first = accepted.first().copied().unwrap_or_default();
                sluice_plugin::log::info(&format!("defer {}: routed differently from {first}", rcpt.address));
                return Outcome::tempfail(
                    452,
                    "4.5.3",
                    "Too many recipients: send this one in a separate transaction (different route)",
                )
                .tag("address-rewrite:split")
                .into();
            }
            PlanAction::Keep if plan.reason.is_none() => return outcome.into(),
            PlanAction::Keep => {
                RcptToResult::from(outcome.annotate("expand", format!("{} -> +{targets}", rcpt.address)))
            }
            PlanAction::Rewrite(first) => {
                let shown = if targets.is_empty() { first.clone() } else { format!("{first}, {targets}") };
                RcptToResult::from(outcome.annotate("rewrite", format!("{} -> {shown}", rcpt.address))).rewrite(first)
            }
            PlanAction::Drop => {
                RcptToResult::from(outcome.annotate("duplicate", format!("{} already covered", rcpt.address)))
                    .drop_recipient()
            }
        };
        sluice_plugin::log::debug(&format!("recipient {}: {:?}", rcpt.address, result.action));
        plan.add.into_iter().fold(result, RcptToResult::add_recipient)
    }

    fn data(_session: &Session, txn: &Transaction, message: &Message) -> DataResult {
        let config = CONFIG.get();
        let mut outcome = Outcome::proceed();
        let mut from_header = None;
        if config.rewrite_from_header && !config.masquerade.is_empty() {
            let values = message.header("From");
            match values.as_slice() {
                [one] => {
                    from_header = masquerade::rewrite_header_addresses(one, |a| masquerade::masquerade(config, a));
                    if let Some(new) = &from_header {
                        outcome = outcome.tag("address-rewrite:from-header").annotate("from", new.clone());
                    }
                }
                [] => {}
                _ => sluice_plugin::log::warn("several From: fields; left unchanged"),
            }
        }
        let recipients: Vec<&str> = txn.recipients.iter().map(|r| r.address.as_str()).collect();
        let decision = route::choose(config, &recipients);
        match &decision {
            Decision::Chosen(choice) => {
                outcome = outcome.tag("address-rewrite:route").annotate("route", choice.describe())
            }
            Decision::Mixed => {
                sluice_plugin::log::info("recipients map to different routes: leaving routing to [[route]] rules");
                outcome = outcome.tag("address-rewrite:route-mixed");
            }
            Decision::Default => {}
        }
        let mut result = DataResult::from(outcome);
        if let Some(value) = from_header {
            result = result.set_header("From", value);
        }
        match decision {
            Decision::Chosen(RouteChoice::Named(name)) => result.route(name.clone()),
            Decision::Chosen(RouteChoice::NextHop(hop)) => result.next_hop(hop.clone()),
            _ => result,
        }
    }
}

sluice_plugin::export!(AddressRewrite);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::config;

    fn cfg() -> Config {
        config(
            r#"
            aliases = { "sales@example.com" = ["alice@example.com", "bob@example.com"], "self@example.com" = ["self@example.com", "erin@example.com"] }
            catch_all = { "example.com" = "postmaster@example.com" }
            known_users = ["alice@example.com", "bob@example.com", "erin@example.com"]
            routes = { "partner.example" = "partner-relay" }
            split_by_route = true
            "#,
        )
    }

    #[test]
    fn alias_rewrites_to_the_first_target_and_adds_the_rest() {
        let plan = plan_recipient(&cfg(), "sales@example.com", &[]);
        assert_eq!(plan.action, PlanAction::Rewrite("alice@example.com".into()));
        assert_eq!(plan.add, vec!["bob@example.com".to_string()]);
        assert_eq!(plan.reason, Some(Reason::Alias));
    }

    #[test]
    fn an_alias_listing_itself_keeps_the_recipient() {
        let plan = plan_recipient(&cfg(), "self@example.com", &[]);
        assert_eq!((plan.action, plan.add), (PlanAction::Keep, vec!["erin@example.com".to_string()]));
    }

    #[test]
    fn targets_already_accepted_are_not_added_again() {
        let plan = plan_recipient(&cfg(), "sales@example.com", &["alice@example.com"]);
        assert_eq!((plan.action, plan.add), (PlanAction::Rewrite("bob@example.com".into()), vec![]));
        let plan = plan_recipient(&cfg(), "sales@example.com", &["Alice@example.com", "bob@example.com"]);
        assert_eq!(plan.action, PlanAction::Drop);
    }

    #[test]
    fn catch_all_and_plain_recipients() {
        let plan = plan_recipient(&cfg(), "nobody@example.com", &[]);
        assert_eq!(plan.action, PlanAction::Rewrite("postmaster@example.com".into()));
        assert_eq!(plan.reason, Some(Reason::CatchAll));
        let plan = plan_recipient(&cfg(), "alice@example.com", &[]);
        assert_eq!((plan.action, plan.reason), (PlanAction::Keep, None));
    }

    #[test]
    fn recipients_for_another_route_are_deferred() {
        let plan = plan_recipient(&cfg(), "x@partner.example", &["alice@example.com"]);
        assert_eq!(plan.action, PlanAction::Defer);
        let plan = plan_recipient(&cfg(), "y@partner.example", &["x@partner.example"]);
        assert_eq!(plan.action, PlanAction::Keep);
    }
}
