//! What the server does after a stage.

use crate::wire::Reply;

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Go on as if there were no plugins.
    Proceed,
    /// Refuse the command with this reply (4xx or 5xx).
    Refuse(Reply),
    /// Send this reply and close the connection.
    Disconnect(Reply),
}
