//! `.netrc` credentials: with `trust_env`, aiohttp sends Basic auth from `~/.netrc` (or
//! the file named by `$NETRC`) when a request has none, and for proxies whose URL has
//! none.
//!
//! The format is a stream of tokens separated by whitespace and newlines:
//! `machine <host>` starts an entry, `default` starts the entry for every other host,
//! and `login`, `password` and `account` each take a value. `macdef <name>` defines a
//! macro whose body runs to the next blank line and is skipped. A token may be quoted
//! (`"a b"`, with `\"`, `\\`, `\n`, `\r` and `\t` escapes, as curl). Where a keyword is
//! expected, `#` starts a comment to the end of the line; elsewhere it is part of a
//! value, so `password #x` is the password `#x`. Unknown tokens are skipped, as curl
//! skips them.

use std::fmt;
use std::path::{Path, PathBuf};

/// The parsed entries of a `.netrc` file. Its `Debug` output shows machines and logins,
/// never passwords.
#[derive(Clone, Default)]
pub(crate) struct Netrc {
    entries: Vec<Entry>,
}

#[derive(Clone, Default)]
struct Entry {
    /// `None` for the `default` entry.
    machine: Option<String>,
    login: Option<String>,
    password: Option<String>,
    account: Option<String>,
}

impl Netrc {
    /// Parses `.netrc` text; what cannot be understood is skipped, never an error.
    pub(crate) fn parse(text: &str) -> Netrc {
        let mut lexer = Lexer { text, pos: 0 };
        let mut entries = Vec::new();
        let mut current: Option<Entry> = None;
        while let Some(token) = lexer.next_token() {
            if !token.quoted && token.text.starts_with('#') {
                lexer.skip_line();
                continue;
            }
            match token.text.as_str() {
                "machine" => {
                    entries.extend(current.take());
                    let Some(name) = lexer.next_token() else {
                        break;
                    };
                    current = Some(Entry {
                        machine: Some(name.text),
                        ..Entry::default()
                    });
                }
                "default" => {
                    entries.extend(current.take());
                    current = Some(Entry::default());
                }
                "login" | "password" | "account" => {
                    let Some(value) = lexer.next_token() else {
                        break;
                    };
                    let Some(entry) = current.as_mut() else {
                        continue;
                    };
                    let slot = match token.text.as_str() {
                        "login" => &mut entry.login,
                        "password" => &mut entry.password,
                        _ => &mut entry.account,
                    };
                    *slot = Some(value.text);
                }
                "macdef" => {
                    entries.extend(current.take());
                    lexer.skip_line();
                    lexer.skip_block();
                }
                _ => {}
            }
        }
        entries.extend(current);
        Netrc { entries }
    }

    /// Reads `$NETRC`, else `$HOME/.netrc` (`%USERPROFILE%\_netrc` on Windows when `HOME`
    /// is unset). `None` if the file is missing; `None`, with a debug log, if it cannot be
    /// read or is not UTF-8. This reads the file synchronously: call it once, when a
    /// session is built.
    pub(crate) fn from_env() -> Option<Netrc> {
        Self::from_path(&netrc_path(|name| std::env::var_os(name))?)
    }

    /// Reads and parses the file at `path`, as [`from_env`](Netrc::from_env) does.
    pub(crate) fn from_path(path: &Path) -> Option<Netrc> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot read the netrc file");
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => Some(Self::parse(&text)),
            Err(_) => {
                tracing::debug!(path = %path.display(), "the netrc file is not UTF-8");
                None
            }
        }
    }

    /// The `(login, password)` for `host`: the first `machine` whose name matches
    /// case-insensitively (IPv6 brackets and trailing dots ignored), else the `default`
    /// entry. A missing login falls back to the `account`, as aiohttp does, and a
    /// missing password is empty; an entry with neither login nor password gives `None`.
    pub(crate) fn credentials(&self, host: &str) -> Option<(&str, &str)> {
        let host = normalize(host);
        let entry = self
            .entries
            .iter()
            .find(|e| {
                e.machine
                    .as_deref()
                    .is_some_and(|m| normalize(m).eq_ignore_ascii_case(host))
            })
            .or_else(|| self.entries.iter().find(|e| e.machine.is_none()))?;
        let login = entry.login.as_deref().or(entry.account.as_deref());
        if login.is_none() && entry.password.is_none() {
            return None;
        }
        Some((login.unwrap_or(""), entry.password.as_deref().unwrap_or("")))
    }
}

