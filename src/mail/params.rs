//! ESMTP parameters carried in the envelope: MAIL (SIZE, BODY, SMTPUTF8, RET, ENVID)
//! and RCPT (NOTIFY, ORCPT).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Body {
    #[serde(rename = "7BIT")]
    SevenBit,
    #[serde(rename = "8BITMIME")]
    EightBitMime,
}

/// RFC 3461 RET: how much of the message a DSN returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Ret {
    Full,
    Hdrs,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub smtputf8: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<Ret>,
    /// RFC 3461 ENVID, kept in its xtext form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
}

/// RFC 3461 NOTIFY. `never` excludes the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub never: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub success: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failure: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delay: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcptParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// RFC 3461 ORCPT as `addr-type;xtext`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<String>,
}

/// xtext (RFC 3461 §4): printable ASCII except `+` and `=`, with `+XX` hex escapes;
/// with `allow_utf8` (RFC 6533) also non-ASCII characters, except the C1 controls.
pub fn is_xtext(text: &str, allow_utf8: bool) -> bool {
    // U+0080..U+009F are valid UTF-8, but an ORCPT is copied into DSNs and logs, where a
    // raw control character could end a line or drive a terminal.
    if allow_utf8 && text.chars().any(char::is_control) {
        return false;
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = |b: u8| b.is_ascii_digit() || (b'A'..=b'F').contains(&b);
                match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(&a), Some(&b)) if hex(a) && hex(b) => i += 2,
                    _ => return false,
                }
            }
            b'=' => return false,
            b'!'..=b'~' => {}
            b if b >= 0x80 && allow_utf8 => {}
            _ => return false,
        }
        i += 1;
    }
    true
}
