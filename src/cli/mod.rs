//! The `sluice` command line.

mod check_config;
mod dkim;
mod logging;
mod plugin_test;
mod queue;
mod recipients;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Sluice: an SMTP relay that filters mail with sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// The configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a configuration file (and load the certificates it names).
    /// Prints FILE:LINE:COL: message and exits non-zero when something is wrong.
    CheckConfig {
        /// The configuration file.
        #[arg(value_name = "FILE")]
        config: PathBuf,
    },
    /// Ask the running server to reload its configuration, plugins and certificates
    /// (like SIGHUP, but waits and says whether it worked).
    Reload {
        /// The configuration file (also where the server finds its queue).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print an Argon2 hash of a password (read from standard input) for `[auth]`.
    HashPassword,
    /// Work with plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Inspect the queue.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// DKIM signing keys (`[[dkim_sign]]`).
    Dkim {
        #[command(subcommand)]
        command: DkimCommand,
    },
    /// Recipient verification (`[route.recipients]`).
    Recipients {
        #[command(subcommand)]
        command: RecipientsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Write a new private key (PEM) and print the DNS TXT record to publish.
    Keygen(dkim::KeygenArgs),
}

#[derive(Debug, Subcommand)]
pub enum RecipientsCommand {
    /// Check one recipient as RCPT would (list, cache, callout) and say where the answer
    /// came from and what the mail server said. Exits 0 valid, 1 unknown, 2 unavailable.
    Check {
        /// The recipient address.
        address: String,
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Run a plugin through every stage on a message, without a server. Prints each
    /// stage's verdict, the changes to envelope and headers, tags, score, and time and
    /// memory per call. Exits 1 if the message would be refused, 2 on errors.
    Test(Box<plugin_test::TestArgs>),
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued messages: id, age, size, sender, recipients and their delivery state.
    List {
        /// The configuration file naming the queue directory.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Print JSON (one array) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one message: envelope, delivery state per recipient, headers.
    Show {
        id: String,
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Deliver now (messages waiting for their next attempt).
    Retry {
        #[arg(required_unless_present = "all")]
        ids: Vec<String>,
        /// Every waiting message.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Keep messages from being delivered until released.
    Hold(AdminArgs),
    /// Let held or quarantined messages be delivered.
    Release(AdminArgs),
    /// Remove messages without telling anyone.
    Delete(AdminArgs),
    /// Return messages to their senders now (a DSN for each pending recipient), then remove them.
    Bounce(AdminArgs),
}

#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// The configuration file naming the queue directory.
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn run_queue(command: QueueCommand) -> ExitCode {
    use crate::delivery::admin::AdminAction;
    let admin = |action, args: AdminArgs| queue::admin(&args.config, action, args.ids, false, args.json);
    match command {
        QueueCommand::List { config, json } => queue::list(&config, json),
        QueueCommand::Show { id, config, json } => queue::show(&config, &id, json),
        QueueCommand::Retry { ids, all, config, json } => queue::admin(&config, AdminAction::Retry, ids, all, json),
        QueueCommand::Hold(args) => admin(AdminAction::Hold, args),
        QueueCommand::Release(args) => admin(AdminAction::Release, args),
        QueueCommand::Delete(args) => admin(AdminAction::Delete, args),
        QueueCommand::Bounce(args) => admin(AdminAction::Bounce, args),
    }
}

/// Runs the command line; the exit code is 0 on success.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match cli.command {
        Command::Serve { config } => serve::run(&config),
        Command::CheckConfig { config } => check_config::run(&config),
        Command::Reload { config } => reload(&config),
        Command::HashPassword => hash_password(),
        Command::Plugin { command: PluginCommand::Test(args) } => plugin_test::run(&args),
        Command::Queue { command } => run_queue(command),
        Command::Dkim { command: DkimCommand::Keygen(args) } => dkim::keygen(&args),
        Command::Recipients { command: RecipientsCommand::Check { address, config } } => {
            recipients::check(&config, &address)
        }
    }
}

fn reload(path: &std::path::Path) -> ExitCode {
    let config = match crate::config::Config::load(path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(crate::control::socket::request(&config.queue.path, "reload")));
    match answer {
        Ok(answer) if answer == "ok" => {
            println!("reloaded");
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            eprintln!("{answer}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn hash_password() -> ExitCode {
    use argon2::PasswordHasher;
    let mut password = String::new();
    if std::io::stdin().read_line(&mut password).is_err() {
        eprintln!("cannot read the password from standard input");
        return ExitCode::FAILURE;
    }
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("empty password");
        return ExitCode::FAILURE;
    }
    match argon2::Argon2::default().hash_password(password.as_bytes()) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cannot hash: {error}");
            ExitCode::FAILURE
        }
    }
}
