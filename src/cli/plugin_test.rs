//! `sluice plugin test`: runs one plugin through every stage, as the server would, on
//! a message from a file, and reports what it decided and changed. No server needed;
//! plugin authors run it in their own CI.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;
use toml::Spanned;

use crate::config::{
    AllowedHop, ByteSize, DnsConfig, Grant, HttpConfig, HttpOrigin, LimitsConfig, OnError, PluginConfig, PluginsConfig,
    TimeSpan, TlsMode,
};
use crate::dns::{SharedResolver, Zone, ZoneResolver, shared_resolver};
use crate::kv::KvStore;
use crate::mail::{ClientInfo, Mailbox, Recipient, RouteChoice};
use crate::plugin::apply::{BodySource, Content, accept_recipients, change_recipients, edit_content};
use crate::plugin::message::{MessageShared, header_section_len};
use crate::plugin::{CallRecord, Decision, Notes, PluginHost, PluginSession, Services, TxnView};
use crate::queue::MessageBuffer;
use crate::smtp::replies;

/// Options of `sluice plugin test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The plugin, a component built for wasm32-wasip2.
    #[arg(value_name = "PLUGIN.wasm")]
    pub plugin: PathBuf,
    /// The message to run through the DATA stage.
    #[arg(long, value_name = "FILE.eml")]
    pub message: PathBuf,
    /// The envelope sender (`""` for the null sender).
    #[arg(long, value_name = "ADDR")]
    pub from: String,
    /// Envelope recipients.
    #[arg(long, value_name = "ADDR", required = true, num_args = 1..)]
    pub rcpt: Vec<String>,
    #[arg(long, value_name = "IP", default_value = "192.0.2.1")]
    pub client_ip: IpAddr,
    #[arg(long, value_name = "NAME", default_value = "client.example")]
    pub helo: String,
    /// A TOML file with the plugin's own config (what `[plugin.config]` would hold).
    #[arg(long, value_name = "FILE.toml")]
    pub plugin_config: Option<PathBuf>,
    /// Grants to give (default: all of them).
    #[arg(long, value_name = "GRANT", num_args = 1..)]
    pub grant: Option<Vec<String>>,
    /// Next hops the plugin may choose with the `route` grant (its `next_hops`).
    #[arg(long, value_name = "HOST[:PORT]", num_args = 1..)]
    pub next_hop: Vec<String>,
    /// Origins the plugin may send HTTP requests to with the `http` grant (its
    /// `http.allow`, e.g. `http://127.0.0.1:11333`); none: every request is refused.
    #[arg(long, value_name = "URL", num_args = 1..)]
    pub http_allow: Vec<HttpOrigin>,
    /// Its `http.timeout`.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub http_timeout: TimeSpan,
    /// Its `http.max_response`.
    #[arg(long, value_name = "SIZE", default_value = "1MB")]
    pub http_max_response: ByteSize,
    /// Its kv quota in keys (default: the server's, `[plugins] kv_max_keys`).
    #[arg(long, value_name = "N")]
    pub kv_max_keys: Option<u64>,
    /// Its kv quota in bytes (default: the server's, `[plugins] kv_max_bytes`).
    #[arg(long, value_name = "SIZE")]
    pub kv_max_bytes: Option<ByteSize>,
    /// DNS lookups per call (default: the server's, `[plugins] dns_lookups`).
    #[arg(long, value_name = "N")]
    pub dns_lookups: Option<u32>,
    /// DNS servers for the `dns` interface (default: the system's).
    #[arg(long, value_name = "IP:PORT", conflicts_with = "dns")]
    pub dns_server: Vec<SocketAddr>,
    /// Answer the `dns` interface from this records file, without any network (the
    /// format of `sluice::dns::zone`: `NAME TYPE VALUE` a line).
    #[arg(long, value_name = "RECORDS.txt")]
    pub dns: Option<PathBuf>,
    #[arg(long, default_value = "50ms")]
    pub cpu_time: TimeSpan,
    #[arg(long, default_value = "5s")]
    pub wall_time: TimeSpan,
    #[arg(long, default_value = "32MiB")]
    pub memory: ByteSize,
    /// Keep compiled plugins here between runs (default: compile afresh every run).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Tag every recipient with this recipient-verification outcome at RCPT, as the
    /// server does (`recipient-verify:valid` ...) for routes that verify recipients.
    #[arg(long, value_name = "RESULT", value_parser = ["valid", "unknown", "unavailable"])]
    pub recipient_verified: Option<String>,
    /// Print one JSON object instead of a report.
    #[arg(long)]
    pub json: bool,
}

