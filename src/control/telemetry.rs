//! The Prometheus recorder behind the `metrics` macros used across the server.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Plugin call latencies: microseconds to the wall-time limit.
const CALL_BUCKETS: &[f64] = &[0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

pub fn install() -> anyhow::Result<()> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("sluice_plugin_call_seconds".into()),
            CALL_BUCKETS,
        )?
        .install_recorder()?;
    let _ = HANDLE.set(handle);
    describe();
    Ok(())
}

pub fn render() -> String {
    HANDLE.get().map(PrometheusHandle::render).unwrap_or_default()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("sluice_connections_current", "SMTP sessions open now");
    describe_counter!("sluice_connections_total", "SMTP connections accepted");
    describe_counter!(
        "sluice_connections_rejected_total",
        "Connections refused (by limit, or an untrusted PROXY source)"
    );
    describe_counter!(
        "sluice_messages_total",
        "Messages by result: accepted, quarantined, discarded, rejected, tempfailed"
    );
    describe_counter!("sluice_replies_total", "Refusals by stage and class (4xx/5xx)");
    describe_counter!("sluice_plugin_verdicts_total", "Plugin verdicts by plugin, stage and verdict");
    describe_counter!(
        "sluice_plugin_failures_total",
        "Plugin failures by plugin and kind (trap, cpu-time, wall-time, memory, ...)"
    );
    describe_histogram!("sluice_plugin_call_seconds", "Plugin call latency by plugin and stage");
    describe_gauge!("sluice_plugin_memory_bytes", "Largest linear memory a plugin instance grew to");
    describe_gauge!("sluice_plugin_idle_instances", "Instances waiting for their next session (reuse_instances)");
    describe_gauge!("sluice_queue_messages", "Messages in the queue by state");
    describe_gauge!("sluice_queue_oldest_age_seconds", "Age of the oldest queued message");
    describe_counter!("sluice_delivery_attempts_total", "Delivery results per recipient by route and result");
    describe_counter!("sluice_tls_handshakes_total", "TLS handshakes by direction and result");
    describe_counter!("sluice_auth_total", "SMTP AUTH attempts by result");
    describe_counter!("sluice_reloads_total", "Configuration reloads by result");
}
