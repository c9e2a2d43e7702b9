//! The parts of an absolute `http://` or `https://` URL that a request is made of.

use super::HttpError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url<'a> {
    pub https: bool,
    /// `host` or `host:port`, as written.
    pub authority: &'a str,
    /// From the first `/` on (`/` when the URL has none), query included.
    pub path_with_query: &'a str,
}

impl<'a> Url<'a> {
    pub fn parse(url: &'a str) -> Result<Url<'a>, HttpError> {
        let bad = |why: &str| HttpError::InvalidRequest(format!("{url:?}: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not an absolute URL"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("only http and https are supported")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("no host, or user information in it"));
        }
        if authority.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(bad("spaces or control characters in the host"));
        }
        let path_with_query = match path {
            "" => "/",
            p if p.starts_with('?') => return Err(bad("a query needs a path (\"/?...\")")),
            p => p,
        };
        Ok(Url { https, authority, path_with_query })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_absolute_urls() {
        let url = Url::parse("http://127.0.0.1:11333/checkv2").unwrap();
        assert_eq!(url, Url { https: false, authority: "127.0.0.1:11333", path_with_query: "/checkv2" });
        let url = Url::parse("HTTPS://policy.example.net").unwrap();
        assert_eq!(url, Url { https: true, authority: "policy.example.net", path_with_query: "/" });
        let url = Url::parse("http://[::1]:8080/a/b?c=d#frag").unwrap();
        assert_eq!(url.authority, "[::1]:8080");
        assert_eq!(url.path_with_query, "/a/b?c=d");
    }

    #[test]
    fn refuses_what_is_not_http() {
        for bad in ["ftp://x/", "127.0.0.1:11333/checkv2", "http:///path", "http://u:p@host/", "http://a b/"] {
            assert!(matches!(Url::parse(bad), Err(HttpError::InvalidRequest(_))), "{bad}");
        }
    }
}
