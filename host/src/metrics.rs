//! Prometheus metrics, per handler and version: requests by status class,
//! latency, traps, timeouts, live instances, swaps and compile time.
//!
//! The recorder is process-wide (the `metrics` facade allows one), so
//! [`install`] is idempotent: every server started in a process shares it.
//! Each handler version registers its series once ([`VersionMetrics`]), so
//! the request path only bumps pre-resolved handles.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

const REQUESTS: &str = "waterspout_requests_total";
const DURATION: &str = "waterspout_request_duration_seconds";
const TRAPS: &str = "waterspout_traps_total";
const TIMEOUTS: &str = "waterspout_timeouts_total";
const INSTANCES: &str = "waterspout_active_instances";
const PARKED: &str = "waterspout_parked_requests";
const SWAPS: &str = "waterspout_swaps_total";
const ACTIVE_VERSION: &str = "waterspout_active_version";
const COMPILE: &str = "waterspout_compile_seconds";
const REFUSED: &str = "waterspout_uploads_refused_total";
const CONNECTIONS: &str = "waterspout_open_connections";
const CLUSTER_DEPLOY_APPLIED: &str = "waterspout_cluster_deploy_applied";
const CLUSTER_DEPLOY_LATEST: &str = "waterspout_cluster_deploy_latest";
const CLUSTER_DEPLOY_NODES_SEEN: &str = "waterspout_cluster_deploy_nodes_seen";
const CLUSTER_DEPLOY_NODES_APPLIED: &str = "waterspout_cluster_deploy_nodes_applied";

/// Latency buckets, seconds: 100 µs to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];
/// Compile-time buckets, seconds: a cache hit is milliseconds, a large
/// component compiled cold is seconds.
const COMPILE_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often the recorder's histograms are drained. A histogram keeps every
/// sample it is given until an upkeep folds them into its buckets; the
/// exporter does that at a scrape, and without this a server nobody scrapes
/// kept ~20 bytes per request, for ever (1.2 MB a second at 60k req/s).
pub const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Installs the Prometheus recorder once per process; later calls are no-ops.
/// Returns `None` when another recorder was installed first (an embedding
/// program's own), in which case `/metrics` says so.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(DURATION.into()),
                    LATENCY_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(COMPILE.into()),
                        COMPILE_BUCKETS,
                    )
                });
            match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => {
                    describe();
                    spawn_upkeep(handle.clone());
                    Some(handle)
                }
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!("metrics recorder not installed: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Drains the histograms every [`UPKEEP_EVERY`] on a thread of its own, for
/// the life of the process (the recorder lives as long).
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("waterspout-metrics".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("metrics upkeep thread not started ({e}): histograms are drained only at a scrape");
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(REQUESTS, "Requests served, by handler, version and status class.");
    describe_histogram!(
        DURATION,
        Unit::Seconds,
        "Request latency, by handler and version."
    );
    describe_counter!(TRAPS, "Guest traps (each became a 500).");
    describe_counter!(TIMEOUTS, "Requests stopped at the handler's time limit (503).");
    describe_gauge!(INSTANCES, "Guest instances alive now.");
    describe_gauge!(
        PARKED,
        "Requests waiting in the host without an instance (park_waits long polls)."
    );
    describe_counter!(
        SWAPS,
        "Active-version changes (upload, activate, rollback, --watch)."
    );
    describe_gauge!(ACTIVE_VERSION, "The version new requests get.");
    describe_histogram!(COMPILE, Unit::Seconds, "Validating and compiling a component.");
    describe_counter!(REFUSED, "Uploads refused by validation.");
    describe_gauge!(CLUSTER_DEPLOY_APPLIED, "The cluster deploy id this node serves.");
    describe_gauge!(CLUSTER_DEPLOY_LATEST, "The cluster's newest deploy id.");
    describe_gauge!(
        CLUSTER_DEPLOY_NODES_SEEN,
        "Cluster nodes that sent a heartbeat within the last 5 s."
    );
    describe_gauge!(
        CLUSTER_DEPLOY_NODES_APPLIED,
        "Cluster nodes seen that serve the newest deploy."
    );
    describe_gauge!(CONNECTIONS, "Client connections open, by worker thread.");
}

/// The open-connection gauge of worker thread `worker`.
pub fn open_connections(worker: usize) -> Gauge {
    install();
    gauge!(CONNECTIONS, "worker" => worker.to_string())
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    match install() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => "# metrics are unavailable: another metrics recorder was installed first\n".into(),
    }
}

/// One version's series, resolved once when the version is built.
pub struct VersionMetrics {
    by_class: [Counter; 5],
    duration: Histogram,
    traps: Counter,
    timeouts: Counter,
    instances: Gauge,
    parked: Gauge,
}

