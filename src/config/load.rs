//! Reading, parsing and validating a config file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;

use super::{Config, ConfigError, Grant, KvBackend, ListenTls, PluginConfig};

/// Where a config came from, kept so that checks made after parsing (a certificate
/// that does not load, a plugin that does not compile) can still point at a line.
#[derive(Clone, Debug, Default)]
pub struct ConfigOrigin {
    pub file: PathBuf,
    pub text: Arc<str>,
}

impl ConfigOrigin {
    pub fn error_at<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.file, &self.text, Some(value.span()), message)
    }

    /// The directory relative paths in the file are taken from.
    pub fn base_dir(&self) -> &Path {
        match self.file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }
}

/// A list for the modes that read one, next hops to ask for the modes that call out.
fn validate_recipients(origin: &ConfigOrigin, route: &super::RouteConfig) -> Result<(), ConfigError> {
    let name = route.name.get_ref();
    let r = &route.recipients;
    let mode = *r.verify.get_ref();
    if mode.uses_list() && r.list.is_none() {
        return Err(origin.error_at(&r.verify, format!("route {name:?}: verify = \"list\" needs a list file")));
    }
    if mode.uses_callout() && route.next_hop.is_none() {
        return Err(origin.error_at(
            &r.verify,
            format!("route {name:?}: recipient callouts ask the route's next_hop; an MX route has none"),
        ));
    }
    if *r.connections.get_ref() == 0 {
        return Err(origin.error_at(&r.connections, "recipients.connections must be at least 1"));
    }
    Ok(())
}

impl Config {
    /// Reads and validates `file`. Relative paths inside are resolved against the
    /// file's directory, so the server behaves the same whatever its working directory.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ConfigError::without_position(file, format!("cannot read config: {e}")))?;
        Config::parse(file, &text)
    }

    /// Parses config text as if it had been read from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text)
            .map_err(|e| ConfigError::at(file, text, e.span(), e.message().trim_end().to_string()))?;
        config.origin = ConfigOrigin { file: file.to_path_buf(), text: Arc::from(text) };
        config.validate()?;
        config.resolve_paths();
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let origin = &self.origin;
        if self.server.listen.get_ref().is_empty() {
            return Err(origin.error_at(&self.server.listen, "server.listen needs at least one address"));
        }
        let mut names = std::collections::HashSet::new();
        for plugin in &self.plugin {
            // Names key kv namespaces and metrics: keep them to a safe alphabet.
            let name = plugin.name.get_ref();
            let valid = !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(origin.error_at(
                    &plugin.name,
                    format!("plugin name {name:?} must be 1 to 64 letters, digits, '-' or '_'"),
                ));
            }
            if !names.insert(name.as_str()) {
                return Err(origin.error_at(&plugin.name, format!("plugin name {name:?} is used twice")));
            }
            for grant in plugin.grants.get_ref() {
                if Grant::parse(grant.get_ref()).is_none() {
                    let known: Vec<&str> = Grant::ALL.iter().map(|g| g.name()).collect();
                    return Err(origin.error_at(
                        grant,
                        format!(
                            "plugin {:?}: unknown grant {:?} (known: {})",
                            plugin.name.get_ref(),
                            grant.get_ref(),
                            known.join(", ")
                        ),
                    ));
                }
            }
            if !plugin.next_hops.is_empty() && !plugin.granted().contains(&Grant::Route) {
                return Err(origin
                    .error_at(&plugin.name, format!("plugin {name:?} lists next_hops but is not granted \"route\"")));
            }
            validate_http(plugin, origin)?;
        }
        if let Some((span, why)) = self.plugins.penalty_box.problem() {
            return Err(origin.error_at(&Spanned::new(span, ()), why));
        }
        if self.kv.backend == KvBackend::Redis && self.kv.url.is_none() {
            return Err(ConfigError::without_position(&origin.file, "[kv] backend = \"redis\" needs a url"));
        }
        if self.tls.is_none() && self.server.listen.get_ref().iter().any(|l| l.tls == ListenTls::Implicit) {
            return Err(
                origin.error_at(&self.server.listen, "a listener with tls = \"implicit\" needs a [tls] section")
            );
        }
        self.validate_routes()
    }

    fn validate_routes(&self) -> Result<(), ConfigError> {
        let origin = &self.origin;
        let mut names = std::collections::HashSet::new();
        for route in &self.routes {
            let name = route.name.get_ref();
            if name.is_empty() {
                return Err(origin.error_at(&route.name, "a route needs a name"));
            }
            if !names.insert(name.as_str()) {
                return Err(origin.error_at(&route.name, format!("route {name:?} is defined twice")));
            }
            match (&route.next_hop, route.uses_mx()) {
                (None, false) => {
                    let at = route.mx.as_ref().map_or_else(
                        || origin.error_at(&route.name, format!("route {name:?} needs next_hop or mx = true")),
                        |mx| origin.error_at(mx, format!("route {name:?} needs next_hop or mx = true")),
                    );
                    return Err(at);
                }
                (Some(hop), true) => {
                    return Err(
                        origin.error_at(hop, format!("route {name:?} has both next_hop and mx = true; pick one"))
                    );
                }
                _ => {}
            }
            if let Some(limit) = &route.max_connections
                && *limit.get_ref() == 0
            {
                return Err(origin.error_at(limit, "max_connections must be at least 1"));
            }
            validate_recipients(origin, route)?;
            if let Some(auth) = &route.auth {
                let a = auth.get_ref();
                if a.password.is_some() == a.password_file.is_some() {
                    return Err(origin.error_at(
                        auth,
                        format!("route {name:?}: auth needs password or password_file (one of them)"),
                    ));
                }
                if route.tls == super::TlsMode::None {
                    return Err(origin
                        .error_at(auth, format!("route {name:?}: auth needs TLS; credentials never go out in clear")));
                }
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self) {
        let base_dir = self.origin.base_dir().to_path_buf();
        for route in &mut self.routes {
            if let Some(list) = &mut route.recipients.list
                && list.get_ref().is_relative()
            {
                *list.get_mut() = base_dir.join(list.get_ref());
            }
        }
        let base = self.origin.base_dir().to_path_buf();
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.queue.path);
        for route in &mut self.routes {
            if let Some(file) = route.auth.as_mut().and_then(|a| a.get_mut().password_file.as_mut()) {
                resolve(file);
            }
        }
        if let Some(ca) = &mut self.delivery.tls_ca_file {
            resolve(ca.get_mut());
        }
        if let Some(tls) = &mut self.tls {
            resolve(tls.cert.get_mut());
            resolve(tls.key.get_mut());
        }
        for plugin in &mut self.plugin {
            resolve(plugin.path.get_mut());
        }
        for signing in &mut self.dkim_sign {
            resolve(signing.key.get_mut());
        }
        match &mut self.kv.path {
            Some(path) => resolve(path),
            None => self.kv.path = Some(self.queue.path.join("kv.redb")),
        }
        match &mut self.plugins.cache_dir {
            Some(dir) => resolve(dir),
            None => self.plugins.cache_dir = Some(self.queue.path.join("plugin-cache")),
        }
    }
}