/// Where the message ended up.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Fate {
    Accepted,
    Quarantined,
    Discarded,
    Rejected,
    Tempfailed,
    Disconnected,
}

#[derive(Serialize)]
struct Call {
    plugin: String,
    stage: String,
    result: String,
    micros: u128,
    peak_memory: usize,
}

#[derive(Serialize)]
struct Report {
    plugin: String,
    version: String,
    stages: Vec<&'static str>,
    calls: Vec<Call>,
    fate: Fate,
    /// The reply the client would have got for the refusal, if any.
    reply: Option<String>,
    /// At which stage it was refused.
    refused_at: Option<String>,
    sender_before: String,
    sender_after: String,
    recipients_before: Vec<String>,
    recipients_after: Vec<String>,
    headers_removed: Vec<String>,
    headers_added: Vec<String>,
    body_replaced: bool,
    route: Option<String>,
    quarantine: Option<String>,
    tags: Vec<String>,
    score: f64,
    annotations: Vec<(String, String, String)>,
}

pub fn run(args: &TestArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start a runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(test(args)) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(error) => eprintln!("{error}"),
                }
            } else {
                print_report(&report);
            }
            match report.fate {
                Fate::Accepted | Fate::Quarantined | Fate::Discarded => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            }
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(2)
        }
    }
}

