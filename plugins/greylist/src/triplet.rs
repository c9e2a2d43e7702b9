//! Triplets (client network, sender, recipient), their kv keys, and the records stored
//! under them.

use std::net::IpAddr;

use filter_util::{key, net};

/// The sender as greylisting sees it: lower-cased, and when `normalize` is on, with the
/// parts that change from one delivery attempt to the next taken out, so that a retry
/// is recognised:
/// - a BATV tag (`prvs=1234abcdef=user@example.org` → `user@example.org`, also `msprvs1=`);
/// - VERP-style numbers: each run of digits standing alone between punctuation in the
///   local part becomes `#` (`bounce-8812-42@lists.example` → `bounce-#-#@lists.example`),
///   as postgrey does.
///
/// The null sender `<>` is greylisted like any other, under the key part `<>`: bounces
/// come from real MTAs, which retry.
pub fn normalize_sender(sender: &str, normalize: bool) -> String {
    let sender = sender.trim().to_ascii_lowercase();
    if sender.is_empty() {
        return "<>".to_string();
    }
    if !normalize {
        return sender;
    }
    let (local, domain) = match sender.rsplit_once('@') {
        Some((local, domain)) => (local, Some(domain)),
        None => (sender.as_str(), None),
    };
    let local = strip_batv(local);
    let local = replace_verp_numbers(local);
    match domain {
        Some(domain) => format!("{local}@{domain}"),
        None => local,
    }
}

fn strip_batv(local: &str) -> &str {
    for prefix in ["prvs=", "msprvs1="] {
        if let Some(rest) = local.strip_prefix(prefix) {
            // prvs=TAG=user (RFC draft) — the user is what follows the second '='.
            if let Some((_, user)) = rest.split_once('=')
                && !user.is_empty()
            {
                return user;
            }
        }
    }
    local
}

fn replace_verp_numbers(local: &str) -> String {
    let mut out = String::with_capacity(local.len());
    let chars: Vec<char> = local.chars().collect();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() && (i == 0 || !word(chars[i - 1])) {
            let end = (i..chars.len()).find(|&j| !chars[j].is_ascii_digit()).unwrap_or(chars.len());
            if end == chars.len() || !word(chars[end]) {
                out.push('#');
                i = end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The recipient as greylisting sees it: lower-cased.
pub fn normalize_recipient(recipient: &str) -> String {
    recipient.trim().to_ascii_lowercase()
}

/// The kv key of a triplet.
pub fn triplet_key(client: IpAddr, v4_prefix: u8, v6_prefix: u8, sender: &str, recipient: &str) -> String {
    key::make(&["t", &net::client_network(client, v4_prefix, v6_prefix), sender, recipient])
}

/// The kv key of an auto-allowed client network.
pub fn network_key(client: IpAddr, v4_prefix: u8, v6_prefix: u8) -> String {
    key::make(&["n", &net::client_network(client, v4_prefix, v6_prefix)])
}

/// What is stored under a triplet key: `w <secs>` or `p <secs>` (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// First seen at this time; waiting for a retry.
    Waiting { first_seen: u64 },
    /// A retry passed at this time (also what an auto-allowed network key holds).
    Passed { at: u64 },
}

impl Record {
    pub fn encode(self) -> Vec<u8> {
        match self {
            Record::Waiting { first_seen } => format!("w {first_seen}").into_bytes(),
            Record::Passed { at } => format!("p {at}").into_bytes(),
        }
    }

    /// `None` for anything else (a record from a future version, garbage): treated as
    /// absent, so the triplet starts over rather than failing.
    pub fn decode(bytes: &[u8]) -> Option<Record> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (kind, secs) = text.split_once(' ')?;
        let secs: u64 = secs.parse().ok()?;
        match kind {
            "w" => Some(Record::Waiting { first_seen: secs }),
            "p" => Some(Record::Passed { at: secs }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_are_normalized() {
        assert_eq!(normalize_sender("Alice@Example.ORG", true), "alice@example.org");
        assert_eq!(normalize_sender("", true), "<>");
        assert_eq!(normalize_sender("prvs=1234abcdef=alice@example.org", true), "alice@example.org");
        assert_eq!(normalize_sender("msprvs1=19ab3=bounces@mailer.example", true), "bounces@mailer.example");
        assert_eq!(normalize_sender("bounce-8812-42@lists.example", true), "bounce-#-#@lists.example");
        assert_eq!(normalize_sender("news+20261121@lists.example", true), "news+#@lists.example");
        assert_eq!(normalize_sender("user2@example.org", true), "user2@example.org", "digits inside a word stay");
        assert_eq!(normalize_sender("2fast@example.org", true), "2fast@example.org");
        assert_eq!(normalize_sender("prvs=1234abcdef=alice@example.org", false), "prvs=1234abcdef=alice@example.org");
        assert_eq!(normalize_sender("prvs=@example.org", true), "prvs=@example.org", "nothing after the tag: kept");
    }

    #[test]
    fn keys_group_clients_by_network() {
        let a = triplet_key("192.0.2.1".parse().unwrap(), 24, 64, "a@example.org", "b@example.com");
        let b = triplet_key("192.0.2.200".parse().unwrap(), 24, 64, "a@example.org", "b@example.com");
        let c = triplet_key("192.0.3.1".parse().unwrap(), 24, 64, "a@example.org", "b@example.com");
        assert_eq!(a, "t 192.0.2.0/24 a@example.org b@example.com");
        assert_eq!(a, b, "same /24");
        assert_ne!(a, c);
        let v6 = triplet_key("2001:db8:1:2::25".parse().unwrap(), 24, 64, "<>", "b@example.com");
        assert_eq!(v6, "t 2001:db8:1:2::/64 <> b@example.com");
        assert_eq!(network_key("192.0.2.9".parse().unwrap(), 24, 64), "n 192.0.2.0/24");
        assert_ne!(
            triplet_key("192.0.2.1".parse().unwrap(), 24, 64, "a@example.org", "c@example.com"),
            a,
            "recipients differ"
        );
    }

    #[test]
    fn records_round_trip() {
        for record in [Record::Waiting { first_seen: 1_790_000_000 }, Record::Passed { at: 42 }] {
            assert_eq!(Record::decode(&record.encode()), Some(record));
        }
        assert_eq!(Record::decode(b"x 1"), None);
        assert_eq!(Record::decode(b"w"), None);
        assert_eq!(Record::decode(b"w -1"), None);
        assert_eq!(Record::decode(&[0xff, 0x20, 0x31]), None);
    }
}
