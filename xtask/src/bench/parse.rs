//! Parsers for the outputs the benchmark reads: wrk and h2load reports,
//! h2load per-request logs, callgrind output files, `/proc/PID/stat`, and the
//! servers' `listening on` line.

use std::net::SocketAddr;

use crate::util::Result;

/// What one `wrk --latency` run reported.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Wrk {
    /// Completed requests (`N requests in Xs`).
    pub(super) requests: u64,
    /// `Requests/sec:`.
    pub(super) rps: f64,
    /// The `99%` line of the latency distribution, in microseconds.
    pub(super) p99_us: Option<f64>,
    /// Socket errors plus non-2xx/3xx responses.
    pub(super) errors: u64,
}

/// Parses the report printed by `wrk --latency`.
pub(super) fn wrk(out: &str) -> Result<Wrk> {
    let mut requests = None;
    let mut rps = None;
    let mut p99_us = None;
    let mut errors = 0;
    for line in out.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rps = rest.trim().parse::<f64>().ok();
        } else if line.contains(" requests in ") {
            requests = line.split_whitespace().next().and_then(|t| t.parse().ok());
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99_us = latency_us(rest.trim());
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            errors += rest
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += rest.trim().parse::<u64>().unwrap_or(0);
        }
    }
    match (requests, rps) {
        (Some(requests), Some(rps)) => Ok(Wrk {
            requests,
            rps,
            p99_us,
            errors,
        }),
        _ => Err("unrecognised wrk output (no `requests in` / `Requests/sec:` lines)".into()),
    }
}

/// Parses a wrk latency such as `812.00us`, `1.23ms`, `2.00s` or `1.00m` into µs.
pub(super) fn latency_us(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.trim().parse().ok()?;
    let scale = match unit.trim() {
        "ns" => 1e-3,
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(v * scale)
}

/// What one h2load run reported.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct H2load {
    /// Requests answered with 2xx/3xx (`N succeeded`).
    pub(super) succeeded: u64,
    /// Failed + errored + timed-out requests.
    pub(super) failures: u64,
    /// Request rate from the `finished in` line.
    pub(super) rps: f64,
    /// Application protocol h2load negotiated (`h2c`, `http/1.1`), if printed.
    pub(super) protocol: Option<String>,
}

/// Parses the summary h2load prints.
pub(super) fn h2load(out: &str) -> Result<H2load> {
    let mut rps = None;
    let mut counts = None;
    let mut protocol = None;
    for line in out.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in") {
            // "finished in 2.01s, 28143.50 req/s, 1.05MB/s"
            rps = rest
                .split(',')
                .find_map(|part| part.trim().strip_suffix(" req/s")?.trim().parse().ok());
        } else if let Some(rest) = line.strip_prefix("requests:") {
            // "56287 total, 56799 started, 56287 done, 56287 succeeded, 0 failed, 0 errored, 0 timeout"
            let get = |name: &str| {
                rest.split(',').find_map(|kv| {
                    let mut it = kv.split_whitespace();
                    let n = it.next()?.parse::<u64>().ok()?;
                    (it.next()? == name).then_some(n)
                })
            };
            counts = Some((
                get("succeeded").unwrap_or(0),
                get("failed").unwrap_or(0)
                    + get("errored").unwrap_or(0)
                    + get("timeout").unwrap_or(0),
            ));
        } else if let Some(rest) = line.strip_prefix("Application protocol:") {
            protocol = Some(rest.trim().to_owned());
        }
    }
    match (rps, counts) {
        (Some(rps), Some((succeeded, failures))) => Ok(H2load {
            succeeded,
            failures,
            rps,
            protocol,
        }),
        _ => Err("unrecognised h2load output (no `finished in` / `requests:` lines)".into()),
    }
}

/// The `q` quantile (nearest rank, `0 < q <= 1`) of the request durations in an
/// h2load `--log-file` (tab-separated: start µs, status, duration µs), in µs.
pub(super) fn h2load_log_quantile(log: &str, q: f64) -> Option<f64> {
    let mut durations: Vec<u64> = log
        .lines()
        .filter_map(|l| l.split('\t').nth(2)?.trim().parse().ok())
        .collect();
    quantile(&mut durations, q).map(|v| v as f64)
}

