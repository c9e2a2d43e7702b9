//! The stages of the SMTP conversation plugins hook.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    Connect,
    Helo,
    MailFrom,
    RcptTo,
    Data,
}

impl Stage {
    pub const ALL: [Stage; 5] = [Stage::Connect, Stage::Helo, Stage::MailFrom, Stage::RcptTo, Stage::Data];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Helo => "helo",
            Stage::MailFrom => "mail-from",
            Stage::RcptTo => "rcpt-to",
            Stage::Data => "data",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The stages a plugin asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageSet(u8);

impl StageSet {
    pub fn contains(self, stage: Stage) -> bool {
        self.0 & stage.bit() != 0
    }

    pub fn names(self) -> Vec<&'static str> {
        Stage::ALL.iter().filter(|s| self.contains(**s)).map(|s| s.name()).collect()
    }
}

impl FromIterator<Stage> for StageSet {
    fn from_iter<I: IntoIterator<Item = Stage>>(iter: I) -> Self {
        StageSet(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}
