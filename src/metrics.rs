//! Prometheus metrics, one registry per server instance (tests run many in one process).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub tokens_issued: IntCounterVec,
    pub store_rows: IntGaugeVec,
    /// Client connections open now (`server`), against `[limits] max_connections`.
    pub connections: IntGauge,
    /// Back-channel logout attempts by outcome: delivered, retried, failed (given up),
    /// dropped (nothing to send to).
    pub backchannel_logouts: IntCounterVec,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "latchkey_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "latchkey_http_request_duration_seconds",
                "Request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route"],
        )?;
        let tokens_issued = IntCounterVec::new(
            Opts::new(
                "latchkey_tokens_issued_total",
                "Token responses issued by grant type",
            ),
            &["grant_type"],
        )?;
        let store_rows = IntGaugeVec::new(
            Opts::new(
                "latchkey_store_rows",
                "Rows in the tables the janitor keeps in check",
            ),
            &["table"],
        )?;
        let connections =
            IntGauge::new("latchkey_http_connections", "Client connections open now")?;
        let backchannel_logouts = IntCounterVec::new(
            Opts::new(
                "latchkey_backchannel_logouts_total",
                "Back-channel logout attempts by outcome",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(tokens_issued.clone()))?;
        registry.register(Box::new(store_rows.clone()))?;
        registry.register(Box::new(backchannel_logouts.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            tokens_issued,
            store_rows,
            connections,
            backchannel_logouts,
        })
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
