//! The client section's tables, as aligned text and as Markdown, in the
//! layout of the server tables (`report.rs`): first and last column
//! left-aligned, numbers right-aligned, `—` for a missing value.

use std::fmt::Write as _;

/// One table: a title, how it was measured, and rows of already formatted cells.
#[derive(Debug, Clone)]
pub(super) struct Table {
    /// E.g. `Client HTTP/1.1 GET /`.
    pub(super) title: String,
    /// How the numbers were made (commands), for the Markdown heading.
    pub(super) method: String,
    /// Column names.
    pub(super) headers: Vec<String>,
    /// One row per client; each as long as `headers`.
    pub(super) rows: Vec<Vec<String>>,
}

/// A value or `—`.
pub(super) fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "—".to_owned(), f)
}

/// Renders `table` as aligned plain text (title line first).
pub(super) fn text(table: &Table) -> String {
    let mut widths: Vec<usize> = table.headers.iter().map(|h| h.chars().count()).collect();
    for r in &table.rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let last = widths.len().saturating_sub(1);
    let mut out = format!("{}  ({})\n", table.title, table.method);
    let mut line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            if i == 0 || i == last {
                s.push_str(c);
                s.push_str(&pad);
            } else {
                s.push_str(&pad);
                s.push_str(c);
            }
            s.push_str("  ");
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&table.headers);
    line(&widths.iter().map(|&w| "-".repeat(w)).collect::<Vec<_>>());
    for r in &table.rows {
        line(r);
    }
    out
}

/// Renders `table` as a Markdown section (`####` heading plus a table).
pub(super) fn markdown(table: &Table) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#### {} — {}\n", table.title, table.method);
    let _ = writeln!(out, "| {} |", table.headers.join(" | "));
    let last = table.headers.len().saturating_sub(1);
    let align: Vec<&str> = (0..table.headers.len())
        .map(|i| if i == 0 || i == last { ":--" } else { "--:" })
        .collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for r in &table.rows {
        let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        let t = Table {
            title: "Client HTTP/1.1 GET /".into(),
            method: "`client --requests 10`".into(),
            headers: ["client", "req/s", "notes"].map(str::to_owned).to_vec(),
            rows: vec![
                vec!["hyper-client".into(), "26,000".into(), String::new()],
                vec!["crawler".into(), opt(None, |v| v.to_string()), "a|b".into()],
            ],
        };
        let txt = text(&t);
        assert!(txt.starts_with("Client HTTP/1.1 GET /  (`client --requests 10`)\n"));
        assert!(txt.contains("hyper-client  26,000\n"), "{txt}");
        assert!(txt.contains("crawler            —  a|b\n"), "{txt}");
        let md = markdown(&t);
        assert!(md.contains("|:--|--:|:--|\n"), "{md}");
        assert!(md.contains("| crawler | — | a\\|b |\n"), "{md}");
    }
}