/// `http` goes with the `http` grant: a table without the grant, or the grant without
/// a table listing at least one origin, is a mistake (the plugin could never use one of
/// them), refused rather than warned about.
fn validate_http(plugin: &PluginConfig, origin: &ConfigOrigin) -> Result<(), ConfigError> {
    let name = plugin.name.get_ref();
    let granted = plugin.granted().contains(&Grant::Http);
    match &plugin.http {
        Some(http) if !granted => {
            Err(origin.error_at(http, format!("plugin {name:?} has an http table but is not granted \"http\"")))
        }
        Some(http) if http.get_ref().allow.is_empty() => {
            Err(origin.error_at(http, format!("plugin {name:?}: http.allow lists no origin")))
        }
        None if granted => {
            let grant = plugin.grants.get_ref().iter().find(|g| g.get_ref() == Grant::Http.name());
            let at = grant.map_or(plugin.grants.span(), |g| g.span());
            let message = format!(
                "plugin {name:?} is granted \"http\" but has no http = {{ allow = [...] }} listing where it may connect"
            );
            Err(ConfigError::at(&origin.file, &origin.text, Some(at), message))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_recipients_parse_and_errors_point_at_the_key() {
        let route = "[[route]]\nname = \"mailstore\"\ndomains = [\"example.com\"]\nnext_hop = \"10.0.0.5:25\"\n";
        let config = parse(&format!(
            "{MINIMAL}{route}[route.recipients]\nverify = \"list+callout\"\nlist = \"recipients.txt\"\n\
             cache_valid = \"2d\"\ncache_unknown = \"30m\"\non_unavailable = \"accept\"\nconnections = 4\n"
        ))
        .unwrap();
        let r = &config.routes[0].recipients;
        assert_eq!(*r.verify.get_ref(), super::super::VerifyMode::ListThenCallout);
        assert_eq!(r.list.as_ref().unwrap().get_ref(), Path::new("/etc/sluice/recipients.txt"));
        assert_eq!(r.cache_valid.get().as_secs(), 2 * 86_400);
        assert_eq!(r.cache_unknown.get().as_secs(), 1_800);
        assert_eq!(r.on_unavailable, super::super::OnUnavailable::Accept);
        assert_eq!(*r.connections.get_ref(), 4);
        let default = parse(&format!("{MINIMAL}{route}")).unwrap();
        assert_eq!(*default.routes[0].recipients.verify.get_ref(), super::super::VerifyMode::None);

        let err = parse(&format!("{MINIMAL}{route}[route.recipients]\nverify = \"list\"\n")).unwrap_err();
        assert_eq!(err.line, 11, "{err}");
        assert!(err.message.contains("needs a list file"), "{err}");
        let mx = "[[route]]\nname = \"internet\"\ndomains = [\"*\"]\nmx = true\n";
        let err = parse(&format!("{MINIMAL}{mx}[route.recipients]\nverify = \"callout\"\n")).unwrap_err();
        assert!(err.message.contains("an MX route has none"), "{err}");
        let err = parse(&format!("{MINIMAL}{route}[route.recipients]\nverify = \"maybe\"\n")).unwrap_err();
        assert_eq!(err.line, 11, "{err}");
        let err =
            parse(&format!("{MINIMAL}{route}[route.recipients]\nverify = \"callout\"\nconnections = 0\n")).unwrap_err();
        assert_eq!(err.line, 12, "{err}");
    }

    const MINIMAL: &str =
        "[server]\nhostname = \"relay.example.test\"\nlisten = [\"127.0.0.1:2525\"]\n[queue]\npath = \"var/queue\"\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/sluice/sluice.toml"), text)
    }

    #[test]
    fn minimal_config_gets_rfc_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.limits.max_recipients, 1000);
        assert_eq!(config.limits.command_timeout.get().as_secs(), 300);
        assert_eq!(config.limits.data_timeout.get().as_secs(), 600);
        assert_eq!(config.queue.path, PathBuf::from("/etc/sluice/var/queue"));
        assert!(config.relay.networks.contains("127.0.0.1".parse().unwrap()));
        assert!(!config.relay.networks.contains("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn unknown_keys_point_at_their_line() {
        let err = parse(&format!("{MINIMAL}[limits]\nmax_mesage_size = \"1MB\"\n")).unwrap_err();
        assert_eq!((err.line, err.column), (7, 1), "{err}");
        assert!(err.message.contains("max_mesage_size"), "{err}");
        assert!(err.to_string().starts_with("/etc/sluice/sluice.toml:7:1: "), "{err}");
    }

    #[test]
    fn bad_values_point_at_the_value() {
        let err = parse(&format!("{MINIMAL}[limits]\nmax_message_size = \"25XB\"\n")).unwrap_err();
        assert_eq!(err.line, 7, "{err}");
        assert!(err.message.contains("size unit"), "{err}");
        let err = parse(&format!("{MINIMAL}[limits]\nmax_recipients = 10\n")).unwrap_err();
        assert_eq!(err.line, 7, "{err}");
        assert!(err.message.contains("at least 100"), "{err}");
        let err = parse(&format!("{MINIMAL}[relay]\nnetworks = [\"10.0.0.0/40\"]\n")).unwrap_err();
        assert_eq!(err.line, 7, "{err}");
    }

    #[test]
    fn routes_and_retry_schedule() {
        let config = parse(&format!(
            "{MINIMAL}retry = [\"1s\", \"5m\"]\nmax_age = \"2d\"\n\
             [[route]]\nname = \"internal\"\ndomains = [\"example.com\"]\nnext_hop = [\"10.0.0.5:25\", \"backup.test\"]\ntls = \"verify\"\n\
             [[route]]\nname = \"internet\"\ndomains = [\"*\"]\nmx = true\n"
        ))
        .unwrap();
        assert_eq!(config.queue.retry.len(), 2);
        assert_eq!(config.queue.max_age.get().as_secs(), 172_800);
        assert_eq!(config.routes.len(), 2);
        assert_eq!(config.routes[0].next_hop.as_ref().unwrap().get_ref().0.len(), 2);
        assert_eq!(config.routes[0].tls, crate::config::TlsMode::Verify);
        assert!(config.routes[1].uses_mx());
        assert_eq!(parse(MINIMAL).unwrap().queue.retry.len(), 7);

        let err = parse(&format!("{MINIMAL}[[route]]\nname = \"r\"\ndomains = [\"*\"]\n")).unwrap_err();
        assert_eq!(err.line, 7, "{err}");
        assert!(err.message.contains("needs next_hop or mx"), "{err}");
        let err =
            parse(&format!("{MINIMAL}[[route]]\nname = \"r\"\nnext_hop = \"a.test\"\ntls = \"maybe\"\n")).unwrap_err();
        assert_eq!(err.line, 9, "{err}");
        let err = parse(&format!("{MINIMAL}[[route]]\nname = \"r\"\nnext_hop = \"a.test:x\"\n")).unwrap_err();
        assert_eq!(err.line, 8, "{err}");
        let err = parse(&format!("{MINIMAL}retry = []\n")).unwrap_err();
        assert_eq!(err.line, 6, "{err}");
        let err = parse(&format!("{MINIMAL}[[route]]\nname = \"r\"\nmx = true\n[[route]]\nname = \"r\"\nmx = true\n"))
            .unwrap_err();
        assert!(err.message.contains("twice"), "{err}");
    }

    #[test]
    fn listeners_as_strings_or_tables() {
        let text = MINIMAL.replace(
            "listen = [\"127.0.0.1:2525\"]",
            "listen = [\"127.0.0.1:2525\", { address = \"[::1]:465\", tls = \"implicit\" }]",
        );
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("[tls]"), "{err}");
        let config = parse(&format!("{text}[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n")).unwrap();
        assert_eq!(config.server.listen.get_ref()[1].tls, ListenTls::Implicit);
        assert_eq!(config.tls.unwrap().cert.get_ref(), &PathBuf::from("/etc/sluice/c.pem"));
    }
}
