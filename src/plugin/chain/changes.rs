//! What the DATA plugins of a chain asked for together, in plugin order.

use crate::mail::{Mailbox, RouteChoice};
use crate::plugin::output::HeaderEdit;

/// The changes plugins asked for at DATA, in plugin order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataChanges {
    pub header_edits: Vec<HeaderEdit>,
    pub new_body: Option<Vec<u8>>,
    pub add_recipients: Vec<Mailbox>,
    pub remove_recipients: Vec<Mailbox>,
    pub route: Option<RouteChoice>,
}

impl DataChanges {
    /// Adds a later plugin's changes: header edits and recipient lists pile up in
    /// order (each edit applies to the section as the earlier ones left it); a later
    /// body or route replaces an earlier one.
    pub(super) fn merge(&mut self, later: DataChanges) {
        self.header_edits.extend(later.header_edits);
        if later.new_body.is_some() {
            self.new_body = later.new_body;
        }
        self.add_recipients.extend(later.add_recipients);
        self.remove_recipients.extend(later.remove_recipients);
        if later.route.is_some() {
            self.route = later.route;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_plugins_add_edits_and_replace_body_and_route() {
        let mut all = DataChanges::default();
        all.merge(DataChanges {
            header_edits: vec![HeaderEdit::Add("X-A".into(), "1".into())],
            new_body: Some(b"first".to_vec()),
            add_recipients: vec![Mailbox::new("a", "example.org")],
            remove_recipients: vec![Mailbox::new("x", "example.org")],
            route: Some(RouteChoice::Named("one".into())),
        });
        all.merge(DataChanges {
            header_edits: vec![HeaderEdit::Remove("X-A".into())],
            add_recipients: vec![Mailbox::new("b", "example.org")],
            ..DataChanges::default()
        });
        assert_eq!(all.new_body.as_deref(), Some(&b"first"[..]), "no body from the second keeps the first's");
        assert_eq!(all.route, Some(RouteChoice::Named("one".into())));
        all.merge(DataChanges {
            new_body: Some(b"second".to_vec()),
            route: Some(RouteChoice::NextHop("mx.example.org".into())),
            ..DataChanges::default()
        });
        assert_eq!(all.header_edits, [HeaderEdit::Add("X-A".into(), "1".into()), HeaderEdit::Remove("X-A".into())]);
        assert_eq!(all.new_body.as_deref(), Some(&b"second"[..]));
        assert_eq!(all.add_recipients, [Mailbox::new("a", "example.org"), Mailbox::new("b", "example.org")]);
        assert_eq!(all.remove_recipients, [Mailbox::new("x", "example.org")]);
        assert_eq!(all.route, Some(RouteChoice::NextHop("mx.example.org".into())));
    }
}