impl VersionMetrics {
    pub fn new(handler: &str, version: u64) -> Self {
        install();
        let labels = [("handler", handler.to_owned()), ("version", version.to_string())];
        let class = |c: &'static str| {
            let mut l = labels.to_vec();
            l.push(("class", c.to_owned()));
            counter!(REQUESTS, &l)
        };
        VersionMetrics {
            by_class: [
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
            ],
            duration: histogram!(DURATION, &labels),
            traps: counter!(TRAPS, &labels),
            timeouts: counter!(TIMEOUTS, &labels),
            instances: gauge!(INSTANCES, &labels),
            parked: gauge!(PARKED, &labels),
        }
    }

    /// A request ended with `status` after `elapsed`.
    pub fn request_done(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].increment(1);
        self.duration.record(elapsed.as_secs_f64());
    }

    /// The guest trapped.
    pub fn trap(&self) {
        self.traps.increment(1);
    }

    /// The guest ran past its time limit.
    pub fn timeout(&self) {
        self.timeouts.increment(1);
    }

    /// An instance is starting; it counts as alive until the guard drops.
    pub fn instance_started(&self) -> InstanceGuard {
        self.instances.increment(1.0);
        InstanceGuard(self.instances.clone())
    }

    /// A request parked (waits in the host without an instance); it counts
    /// as parked until the guard drops.
    pub fn request_parked(&self) -> InstanceGuard {
        self.parked.increment(1.0);
        InstanceGuard(self.parked.clone())
    }
}

/// Counts a live instance (or a parked request) until the guard drops.
#[must_use = "the instance counts as alive until the guard is dropped"]
pub struct InstanceGuard(Gauge);

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// `handler`'s active version became `to`.
pub fn swapped(handler: &str, to: u64) {
    counter!(SWAPS, "handler" => handler.to_owned()).increment(1);
    gauge!(ACTIVE_VERSION, "handler" => handler.to_owned()).set(to as f64);
}

/// Validating and compiling a component for `handler` took `elapsed`.
pub fn compiled(handler: &str, elapsed: Duration, ok: bool) {
    histogram!(COMPILE, "handler" => handler.to_owned()).record(elapsed.as_secs_f64());
    if !ok {
        counter!(REFUSED, "handler" => handler.to_owned()).increment(1);
    }
}

/// The cluster deploy id this node has applied.
pub fn cluster_deploy_applied(id: u64) {
    gauge!(CLUSTER_DEPLOY_APPLIED).set(id as f64);
}

/// Nodes seen, nodes serving the newest deploy, and its id.
pub fn cluster_nodes(seen: usize, applied: usize, latest: u64) {
    gauge!(CLUSTER_DEPLOY_NODES_SEEN).set(seen as f64);
    gauge!(CLUSTER_DEPLOY_NODES_APPLIED).set(applied as f64);
    gauge!(CLUSTER_DEPLOY_LATEST).set(latest as f64);
}

/// One handler's totals since the process started (every version summed),
/// read back from the recorder for the console's charts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandlerTotals {
    /// Requests by status class: 1xx … 5xx.
    pub by_class: [u64; 5],
    pub traps: u64,
    pub timeouts: u64,
    /// Instances alive now.
    pub instances: i64,
    /// Cumulative latency bucket counts, one per [`LATENCY_BUCKETS`] bound
    /// and a last one for `+Inf`.
    pub latency: Vec<u64>,
}

impl HandlerTotals {
    pub fn requests(&self) -> u64 {
        self.by_class.iter().sum()
    }
}

/// Every handler's totals, read from the Prometheus exposition (the one
/// registry: the console reads what `/metrics` shows).
pub fn snapshot() -> std::collections::HashMap<String, HandlerTotals> {
    parse_totals(&render())
}

