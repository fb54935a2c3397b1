//! Rendering of benchmark results as aligned text tables and Markdown.

use std::fmt::Write as _;

/// One server's line in a results table. `None` renders as `—`.
#[derive(Debug, Clone, Default)]
pub(super) struct Row {
    /// Server name.
    pub(super) server: String,
    /// Median requests per second.
    pub(super) rps: Option<f64>,
    /// Median 99th-percentile latency, µs.
    pub(super) p99_us: Option<f64>,
    /// Median server CPU time per request, µs.
    pub(super) cpu_us: Option<f64>,
    /// Instructions per request (callgrind).
    pub(super) instr: Option<f64>,
    /// `rps` relative to the baseline server.
    pub(super) rps_ratio: Option<f64>,
    /// `instr` relative to the baseline server.
    pub(super) instr_ratio: Option<f64>,
    /// Failures and caveats.
    pub(super) notes: String,
}

/// A table for one load.
#[derive(Debug, Clone)]
pub(super) struct Table {
    /// Load title, e.g. `HTTP/1.1 GET /`.
    pub(super) title: String,
    /// How the load was generated (commands), for the Markdown heading.
    pub(super) method: String,
    /// One row per server.
    pub(super) rows: Vec<Row>,
}

const HEADERS: [&str; 8] = [
    "server",
    "req/s",
    "p99",
    "CPU µs/req",
    "instr/req",
    "req/s vs hyper",
    "instr vs hyper",
    "notes",
];

fn cells(row: &Row) -> [String; 8] {
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map_or_else(|| "—".to_owned(), f);
    [
        row.server.clone(),
        opt(row.rps, |v| thousands(v.round() as u64)),
        opt(row.p99_us, latency),
        opt(row.cpu_us, |v| format!("{v:.2}")),
        opt(row.instr, |v| thousands(v.round() as u64)),
        opt(row.rps_ratio, |v| format!("{v:.2}x")),
        opt(row.instr_ratio, |v| format!("{v:.2}x")),
        row.notes.clone(),
    ]
}

/// `1234567` -> `1,234,567`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in µs as `812 µs` or `1.23 ms` or `1.50 s`.
pub(super) fn latency(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// Renders `table` as an aligned plain-text table (title line first).
pub(super) fn text(table: &Table) -> String {
    let rows: Vec<[String; 8]> = table.rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!("{}  ({})\n", table.title, table.method);
    let mut line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            if i == 0 || i == cols.len() - 1 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
            s.push_str("  ");
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&HEADERS.map(str::to_owned));
    line(&widths.map(|w| "-".repeat(w)));
    for r in &rows {
        line(r);
    }
    out
}

/// Renders `table` as a Markdown section (`####` heading plus a table).
pub(super) fn markdown(table: &Table) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#### {} — {}\n", table.title, table.method);
    let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
    let _ = writeln!(out, "|:--|--:|--:|--:|--:|--:|--:|:--|");
    for r in &table.rows {
        let c = cells(r);
        let _ = writeln!(out, "| {} |", c.map(|s| s.replace('|', "\\|")).join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(latency(812.4), "812 µs");
        assert_eq!(latency(1234.0), "1.23 ms");
        assert_eq!(latency(2_500_000.0), "2.50 s");
    }

    #[test]
    fn renders_tables() {
        let t = Table {
            title: "HTTP/1.1 GET /".into(),
            method: "wrk".into(),
            rows: vec![
                Row {
                    server: "hyper".into(),
                    rps: Some(50_000.4),
                    p99_us: Some(900.0),
                    cpu_us: Some(19.5),
                    instr: Some(7_500.0),
                    rps_ratio: Some(1.0),
                    instr_ratio: Some(1.0),
                    notes: String::new(),
                },
                Row {
                    server: "canned".into(),
                    notes: "error".into(),
                    ..Row::default()
                },
            ],
        };
        let txt = text(&t);
        assert!(txt.contains("50,000"), "{txt}");
        assert!(txt.contains("1.00x"), "{txt}");
        let md = markdown(&t);
        assert!(
            md.contains("| hyper | 50,000 | 900 µs | 19.50 | 7,500 | 1.00x | 1.00x |  |"),
            "{md}"
        );
        assert!(md.contains("| canned | — |"), "{md}");
    }
}
