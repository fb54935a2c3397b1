//! Helpers shared by the xtask tasks: locating the workspace, finding tools on
//! `PATH`, installing missing Debian packages, Python virtualenvs, and running
//! child processes with time limits.
//!
//! Everything here uses only `std` (plus a few ubiquitous commands: `kill`,
//! `apt-get`, `python3`). Conventions:
//!
//! * Progress and notices go to stderr via [`note`]; stdout is reserved for
//!   task results.
//! * Every child process is bounded in time ([`run_with_timeout`],
//!   [`Proc::stop`]) and stopped by its own PID, never by name.
//! * Errors are boxed ([`Result`]); messages say what was being done.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Boxed error used across xtask.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result alias with [`Error`] as the default error type.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Prints a progress line or notice to stderr, prefixed with `[xtask]`.
pub(crate) fn note(msg: impl fmt::Display) {
    eprintln!("[xtask] {msg}");
}

/// The workspace root (the parent of the xtask crate's manifest directory).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The workspace's target directory: `$CARGO_TARGET_DIR` if set, else `<root>/target`.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// The `cargo` to invoke: `$CARGO` (set when run through `cargo xtask`), else `cargo`.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Finds an executable named `name` on `PATH` (like `command -v`).
pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A command-line tool and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    /// Executable name looked up on `PATH`.
    pub(crate) bin: &'static str,
    /// Debian package that installs it.
    pub(crate) package: &'static str,
}

/// Makes sure every tool in `tools` is on `PATH`, installing the missing ones'
/// Debian packages with [`apt_install`] (and saying so on stderr).
pub(crate) fn ensure_tools(tools: &[Tool]) -> Result<()> {
    let missing: Vec<&Tool> = tools
        .iter()
        .filter(|t| find_tool(t.bin).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: BTreeSet<&str> = missing.iter().map(|t| t.package).collect();
    let packages: Vec<&str> = packages.into_iter().collect();
    let bins: Vec<&str> = missing.iter().map(|t| t.bin).collect();
    note(format!(
        "missing tools: {}; installing Debian packages: {}",
        bins.join(", "),
        packages.join(" ")
    ));
    apt_install(&packages)?;
    let still: Vec<&str> = missing
        .iter()
        .filter(|t| find_tool(t.bin).is_none())
        .map(|t| t.bin)
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!("still missing after apt-get install: {}", still.join(", ")).into())
    }
}

/// Installs Debian packages with `apt-get install -y` (non-interactive). If that
/// fails, runs `apt-get update` once and retries. Uses `sudo -n` when not root.
/// Each apt-get run is limited to 15 minutes.
pub(crate) fn apt_install(packages: &[&str]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    if find_tool("apt-get").is_none() {
        return Err(format!(
            "apt-get not found; install these packages by hand: {}",
            packages.join(" ")
        )
        .into());
    }
    let apt = |args: &[&str]| -> Result<bool> {
        let mut cmd = if is_root() {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        note(format!("running {}", display_cmd(&cmd)));
        let out = run_with_timeout(&mut cmd, Duration::from_secs(15 * 60))?;
        if !out.status.success() {
            note(format!(
                "apt-get {} failed ({}): {}",
                args.first().unwrap_or(&""),
                out.status,
                tail(&out.stderr, 5)
            ));
        }
        Ok(out.status.success())
    };
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend_from_slice(packages);
    if apt(&install)? {
        return Ok(());
    }
    note("apt-get install failed; running apt-get update and retrying");
    apt(&["update"])?;
    if apt(&install)? {
        Ok(())
    } else {
        Err(format!("apt-get install {} failed", packages.join(" ")).into())
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Makes (or reuses) a Python virtualenv at `dir` with `packages` installed from
/// PyPI, and returns the path of its `bin/` directory (run `bin/python`, or a
/// console script from there). Installs `python3-venv` via apt if `venv` is
/// missing. A marker file records the requested packages, so a venv is only
/// re-`pip install`ed when the list changes. Put venvs under
/// `target_dir().join("xtask")` so `cargo clean` removes them.
#[allow(dead_code, reason = "shared helper for tasks such as interop")]
pub(crate) fn ensure_venv(dir: &Path, packages: &[&str]) -> Result<PathBuf> {
    let bin = dir.join("bin");
    let python = bin.join("python");
    if !is_executable(&python) {
        ensure_tools(&[Tool {
            bin: "python3",
            package: "python3",
        }])?;
        let probe = run_with_timeout(
            Command::new("python3").args(["-c", "import venv, ensurepip"]),
            Duration::from_secs(60),
        )?;
        if !probe.status.success() {
            note("python3 venv/ensurepip missing; installing python3-venv");
            apt_install(&["python3-venv"])?;
        }
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent)?;
        }
        note(format!("creating Python venv at {}", dir.display()));
        check(
            Command::new("python3").arg("-m").arg("venv").arg(dir),
            Duration::from_secs(5 * 60),
        )?;
    }
    let marker = dir.join(".xtask-packages");
    let wanted = packages.join("\n");
    if fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        if !packages.is_empty() {
            note(format!("pip install {}", packages.join(" ")));
            check(
                Command::new(&python)
                    .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
                    .args(packages),
                Duration::from_secs(15 * 60),
            )?;
        }
        fs::write(&marker, wanted)?;
    }
    Ok(bin)
}

