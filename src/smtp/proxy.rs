//! The PROXY protocol (HAProxy, versions 1 and 2): a load balancer in front of us
//! tells us who the client really is, in a header before the SMTP conversation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// v1 headers are at most 107 bytes with their CRLF.
const V1_MAX: usize = 107;
/// Longer v2 headers (with TLVs we ignore) are refused.
const V2_MAX_PAYLOAD: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The client's address; `None` for `LOCAL` (v2) or `UNKNOWN` (v1) connections,
    /// such as the balancer's health checks, which keep the real peer address.
    pub source: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("not a PROXY protocol header")]
    Missing,
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
}

/// Parses a header at the start of `input`. `Ok(None)` means more bytes are needed;
/// `Ok(Some((header, length)))` gives the header and how many bytes it took.
pub fn parse(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if input.is_empty() {
        return Ok(None);
    }
    if V2_SIGNATURE.starts_with(&input[..input.len().min(12)]) {
        return parse_v2(input);
    }
    if b"PROXY ".starts_with(&input[..input.len().min(6)]) {
        return parse_v1(input);
    }
    Err(ProxyError::Missing)
}

fn parse_v1(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let Some(end) = memchr::memmem::find(&input[..input.len().min(V1_MAX)], b"\r\n") else {
        return if input.len() >= V1_MAX { Err(ProxyError::Malformed("v1 line too long")) } else { Ok(None) };
    };
    let line = std::str::from_utf8(&input[..end]).map_err(|_| ProxyError::Malformed("v1 not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let source = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => None,
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let src: IpAddr = src.parse().map_err(|_| ProxyError::Malformed("v1 source address"))?;
            let _: IpAddr = dst.parse().map_err(|_| ProxyError::Malformed("v1 destination address"))?;
            let port = parse_port(sport)?;
            parse_port(dport)?;
            if (*family == "TCP4") != src.is_ipv4() {
                return Err(ProxyError::Malformed("v1 address family"));
            }
            Some(SocketAddr::new(src, port))
        }
        _ => return Err(ProxyError::Malformed("v1 fields")),
    };
    Ok(Some((ProxyHeader { source }, end + 2)))
}

fn parse_port(text: &str) -> Result<u16, ProxyError> {
    if text.is_empty()
        || text.len() > 5
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(ProxyError::Malformed("v1 port"));
    }
    text.parse().map_err(|_| ProxyError::Malformed("v1 port"))
}

fn parse_v2(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if input.len() < 16 {
        return Ok(None);
    }
    let version = input[12] >> 4;
    let command = input[12] & 0x0f;
    if version != 2 {
        return Err(ProxyError::Malformed("v2 version"));
    }
    let length = u16::from_be_bytes([input[14], input[15]]) as usize;
    if length > V2_MAX_PAYLOAD {
        return Err(ProxyError::Malformed("v2 header too long"));
    }
    if input.len() < 16 + length {
        return Ok(None);
    }
    let payload = &input[16..16 + length];
    let source = match (command, input[13]) {
        (0x0, _) => None,
        (0x1, 0x11) => {
            let a = payload.get(..12).ok_or(ProxyError::Malformed("v2 IPv4 addresses"))?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([a[8], a[9]])))
        }
        (0x1, 0x21) => {
            let a = payload.get(..36).ok_or(ProxyError::Malformed("v2 IPv6 addresses"))?;
            let octets: [u8; 16] = a[..16].try_into().map_err(|_| ProxyError::Malformed("v2 IPv6 addresses"))?;
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), u16::from_be_bytes([a[32], a[33]])))
        }
        // UNSPEC or UNIX sockets: nothing we can use; keep the real peer.
        (0x1, 0x00 | 0x31 | 0x32) => None,
        (0x1, _) => return Err(ProxyError::Malformed("v2 address family")),
        _ => return Err(ProxyError::Malformed("v2 command")),
    };
    Ok(Some((ProxyHeader { source }, 16 + length)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn v1() {
        let input = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n";
        let (header, used) = parse(input).unwrap().unwrap();
        assert_eq!(header.source, Some("192.0.2.7:56324".parse().unwrap()));
        assert_eq!(&input[used..], b"EHLO x\r\n");
        let (header, _) = parse(b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 25\r\n").unwrap().unwrap();
        assert_eq!(header.source, Some("[2001:db8::7]:4000".parse().unwrap()));
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap().unwrap().0.source, None);
        assert_eq!(parse(b"PROXY TCP4 192.0.2.7 198.51").unwrap(), None, "incomplete");
        assert_eq!(parse(b"PRO").unwrap(), None);
        for bad in [
            &b"PROXY TCP4 192.0.2.7 198.51.100.1 99999 25\r\n"[..],
            b"PROXY TCP4 2001:db8::7 198.51.100.1 1 25\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 01 25\r\n",
            b"PROXY TCP5 192.0.2.7 198.51.100.1 1 25\r\n",
            b"PROXY TCP4 192.0.2.7\r\n",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse(&[b'P'; 200]).is_err());
        assert_eq!(parse(b"EHLO client\r\n"), Err(ProxyError::Missing));
    }

    #[test]
    fn v2_headers() {
        let mut payload = vec![192, 0, 2, 9, 198, 51, 100, 1];
        payload.extend_from_slice(&4242u16.to_be_bytes());
        payload.extend_from_slice(&25u16.to_be_bytes());
        payload.extend_from_slice(&[0x04, 0, 1, 0xff]); // a TLV, ignored
        let mut input = v2(1, 0x11, &payload);
        input.extend_from_slice(b"EHLO x\r\n");
        let (header, used) = parse(&input).unwrap().unwrap();
        assert_eq!(header.source, Some("192.0.2.9:4242".parse().unwrap()));
        assert_eq!(&input[used..], b"EHLO x\r\n");
        let mut six = vec![0u8; 36];
        six[..16].copy_from_slice(&"2001:db8::9".parse::<Ipv6Addr>().unwrap().octets());
        six[32..34].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(parse(&v2(1, 0x21, &six)).unwrap().unwrap().0.source, Some("[2001:db8::9]:7".parse().unwrap()));
        assert_eq!(parse(&v2(0, 0x00, &[])).unwrap().unwrap().0.source, None, "LOCAL keeps the peer");
        assert_eq!(parse(&v2(1, 0x11, &payload)[..20]).unwrap(), None, "incomplete");
        assert!(parse(&v2(1, 0x11, &[1, 2, 3])).is_err(), "short addresses");
        assert!(parse(&v2(2, 0x11, &payload)).is_err(), "bad command");
        let mut bad_version = v2(1, 0x11, &payload);
        bad_version[12] = 0x11;
        assert!(parse(&bad_version).is_err());
        assert!(parse(&v2(1, 0x11, &vec![0u8; 2000])).is_err(), "too long");
    }
}
