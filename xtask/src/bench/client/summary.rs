//! Parsers for what the client section reads: the `crawler` summary lines
//! every client prints, the children's CPU time in `/proc/self/stat`, and
//! package versions in a `Cargo.lock`.

use crate::util::Result;

/// The output of one `crawler`-style run.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Summary {
    /// `requests=`.
    pub(super) requests: u64,
    /// `ok=`: responses with a status below 400.
    pub(super) ok: u64,
    /// `errors=`: failed requests and statuses of 400 and above.
    pub(super) errors: u64,
    /// `req_per_s=`.
    pub(super) rps: f64,
    /// The `status` histogram, ascending.
    pub(super) statuses: Vec<(u16, u64)>,
    /// The `memory` line, with `--memory`.
    pub(super) memory: Option<Memory>,
}

/// The `memory rss_kib=R idle_connections=I` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Memory {
    /// Resident set size after the run, KiB.
    pub(super) rss_kib: u64,
    /// Connections idle in the pool after the run.
    pub(super) idle: u64,
}

/// Parses the stdout of a client run:
///
/// ```text
/// requests=N ok=K errors=E elapsed_s=T req_per_s=R
/// status 200=K 404=M
/// memory rss_kib=R idle_connections=I        (only with --memory)
/// ```
pub(super) fn parse(out: &str) -> Result<Summary> {
    let mut lines = out.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().ok_or("no output")?;
    let field = |name: &str| -> Result<&str> {
        first
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .ok_or_else(|| format!("no {name}= in the summary line {first:?}").into())
    };
    let count = |name: &str| -> Result<u64> {
        let v = field(name)?;
        v.parse()
            .map_err(|_| format!("bad {name}={v:?} in the summary line").into())
    };
    let (requests, ok, errors) = (count("requests")?, count("ok")?, count("errors")?);
    let rps: f64 = field("req_per_s")?
        .parse()
        .map_err(|_| "bad req_per_s in the summary line")?;
    if ok + errors != requests {
        return Err(format!("ok + errors != requests in {first:?}").into());
    }
    let status_line = lines.next().ok_or("no status line")?;
    let rest = status_line
        .strip_prefix("status")
        .ok_or_else(|| format!("expected the status line, got {status_line:?}"))?;
    let mut statuses = Vec::new();
    for kv in rest.split_whitespace() {
        let parsed = kv
            .split_once('=')
            .and_then(|(s, c)| Some((s.parse::<u16>().ok()?, c.parse::<u64>().ok()?)));
        statuses.push(parsed.ok_or_else(|| format!("bad status entry {kv:?}"))?);
    }
    let mut memory = None;
    for line in lines {
        if let Some(rest) = line.strip_prefix("memory ") {
            let get = |name: &str| {
                rest.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            };
            memory = Some(Memory {
                rss_kib: get("rss_kib").ok_or("no rss_kib= in the memory line")?,
                idle: get("idle_connections").ok_or("no idle_connections= in the memory line")?,
            });
        }
    }
    Ok(Summary {
        requests,
        ok,
        errors,
        rps,
        statuses,
        memory,
    })
}

/// `cutime + cstime` (clock ticks) from the text of `/proc/self/stat`: the CPU
/// time of every child this process has waited for, so the difference across
/// one child's run and reaping is that child's utime + stime.
pub(super) fn children_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); cutime and cstime are fields 16 and 17.
    let cutime: u64 = fields.get(13)?.parse().ok()?;
    let cstime: u64 = fields.get(14)?.parse().ok()?;
    Some(cutime + cstime)
}

/// Counter `name` of group `group` in the text of `/proc/net/netstat`, where
/// each group is a line of names followed by a line of values, both starting
/// with `GROUP:`.
pub(super) fn netstat_counter(text: &str, group: &str, name: &str) -> Option<u64> {
    let prefix = format!("{group}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let names = lines.next()?;
    let values = lines.next()?;
    let i = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// The version of package `name` in the text of a `Cargo.lock` (the first
/// entry if there are several).
pub(super) fn lock_version(lock: &str, name: &str) -> Option<String> {
    let want = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == want {
            let v = lines.next()?.trim().strip_prefix("version = ")?;
            return Some(v.trim_matches('"').to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_summaries() {
        let s =
            parse("requests=5 ok=3 errors=2 elapsed_s=0.007 req_per_s=711.4\nstatus 200=3 404=1\n")
                .unwrap();
        assert_eq!((s.requests, s.ok, s.errors), (5, 3, 2));
        assert!((s.rps - 711.4).abs() < 1e-9);
        assert_eq!(s.statuses, [(200, 3), (404, 1)]);
        assert_eq!(s.memory, None);

        let s = parse(
            "requests=3 ok=0 errors=3 elapsed_s=0.004 req_per_s=671.4\nstatus\n\
             memory rss_kib=36576 idle_connections=64\n",
        )
        .unwrap();
        assert!(s.statuses.is_empty());
        assert_eq!(
            s.memory,
            Some(Memory {
                rss_kib: 36_576,
                idle: 64
            })
        );

        assert!(parse("").is_err());
        assert!(parse("requests=5 ok=3 errors=1 elapsed_s=1 req_per_s=5\nstatus\n").is_err());
        assert!(parse("requests=1 ok=1 errors=0 elapsed_s=1 req_per_s=1\n").is_err());
        assert!(parse("requests=1 ok=1 errors=0 elapsed_s=1 req_per_s=1\nstatus x\n").is_err());
        assert!(
            parse("requests=1 ok=1 errors=0 elapsed_s=1 req_per_s=1\nstatus 200=1\nmemory x=1\n")
                .is_err()
        );
    }

    #[test]
    fn parses_children_cpu() {
        let stat = "1234 (xtask (x)) S 1 1234 1234 0 -1 4194560 1 0 0 0 250 17 40 2 20 0 3 0 1";
        assert_eq!(children_cpu_ticks(stat), Some(42));
        assert_eq!(children_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn reads_netstat_counters() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n\
                    TcpExt: 0 36249 36250\n\
                    IpExt: InNoRoutes\nIpExt: 3\n";
        assert_eq!(
            netstat_counter(text, "TcpExt", "ListenOverflows"),
            Some(36_249)
        );
        assert_eq!(netstat_counter(text, "IpExt", "InNoRoutes"), Some(3));
        assert_eq!(netstat_counter(text, "TcpExt", "Nope"), None);
        assert_eq!(netstat_counter(text, "MPTcpExt", "ListenOverflows"), None);
    }

    #[test]
    fn finds_lock_versions() {
        let lock = "[[package]]\nname = \"hyper\"\nversion = \"1.12.0\"\n\n\
                    [[package]]\nname = \"hyper-util\"\nversion = \"0.1.21\"\n";
        assert_eq!(lock_version(lock, "hyper").as_deref(), Some("1.12.0"));
        assert_eq!(lock_version(lock, "hyper-util").as_deref(), Some("0.1.21"));
        assert_eq!(lock_version(lock, "reqwest"), None);
    }
}
