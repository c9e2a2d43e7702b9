//! Mail authentication: DKIM signing of outgoing mail.

pub mod sign;
