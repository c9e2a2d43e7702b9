//! DNS lookups through the host's resolver (grant: `dns`).
//!
//! Plugin logic takes `&mut impl Dns`: [`HostDns`] in the plugin, a table
//! (`testing::FakeDns`) in host tests. The raw host functions are here too.

use std::fmt;

pub use crate::bindings::sluice::plugin::dns::{Error, Mx, lookup_a, lookup_aaaa, lookup_mx, lookup_ptr, lookup_txt};

/// A failed lookup, as the host reports it (the raw [`Error`], comparable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN).
    NotFound,
    /// The name exists but has no records of this type.
    NoRecords,
    /// The resolver did not answer in time.
    Timeout,
    /// Any other failure (SERVFAIL, refused, ...), described.
    Failed(String),
}

impl DnsError {
    /// An answer saying there is nothing, as opposed to no answer.
    pub fn is_negative(&self) -> bool {
        matches!(self, DnsError::NotFound | DnsError::NoRecords)
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::NotFound => f.write_str("name not found"),
            DnsError::NoRecords => f.write_str("no records"),
            DnsError::Timeout => f.write_str("timeout"),
            DnsError::Failed(why) => f.write_str(why),
        }
    }
}

impl From<Error> for DnsError {
    fn from(error: Error) -> Self {
        match error {
            Error::NotFound => DnsError::NotFound,
            Error::NoRecords => DnsError::NoRecords,
            Error::Timeout => DnsError::Timeout,
            Error::Failed(why) => DnsError::Failed(why),
        }
    }
}

/// The lookups plugin logic asks for. Each answer is a list of records as text.
pub trait Dns {
    fn a(&mut self, name: &str) -> Result<Vec<String>, DnsError>;
    fn aaaa(&mut self, name: &str) -> Result<Vec<String>, DnsError>;
    /// Each TXT record's strings joined.
    fn txt(&mut self, name: &str) -> Result<Vec<String>, DnsError>;
    /// Reverse lookup of an address given as text.
    fn ptr(&mut self, address: &str) -> Result<Vec<String>, DnsError>;
}

/// The host's resolver.
pub struct HostDns;

impl Dns for HostDns {
    fn a(&mut self, name: &str) -> Result<Vec<String>, DnsError> {
        lookup_a(name).map_err(DnsError::from)
    }
    fn aaaa(&mut self, name: &str) -> Result<Vec<String>, DnsError> {
        lookup_aaaa(name).map_err(DnsError::from)
    }
    fn txt(&mut self, name: &str) -> Result<Vec<String>, DnsError> {
        lookup_txt(name).map_err(DnsError::from)
    }
    fn ptr(&mut self, address: &str) -> Result<Vec<String>, DnsError> {
        lookup_ptr(address).map_err(DnsError::from)
    }
}
