//! HDR histograms of latencies in microseconds (1 µs to 60 s, 3 significant digits),
//! their V2-compressed base64 encoding and their summaries.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::result::LatencySummary;

/// Lowest trackable latency, µs.
pub const LOW_US: u64 = 1;
/// Highest trackable latency, µs (60 s).
pub const HIGH_US: u64 = 60_000_000;
/// Significant digits.
pub const SIGFIG: u8 = 3;

/// A latency histogram in microseconds.
pub type LatencyHistogram = Histogram<u64>;

/// An empty latency histogram (1 µs to 60 s, 3 significant digits). Values above 60 s
/// are clamped by [`record`].
pub fn new_histogram() -> LatencyHistogram {
    Histogram::new_with_bounds(LOW_US, HIGH_US, SIGFIG).expect("constant bounds are valid")
}

/// Records `us` (clamped into the trackable range).
pub fn record(h: &mut LatencyHistogram, us: u64) {
    let v = us.clamp(LOW_US, HIGH_US);
    // Cannot fail: the value is clamped into the histogram's range.
    let _ = h.record(v);
}

/// Encodes as the HdrHistogram V2 compressed format, base64 (the interval-log and
/// JSON representation).
pub fn encode(h: &LatencyHistogram) -> String {
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Err(_) => String::new(),
    }
}

/// Decodes what [`encode`] produced.
pub fn decode(s: &str) -> Result<LatencyHistogram, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))?;
    let mut out = new_histogram();
    out.add(&h)
        .map_err(|e| format!("histogram out of range: {e:?}"))?;
    Ok(out)
}

/// The summary of a histogram (zeros when empty).
pub fn summarize(h: &LatencyHistogram) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        count: h.len(),
        min_us: h.min(),
        mean_us: h.mean(),
        stdev_us: h.stdev(),
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        p9999_us: h.value_at_quantile(0.9999),
        max_us: h.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip_and_summary() {
        let mut h = new_histogram();
        for v in 1..=1000 {
            record(&mut h, v);
        }
        record(&mut h, 10 * HIGH_US);
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back.len(), 1001);
        let s = summarize(&back);
        assert_eq!(s.min_us, 1);
        assert!((499..=501).contains(&s.p50_us), "{s:?}");
        assert!(s.max_us >= HIGH_US - HIGH_US / 1000);
        assert!(decode("not base64!").is_err());
    }
}
