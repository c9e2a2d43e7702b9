//! `sluice queue ...`: the queue directory of a running or stopped server. Listing
//! reads the log without the lock; changes go to the running server through
//! `<queue>/control/`, or straight to the queue when no server holds it.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::clock::{self, SystemClock};
use crate::config::Config;
use crate::delivery::admin::{AdminAction, AdminReply, AdminRequest};
use crate::delivery::control;
use crate::delivery::offline;
use crate::mail::QueueId;
use crate::queue::{Diagnostic, Entry, Hold, Queue, RecipientStatus, Snapshot, snapshot};

#[derive(Serialize)]
struct Row {
    id: String,
    arrived: u64,
    age_seconds: u64,
    size: u64,
    sender: String,
    recipients: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold: Option<Hold>,
    /// Per recipient, in envelope order.
    delivery: Vec<RecipientRow>,
    attempts: u32,
    /// Unix seconds; absent when due now (or held).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
}

#[derive(Serialize)]
struct RecipientRow {
    recipient: String,
    status: RecipientStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostic: Option<Diagnostic>,
}

fn load_config(config_path: &Path) -> Result<Config, String> {
    Config::load(config_path).map_err(|e| e.to_string())
}

fn read_queue(config: &Config) -> Result<Snapshot, String> {
    let snapshot = snapshot(&config.queue.path)
        .map_err(|e| format!("cannot read the queue at {}: {e}", config.queue.path.display()))?;
    for damage in &snapshot.damage {
        eprintln!(
            "warning: damaged record in segment {} at offset {}: {}",
            damage.segment, damage.offset, damage.error
        );
    }
    Ok(snapshot)
}

fn row(entry: &Entry, now: u64) -> Row {
    let envelope = &entry.envelope;
    Row {
        id: envelope.id.to_string(),
        arrived: envelope.arrived,
        age_seconds: now.saturating_sub(envelope.arrived),
        size: entry.location.body_len,
        sender: envelope.sender_path(),
        recipients: envelope.recipients.iter().map(|r| r.address.to_string()).collect(),
        hold: entry.state.hold.clone(),
        delivery: envelope
            .recipients
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let state = entry.state.recipient(i);
                RecipientRow { recipient: r.address.to_string(), status: state.status, diagnostic: state.diagnostic }
            })
            .collect(),
        attempts: entry.state.attempts,
        next_attempt: entry.state.next_attempt_ms.map(|ms| ms / 1000),
        last_error: entry.state.last_error.clone(),
    }
}

fn print_json<T: Serialize>(value: &T) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("{error}");
    ExitCode::FAILURE
}

pub fn list(config_path: &Path, json: bool) -> ExitCode {
    let snapshot = match load_config(config_path).and_then(|c| read_queue(&c)) {
        Ok(snapshot) => snapshot,
        Err(error) => return fail(error),
    };
    let now = clock::now_secs();
    let rows: Vec<Row> = snapshot.messages.iter().map(|entry| row(entry, now)).collect();
    if json {
        return print_json(&rows);
    }
    println!("{:<14} {:>8} {:>10}  {:<32} RECIPIENTS", "ID", "AGE", "SIZE", "SENDER");
    for row in &rows {
        let hold = match &row.hold {
            Some(Hold::Held) => " [held]".to_string(),
            Some(Hold::Quarantined { reason }) => format!(" [quarantined: {reason}]"),
            None => String::new(),
        };
        println!(
            "{:<14} {:>8} {:>10}  {:<32} {}{hold}",
            row.id,
            format_age(row.age_seconds),
            row.size,
            row.sender,
            row.recipients.join(", ")
        );
        if row.attempts > 0 {
            let next = match row.next_attempt {
                Some(at) if at > now => format!("next attempt in {}", format_age(at - now)),
                _ => "next attempt now".to_string(),
            };
            println!("{:<14} {} attempt(s), {next}", "", row.attempts);
            for r in row.delivery.iter() {
                let status = match r.status {
                    RecipientStatus::Pending => "pending",
                    RecipientStatus::Delivered => "delivered",
                    RecipientStatus::Failed => "failed",
                };
                match &r.diagnostic {
                    Some(d) => println!("{:<14} {:<9} {}: {d}", "", status, r.recipient),
                    None => println!("{:<14} {:<9} {}", "", status, r.recipient),
                }
            }
        }
    }
    println!("{} message(s)", rows.len());
    ExitCode::SUCCESS
}

