//! The Prometheus recorder behind the `metrics` macros used across the server.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::{Config, Grant};
use crate::plugin::{HTTP_RESULTS, PLUGIN_QUOTAS, PluginHost, Stage};

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
    describe_counter!("sluice_plugin_verdicts_total", "Plugin verdicts by plugin, stage and verdict");
    describe_counter!(
        "sluice_plugin_failures_total",
        "Plugin failures by plugin and kind (trap, cpu-time, wall-time, memory, ...)"
    );
    describe_histogram!("sluice_plugin_call_seconds", "Plugin call latency by plugin and stage");
    describe_counter!(
        "sluice_plugin_quota_hits_total",
        "Requests refused by a plugin's quota, by plugin and quota (kv, dns)"
    );
    describe_counter!(
        "sluice_plugin_http_requests_total",
        "HTTP requests of plugins granted http, by plugin and result (ok, denied, timeout, too_large, error)"
    );
    describe_gauge!("sluice_plugin_memory_bytes", "Largest linear memory a plugin instance grew to");
    describe_gauge!("sluice_plugin_idle_instances", "Instances waiting for their next session (reuse_instances)");
    describe_gauge!("sluice_queue_messages", "Messages in the queue by state");
    describe_gauge!("sluice_queue_oldest_age_seconds", "Age of the oldest queued message");
    describe_counter!("sluice_delivery_attempts_total", "Delivery results per recipient by route and result");
    describe_counter!("sluice_tls_handshakes_total", "TLS handshakes by direction and result");
    describe_counter!("sluice_auth_total", "SMTP AUTH attempts by result");
    describe_counter!("sluice_reloads_total", "Configuration reloads by result");
    describe_counter!(
        "sluice_recipient_probes_total",
        "Recipient callouts by route and result (valid, unknown, unavailable)"
    );
    describe_counter!("sluice_recipient_cache_total", "Recipient answer cache lookups by route and result (hit, miss)");
}

/// Every label value a counter can take, so that each series exists, at zero, from the
/// start: `rate()` and absence alerts need a series before its first event. The lists
/// name what the code emits (`smtp::session`, `plugin::chain`, `delivery::attempt`...);
/// a test renders them.
const MESSAGE_RESULTS_AT_DATA: [&str; 3] = ["accepted", "quarantined", "discarded"];
const REFUSALS: [&str; 2] = ["rejected", "tempfailed"];
const CONNECTION_REJECTIONS: [&str; 2] = ["limit", "proxy-untrusted"];
const PLUGIN_FAILURES: [&str; 6] = ["cpu-time", "wall-time", "memory", "trap", "invalid-output", "unavailable"];
const PLUGIN_VERDICTS: [&str; 7] = ["continue", "accept", "reject", "tempfail", "disconnect", "discard", "quarantine"];
const DELIVERY_RESULTS: [&str; 3] = ["delivered", "deferred", "failed"];
/// The route name of a next hop a plugin chose (`delivery::routing`).
const PLUGIN_ROUTE: &str = "plugin";

/// Registers the series of `config` and its loaded `plugins` at zero (again after a
/// reload, for new plugins and routes; existing series keep their counts).
pub fn register_series(config: &Config, plugins: &PluginHost) {
    use metrics::counter;
    counter!("sluice_connections_total").increment(0);
    for reason in CONNECTION_REJECTIONS {
        counter!("sluice_connections_rejected_total", "reason" => reason).increment(0);
    }
    for stage in Stage::ALL {
        for result in REFUSALS {
            counter!("sluice_messages_total", "stage" => stage.name(), "result" => result).increment(0);
        }
    }
    for result in MESSAGE_RESULTS_AT_DATA {
        counter!("sluice_messages_total", "stage" => Stage::Data.name(), "result" => result).increment(0);
    }
    for plugin in plugins.plugins() {
        let name = plugin.shared.name.clone();
        for kind in PLUGIN_FAILURES {
            counter!("sluice_plugin_failures_total", "plugin" => name.clone(), "kind" => kind).increment(0);
        }
        if plugin.shared.grants.contains(&Grant::Http) {
            for result in HTTP_RESULTS {
                counter!("sluice_plugin_http_requests_total", "plugin" => name.clone(), "result" => result)
                    .increment(0);
            }
        }
        for quota in PLUGIN_QUOTAS {
            counter!("sluice_plugin_quota_hits_total", "plugin" => name.clone(), "quota" => quota).increment(0);
        }
        for stage in Stage::ALL.into_iter().filter(|s| plugin.stages.contains(*s)) {
            for verdict in PLUGIN_VERDICTS {
                counter!("sluice_plugin_verdicts_total", "plugin" => name.clone(), "stage" => stage.name(), "verdict" => verdict)
                    .increment(0);
            }
        }
    }
    let routes = config.routes.iter().map(|r| r.name.get_ref().clone()).chain([PLUGIN_ROUTE.to_string()]);
    for route in routes {
        for result in DELIVERY_RESULTS {
            counter!("sluice_delivery_attempts_total", "route" => route.clone(), "result" => result).increment(0);
        }
    }
    for direction in ["inbound", "outbound"] {
        for result in ["ok", "failed"] {
            counter!("sluice_tls_handshakes_total", "direction" => direction, "result" => result).increment(0);
        }
    }
    for result in ["success", "failure"] {
        counter!("sluice_auth_total", "result" => result).increment(0);
    }
    for result in ["ok", "failed"] {
        counter!("sluice_reloads_total", "result" => result).increment(0);
    }
    let verifying = config.routes.iter().filter(|r| r.recipients.verify.get_ref().uses_callout());
    for route in verifying.map(|r| r.name.get_ref().clone()) {
        for result in crate::recipients::RESULTS {
            counter!("sluice_recipient_probes_total", "route" => route.clone(), "result" => result).increment(0);
        }
        for result in ["hit", "miss"] {
            counter!("sluice_recipient_cache_total", "route" => route.clone(), "result" => result).increment(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_exists_at_zero_before_its_first_event() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let config = Config::parse(
            std::path::Path::new("test.toml"),
            "[server]\nhostname = \"mx.example.test\"\nlisten = [\"127.0.0.1:0\"]\n[queue]\npath = \"/nonexistent\"\n[[route]]\nname = \"mailstore\"\ndomains = [\"example.com\"]\nnext_hop = [\"192.0.2.25:25\"]\n[route.recipients]\nverify = \"callout\"\n",
        )
        .unwrap();
        metrics::with_local_recorder(&recorder, || register_series(&config, &PluginHost::empty()));
        let text = handle.render();
        for series in [
            "sluice_connections_total 0",
            r#"sluice_messages_total{stage="data",result="accepted"} 0"#,
            r#"sluice_messages_total{stage="rcpt-to",result="rejected"} 0"#,
            r#"sluice_delivery_attempts_total{route="mailstore",result="deferred"} 0"#,
            r#"sluice_delivery_attempts_total{route="plugin",result="delivered"} 0"#,
            r#"sluice_tls_handshakes_total{direction="outbound",result="failed"} 0"#,
            r#"sluice_reloads_total{result="ok"} 0"#,
            r#"sluice_recipient_probes_total{route="mailstore",result="unknown"} 0"#,
            r#"sluice_recipient_cache_total{route="mailstore",result="hit"} 0"#,
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
    }
}