fn parse_totals(text: &str) -> std::collections::HashMap<String, HandlerTotals> {
    let mut totals: std::collections::HashMap<String, HandlerTotals> = Default::default();
    let bucket = format!("{DURATION}_bucket");
    for line in text.lines() {
        let Some(sample) = Sample::parse(line) else {
            continue;
        };
        let Some(handler) = sample.label("handler") else {
            continue;
        };
        let entry = || HandlerTotals {
            latency: vec![0; LATENCY_BUCKETS.len() + 1],
            ..Default::default()
        };
        let value = sample.value;
        match sample.name {
            REQUESTS => {
                let class = match sample.label("class") {
                    Some(c) => c.as_bytes().first().map(|d| d.wrapping_sub(b'1')),
                    None => None,
                };
                if let Some(class @ 0..=4) = class {
                    let t = totals.entry(handler).or_insert_with(entry);
                    t.by_class[class as usize] += value as u64;
                }
            }
            TRAPS => totals.entry(handler).or_insert_with(entry).traps += value as u64,
            TIMEOUTS => totals.entry(handler).or_insert_with(entry).timeouts += value as u64,
            INSTANCES => totals.entry(handler).or_insert_with(entry).instances += value as i64,
            name if name == bucket => {
                let index = match sample.label("le").as_deref() {
                    Some("+Inf") => Some(LATENCY_BUCKETS.len()),
                    Some(le) => le
                        .parse::<f64>()
                        .ok()
                        .and_then(|le| LATENCY_BUCKETS.iter().position(|b| (b - le).abs() < 1e-12)),
                    None => None,
                };
                if let Some(i) = index {
                    totals.entry(handler).or_insert_with(entry).latency[i] += value as u64;
                }
            }
            _ => {}
        }
    }
    totals
}

/// The `q` quantile (0..1) of the requests counted in `cumulative` (bucket
/// counts as in [`HandlerTotals::latency`], typically the difference of two
/// snapshots), in seconds, interpolated within its bucket as Prometheus'
/// `histogram_quantile` does; `None` without requests.
pub fn latency_quantile(cumulative: &[u64], q: f64) -> Option<f64> {
    let total = *cumulative.last()?;
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let i = cumulative.iter().position(|&c| c as f64 >= rank)?;
    let Some(&upper) = LATENCY_BUCKETS.get(i) else {
        // In +Inf: the highest finite bound is all we know.
        return LATENCY_BUCKETS.last().copied();
    };
    let lower = if i == 0 { 0.0 } else { LATENCY_BUCKETS[i - 1] };
    let below = if i == 0 { 0 } else { cumulative[i - 1] };
    let in_bucket = cumulative[i] - below;
    if in_bucket == 0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below as f64) / in_bucket as f64)
}

/// One sample line of the text exposition: `name{k="v",…} value`.
struct Sample<'a> {
    name: &'a str,
    labels: &'a str,
    value: f64,
}

impl<'a> Sample<'a> {
    fn parse(line: &'a str) -> Option<Sample<'a>> {
        if line.starts_with('#') || line.is_empty() {
            return None;
        }
        let (series, value) = line.rsplit_once(' ')?;
        let value = value.parse().ok()?;
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        Some(Sample { name, labels, value })
    }

    /// A label's value, its escapes (`\\`, `\"`, `\n`) undone.
    fn label(&self, key: &str) -> Option<String> {
        let mut rest = self.labels;
        while !rest.is_empty() {
            let (k, after) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break i,
                    c => value.push(c),
                }
            };
            if k.trim_start_matches(',') == key {
                return Some(value);
            }
            rest = &after[end + 1..];
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_from_the_exposition() {
        let text = "# TYPE waterspout_requests_total counter\n\
            waterspout_requests_total{handler=\"hello\",version=\"1\",class=\"2xx\"} 5\n\
            waterspout_requests_total{handler=\"hello\",version=\"2\",class=\"2xx\"} 2\n\
            waterspout_requests_total{handler=\"hello\",version=\"2\",class=\"5xx\"} 1\n\
            waterspout_traps_total{handler=\"hello\",version=\"2\"} 1\n\
            waterspout_active_instances{handler=\"a\\\"b\",version=\"1\"} 3\n\
            waterspout_request_duration_seconds_bucket{handler=\"hello\",version=\"1\",le=\"0.001\"} 4\n\
            waterspout_request_duration_seconds_bucket{handler=\"hello\",version=\"1\",le=\"+Inf\"} 5\n";
        let totals = parse_totals(text);
        let hello = &totals["hello"];
        assert_eq!(hello.by_class, [0, 7, 0, 0, 1]);
        assert_eq!(hello.requests(), 8);
        assert_eq!(hello.traps, 1);
        assert_eq!(hello.latency[3], 4);
        assert_eq!(hello.latency[LATENCY_BUCKETS.len()], 5);
        assert_eq!(totals["a\"b"].instances, 3);
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        let mut cumulative = vec![0; LATENCY_BUCKETS.len() + 1];
        // 10 requests, all between 0.5 ms and 1 ms (bucket index 3).
        for c in cumulative.iter_mut().skip(3) {
            *c = 10;
        }
        let p50 = latency_quantile(&cumulative, 0.5).unwrap();
        assert!((p50 - 0.00075).abs() < 1e-9, "{p50}");
        assert_eq!(latency_quantile(&vec![0; LATENCY_BUCKETS.len() + 1], 0.5), None);
    }
}
