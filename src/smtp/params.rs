//! Parsing the ESMTP parameters of MAIL and RCPT, with the reply for each mistake.

use crate::mail::params::{Body, MailParams, Notify, RcptParams, Ret, is_xtext};
use crate::wire::{Reply, Status};

fn unsupported(keyword: &str) -> Reply {
    Reply::owned(555, Status(5, 5, 4), format!("Error: unsupported parameter {}", printable(keyword)))
}

fn malformed(keyword: &str) -> Reply {
    Reply::owned(501, Status(5, 5, 4), format!("Error: bad value for parameter {}", printable(keyword)))
}

fn duplicate(keyword: &str) -> Reply {
    Reply::owned(501, Status(5, 5, 4), format!("Error: parameter {} given twice", printable(keyword)))
}

/// Reply text must not echo arbitrary client bytes back.
fn printable(text: &str) -> String {
    text.chars().take(32).map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect()
}

fn split_params(text: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    text.split(' ').filter(|p| !p.is_empty()).map(|p| match p.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (p, None),
    })
}

fn set_once<T>(slot: &mut Option<T>, value: T, keyword: &str) -> Result<(), Reply> {
    if slot.is_some() {
        return Err(duplicate(keyword));
    }
    *slot = Some(value);
    Ok(())
}

/// Parses MAIL parameters. `max_size` is the advertised SIZE limit.
pub fn parse_mail_params(text: &str, max_size: u64) -> Result<MailParams, Reply> {
    let mut params = MailParams::default();
    for (keyword, value) in split_params(text) {
        match (keyword.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(v)) => {
                let size: u64 = v.parse().map_err(|_| malformed(keyword))?;
                if size > max_size {
                    return Err(Reply::owned(
                        552,
                        Status(5, 3, 4),
                        format!("Error: message size {size} exceeds the limit of {max_size} bytes"),
                    ));
                }
                set_once(&mut params.size, size, keyword)?;
            }
            ("BODY", Some(v)) => {
                let body = match v.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    _ => return Err(unsupported(&format!("BODY={v}"))),
                };
                set_once(&mut params.body, body, keyword)?;
            }
            ("SMTPUTF8", None) => {
                if params.smtputf8 {
                    return Err(duplicate(keyword));
                }
                params.smtputf8 = true;
            }
            ("RET", Some(v)) => {
                let ret = match v.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Hdrs,
                    _ => return Err(malformed(keyword)),
                };
                set_once(&mut params.ret, ret, keyword)?;
            }
            ("ENVID", Some(v)) => {
                if v.is_empty() || v.len() > 100 || !is_xtext(v, false) {
                    return Err(malformed(keyword));
                }
                set_once(&mut params.envid, v.to_string(), keyword)?;
            }
            // RFC 4954 §5: the submitter's identity; accepted and not relied on.
            ("AUTH", Some(v)) => {
                if v.is_empty() || v.len() > 500 || !(v == "<>" || is_xtext(v, true)) {
                    return Err(malformed(keyword));
                }
            }
            ("SIZE" | "BODY" | "RET" | "ENVID" | "AUTH", None) | ("SMTPUTF8", Some(_)) => {
                return Err(malformed(keyword));
            }
            _ => return Err(unsupported(keyword)),
        }
    }
    Ok(params)
}

