//! `sluice queue ...`: inspecting the queue directory of a running or stopped server.

use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::Config;
use crate::queue::QueueDir;

#[derive(Serialize)]
struct Row {
    id: String,
    arrived: Option<u64>,
    age_seconds: Option<u64>,
    size: u64,
    sender: Option<String>,
    recipients: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn open_queue(config_path: &Path) -> Result<QueueDir, String> {
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    QueueDir::open(&config.queue.path).map_err(|e| format!("cannot open queue: {e}"))
}

pub fn list(config_path: &Path, json: bool) -> ExitCode {
    let rows = match open_queue(config_path).and_then(|dir| dir.list().map_err(|e| format!("cannot read queue: {e}"))) {
        Ok(listed) => listed,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|listed| match listed.head {
            Ok(head) => Row {
                id: listed.id.to_string(),
                arrived: Some(head.envelope.arrived),
                age_seconds: Some(now.saturating_sub(head.envelope.arrived)),
                size: head.message_len,
                sender: Some(head.envelope.sender_path()),
                recipients: head.envelope.recipients.iter().map(|r| r.address.to_string()).collect(),
                error: None,
            },
            Err(error) => Row {
                id: listed.id.to_string(),
                arrived: None,
                age_seconds: None,
                size: listed.file_size,
                sender: None,
                recipients: Vec::new(),
                error: Some(error.to_string()),
            },
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
        let age = row.age_seconds.map_or_else(|| "-".to_string(), format_age);
        let sender = row.sender.as_deref().unwrap_or("-");
        let recipients = match &row.error {
            Some(error) => format!("(unreadable: {error})"),
            None => row.recipients.join(", "),
        };
        println!("{:<14} {:>8} {:>10}  {:<32} {}", row.id, age, row.size, sender, recipients);
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