pub fn show(config_path: &Path, id: &str, json: bool) -> ExitCode {
    let Ok(id) = id.parse::<QueueId>() else { return fail(format!("invalid queue id {id:?}")) };
    let snapshot = match load_config(config_path).and_then(|c| read_queue(&c)) {
        Ok(snapshot) => snapshot,
        Err(error) => return fail(error),
    };
    let Some(entry) = snapshot.messages.iter().find(|e| e.envelope.id == id) else {
        return fail(format!("no message {id} in the queue"));
    };
    let message = match snapshot.read_message(entry) {
        Ok(message) => message,
        Err(error) => return fail(format!("cannot read message {id}: {error}")),
    };
    let header_end = memchr::memmem::find(&message, b"\r\n\r\n").map_or(message.len(), |i| i + 2);
    let headers = String::from_utf8_lossy(&message[..header_end]);
    if json {
        #[derive(Serialize)]
        struct Show<'a> {
            #[serde(flatten)]
            row: Row,
            envelope: &'a crate::mail::Envelope,
            state: &'a crate::queue::MessageState,
            headers: &'a str,
        }
        return print_json(&Show {
            row: row(entry, clock::now_secs()),
            envelope: &entry.envelope,
            state: &entry.state,
            headers: &headers,
        });
    }
    let row = row(entry, clock::now_secs());
    let e = &entry.envelope;
    println!("id:          {}", row.id);
    println!("arrived:     {} ({} ago)", row.arrived, format_age(row.age_seconds));
    println!("size:        {}", row.size);
    println!("sender:      {}", row.sender);
    println!("client:      {} ({})", e.client.ip, e.client.helo.as_deref().unwrap_or("no HELO"));
    if let Some(hold) = &row.hold {
        println!("hold:        {}", serde_json::to_string(hold).unwrap_or_default());
    }
    println!("attempts:    {}", row.attempts);
    if let Some(at) = row.next_attempt {
        println!("next:        {at}");
    }
    if let Some(error) = &row.last_error {
        println!("last error:  {error}");
    }
    println!("recipients:");
    for r in &row.delivery {
        let status = serde_json::to_string(&r.status).unwrap_or_default();
        match &r.diagnostic {
            Some(d) => println!("  {} {}: {} {d}", r.recipient, status.trim_matches('"'), d.status),
            None => println!("  {} {}", r.recipient, status.trim_matches('"')),
        }
    }
    println!("headers:");
    for line in headers.lines() {
        println!("  {line}");
    }
    ExitCode::SUCCESS
}

/// retry / hold / release / delete / bounce.
pub fn admin(config_path: &Path, action: AdminAction, ids: Vec<String>, all: bool, json: bool) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(error) => return fail(error),
    };
    if ids.is_empty() && !all {
        return fail("name at least one queue id");
    }
    let request = AdminRequest { action, ids, all };
    let reply = match send(&config, &request) {
        Ok(reply) => reply,
        Err(error) => return fail(error),
    };
    let all_ok = reply.results.iter().all(|r| r.ok);
    if json {
        let printed = print_json(&reply.results);
        return if all_ok { printed } else { ExitCode::FAILURE };
    }
    for result in &reply.results {
        if result.ok {
            println!("{}: {}", result.id, result.message);
        } else {
            eprintln!("{}: {}", result.id, result.message);
        }
    }
    if all && reply.results.is_empty() {
        println!("nothing to do");
    }
    if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// To the running server if one holds the queue, else straight to the queue.
fn send(config: &Config, request: &AdminRequest) -> Result<AdminReply, String> {
    let root = &config.queue.path;
    if !root.join("segments").is_dir() {
        return Err(format!("{} is not a queue directory", root.display()));
    }
    match Queue::open(root) {
        Ok((queue, _)) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime: {e}"))?;
            Ok(runtime.block_on(offline::apply(config, &queue, &SystemClock, request)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => control::request(root, request),
        Err(e) => Err(format!("cannot open the queue at {}: {e}", root.display())),
    }
}

fn format_age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
