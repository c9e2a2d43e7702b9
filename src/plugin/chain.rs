//! Running the plugin chain at each stage of one SMTP session, in configuration order,
//! with the verdict rules of the WIT contract and each plugin's `on_error` policy.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Resource;

use super::bindings::exports::sluice::plugin::hooks::{DataResult, MailFromResult, RcptToResult};
use super::bindings::sluice::plugin::types as wit;
use super::host::PluginHost;
use super::instance::{Failure, Instance};
use super::message::{MessageShared, MessageView};
use super::output::{self, Checked, HeaderEdit, RecipientFate, Verdict};
use super::stage::Stage;
use crate::config::OnError;
use crate::mail::params::{Body, MailParams, RcptParams, Ret};
use crate::mail::{ClientInfo, Mailbox, Recipient, RouteChoice};
use crate::wire::{Reply, Status};

/// A note a plugin left.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    pub plugin: String,
    pub key: String,
    pub value: String,
}

/// What plugins attached to a session or a transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notes {
    pub tags: Vec<String>,
    pub score: f64,
    pub annotations: Vec<Annotation>,
    /// The plugin that asked for the message to be dropped.
    pub discard: Option<String>,
    /// Why the message is to be held (plugin name first).
    pub quarantine: Option<String>,
}

/// What the server does after a stage.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Go on as if there were no plugins.
    Proceed,
    /// Refuse the command with this reply (4xx or 5xx).
    Refuse(Reply),
    /// Send this reply and close the connection.
    Disconnect(Reply),
}

/// The changes plugins asked for at DATA, in plugin order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataChanges {
    pub header_edits: Vec<HeaderEdit>,
    pub new_body: Option<Vec<u8>>,
    pub add_recipients: Vec<Mailbox>,
    pub remove_recipients: Vec<Mailbox>,
    pub route: Option<RouteChoice>,
}

/// One call, for the offline runner's report.
#[derive(Clone, Debug)]
pub struct CallRecord {
    pub plugin: String,
    pub stage: Stage,
    /// The verdict, or the failure.
    pub result: String,
    pub micros: u128,
    pub peak_memory: usize,
}

/// The transaction as plugins see it (with the notes passed beside it).
#[derive(Clone, Copy)]
pub struct TxnView<'a> {
    /// `None` before MAIL; `Some(None)` for the null sender.
    pub sender: Option<&'a Option<Mailbox>>,
    pub params: Option<&'a MailParams>,
    pub recipients: &'a [Recipient],
}

enum Flow {
    Next,
    Stop(Decision),
}

/// The plugins of one SMTP session. Instances are created on first use (or taken from
/// the plugin's idle instances, with `reuse_instances`) and kept for the session; one
/// that fails is dropped and replaced on the next call.
pub struct PluginSession {
    host: Arc<PluginHost>,
    instances: Vec<Option<Instance>>,
    hostname: String,
    /// Notes from `connect` and `helo`, copied into every transaction.
    pub notes: Notes,
    /// Set by the offline runner to record every call.
    pub trace: Option<Vec<CallRecord>>,
}

impl Drop for PluginSession {
    fn drop(&mut self) {
        for (plugin, instance) in self.host.plugins().iter().zip(self.instances.drain(..)) {
            if let Some(instance) = instance {
                plugin.idle.give(instance);
            }
        }
    }
}

impl PluginSession {
    pub fn new(host: Arc<PluginHost>, hostname: &str) -> PluginSession {
        let instances = host.plugins().iter().map(|_| None).collect();
        PluginSession { host, instances, hostname: hostname.to_string(), notes: Notes::default(), trace: None }
    }

    pub fn is_active(&self) -> bool {
        !self.host.is_empty()
    }

    fn wit_session(&self, client: &ClientInfo) -> wit::Session {
        wit::Session {
            id: client.session_id.clone(),
            client_ip: client.ip.to_string(),
            client_port: client.port,
            reverse_name: client.reverse_name.clone(),
            helo: client.helo.clone(),
            tls: client.tls.as_ref().map(|t| wit::TlsInfo { version: t.version.clone(), cipher: t.cipher.clone() }),
            auth_user: client.auth_user.clone(),
            server_hostname: self.hostname.clone(),
        }
    }

    /// The plugins that hook `stage`, by index (shared, so the loop can borrow `self`).
    fn hooked(&self, stage: Stage) -> Arc<[usize]> {
        self.host.hooked(stage)
    }

