//! DNS for every part of the server behind one trait, [`Resolver`]: delivery's MX and
//! address lookups, the plugins' `dns` import and the mail-authentication checks. The
//! real implementation is hickory's resolver, built from `[dns]` ([`HickoryResolver`]);
//! [`ZoneResolver`] answers from a records file in memory, for the offline plugin runner
//! and for tests, with the same answers the suite's loopback DNS server gives.

mod address;
mod hickory;
mod resolver;
pub mod zone;

pub use address::is_public;
pub use hickory::{HickoryResolver, shared_resolver};
pub use resolver::{DnsError, Lookup, Record, RecordKind, Resolver, SharedResolver, lookup_ip, reverse_name};
pub use zone::{Zone, ZoneAnswer, ZoneResolver};