/// Renders a command line for messages (program and arguments, space-separated).
pub(crate) fn display_cmd(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// The last `n` non-empty lines of `bytes`, joined with ` | ` (for error messages).
pub(crate) fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Captured result of [`run_with_timeout`].
#[derive(Debug)]
pub(crate) struct Output {
    /// Exit status (after a SIGKILL if it timed out).
    pub(crate) status: ExitStatus,
    /// Everything the child wrote to stdout.
    pub(crate) stdout: Vec<u8>,
    /// Everything the child wrote to stderr.
    pub(crate) stderr: Vec<u8>,
    /// Whether the time limit was hit and the child was stopped.
    pub(crate) timed_out: bool,
}

impl Output {
    /// Stdout as (lossy) UTF-8.
    pub(crate) fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Fails unless `cmd` (what produced this output) exited 0, with the command line,
    /// its status and the last lines of its stderr.
    pub(crate) fn ensure_success(&self, cmd: &Command) -> Result<()> {
        if self.status.success() {
            return Ok(());
        }
        Err(format!(
            "`{}` failed ({}): {}",
            display_cmd(cmd),
            self.status,
            tail(&self.stderr, 3)
        )
        .into())
    }
}

/// Runs `cmd` to completion with stdout and stderr captured (stdin is null).
/// If it runs longer than `limit` it is sent SIGINT, then SIGKILL 5 s later,
/// and the result has `timed_out` set.
pub(crate) fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", display_cmd(cmd)))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let (status, timed_out) = match wait_timeout(&mut child, limit)? {
        Some(status) => (status, false),
        None => (stop_child(&mut child, Duration::from_secs(5))?, true),
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        timed_out,
    })
}

