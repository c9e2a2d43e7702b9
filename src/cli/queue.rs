//! `sluice queue ...`: inspecting the queue directory of a running or stopped server.

use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::Config;
use crate::queue::{Hold, Snapshot, snapshot};

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
}

fn read_queue(config_path: &Path) -> Result<Snapshot, String> {
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    snapshot(&config.queue.path).map_err(|e| format!("cannot read the queue at {}: {e}", config.queue.path.display()))
}

pub fn list(config_path: &Path, json: bool) -> ExitCode {
    let snapshot = match read_queue(config_path) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    for damage in &snapshot.damage {
        eprintln!(
            "warning: damaged record in segment {} at offset {}: {}",
            damage.segment, damage.offset, damage.error
        );
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let rows: Vec<Row> = snapshot
        .messages
        .iter()
        .map(|entry| Row {
            id: entry.envelope.id.to_string(),
            arrived: entry.envelope.arrived,
            age_seconds: now.saturating_sub(entry.envelope.arrived),
            size: entry.location.body_len,
            sender: entry.envelope.sender_path(),
            recipients: entry.envelope.recipients.iter().map(|r| r.address.to_string()).collect(),
            hold: entry.state.hold.clone(),
        })
        .collect();
    if json {
        match serde_json::to_string_pretty(&rows) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
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
    }
    println!("{} message(s)", rows.len());
    ExitCode::SUCCESS
}

fn format_age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
