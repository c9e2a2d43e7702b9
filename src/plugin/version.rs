//! The `sluice:plugin` version lines the server serves, and which one a component
//! targets (told by its `hooks` export).

use std::fmt;

use wasmtime::component::Component;

/// A version line: components built for any `0.MINOR.x` of it run on its bindings
/// (wasmtime links imports semver-aware within a line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    V0_1,
    V0_2,
}

impl Line {
    /// Every line served, newest first.
    pub const SERVED: [Line; 2] = [Line::V0_2, Line::V0_1];
    /// The line the SDK and the example plugins target.
    pub const CURRENT: Line = Line::V0_2;

    /// `0.MINOR.`, the prefix of every version of the line.
    pub fn prefix(self) -> &'static str {
        match self {
            Line::V0_1 => "0.1.",
            Line::V0_2 => "0.2.",
        }
    }

    /// The line of `version` (such as "0.1.0"), if it is served.
    pub fn of(version: &str) -> Option<Line> {
        Line::SERVED.into_iter().find(|line| version.starts_with(line.prefix()))
    }

    /// What a plugin author should hear about a plugin on this line: `None` for the
    /// current line. Served lines are never dropped without a deprecation first (see
    /// the policy at the top of `wit/v0.2.0/plugin.wit`).
    pub fn notice(self) -> Option<&'static str> {
        match self {
            Line::V0_1 => Some("sluice:plugin@0.1 is superseded by 0.2 (still served; rebuild with the current SDK)"),
            Line::V0_2 => None,
        }
    }
}

/// The interface version a component targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub line: Line,
    /// As the component names it, such as "0.1.0".
    pub version: String,
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sluice:plugin@{}", self.version)
    }
}

impl Interface {
    /// The version of the `sluice:plugin/hooks` the component exports.
    pub fn of(component: &Component, engine: &wasmtime::Engine) -> Result<Interface, String> {
        let exports = component.component_type().exports(engine).map(|(name, _)| name.to_string()).collect::<Vec<_>>();
        Interface::from_exports(exports.iter().map(String::as_str))
    }

    fn from_exports<'a>(mut exports: impl Iterator<Item = &'a str>) -> Result<Interface, String> {
        let Some(version) = exports.find_map(|name| name.strip_prefix("sluice:plugin/hooks@")) else {
            return Err("does not export sluice:plugin/hooks".into());
        };
        match Line::of(version) {
            Some(line) => Ok(Interface { line, version: version.to_string() }),
            None => {
                let served = Line::SERVED.map(|l| format!("{}x", l.prefix())).join(", ");
                Err(format!("was built for sluice:plugin@{version}; this server serves {served}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hooks_export_tells_the_line() {
        let of = |exports: &[&str]| Interface::from_exports(exports.iter().copied());
        assert_eq!(of(&["sluice:plugin/hooks@0.1.0"]).unwrap().line, Line::V0_1);
        let later = of(&["other:x/y@1.0.0", "sluice:plugin/hooks@0.2.3"]).unwrap();
        assert_eq!((later.line, later.to_string()), (Line::V0_2, "sluice:plugin@0.2.3".to_string()));
        assert!(of(&["sluice:plugin/hooks@0.3.0"]).unwrap_err().contains("serves 0.2.x, 0.1.x"));
        assert!(of(&["sluice:plugin/hooks@1.0.0"]).is_err());
        assert!(of(&["wasi:cli/run@0.2.0"]).unwrap_err().contains("does not export"));
        assert!(Line::CURRENT.notice().is_none() && Line::V0_1.notice().is_some());
    }
}