fn normalize(host: &str) -> &str {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.trim_end_matches('.')
}

/// `$NETRC`, else `$HOME/.netrc`, else on Windows `%USERPROFILE%\_netrc`.
fn netrc_path(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let set = |name: &str| get(name).filter(|v| !v.is_empty());
    if let Some(path) = set("NETRC") {
        return Some(PathBuf::from(path));
    }
    if let Some(home) = set("HOME") {
        return Some(Path::new(&home).join(".netrc"));
    }
    if cfg!(windows) {
        return set("USERPROFILE").map(|home| Path::new(&home).join("_netrc"));
    }
    None
}

impl fmt::Debug for Netrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netrc")
            .field("entries", &self.entries)
            .finish()
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("machine", &self.machine.as_deref().unwrap_or("(default)"))
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("account", &self.account.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

struct Token {
    text: String,
    quoted: bool,
}

/// Splits `.netrc` text into tokens; `pos` always sits on a character boundary.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn next_token(&mut self) -> Option<Token> {
        let rest = &self.text[self.pos..];
        let rest_trimmed = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        self.pos += rest.len() - rest_trimmed.len();
        let quoted = rest_trimmed.starts_with('"');
        if rest_trimmed.is_empty() {
            return None;
        }
        let start = self.pos + usize::from(quoted);
        let mut text = String::new();
        let mut chars = self.text[start..].char_indices();
        while let Some((i, c)) = chars.next() {
            if quoted && c == '"' {
                self.pos = start + i + 1;
                return Some(Token { text, quoted });
            }
            if !quoted && c.is_ascii_whitespace() {
                self.pos = start + i;
                return Some(Token { text, quoted });
            }
            if quoted && c == '\\' {
                match chars.next() {
                    Some((_, 'n')) => text.push('\n'),
                    Some((_, 'r')) => text.push('\r'),
                    Some((_, 't')) => text.push('\t'),
                    Some((_, other)) => text.push(other),
                    None => break,
                }
                continue;
            }
            text.push(c);
        }
        // End of input (an unterminated quote takes the rest).
        self.pos = self.text.len();
        Some(Token { text, quoted })
    }

    /// Moves past the end of the current line.
    fn skip_line(&mut self) {
        self.pos = match self.text[self.pos..].find('\n') {
            Some(i) => self.pos + i + 1,
            None => self.text.len(),
        };
    }

    /// Moves past the next blank (empty or whitespace-only) line: a `macdef` body.
    fn skip_block(&mut self) {
        while self.pos < self.text.len() {
            let rest = &self.text[self.pos..];
            let line = rest.split('\n').next().unwrap_or(rest);
            self.skip_line();
            if line.trim().is_empty() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_default_and_case() {
        let netrc = Netrc::parse(
            "machine api.example.com login alice password s3cret\n\
             machine OTHER.test\n  login bob\n  password hunter2 account acct\n\
             default login anon password guest\n",
        );
        assert_eq!(
            netrc.credentials("api.example.com"),
            Some(("alice", "s3cret"))
        );
        assert_eq!(
            netrc.credentials("API.Example.COM."),
            Some(("alice", "s3cret"))
        );
        assert_eq!(netrc.credentials("other.test"), Some(("bob", "hunter2")));
        assert_eq!(netrc.credentials("elsewhere"), Some(("anon", "guest")));
        assert_eq!(netrc.credentials("example.com"), Some(("anon", "guest")));
    }

    #[test]
    fn first_match_wins_and_missing_fields() {
        let netrc = Netrc::parse(
            "machine a login first password 1 machine a login second password 2\n\
             machine b password only\nmachine c account acc password p\nmachine d\n\
             machine [::1] login six password v6",
        );
        assert_eq!(netrc.credentials("a"), Some(("first", "1")));
        assert_eq!(netrc.credentials("b"), Some(("", "only")));
        assert_eq!(netrc.credentials("c"), Some(("acc", "p")));
        assert_eq!(
            netrc.credentials("d"),
            None,
            "no credentials and no default"
        );
        assert_eq!(netrc.credentials("[::1]"), Some(("six", "v6")));
        assert_eq!(netrc.credentials("zzz"), None);
        assert_eq!(Netrc::parse("").credentials("a"), None);
    }

    #[test]
    fn quotes_comments_and_hashes() {
        let netrc = Netrc::parse(
            "# a comment line\n\
             machine q login \"john doe\" password \"p a\\\"s\\\\s\" # trailing comment\n\
             #machine hidden login h password h\n\
             machine h login x password #notacomment\n\
             machine e login \"\" password \"unterminated",
        );
        assert_eq!(netrc.credentials("q"), Some(("john doe", "p a\"s\\s")));
        assert_eq!(netrc.credentials("hidden"), None);
        assert_eq!(netrc.credentials("h"), Some(("x", "#notacomment")));
        assert_eq!(netrc.credentials("e"), Some(("", "unterminated")));
    }

    #[test]
    fn macdef_bodies_are_skipped() {
        let netrc = Netrc::parse(
            "machine m login u password p\n\
             macdef init\ncd /pub\nmachine evil login e password e\n  \n\
             machine after login a password b\n",
        );
        assert_eq!(netrc.credentials("m"), Some(("u", "p")));
        assert_eq!(netrc.credentials("evil"), None);
        assert_eq!(netrc.credentials("after"), Some(("a", "b")));
        // A macro running to the end of the file.
        let netrc = Netrc::parse("macdef x\nmachine m login u password p");
        assert_eq!(netrc.credentials("m"), None);
    }

    #[test]
    fn odd_input_does_not_panic() {
        for text in [
            "machine",
            "login x password y",
            "machine a login",
            "\"",
            "\"\\",
            "macdef",
            "machine é login ü password ß\tdefault",
            "machine\r\nx\r\nlogin\r\nu\r\npassword\r\np\r\n",
        ] {
            let _ = Netrc::parse(text).credentials("a");
        }
        let netrc = Netrc::parse("login x password y machine a login u password p");
        assert_eq!(netrc.credentials("a"), Some(("u", "p")));
        let netrc = Netrc::parse("machine\r\nx\r\nlogin\r\nu\r\npassword\r\np\r\n");
        assert_eq!(netrc.credentials("x"), Some(("u", "p")));
    }

    #[test]
    fn debug_hides_passwords() {
        let netrc = Netrc::parse("machine m login u password topsecret account acctsecret");
        let debug = format!("{netrc:?}");
        assert!(
            debug.contains("\"m\"") && debug.contains("\"u\""),
            "{debug}"
        );
        assert!(
            !debug.contains("topsecret") && !debug.contains("acctsecret"),
            "{debug}"
        );
    }

    #[test]
    fn paths_and_files() {
        use std::ffi::OsString;
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let path = netrc_path(env(&[("NETRC", "/etc/n"), ("HOME", "/home/u")]));
        assert_eq!(path, Some(PathBuf::from("/etc/n")));
        let path = netrc_path(env(&[("NETRC", ""), ("HOME", "/home/u")]));
        assert_eq!(path, Some(PathBuf::from("/home/u/.netrc")));

        let dir = std::env::temp_dir().join(format!("aiox-netrc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("netrc");
        std::fs::write(&file, "machine f login u password p\n").unwrap();
        let netrc = Netrc::from_path(&file).unwrap();
        assert_eq!(netrc.credentials("f"), Some(("u", "p")));
        std::fs::write(&file, b"machine f login \xff\n").unwrap();
        assert!(Netrc::from_path(&file).is_none());
        assert!(Netrc::from_path(&dir.join("missing")).is_none());
        assert!(
            Netrc::from_path(&dir).is_none(),
            "a directory is unreadable"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
