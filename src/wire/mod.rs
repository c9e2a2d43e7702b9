//! The SMTP vocabulary both sides of the wire share: replies with their RFC 3463
//! enhanced status, the reply parser, the command verbs and the ESMTP extensions with
//! their EHLO keywords. The server (`smtp`) speaks it to clients and the delivery client
//! (`delivery::client`) to next hops, so both agree on every code and keyword.
//!
//! Like `mail`, this module sits below every stage of the mail's path and imports
//! nothing else from the crate.

mod extension;
mod parse;
mod reply;
mod status;
mod verb;

pub use extension::Extension;
pub use parse::{MAX_LINE, MAX_LINES, ReplyError, parse_reply};
pub use reply::Reply;
pub use status::Status;
pub use verb::Verb;
