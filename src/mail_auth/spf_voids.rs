//! RFC 7208 §4.6.4's limit of two void lookups (NXDOMAIN, or an answer with no record
//! of the type asked), which mail-auth 0.13 does not enforce: more give `permerror`.
//!
//! mail-auth takes per-evaluation caches; ours never hold anything (every lookup goes
//! to the resolver, whose own cache answers) but watch each lookup (`get`) and its
//! answer (`insert`, only on success). Afterwards the log tells the terms apart:
//! - `a` and `mx`: a lookup with no answer is a void one, for mail-auth goes on past
//!   nothing else (any other error ends the evaluation with `temperror` there, so
//!   only the last lookup of an evaluation that ended in `temperror` is not counted);
//!   an answer with no records is void too.
//! - the A/AAAA lookups of an MX's exchanges and of a `ptr`'s names are the term's,
//!   not terms of their own: not counted. One that names the next such name is taken
//!   for it, so an `a` term right after an `mx` that matched inside an include with a
//!   non-pass qualifier, naming the next exchange, is not counted either.
//! - `exists` asks A then AAAA of one name from the caches (the only term asking the
//!   other family) and then asks hickory around them: its void-ness is asked again,
//!   through the same resolver (cached), when it could decide the limit.
//! - `include` and `redirect` to a void name are `permerror` in mail-auth already.
//! - `ptr` (RFC 7208 §5.5: do not use it) is not counted: the `%{p}` macro makes the
//!   same PTR lookup for whatever term uses it, and the log cannot tell the two apart.
//!
//! Deciding after the evaluation gives the limit's answer: up to the third void
//! lookup the evaluation is the one a limited evaluation makes, which would stop
//! there with `permerror`; whatever came after cannot change that.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use mail_auth::common::cache::NoCache;
use mail_auth::common::resolver::ToFqdn;
use mail_auth::spf::verify::SpfParameters;
use std::time::Instant;

use mail_auth::{MX, MessageAuthenticator, Parameters, RecordSet, ResolverCache, Txt};

/// Void lookups an evaluation may make (RFC 7208 §4.6.4: "SHOULD limit to two").
pub const MAX_VOID_LOOKUPS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Txt,
    Mx,
    A,
    Aaaa,
    Ptr,
}

#[derive(Debug)]
struct Seen {
    kind: Kind,
    key: Vec<u8>,
    /// `None` until an answer is stored: a lookup that failed.
    answer: Option<Answer>,
}

#[derive(Debug)]
struct Answer {
    empty: bool,
    /// The names the term looks up next: an MX's exchanges, a PTR's names.
    names: Vec<Vec<u8>>,
}

/// The watching caches of one SPF evaluation.
#[derive(Default)]
pub struct VoidLookups {
    seen: Mutex<Vec<Seen>>,
}

type Observed<'x> = Parameters<'x, SpfParameters<'x>, VoidLookups, VoidLookups, VoidLookups, VoidLookups, VoidLookups>;

impl VoidLookups {
    /// `params` with every lookup watched.
    pub fn watching<'x>(&'x self, params: SpfParameters<'x>) -> Observed<'x> {
        Parameters {
            params,
            cache_txt: Some(self),
            cache_mx: Some(self),
            cache_ptr: Some(self),
            cache_ipv4: Some(self),
            cache_ipv6: Some(self),
        }
    }

    /// Whether the evaluation made more than [`MAX_VOID_LOOKUPS`] void lookups.
    /// `errored`: it ended in `temperror` (or was cut off), on its last lookup.
    pub async fn exceeded(&self, authenticator: &MessageAuthenticator, client: IpAddr, errored: bool) -> bool {
        let (voids, exists) = {
            let seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            count(&seen, client.is_ipv6(), errored)
        };
        if voids + exists.len() <= MAX_VOID_LOOKUPS {
            return false;
        }
        let mut voids = voids;
        for name in &exists {
            if voids > MAX_VOID_LOOKUPS {
                break;
            }
            let none = None::<&NoCache<Box<str>, RecordSet<Ipv4Addr>>>;
            let answer = authenticator.exists(name, none, None::<&NoCache<Box<str>, RecordSet<Ipv6Addr>>>);
            // Not knowing is not void.
            voids += usize::from(matches!(answer.await, Ok(false)));
        }
        voids > MAX_VOID_LOOKUPS
    }

    fn get(&self, kind: Kind, key: Vec<u8>) {
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(Seen { kind, key, answer: None });
    }

    fn answer(&self, kind: Kind, key: Vec<u8>, answer: Answer) {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // The answer follows its lookup at once: the evaluation is sequential.
        if let Some(last) = seen.last_mut().filter(|s| s.kind == kind && s.key == key) {
            last.answer = Some(answer);
        }
    }
}

