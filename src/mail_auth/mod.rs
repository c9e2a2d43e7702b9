//! Mail authentication: SPF at MAIL FROM (with the void-lookup limit mail-auth lacks,
//! `spf_voids.rs`); DKIM, ARC, DMARC and iprev at the end of
//! DATA (`check.rs`, with mail-auth, through the server's resolver); the results in
//! our words for plugins (`results.rs`); our Authentication-Results field
//! (`header.rs`); their metrics.

mod check;
mod dmarc_record;
mod header;
pub mod metrics;
pub mod results;
mod spf_voids;

pub use check::{Checker, MAX_SIGNATURES, MessageOutcome, SpfOutcome};
pub use header::NAME as RESULTS_FIELD;
pub use results::AuthResults;
pub mod sign;
