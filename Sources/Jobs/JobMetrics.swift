import CoreMetrics
import Metrics
import Synchronization

/// The engine's metrics, labelled by job kind. Handles are created once per kind and cached, because creating
/// one goes through the factory's registry lock on the hot path.
final class JobMetrics: Sendable {
    struct Kind: Sendable {
        let enqueued: Counter
        let started: Counter
        let succeeded: Counter
        let failed: Counter
        let retried: Counter
        let rescued: Counter
        let pickupLatency: CoreMetrics.Timer
        let runDuration: CoreMetrics.Timer
    }

    let factory: any MetricsFactory
    private let kinds = Mutex<[String: Kind]>([:])
    private let depthGauges = Mutex<[String: Gauge]>([:])
    let staleWrites: Counter
    let oldestWaitingAge: Gauge

    init(factory: any MetricsFactory) {
        self.factory = factory
        staleWrites = Counter(label: "telepay_jobs_stale_writes_total", dimensions: [], factory: factory)
        oldestWaitingAge = Gauge(label: "telepay_jobs_oldest_waiting_seconds", dimensions: [], factory: factory)
    }

    func kind(_ name: String) -> Kind {
        kinds.withLock { kinds in
            if let existing = kinds[name] { return existing }
            let dimensions = [("kind", name)]
            let created = Kind(
                enqueued: Counter(label: "telepay_jobs_enqueued_total", dimensions: dimensions, factory: factory),
                started: Counter(label: "telepay_jobs_started_total", dimensions: dimensions, factory: factory),
                succeeded: Counter(label: "telepay_jobs_succeeded_total", dimensions: dimensions, factory: factory),
                failed: Counter(label: "telepay_jobs_failed_total", dimensions: dimensions, factory: factory),
                retried: Counter(label: "telepay_jobs_retried_total", dimensions: dimensions, factory: factory),
                rescued: Counter(label: "telepay_jobs_rescued_total", dimensions: dimensions, factory: factory),
                pickupLatency: CoreMetrics.Timer(label: "telepay_jobs_pickup_latency_seconds", dimensions: dimensions, factory: factory),
                runDuration: CoreMetrics.Timer(label: "telepay_jobs_run_duration_seconds", dimensions: dimensions, factory: factory)
            )
            kinds[name] = created
            return created
        }
    }

    /// Sets `telepay_jobs_queue_depth{kind,state}`; pairs missing from `counts` drop to zero rather than keep
    /// their last value.
    func recordDepth(_ counts: [DepthKey: Int]) {
        depthGauges.withLock { gauges in
            for key in counts.keys where gauges[key.label] == nil {
                gauges[key.label] = Gauge(
                    label: "telepay_jobs_queue_depth", dimensions: [("kind", key.kind), ("state", key.state)], factory: factory
                )
            }
            let byLabel = Dictionary(uniqueKeysWithValues: counts.map { ($0.key.label, $0.value) })
            for (label, gauge) in gauges {
                gauge.record(byLabel[label] ?? 0)
            }
        }
    }

    struct DepthKey: Hashable, Sendable {
        var kind: String
        var state: String

        var label: String { kind + "\u{0}" + state }
    }
}