/// Runs `cmd` with inherited stdout/stderr and fails unless it exits 0 within `limit`.
pub(crate) fn check(cmd: &mut Command, limit: Duration) -> Result<()> {
    let mut child = cmd
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", display_cmd(cmd)))?;
    match wait_timeout(&mut child, limit)? {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(format!("`{}` failed: {status}", display_cmd(cmd)).into()),
        None => {
            stop_child(&mut child, Duration::from_secs(5))?;
            Err(format!("`{}` timed out after {limit:?}", display_cmd(cmd)).into())
        }
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Waits up to `limit` for `child` to exit; `None` if it is still running.
pub(crate) fn wait_timeout(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Sends signal `sig` (a name such as `INT` or `TERM`) to process `pid` with `kill(1)`.
pub(crate) fn send_signal(pid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .args(["-s", sig, "--", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .or_else(|_| {
            // No kill(1) binary: use the shell builtin.
            Command::new("sh")
                .args(["-c", r#"kill -s "$1" -- "$2""#, "sh", sig, &pid.to_string()])
                .stdin(Stdio::null())
                .status()
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -s {sig} {pid} failed: {status}").into())
    }
}

/// Stops `child`: SIGINT, then SIGKILL if it has not exited after `grace`.
/// Returns its exit status. Signals only a child that has not been reaped,
/// so the PID cannot have been reused.
pub(crate) fn stop_child(child: &mut Child, grace: Duration) -> Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let _ = send_signal(child.id(), "INT");
    if let Some(status) = wait_timeout(child, grace)? {
        return Ok(status);
    }
    note(format!(
        "pid {} did not exit {grace:?} after SIGINT; sending SIGKILL",
        child.id()
    ));
    let _ = child.kill();
    Ok(child.wait()?)
}

/// A long-running child process (typically a server) whose stdout is read
/// line by line in the background and whose stderr goes to a log file.
/// Dropping it stops the process ([`stop_child`] with a 5 s grace period).
#[derive(Debug)]
pub(crate) struct Proc {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdin null, stdout piped (read via [`Proc::wait_for_line`])
    /// and stderr appended to `log`.
    pub(crate) fn spawn(cmd: &mut Command, log: &Path) -> Result<Proc> {
        if let Some(parent) = log.parent() {
            fs::create_dir_all(parent)?;
        }
        let log_file = fs::OpenOptions::new().create(true).append(true).open(log)?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", display_cmd(cmd)))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // If nobody listens any more, keep draining so the child never blocks.
                let _ = tx.send(line);
            }
        });
        Ok(Proc {
            child: Some(child),
            lines: rx,
            log: log.to_path_buf(),
        })
    }

    /// The child's PID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The file that receives the child's stderr.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// Waits up to `limit` for a stdout line for which `pick` returns `Some`,
    /// skipping other lines. Fails if the process exits or stdout closes first.
    pub(crate) fn wait_for_line<T>(
        &mut self,
        limit: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no expected output line within {limit:?}").into());
            }
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => {
                    if let Some(v) = pick(&line) {
                        return Ok(v);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(child) = self.child.as_mut() {
                        if let Some(status) = child.try_wait()? {
                            return Err(format!("exited early ({status})").into());
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = match self.child.as_mut() {
                        Some(child) => wait_timeout(child, Duration::from_secs(2))?,
                        None => None,
                    };
                    return Err(match status {
                        Some(s) => format!("exited early ({s})").into(),
                        None => "closed stdout".into(),
                    });
                }
            }
        }
    }

    /// Stops the process (SIGINT, SIGKILL after `grace`) and returns its exit status.
    pub(crate) fn stop(mut self, grace: Duration) -> Result<ExitStatus> {
        let mut child = self.child.take().expect("child present until stop/drop");
        stop_child(&mut child, grace)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = stop_child(&mut child, Duration::from_secs(5));
        }
    }
}

/// Runs `cmd` and returns its trimmed stdout, or `None` if it cannot run or fails
/// (for optional facts such as tool versions).
pub(crate) fn capture<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Option<String> {
    let out = run_with_timeout(Command::new(program).args(args), Duration::from_secs(20)).ok()?;
    if !out.status.success() {
        return None;
    }
    let mut s = out.stdout_str().trim().to_owned();
    if s.is_empty() {
        s = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    }
    Some(s)
}

/// Reads a whole file into a string, naming the file in the error.
pub(crate) fn read_to_string(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tools() {
        assert!(find_tool("sh").is_some());
        assert!(find_tool("no-such-tool-xtask").is_none());
    }

    #[test]
    fn runs_with_timeout() {
        let out = run_with_timeout(
            Command::new("sh").args(["-c", "echo hi; echo err >&2"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(out.status.success() && !out.timed_out);
        assert_eq!(out.stdout_str(), "hi\n");
        assert_eq!(tail(&out.stderr, 1), "err");

        let t0 = Instant::now();
        let out =
            run_with_timeout(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap();
        assert!(out.timed_out && !out.status.success());
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn proc_lines_and_stop() {
        let log = std::env::temp_dir().join(format!("xtask-proc-test-{}.log", std::process::id()));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo starting; echo 'ready 42'; exec sleep 30"]);
        let mut p = Proc::spawn(&mut cmd, &log).unwrap();
        let n: u32 = p
            .wait_for_line(Duration::from_secs(10), |l| {
                l.strip_prefix("ready ")?.parse().ok()
            })
            .unwrap();
        assert_eq!(n, 42);
        let status = p.stop(Duration::from_secs(5)).unwrap();
        assert!(!status.success(), "sleep dies from SIGINT");
        let _ = fs::remove_file(&log);
    }
}
