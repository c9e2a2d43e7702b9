//! The cost of one hook call to a trivial plugin (`plugins/noop`), with and without
//! instantiating it first. Prints p50/p99 over many single calls, then runs criterion.
//!
//! `cargo bench --bench plugin_call` (builds the plugin if needed).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use sluice::config::{ByteSize, OnError, PluginConfig, PluginsConfig, TimeSpan};
use sluice::kv::KvStore;
use sluice::mail::ClientInfo;
use sluice::plugin::{PluginHost, PluginSession, Services};
use toml::Spanned;

fn noop_plugin() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let wasm = root.join("target/wasm32-wasip2/release/noop.wasm");
    let status = Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-wasip2", "-p", "noop"])
        .current_dir(&root)
        .status()
        .expect("cargo");
    assert!(status.success(), "building plugins/noop failed");
    wasm
}

fn host(runtime: &tokio::runtime::Runtime) -> Arc<PluginHost> {
    let config = PluginConfig {
        name: Spanned::new(0..0, "noop".to_string()),
        path: Spanned::new(0..0, noop_plugin()),
        grants: Spanned::new(0..0, Vec::new()),
        on_error: OnError::Tempfail,
        cpu_time: TimeSpan::millis(50),
        wall_time: TimeSpan::secs(5),
        memory: ByteSize(32 << 20),
        config: toml::Table::new(),
        // Measures instantiation with every call: a fresh instance per session.
        reuse_instances: Some(false),
        next_hops: Vec::new(),
        kv_max_keys: None,
        kv_max_bytes: None,
        dns_lookups: None,
        http: None,
    };
    let cache = std::env::temp_dir().join("sluice-bench-plugin-cache");
    runtime.block_on(async {
        let services = Services { resolver: None, kv: Arc::new(KvStore::memory()) };
        let mut host = PluginHost::start(64, std::slice::from_ref(&config), services).expect("engine");
        let loaded = host
            .load_one(&config, &cache, &PluginsConfig { log_rate: 100, ..PluginsConfig::default() })
            .await
            .map_err(|e| e.message)
            .expect("load noop");
        host.push(loaded);
        Arc::new(host)
    })
}

fn client() -> ClientInfo {
    ClientInfo {
        ip: "192.0.2.1".parse().unwrap(),
        port: 1,
        reverse_name: None,
        helo: Some("client.example".into()),
        tls: None,
        auth_user: None,
        session_id: "bench".into(),
    }
}

fn percentiles(label: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!("{label}: p50 {:?}  p99 {:?}  ({} calls)", at(0.50), at(0.99), samples.len());
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let host = host(&runtime);
    let client = client();

    // Single-call distributions first: criterion reports means, the target is on p50/p99.
    // Skipped when `cargo test` runs this as a smoke test.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    runtime.block_on(async {
        if !benchmarking {
            return;
        }
        let mut fresh = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let mut session = PluginSession::new(Arc::clone(&host), "relay.example.test");
            let started = Instant::now();
            session.connect(&client).await;
            fresh.push(started.elapsed());
        }
        percentiles("hook call, instantiation included", fresh);
        let mut session = PluginSession::new(Arc::clone(&host), "relay.example.test");
        session.connect(&client).await;
        let mut live = Vec::with_capacity(50_000);
        for _ in 0..50_000 {
            let started = Instant::now();
            session.helo(&client).await;
            live.push(started.elapsed());
        }
        percentiles("hook call on a live instance", live);
    });

    c.bench_function("instantiate + connect hook", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut session = PluginSession::new(Arc::clone(&host), "relay.example.test");
                session.connect(&client).await
            })
        })
    });
    let mut session = PluginSession::new(Arc::clone(&host), "relay.example.test");
    runtime.block_on(session.connect(&client));
    c.bench_function("helo hook, live instance", |b| b.iter(|| runtime.block_on(session.helo(&client))));
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
