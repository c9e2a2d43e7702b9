//! Opening a session: TCP connect, greeting, EHLO (HELO when EHLO is refused), and
//! STARTTLS as the route's TLS mode requires.

use std::sync::Arc;

use super::capabilities::Capabilities;
use super::connection::Connection;
use super::error::{ClientError, Stage};
use super::{ClientSettings, Credentials, SmtpClient, Target, tls};
use crate::config::TlsMode;

impl SmtpClient {
    /// Connects to `target` and gets it ready for MAIL.
    pub async fn open(
        target: &Target,
        mode: TlsMode,
        auth: Option<&Credentials>,
        settings: &Arc<ClientSettings>,
    ) -> Result<SmtpClient, ClientError> {
        let t = &settings.timeouts;
        let mut conn = Connection::connect(target.addr, t.connect).await?;
        let greeting = conn.read_reply(Stage::Greeting, t.greeting).await?;
        if !greeting.is_positive() {
            return Err(ClientError::Rejected(Stage::Greeting, greeting));
        }
        let mut caps = hello(&mut conn, settings).await?;
        let wants_tls = match mode {
            TlsMode::None => false,
            TlsMode::Opportunistic => caps.starttls,
            TlsMode::Required | TlsMode::Verify if !caps.starttls => return Err(ClientError::TlsUnavailable),
            TlsMode::Required | TlsMode::Verify => true,
        };
        if wants_tls {
            conn.write_all(b"STARTTLS\r\n", Stage::StartTls, t.command).await?;
            let reply = conn.read_reply(Stage::StartTls, t.command).await?;
            if reply.is_positive() {
                let dropped = conn.discard_input();
                if dropped > 0 {
                    tracing::warn!(host = %target.label(), bytes = dropped, "discarded plaintext sent after STARTTLS");
                }
                let connector =
                    if mode == TlsMode::Verify { &settings.tls.verifying } else { &settings.tls.encrypting };
                let name =
                    tls::server_name(&target.name)
                        .or_else(|| tls::server_name(&target.addr.ip().to_string()))
                        .ok_or_else(|| ClientError::Tls(format!("{} is not a valid TLS server name", target.name)))?;
                let upgraded = conn.upgrade(connector, name, t.command).await;
                let result = if upgraded.is_ok() { "ok" } else { "failed" };
                metrics::counter!("sluice_tls_handshakes_total", "direction" => "outbound", "result" => result)
                    .increment(1);
                upgraded?;
                // RFC 3207 §4.2: forget what was learnt before TLS and ask again.
                caps = hello(&mut conn, settings).await?;
            } else if mode.requires_tls() {
                return Err(ClientError::StartTlsRefused(reply));
            }
        }
        if let Some(credentials) = auth {
            authenticate(&mut conn, &caps, credentials, settings).await?;
        }
        Ok(SmtpClient {
            conn,
            caps,
            target: target.clone(),
            tls_mode: mode,
            settings: Arc::clone(settings),
            transactions: 0,
            needs_rset: false,
            broken: false,
            out: Vec::with_capacity(8192),
        })
    }
}

/// SMTP AUTH (RFC 4954) with PLAIN, or LOGIN, only over TLS. Without TLS or a usable
/// mechanism, carries on unauthenticated unless the route requires AUTH.
async fn authenticate(
    conn: &mut Connection,
    caps: &Capabilities,
    credentials: &Credentials,
    settings: &ClientSettings,
) -> Result<(), ClientError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;

    let t = settings.timeouts.command;
    if !conn.is_tls() || !(caps.auth_plain || caps.auth_login) {
        return if credentials.required { Err(ClientError::AuthUnavailable) } else { Ok(()) };
    }
    let steps: Vec<String> = if caps.auth_plain {
        let token = format!("\0{}\0{}", credentials.user, credentials.password);
        vec![format!("AUTH PLAIN {}", BASE64.encode(token))]
    } else {
        vec!["AUTH LOGIN".to_string(), BASE64.encode(&credentials.user), BASE64.encode(&credentials.password)]
    };
    let last = steps.len() - 1;
    for (i, step) in steps.iter().enumerate() {
        conn.write_all(format!("{step}\r\n").as_bytes(), Stage::Auth, t).await?;
        let reply = conn.read_reply(Stage::Auth, t).await?;
        let expected = if i == last { 235 } else { 334 };
        if reply.code != expected {
            return Err(ClientError::AuthFailed(reply));
        }
    }
    Ok(())
}

async fn hello(conn: &mut Connection, settings: &ClientSettings) -> Result<Capabilities, ClientError> {
    let t = &settings.timeouts;
    let command = format!("EHLO {}\r\n", settings.helo_name);
    conn.write_all(command.as_bytes(), Stage::Ehlo, t.command).await?;
    let reply = conn.read_reply(Stage::Ehlo, t.command).await?;
    if reply.is_positive() {
        return Ok(Capabilities::from_ehlo(&reply));
    }
    if !reply.is_permanent() {
        return Err(ClientError::Rejected(Stage::Ehlo, reply));
    }
    // An old server that does not know EHLO (RFC 5321 §3.2).
    let command = format!("HELO {}\r\n", settings.helo_name);
    conn.write_all(command.as_bytes(), Stage::Ehlo, t.command).await?;
    let reply = conn.read_reply(Stage::Ehlo, t.command).await?;
    if !reply.is_positive() {
        return Err(ClientError::Rejected(Stage::Ehlo, reply));
    }
    Ok(Capabilities::default())
}
