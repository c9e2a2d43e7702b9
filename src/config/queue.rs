//! `[queue]`: where accepted mail is kept until it is delivered.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// The queue directory; relative paths are taken from the config file's directory.
    pub path: PathBuf,
}