    async fn instance(&mut self, index: usize) -> Result<&mut Instance, Failure> {
        if self.instances[index].is_none() {
            let plugin = &self.host.plugins()[index];
            let instance = match plugin.idle.take() {
                Some(instance) => instance,
                None => {
                    let engine = self.host.engine().ok_or_else(|| Failure::Unavailable("no engine".into()))?;
                    Instance::new(engine, &plugin.pre, &plugin.shared, self.host.services(), self.host.slots()).await?
                }
            };
            self.instances[index] = Some(instance);
        }
        self.instances[index].as_mut().ok_or_else(|| Failure::Unavailable("instance lost".into()))
    }

    fn record(&mut self, index: usize, stage: Stage, started: Instant, result: String) {
        if let Some(trace) = &mut self.trace {
            let plugin = self.host.plugins()[index].shared.name.clone();
            let peak_memory = self.instances[index].as_ref().map_or(0, Instance::peak_memory);
            trace.push(CallRecord { plugin, stage, result, micros: started.elapsed().as_micros(), peak_memory });
        }
    }

    /// A call failed: log it, drop the instance, and apply the plugin's policy.
    fn fail(&mut self, index: usize, stage: Stage, failure: &Failure) -> Flow {
        let plugin = &self.host.plugins()[index].shared;
        tracing::warn!(plugin = %plugin.name, %stage, kind = failure.kind(), %failure, policy = %plugin.on_error, "plugin failed");
        metrics::counter!("sluice_plugin_failures_total", "plugin" => plugin.name.clone(), "kind" => failure.kind())
            .increment(1);
        self.instances[index] = None;
        match plugin.on_error {
            OnError::Continue => Flow::Next,
            OnError::Tempfail if stage == Stage::Connect => Flow::Stop(Decision::Disconnect(Reply::new(
                421,
                Status(4, 3, 0),
                "Service temporarily unavailable, try again later",
            ))),
            OnError::Tempfail => Flow::Stop(Decision::Refuse(Reply::new(
                451,
                Status(4, 3, 0),
                "Temporary failure in message filter, try again later",
            ))),
            OnError::Reject if stage == Stage::Connect => {
                Flow::Stop(Decision::Refuse(Reply::new(554, Status(5, 7, 0), "Service refused by policy")))
            }
            OnError::Reject => {
                Flow::Stop(Decision::Refuse(Reply::new(550, Status(5, 7, 0), "Refused by message filter")))
            }
        }
    }

    /// Takes a checked outcome into `notes` and says whether the chain goes on.
    fn absorb(&self, index: usize, stage: Stage, checked: Checked, notes: &mut Notes) -> Flow {
        let plugin = &self.host.plugins()[index].shared.name;
        for tag in checked.tags {
            if !notes.tags.contains(&tag) {
                notes.tags.push(tag);
            }
        }
        notes.score += checked.score;
        let verdict = match &checked.verdict {
            Verdict::Continue => "continue",
            Verdict::Accept => "accept",
            Verdict::Reject(_) => "reject",
            Verdict::Tempfail(_) => "tempfail",
            Verdict::Disconnect(_) => "disconnect",
            Verdict::Discard => "discard",
            Verdict::Quarantine(_) => "quarantine",
        };
        metrics::counter!("sluice_plugin_verdicts_total", "plugin" => plugin.clone(), "stage" => stage.name(), "verdict" => verdict)
            .increment(1);
        notes.annotations.extend(checked.annotations.into_iter().map(|(key, value)| Annotation {
            plugin: plugin.clone(),
            key,
            value,
        }));
        match checked.verdict {
            Verdict::Continue => Flow::Next,
            Verdict::Accept => Flow::Stop(Decision::Proceed),
            Verdict::Reject(reply) | Verdict::Tempfail(reply) => {
                tracing::info!(%plugin, %stage, %reply, "refused by plugin");
                Flow::Stop(Decision::Refuse(reply))
            }
            Verdict::Disconnect(reply) => {
                tracing::info!(%plugin, %stage, %reply, "disconnected by plugin");
                Flow::Stop(Decision::Disconnect(reply))
            }
            Verdict::Discard => {
                notes.discard = Some(plugin.clone());
                Flow::Stop(Decision::Proceed)
            }
            Verdict::Quarantine(reason) => {
                notes.quarantine = Some(format!("{plugin}: {reason}"));
                Flow::Stop(Decision::Proceed)
            }
        }
    }

