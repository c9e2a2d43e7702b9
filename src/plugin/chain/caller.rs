//! Calling one plugin of a session: its instance (created on first use, or taken from
//! the plugin's idle instances), the call's metrics, and the offline runner's trace.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::runner::Link;
use crate::mail_auth::AuthResults;
use crate::plugin::effects::Effects;
use crate::plugin::host::PluginHost;
use crate::plugin::instance::{Failure, Instance};
use crate::plugin::output::{Checked, Verdict};
use crate::plugin::stage::Stage;

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

/// The plugins that hook `stage`, in configuration order.
pub(super) fn chain(host: &PluginHost, stage: Stage) -> impl Iterator<Item = Link<'_>> {
    host.hooked(stage).iter().map(|&index| {
        let plugin = &host.plugins()[index].shared;
        Link { index, name: &plugin.name, on_error: plugin.on_error }
    })
}

/// The plugin instances of one session, kept for the session; one whose call failed
/// is dropped and replaced on the next call.
pub(super) struct Caller {
    host: Arc<PluginHost>,
    instances: Vec<Option<Instance>>,
    /// Set by the offline runner to record every call.
    pub trace: Option<Vec<CallRecord>>,
    /// What the `auth` import answers in the calls from now on.
    pub auth: Arc<AuthResults>,
}

impl Drop for Caller {
    fn drop(&mut self) {
        for (plugin, instance) in self.host.plugins().iter().zip(self.instances.drain(..)) {
            if let Some(instance) = instance {
                plugin.idle.give(instance);
            }
        }
    }
}

impl Caller {
    pub fn new(host: Arc<PluginHost>) -> Caller {
        let instances = host.plugins().iter().map(|_| None).collect();
        Caller { host, instances, trace: None, auth: Arc::default() }
    }

    pub fn host(&self) -> &Arc<PluginHost> {
        &self.host
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

    /// Runs one plugin's hook; the closure makes the call and checks its output. After
    /// a failure the instance is dropped: its state is unknown.
    pub async fn run<T: Effects>(
        &mut self,
        index: usize,
        stage: Stage,
        call: impl AsyncFnOnce(&mut Instance) -> Result<(Checked, T), Failure>,
    ) -> Result<(Checked, T), Failure> {
        let started = Instant::now();
        let auth = Arc::clone(&self.auth);
        let result = match self.instance(index).await {
            Ok(instance) => {
                instance.store_mut().data_mut().auth = auth;
                call(instance).await
            }
            Err(failure) => Err(failure),
        };
        let shared = &self.host.plugins()[index].shared;
        let result = result.and_then(|(checked, changes)| match changes.check(shared) {
            Ok(()) => Ok((checked, changes)),
            Err(missing) => Err(missing.into()),
        });
        metrics::histogram!("sluice_plugin_call_seconds", "plugin" => shared.name.clone(), "stage" => stage.name())
            .record(started.elapsed().as_secs_f64());
        let peak_memory = self.instances[index].as_ref().map_or(0, Instance::peak_memory);
        if self.instances[index].is_some() {
            let peak = peak_memory as u64;
            if shared.peak_memory.fetch_max(peak, Ordering::Relaxed) < peak {
                metrics::gauge!("sluice_plugin_memory_bytes", "plugin" => shared.name.clone()).set(peak as f64);
            }
        }
        // Describing the result allocates: only when someone reads it.
        if self.trace.is_some() || tracing::enabled!(tracing::Level::DEBUG) {
            let summary = describe(&result);
            tracing::debug!(plugin = %shared.name, %stage, result = %summary, "plugin called");
            if let Some(trace) = &mut self.trace {
                let plugin = shared.name.clone();
                let micros = started.elapsed().as_micros();
                trace.push(CallRecord { plugin, stage, result: summary, micros, peak_memory });
            }
        }
        if result.is_err() {
            self.instances[index] = None;
        }
        result
    }
}

fn describe<T>(result: &Result<(Checked, T), Failure>) -> String {
    match result {
        Ok((checked, _)) => match &checked.verdict {
            Verdict::Reject(r) | Verdict::Tempfail(r) | Verdict::Disconnect(r) => {
                format!("{} {r}", checked.verdict.name())
            }
            Verdict::Quarantine(reason) => format!("quarantine ({reason})"),
            verdict => verdict.name().into(),
        },
        Err(failure) => format!("failed: {failure}"),
    }
}