/// Parses RCPT parameters. `smtputf8` allows UTF-8 in ORCPT.
pub fn parse_rcpt_params(text: &str, smtputf8: bool) -> Result<RcptParams, Reply> {
    let mut params = RcptParams::default();
    for (keyword, value) in split_params(text) {
        match (keyword.to_ascii_uppercase().as_str(), value) {
            ("NOTIFY", Some(v)) => {
                let mut notify = Notify::default();
                for item in v.split(',') {
                    let flag = match item.to_ascii_uppercase().as_str() {
                        "NEVER" => &mut notify.never,
                        "SUCCESS" => &mut notify.success,
                        "FAILURE" => &mut notify.failure,
                        "DELAY" => &mut notify.delay,
                        _ => return Err(malformed(keyword)),
                    };
                    if *flag {
                        return Err(malformed(keyword));
                    }
                    *flag = true;
                }
                if notify.never && (notify.success || notify.failure || notify.delay) {
                    return Err(malformed(keyword));
                }
                set_once(&mut params.notify, notify, keyword)?;
            }
            ("ORCPT", Some(v)) => {
                let valid = v.len() <= 500
                    && match v.split_once(';') {
                        Some((addr_type, addr)) => {
                            !addr_type.is_empty()
                                && addr_type.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                                && !addr.is_empty()
                                && is_xtext(addr, smtputf8)
                        }
                        None => false,
                    };
                if !valid {
                    return Err(malformed(keyword));
                }
                set_once(&mut params.orcpt, v.to_string(), keyword)?;
            }
            ("NOTIFY" | "ORCPT", None) => return Err(malformed(keyword)),
            _ => return Err(unsupported(keyword)),
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_params() {
        let p = parse_mail_params("SIZE=1000 body=8bitmime SMTPUTF8 RET=HDRS ENVID=QQ+2B1", 5000).unwrap();
        assert_eq!(p.size, Some(1000));
        assert_eq!(p.body, Some(Body::EightBitMime));
        assert!(p.smtputf8);
        assert_eq!(p.ret, Some(Ret::Hdrs));
        assert_eq!(p.envid.as_deref(), Some("QQ+2B1"));
        assert_eq!(parse_mail_params("", 10), Ok(MailParams::default()));
    }

    #[test]
    fn mail_param_errors_have_precise_codes() {
        let code = |text: &str| parse_mail_params(text, 5000).unwrap_err().code;
        assert_eq!(code("SIZE=6000"), 552);
        assert_eq!(code("SIZE=abc"), 501);
        assert_eq!(code("SIZE"), 501);
        assert_eq!(code("SIZE=1 SIZE=2"), 501);
        assert_eq!(code("BODY=BINARYMIME"), 555);
        assert_eq!(code("FOO=BAR"), 555);
        assert_eq!(code("SMTPUTF8=yes"), 501);
        assert_eq!(code("RET=ALL"), 501);
        assert_eq!(code("ENVID=a=b"), 501);
        assert_eq!(code("ENVID=a+zz"), 501);
        assert_eq!(code("ENVID=a+4"), 501);
        assert_eq!(code("SIZE=99999999999999999999999"), 501);
    }

    #[test]
    fn rcpt_params() {
        let p = parse_rcpt_params("NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user+40example.com", false).unwrap();
        assert_eq!(p.notify, Some(Notify { success: true, failure: true, ..Notify::default() }));
        assert_eq!(p.orcpt.as_deref(), Some("rfc822;user+40example.com"));
        let code = |text: &str| parse_rcpt_params(text, false).unwrap_err().code;
        assert_eq!(code("NOTIFY=NEVER,DELAY"), 501);
        assert_eq!(code("NOTIFY=SOMETIMES"), 501);
        assert_eq!(code("NOTIFY=DELAY,DELAY"), 501);
        assert_eq!(code("ORCPT=user@example.com"), 501);
        assert_eq!(code("ORCPT=rfc822;"), 501);
        assert_eq!(code("XFOO"), 555);
    }

    #[test]
    fn utf8_orcpt_only_with_smtputf8_and_without_c1_controls() {
        let orcpt = "ORCPT=utf-8;j\u{fc}rgen@example.com";
        assert!(parse_rcpt_params(orcpt, true).is_ok());
        assert_eq!(parse_rcpt_params(orcpt, false).unwrap_err().code, 501);
        // Found by the smtp_command fuzz target: U+009C (a C1 control) was accepted.
        assert_eq!(parse_rcpt_params("ORCPT=rTUSCESS;\u{9c}", true).unwrap_err().code, 501);
    }
}