fn plugin_config(args: &TestArgs) -> anyhow::Result<PluginConfig> {
    let table: toml::Table = match &args.plugin_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => toml::Table::new(),
    };
    let grants: Vec<String> = match &args.grant {
        Some(grants) => grants.clone(),
        None => Grant::ALL.iter().map(|g| g.name().to_string()).collect(),
    };
    if let Some(bad) = grants.iter().find(|g| Grant::parse(g).is_none()) {
        anyhow::bail!("unknown grant {bad:?}");
    }
    let name = args.plugin.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin").to_string();
    let next_hops = args
        .next_hop
        .iter()
        .map(|hop| {
            let hop = hop.parse().map_err(|e: String| anyhow::anyhow!("--next-hop: {e}"))?;
            Ok(AllowedHop { hop, tls: TlsMode::default() })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(PluginConfig {
        name: Spanned::new(0..0, name),
        path: Spanned::new(0..0, args.plugin.clone()),
        grants: Spanned::new(0..0, grants.into_iter().map(|g| Spanned::new(0..0, g)).collect()),
        on_error: OnError::Tempfail,
        cpu_time: args.cpu_time,
        wall_time: args.wall_time,
        memory: args.memory,
        config: table,
        // Every case starts from a fresh instance, as a session without reuse would.
        reuse_instances: Some(false),
        next_hops,
        kv_max_keys: args.kv_max_keys,
        kv_max_bytes: args.kv_max_bytes,
        dns_lookups: args.dns_lookups,
        http: Some(Spanned::new(
            0..0,
            HttpConfig {
                allow: args.http_allow.clone(),
                timeout: args.http_timeout,
                max_response: args.http_max_response,
            },
        )),
    })
}

async fn load_message(path: &Path, spill_dir: &Path) -> anyhow::Result<MessageBuffer> {
    let raw = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // As the server would store it: CRLF line endings.
    let mut decoder = crate::smtp::data::DataDecoder::new(crate::smtp::data::Framing::Chunked, usize::MAX);
    let mut buffer = MessageBuffer::new(u64::MAX, spill_dir.join("message.spill"));
    decoder.feed(&raw, buffer.writer());
    decoder.finish(buffer.writer());
    buffer.absorb().await;
    buffer.finish().await;
    Ok(buffer)
}

fn parse_sender(text: &str) -> anyhow::Result<Option<Mailbox>> {
    let text = text.trim().trim_start_matches('<').trim_end_matches('>');
    if text.is_empty() {
        return Ok(None);
    }
    Mailbox::parse(text).map(Some).map_err(|e| anyhow::anyhow!("--from {text:?}: {e}"))
}

fn resolver(args: &TestArgs) -> anyhow::Result<SharedResolver> {
    match &args.dns {
        Some(records) => Ok(Arc::new(ZoneResolver::new(Zone::load(records)?))),
        None => shared_resolver(&DnsConfig { servers: args.dns_server.clone(), ..DnsConfig::default() }),
    }
}

async fn test(args: &TestArgs) -> anyhow::Result<Report> {
    let config = plugin_config(args)?;
    let scratch = tempfile_dir()?;
    let resolves = config.granted().iter().any(|g| matches!(g, Grant::Dns | Grant::Http));
    let resolver = if resolves { Some(resolver(args)?) } else { None };
    let mut host =
        PluginHost::start(4, std::slice::from_ref(&config), Services { resolver, kv: Arc::new(KvStore::memory()) })?;
    let cache = args.cache_dir.clone().unwrap_or_else(|| scratch.join("cache"));
    let loaded = host
        .load_one(&config, &cache, &PluginsConfig { log_rate: 1000, ..PluginsConfig::default() })
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let (name, version, stages) = (loaded.shared.name.clone(), loaded.version.clone(), loaded.stages.names());
    host.push(loaded);
    let host = Arc::new(host);

    let sender = parse_sender(&args.from)?;
    let recipients: Vec<Mailbox> = args
        .rcpt
        .iter()
        .map(|r| {
            Mailbox::parse(r.trim_start_matches('<').trim_end_matches('>'))
                .map_err(|e| anyhow::anyhow!("--rcpt {r:?}: {e}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let content = Arc::new(load_message(&args.message, &scratch).await?);

    let mut client = ClientInfo {
        ip: args.client_ip,
        port: 40000,
        reverse_name: None,
        helo: None,
        tls: None,
        auth_user: None,
        session_id: "plugin-test".into(),
    };
    let mut session = PluginSession::new(Arc::clone(&host), "relay.example.test");
    session.trace_calls();
    let mut report = Report {
        plugin: name,
        version,
        stages,
        calls: Vec::new(),
        fate: Fate::Accepted,
        reply: None,
        refused_at: None,
        sender_before: path_text(&sender),
        sender_after: String::new(),
        recipients_before: recipients.iter().map(ToString::to_string).collect(),
        recipients_after: Vec::new(),
        headers_removed: Vec::new(),
        headers_added: Vec::new(),
        body_replaced: false,
        route: None,
        quarantine: None,
        tags: Vec::new(),
        score: 0.0,
        annotations: Vec::new(),
    };

    client.helo = Some(args.helo.clone());
    let verified = args.recipient_verified.as_deref().and_then(crate::recipients::tag_for);
    let outcome = run_stages(&mut session, &mut client, sender, recipients, verified, &content, &mut report).await;
    if let Err((stage, decision)) = outcome {
        report.refused_at = Some(stage.to_string());
        let (fate, reply) = match decision {
            Decision::Refuse(reply) if reply.code >= 500 => (Fate::Rejected, reply),
            Decision::Refuse(reply) => (Fate::Tempfailed, reply),
            Decision::Disconnect(reply) => (Fate::Disconnected, reply),
            Decision::Proceed => (Fate::Accepted, replies::OK),
        };
        report.fate = fate;
        report.reply = Some(reply.to_string());
    }
    report.calls = session.take_trace().into_iter().map(call).collect();
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(report)
}

fn call(record: CallRecord) -> Call {
    Call {
        plugin: record.plugin,
        stage: record.stage.to_string(),
        result: record.result,
        micros: record.micros,
        peak_memory: record.peak_memory,
    }
}

fn path_text(sender: &Option<Mailbox>) -> String {
    sender.as_ref().map_or_else(|| "<>".to_string(), |m| format!("<{m}>"))
}

/// Every stage in order; stops at the first refusal.
async fn run_stages(
    session: &mut PluginSession,
    client: &mut ClientInfo,
    mut sender: Option<Mailbox>,
    recipients: Vec<Mailbox>,
    verified: Option<&'static str>,
    content: &Arc<MessageBuffer>,
    report: &mut Report,
) -> Result<(), (&'static str, Decision)> {
    let stop = |stage, decision| if decision == Decision::Proceed { Ok(()) } else { Err((stage, decision)) };
    let helo = client.helo.take();
    stop("connect", session.connect(client).await)?;
    client.helo = helo;
    stop("helo", session.helo(client).await)?;
    let params = Default::default();
    let mut notes: Notes = session.notes.clone();
    stop("mail-from", session.mail_from(client, &mut sender, &params, &mut notes).await)?;
    report.sender_after = path_text(&sender);
    // As a server with the default limits would.
    let max_recipients = LimitsConfig::default().max_recipients;
    let mut accepted: Vec<Recipient> = Vec::new();
    for address in recipients {
        let mut recipient = Some(Recipient { address, params: Default::default(), route: None });
        if let Some(tag) = verified {
            notes.tags.retain(|t| !t.starts_with(crate::recipients::TAG_PREFIX));
            notes.tags.push(tag.to_string());
        }
        let view = TxnView { sender: Some(&sender), params: Some(&params), recipients: &accepted };
        let (decision, added) = session.rcpt_to(client, &view, &mut recipient, &mut notes).await;
        stop("rcpt-to", decision)?;
        accept_recipients(&mut accepted, recipient, added, max_recipients);
    }
    let shared = Arc::new(MessageShared::new(Arc::clone(content)));
    let view = TxnView { sender: Some(&sender), params: Some(&params), recipients: &accepted };
    let (decision, changes) = session.data(client, &view, &shared, u64::MAX, &mut notes).await;
    stop("data", decision)?;
    change_recipients(&mut accepted, &changes.remove_recipients, changes.add_recipients);
    report.recipients_after = accepted.iter().map(|r| r.address.to_string()).collect();
    let section = &content.head()[..header_section_len(content.head())];
    match edit_content(content.head(), &changes.header_edits, changes.new_body) {
        Ok(Content::Unchanged) => {}
        Ok(Content::Edited { header, body }) => {
            (report.headers_removed, report.headers_added) = header_diff(section, &header);
            report.body_replaced = matches!(body, BodySource::Replaced(_));
        }
        // The server answers so too: the message is not queued.
        Err(_) => stop("data", Decision::Refuse(replies::LOCAL_ERROR))?,
    }
    report.route = changes.route.map(|r| match r {
        RouteChoice::Named(name) => format!("route {name}"),
        RouteChoice::NextHop(hop) => format!("next hop {hop}"),
    });
    report.tags = notes.tags.clone();
    report.score = notes.score;
    report.annotations = notes.annotations.iter().map(|a| (a.plugin.clone(), a.key.clone(), a.value.clone())).collect();
    report.quarantine = notes.quarantine.clone();
    if notes.discard.is_some() {
        report.fate = Fate::Discarded;
    } else if notes.quarantine.is_some() {
        report.fate = Fate::Quarantined;
    }
    Ok(())
}

/// Header lines removed and added between two header sections (as whole fields,
/// unfolded).
fn header_diff(section: &[u8], after: &[u8]) -> (Vec<String>, Vec<String>) {
    let lines = |bytes: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(bytes)
            .replace("\r\n\t", " ")
            .replace("\r\n ", " ")
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (before, after) = (lines(section), lines(after));
    (missing_from(&before, &after), missing_from(&after, &before))
}

/// The lines of `lines` that `other` lacks (repeats counted).
fn missing_from(lines: &[String], other: &[String]) -> Vec<String> {
    let mut left: HashMap<&str, usize> = HashMap::new();
    for line in other {
        *left.entry(line).or_default() += 1;
    }
    let mut missing = Vec::new();
    for line in lines {
        match left.get_mut(line.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => missing.push(line.clone()),
        }
    }
    missing
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sluice-plugin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn print_report(r: &Report) {
    println!("plugin {} {} (stages: {})", r.plugin, r.version, r.stages.join(", "));
    println!();
    for c in &r.calls {
        println!("  {:<10} {:<50} {:>8} µs {:>8} KiB", c.stage, c.result, c.micros, c.peak_memory / 1024);
    }
    println!();
    match (&r.refused_at, &r.reply) {
        (Some(stage), Some(reply)) => println!("result: {:?} at {stage}: {reply}", r.fate),
        _ => println!("result: {:?}", r.fate),
    }
    if r.sender_before != r.sender_after && !r.sender_after.is_empty() {
        println!("sender:\n  - {}\n  + {}", r.sender_before, r.sender_after);
    }
    if r.refused_at.is_none() && r.recipients_before != r.recipients_after {
        println!("recipients:");
        for gone in r.recipients_before.iter().filter(|x| !r.recipients_after.contains(x)) {
            println!("  - {gone}");
        }
        for new in r.recipients_after.iter().filter(|x| !r.recipients_before.contains(x)) {
            println!("  + {new}");
        }
    }
    if !r.headers_removed.is_empty() || !r.headers_added.is_empty() {
        println!("headers:");
        for line in &r.headers_removed {
            println!("  - {line}");
        }
        for line in &r.headers_added {
            println!("  + {line}");
        }
    }
    if r.body_replaced {
        println!("body: replaced");
    }
    if let Some(route) = &r.route {
        println!("route: {route}");
    }
    if let Some(reason) = &r.quarantine {
        println!("quarantine: {reason}");
    }
    println!("score: {}", r.score);
    if !r.tags.is_empty() {
        println!("tags: {}", r.tags.join(", "));
    }
    for (plugin, key, value) in &r.annotations {
        println!("annotation: {plugin}.{key} = {value}");
    }
}