/// Nearest-rank quantile of `values` (sorted in place).
pub(super) fn quantile(values: &mut [u64], q: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (q * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// Total `Ir` from a callgrind output file: the `totals:` line (sum of all cost
/// lines), else the `summary:` line. The first event is `Ir` with the default
/// event set.
pub(super) fn callgrind_ir(text: &str) -> Option<u64> {
    let field = |prefix: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(prefix)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
    };
    field("totals:").or_else(|| field("summary:"))
}

/// `utime + stime` (clock ticks, all threads) from the text of `/proc/PID/stat`.
pub(super) fn proc_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The address in a server's `listening on http://ADDR` line.
pub(super) fn listening(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix("listening on http://")?;
    rest.trim_end_matches('/').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 3s test @ http://127.0.0.1:4000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  301.12us   9.85ms   90.00%
    Req/Sec    53.55k     1.20k   55.00k    80.00%
  Latency Distribution
     50%    1.15ms
     75%    1.25ms
     90%    1.40ms
     99%  812.50us
  159823 requests in 3.00s, 19.51MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  53265.12
Transfer/sec:      6.50MB
";

    #[test]
    fn parses_wrk() {
        let w = wrk(WRK).unwrap();
        assert_eq!(w.requests, 159_823);
        assert!((w.rps - 53_265.12).abs() < 1e-6);
        assert_eq!(w.p99_us, Some(812.5));
        assert_eq!(w.errors, 7);
        assert!(wrk("garbage").is_err());
    }

    #[test]
    fn parses_latencies() {
        assert_eq!(latency_us("1.50ms"), Some(1500.0));
        assert_eq!(latency_us("2.00s"), Some(2_000_000.0));
        assert_eq!(latency_us("90us"), Some(90.0));
        assert_eq!(latency_us("1.2xyz"), None);
    }

    const H2LOAD: &str = "starting benchmark...
Application protocol: h2c
progress: 100% done

finished in 2.01s, 28143.50 req/s, 1.05MB/s
requests: 56287 total, 56799 started, 56287 done, 56280 succeeded, 5 failed, 2 errored, 0 timeout
status codes: 56287 2xx, 0 3xx, 0 4xx, 0 5xx
";

    #[test]
    fn parses_h2load() {
        let h = h2load(H2LOAD).unwrap();
        assert_eq!(h.succeeded, 56_280);
        assert_eq!(h.failures, 7);
        assert!((h.rps - 28_143.5).abs() < 1e-6);
        assert_eq!(h.protocol.as_deref(), Some("h2c"));
    }

    #[test]
    fn quantiles() {
        let log: String = (1..=100)
            .map(|i| format!("17953002{i}\t200\t{i}\n"))
            .collect();
        assert_eq!(h2load_log_quantile(&log, 0.99), Some(99.0));
        assert_eq!(h2load_log_quantile(&log, 0.5), Some(50.0));
        assert_eq!(h2load_log_quantile("", 0.99), None);
        assert_eq!(quantile(&mut [7], 0.99), Some(7));
    }

    #[test]
    fn parses_callgrind() {
        let text =
            "version: 1\ncmd: x\nevents: Ir\nsummary: 15049039\nfn=(1)\n0 3\ntotals: 15049217\n";
        assert_eq!(callgrind_ir(text), Some(15_049_217));
        assert_eq!(callgrind_ir("events: Ir\nsummary: 42\n"), Some(42));
        assert_eq!(callgrind_ir("events: Ir\n"), None);
    }

    #[test]
    fn parses_proc_stat() {
        let stat =
            "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 1 0 0 0 250 17 0 0 20 0 3 0 1 2 3";
        assert_eq!(proc_stat_cpu_ticks(stat), Some(267));
    }

    #[test]
    fn parses_listening_line() {
        assert_eq!(
            listening("listening on http://127.0.0.1:4321"),
            Some("127.0.0.1:4321".parse().unwrap())
        );
        assert_eq!(
            listening("listening on http://[::1]:80/\n"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(listening("starting"), None);
    }
}