    fn describe_verdict(checked: &Result<Checked, Failure>) -> String {
        match checked {
            Ok(c) => match &c.verdict {
                Verdict::Continue => "continue".into(),
                Verdict::Accept => "accept".into(),
                Verdict::Reject(r) => format!("reject {r}"),
                Verdict::Tempfail(r) => format!("tempfail {r}"),
                Verdict::Disconnect(r) => format!("disconnect {r}"),
                Verdict::Discard => "discard".into(),
                Verdict::Quarantine(reason) => format!("quarantine ({reason})"),
            },
            Err(f) => format!("failed: {f}"),
        }
    }

    /// Runs one plugin's hook; the closure makes the call and checks its output.
    async fn run<T>(
        &mut self,
        index: usize,
        stage: Stage,
        call: impl AsyncFnOnce(&mut Instance) -> Result<(Checked, T), Failure>,
    ) -> Result<(Checked, T), Failure> {
        let started = Instant::now();
        let result = match self.instance(index).await {
            Ok(instance) => call(instance).await,
            Err(failure) => Err(failure),
        };
        let plugin = &self.host.plugins()[index].shared.name;
        metrics::histogram!("sluice_plugin_call_seconds", "plugin" => plugin.clone(), "stage" => stage.name())
            .record(started.elapsed().as_secs_f64());
        if let Some(instance) = &self.instances[index] {
            let peak = instance.peak_memory() as u64;
            let shared = &self.host.plugins()[index].shared;
            if shared.peak_memory.fetch_max(peak, std::sync::atomic::Ordering::Relaxed) < peak {
                metrics::gauge!("sluice_plugin_memory_bytes", "plugin" => plugin.clone()).set(peak as f64);
            }
        }
        let started = self.trace.is_some().then_some(started);
        // Describing the verdict allocates: only when someone reads it.
        let traced = started.is_some();
        if traced || tracing::enabled!(tracing::Level::DEBUG) {
            let summary = Self::describe_verdict(&result.as_ref().map(|(c, _)| c.clone()).map_err(Clone::clone));
            tracing::debug!(plugin = %self.host.plugins()[index].shared.name, %stage, result = %summary, "plugin called");
            if let Some(started) = started {
                self.record(index, stage, started, summary);
            }
        }
        result
    }

    /// A client connected.
    pub async fn connect(&mut self, client: &ClientInfo) -> Decision {
        self.simple_stage(Stage::Connect, client).await
    }

    /// The client said HELO or EHLO (already in `client.helo`).
    pub async fn helo(&mut self, client: &ClientInfo) -> Decision {
        self.simple_stage(Stage::Helo, client).await
    }

    async fn simple_stage(&mut self, stage: Stage, client: &ClientInfo) -> Decision {
        let session = self.wit_session(client);
        let mut notes = std::mem::take(&mut self.notes);
        let mut decision = Decision::Proceed;
        for &index in self.hooked(stage).iter() {
            let result = self
                .run(index, stage, async |instance| {
                    let outcome = instance
                        .call(async |p, s| match stage {
                            Stage::Connect => p.sluice_plugin_hooks().call_connect(s, &session).await,
                            _ => p.sluice_plugin_hooks().call_helo(s, &session).await,
                        })
                        .await?;
                    Ok((output::check_outcome(outcome).map_err(|e| Failure::Invalid(e.0))?, ()))
                })
                .await;
            let flow = match result {
                Ok((checked, ())) => self.absorb(index, stage, checked, &mut notes),
                Err(failure) => self.fail(index, stage, &failure),
            };
            if let Flow::Stop(d) = flow {
                decision = d;
                break;
            }
        }
        self.notes = notes;
        decision
    }

