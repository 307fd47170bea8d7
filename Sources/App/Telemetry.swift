import Metrics
import Prometheus

/// The metrics registry of one TelePay application. Components record through `factory`; `/metrics`
/// renders `registry`. Keeping it a value (not the process-global MetricsSystem) lets tests build several
/// applications in one process, each with its own figures.
public struct Telemetry: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        self.registry = registry
        self.factory = factory
    }

    /// The Prometheus text exposition of every metric recorded so far.
    public func render() -> String {
        registry.emitToString()
    }
}