/// The void lookups the log shows, and the names of the `exists` terms whose answer
/// it does not show.
fn count(seen: &[Seen], client_v6: bool, errored: bool) -> (usize, Vec<String>) {
    let own = if client_v6 { Kind::Aaaa } else { Kind::A };
    let failed = |i: usize| errored && i + 1 == seen.len();
    let void = |s: &Seen| s.answer.as_ref().is_none_or(|a| a.empty);
    let mut expected: VecDeque<&[u8]> = VecDeque::new();
    let (mut voids, mut exists) = (0, Vec::new());
    let mut i = 0;
    while i < seen.len() {
        let s = &seen[i];
        let names = || s.answer.iter().flat_map(|a| a.names.iter().map(Vec::as_slice)).collect();
        match s.kind {
            Kind::Txt => expected.clear(),
            Kind::Ptr => expected = names(),
            Kind::Mx => {
                expected = names();
                voids += usize::from(void(s) && !failed(i));
            }
            Kind::A if seen.get(i + 1).is_some_and(|n| n.kind == Kind::Aaaa && n.key == s.key) => {
                i += 1;
                expected.clear();
                if let Some(name) = name(&s.key).filter(|_| !failed(i)) {
                    exists.push(name);
                }
            }
            kind if kind == own && expected.front() == Some(&s.key.as_slice()) => {
                expected.pop_front();
            }
            kind if kind == own => {
                expected.clear();
                voids += usize::from(void(s) && !failed(i));
            }
            _ => {}
        }
        i += 1;
    }
    (voids, exists)
}

/// The bytes a key feeds a hasher: mail-auth's `get` gives a key only as something
/// hashable, equal to the stored key's (`Borrow`'s contract), so these bytes identify it.
fn key<Q: Hash + ?Sized>(value: &Q) -> Vec<u8> {
    #[derive(Default)]
    struct Bytes(Vec<u8>);
    impl Hasher for Bytes {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }
    let mut bytes = Bytes::default();
    value.hash(&mut bytes);
    bytes.0
}

/// The name behind a key: a `str` hashes as its bytes and `0xff`.
fn name(key: &[u8]) -> Option<String> {
    std::str::from_utf8(key.strip_suffix(&[0xff])?).ok().map(str::to_string)
}

/// The key the lookup of `name` is made under (mail-auth makes names FQDNs first).
fn name_key(name: &str) -> Vec<u8> {
    key(name.to_fqdn().as_ref())
}

macro_rules! watch {
    ($key:ty, $value:ty, $kind:expr, |$v:ident| $answer:expr) => {
        impl ResolverCache<$key, $value> for VoidLookups {
            fn get<Q>(&self, name: &Q) -> Option<$value>
            where
                $key: std::borrow::Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                VoidLookups::get(self, $kind, key(name));
                None
            }

            fn remove<Q>(&self, _: &Q) -> Option<$value>
            where
                $key: std::borrow::Borrow<Q>,
                Q: Hash + Eq + ?Sized,
            {
                None
            }

            fn insert(&self, name: $key, $v: $value, _: Instant) {
                self.answer($kind, key(&name), $answer);
            }
        }
    };
}

watch!(Box<str>, Txt, Kind::Txt, |_txt| Answer { empty: false, names: Vec::new() });
watch!(Box<str>, RecordSet<MX>, Kind::Mx, |mx| Answer {
    empty: mx.rrset.is_empty(),
    names: mx.rrset.iter().flat_map(|mx| mx.exchanges.iter()).map(|e| name_key(e)).collect(),
});
watch!(Box<str>, RecordSet<Ipv4Addr>, Kind::A, |a| Answer { empty: a.rrset.is_empty(), names: Vec::new() });
watch!(Box<str>, RecordSet<Ipv6Addr>, Kind::Aaaa, |a| Answer { empty: a.rrset.is_empty(), names: Vec::new() });
watch!(IpAddr, RecordSet<Box<str>>, Kind::Ptr, |ptr| Answer {
    empty: ptr.rrset.is_empty(),
    names: ptr.rrset.iter().map(|n| name_key(n)).collect(),
});

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(kind: Kind, name: &str, answer: Option<(bool, &[&str])>) -> Seen {
        let answer = answer.map(|(empty, names)| Answer { empty, names: names.iter().map(|n| name_key(n)).collect() });
        Seen { kind, key: name_key(name), answer }
    }

    #[test]
    fn terms_count_their_own_lookups_only() {
        let ok = Some((false, &[][..]));
        let log = [
            seen(Kind::Txt, "example.test", ok),
            seen(Kind::A, "gone.test", None),
            seen(Kind::Mx, "mx.test", Some((false, &["mx1.test", "mx2.test"][..]))),
            seen(Kind::A, "mx1.test", None),
            seen(Kind::A, "mx2.test", None),
            seen(Kind::A, "empty.test", Some((true, &[][..]))),
            seen(Kind::A, "x.test", None),
            seen(Kind::Aaaa, "x.test", None),
        ];
        assert_eq!(count(&log, false, false), (2, vec!["x.test.".to_string()]));
        // The last lookup of an evaluation that ended in temperror is the error.
        assert_eq!(count(&log[..7], false, true), (2, vec![]));
        assert_eq!(count(&log[..7], false, false), (3, vec![]));
        // For a client on IPv6, the A lookup of an `a` term does not happen.
        assert_eq!(count(&log[..2], true, false), (0, vec![]));
    }

    #[test]
    fn a_key_is_the_same_borrowed_or_owned() {
        let owned: Box<str> = "mx1.test.".into();
        assert_eq!(key(&owned), key("mx1.test."));
        assert_eq!(name(&key("mx1.test.")).as_deref(), Some("mx1.test."));
    }
}