    /// MAIL FROM: plugins may replace the sender (in place).
    pub async fn mail_from(
        &mut self,
        client: &ClientInfo,
        sender: &mut Option<Mailbox>,
        params: &MailParams,
        notes: &mut Notes,
    ) -> Decision {
        let stage = Stage::MailFrom;
        let session = self.wit_session(client);
        for &index in self.hooked(stage).iter() {
            let txn = wit_transaction(&TxnView { sender: Some(sender), params: Some(params), recipients: &[] }, notes);
            let result = self
                .run(index, stage, async |instance| {
                    let MailFromResult { outcome, new_sender } = instance
                        .call(async |p, s| p.sluice_plugin_hooks().call_mail_from(s, &session, &txn).await)
                        .await?;
                    let checked = output::check_outcome(outcome).map_err(|e| Failure::Invalid(e.0))?;
                    let new_sender = match new_sender {
                        Some(text) => Some(output::check_address(&text, true).map_err(|e| Failure::Invalid(e.0))?),
                        None => None,
                    };
                    Ok((checked, new_sender))
                })
                .await;
            let flow = match result {
                Ok((checked, new_sender)) => {
                    if let Some(new_sender) = new_sender
                        && proceeds(&checked.verdict)
                    {
                        *sender = new_sender;
                    }
                    self.absorb(index, stage, checked, notes)
                }
                Err(failure) => self.fail(index, stage, &failure),
            };
            if let Flow::Stop(d) = flow {
                return d;
            }
        }
        Decision::Proceed
    }

    /// RCPT TO: plugins may rewrite or drop the recipient (in place: `None` is dropped)
    /// and add others (returned).
    pub async fn rcpt_to(
        &mut self,
        client: &ClientInfo,
        view: &TxnView<'_>,
        recipient: &mut Option<Recipient>,
        notes: &mut Notes,
    ) -> (Decision, Vec<Mailbox>) {
        let stage = Stage::RcptTo;
        let session = self.wit_session(client);
        let mut added = Vec::new();
        for &index in self.hooked(stage).iter() {
            let Some(current) = recipient.as_ref() else { break };
            let txn = wit_transaction(view, notes);
            let wit_rcpt =
                wit::Recipient { address: current.address.to_string(), params: rcpt_params(&current.params) };
            let result = self
                .run(index, stage, async |instance| {
                    let RcptToResult { outcome, action, add_recipients } = instance
                        .call(async |p, s| p.sluice_plugin_hooks().call_rcpt_to(s, &session, &txn, &wit_rcpt).await)
                        .await?;
                    let checked = output::check_outcome(outcome).map_err(|e| Failure::Invalid(e.0))?;
                    let fate = output::check_recipient_action(action).map_err(|e| Failure::Invalid(e.0))?;
                    let more = output::check_recipients(&add_recipients).map_err(|e| Failure::Invalid(e.0))?;
                    Ok((checked, (fate, more)))
                })
                .await;
            let flow = match result {
                Ok((checked, (fate, more))) => {
                    if proceeds(&checked.verdict) {
                        match fate {
                            RecipientFate::Keep => {}
                            RecipientFate::Rewrite(address) => {
                                if let Some(r) = recipient.as_mut() {
                                    r.address = address;
                                }
                            }
                            RecipientFate::Drop => *recipient = None,
                        }
                        added.extend(more);
                    }
                    self.absorb(index, stage, checked, notes)
                }
                Err(failure) => self.fail(index, stage, &failure),
            };
            if let Flow::Stop(d) = flow {
                return (d, added);
            }
        }
        (Decision::Proceed, added)
    }

    /// DATA: every plugin reads the message as received; their changes are returned in
    /// plugin order for the caller to apply.
    pub async fn data(
        &mut self,
        client: &ClientInfo,
        view: &TxnView<'_>,
        message: &Arc<MessageShared>,
        max_body: u64,
        notes: &mut Notes,
    ) -> (Decision, DataChanges) {
        let stage = Stage::Data;
        let session = self.wit_session(client);
        let mut changes = DataChanges::default();
        for &index in self.hooked(stage).iter() {
            let txn = wit_transaction(view, notes);
            let shared = Arc::clone(message);
            let result = self
                .run(index, stage, async |instance| {
                    let handle = instance
                        .store_mut()
                        .data_mut()
                        .table
                        .push(MessageView { shared })
                        .map_err(|e| Failure::Unavailable(e.to_string()))?;
                    let rep = handle.rep();
                    let result = instance
                        .call(async |p, s| p.sluice_plugin_hooks().call_data(&mut *s, &session, &txn, handle).await)
                        .await;
                    // The plugin only borrowed the message: its entry is ours to remove, or
                    // it (and the message it holds) would outlive the call in a reused instance.
                    let _ = instance.store_mut().data_mut().table.delete(Resource::<MessageView>::new_own(rep));
                    let DataResult { outcome, header_changes, new_body, add_recipients, remove_recipients, route } =
                        result?;
                    let checked = output::check_outcome(outcome).map_err(|e| Failure::Invalid(e.0))?;
                    let edits = output::check_header_changes(header_changes).map_err(|e| Failure::Invalid(e.0))?;
                    if new_body.as_ref().is_some_and(|b| b.len() as u64 > max_body) {
                        return Err(Failure::Invalid("new body exceeds the message size limit".into()));
                    }
                    let add = output::check_recipients(&add_recipients).map_err(|e| Failure::Invalid(e.0))?;
                    let remove = output::check_recipients(&remove_recipients).map_err(|e| Failure::Invalid(e.0))?;
                    let route = route.map(output::check_route).transpose().map_err(|e| Failure::Invalid(e.0))?;
                    Ok((
                        checked,
                        DataChanges {
                            header_edits: edits,
                            new_body,
                            add_recipients: add,
                            remove_recipients: remove,
                            route,
                        },
                    ))
                })
                .await;
            let flow = match result {
                Ok((checked, change)) => {
                    if proceeds(&checked.verdict) {
                        changes.header_edits.extend(change.header_edits);
                        if change.new_body.is_some() {
                            changes.new_body = change.new_body;
                        }
                        changes.add_recipients.extend(change.add_recipients);
                        changes.remove_recipients.extend(change.remove_recipients);
                        if change.route.is_some() {
                            changes.route = change.route;
                        }
                    }
                    self.absorb(index, stage, checked, notes)
                }
                Err(failure) => self.fail(index, stage, &failure),
            };
            if let Flow::Stop(d) = flow {
                return (d, changes);
            }
        }
        (Decision::Proceed, changes)
    }
}

/// Rewrites only count when the verdict lets the transaction go on.
fn proceeds(verdict: &Verdict) -> bool {
    !matches!(verdict, Verdict::Reject(_) | Verdict::Tempfail(_) | Verdict::Disconnect(_))
}

fn param(keyword: &str, value: Option<String>) -> wit::EsmtpParam {
    wit::EsmtpParam { keyword: keyword.to_string(), value }
}

fn mail_params(params: &MailParams) -> Vec<wit::EsmtpParam> {
    let mut list = Vec::new();
    if let Some(size) = params.size {
        list.push(param("SIZE", Some(size.to_string())));
    }
    if let Some(body) = params.body {
        list.push(param(
            "BODY",
            Some(
                match body {
                    Body::SevenBit => "7BIT",
                    Body::EightBitMime => "8BITMIME",
                }
                .into(),
            ),
        ));
    }
    if params.smtputf8 {
        list.push(param("SMTPUTF8", None));
    }
    if let Some(ret) = params.ret {
        list.push(param(
            "RET",
            Some(
                match ret {
                    Ret::Full => "FULL",
                    Ret::Hdrs => "HDRS",
                }
                .into(),
            ),
        ));
    }
    if let Some(envid) = &params.envid {
        list.push(param("ENVID", Some(envid.clone())));
    }
    list
}

fn rcpt_params(params: &RcptParams) -> Vec<wit::EsmtpParam> {
    let mut list = Vec::new();
    if let Some(n) = params.notify {
        let mut items = Vec::new();
        for (on, name) in [(n.never, "NEVER"), (n.success, "SUCCESS"), (n.failure, "FAILURE"), (n.delay, "DELAY")] {
            if on {
                items.push(name);
            }
        }
        list.push(param("NOTIFY", Some(items.join(","))));
    }
    if let Some(orcpt) = &params.orcpt {
        list.push(param("ORCPT", Some(orcpt.clone())));
    }
    list
}

fn wit_transaction(view: &TxnView<'_>, notes: &Notes) -> wit::Transaction {
    wit::Transaction {
        sender: view.sender.map(|s| s.as_ref().map_or_else(String::new, ToString::to_string)),
        sender_params: view.params.map(mail_params).unwrap_or_default(),
        recipients: view
            .recipients
            .iter()
            .map(|r| wit::Recipient { address: r.address.to_string(), params: rcpt_params(&r.params) })
            .collect(),
        tags: notes.tags.clone(),
        score: notes.score,
        annotations: notes
            .annotations
            .iter()
            .map(|a| wit::Annotation { plugin: a.plugin.clone(), key: a.key.clone(), value: a.value.clone() })
            .collect(),
    }
}
