//! The parsed file, [`AllowedSigners`], and its lines, [`SignerEntry`]: reading a file, and the
//! lookups the signature checks make in it.

use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use ssh_key::public::KeyData;

use super::line::parse_line;
use super::{SignersError, Validity, match_pattern_list};

/// All lines of an `allowed_signers` file.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    entries: Vec<SignerEntry>,
}

impl AllowedSigners {
    /// Parses the text of an `allowed_signers` file.
    ///
    /// Times without `Z` are read in the system's local time zone, as `ssh-keygen` reads them
    /// (in standard time; see [`AllowedSigners::parse_in`]).
    pub fn parse(text: &str) -> Result<Self, SignersError> {
        // Finding the system zone can mean scanning the zoneinfo tree (when /etc/localtime
        // is a copy, not a link), milliseconds that every hook run would pay; only a
        // validity option can need it.
        let lower = text.to_ascii_lowercase();
        let tz = if lower.contains("valid-after") || lower.contains("valid-before") {
            TimeZone::system()
        } else {
            TimeZone::UTC
        };
        Self::parse_in(text, &tz)
    }

    /// Parses the text of an `allowed_signers` file, reading times without `Z` in `tz`.
    ///
    /// For tests and reproducible results: the same file means the same thing on every host.
    /// As OpenSSH's `mktime(3)` call does, a local time is read in the zone's standard time,
    /// even when daylight saving time is in force at that date.
    pub fn parse_in(text: &str, tz: &TimeZone) -> Result<Self, SignersError> {
        let mut entries = Vec::new();
        // OpenSSH reads the file with getline(3): lines end at '\n' only, and the last line
        // needs no terminator.
        for (index, raw) in text.split('\n').enumerate() {
            if let Some(entry) = parse_line(index + 1, raw, tz)? {
                entries.push(entry);
            }
        }
        Ok(Self { entries })
    }

    /// Reads and parses an `allowed_signers` file; errors name the path.
    pub fn load(path: &Path) -> Result<Self, SignersError> {
        let bytes = std::fs::read(path).map_err(|source| SignersError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses the bytes of the `allowed_signers` file at `path` (read already); errors name
    /// the path as given, and the line (`<path>:<line>: <what>`).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, SignersError> {
        let in_file = |error: SignersError| SignersError::InFile {
            path: path.to_owned(),
            error: Box::new(error),
        };
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            in_file(SignersError::NotUtf8 { line })
        })?;
        Self::parse(text).map_err(in_file)
    }

    /// Returns every signer line, in file order.
    pub fn entries(&self) -> &[SignerEntry] {
        &self.entries
    }

    /// Returns whether the file lists no signer at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the lines that list `key` itself, that is, lines without `cert-authority`.
    ///
    /// As in `check_allowed_keys_line`, a `cert-authority` line never vouches for signatures
    /// made directly with the CA key.
    pub fn entries_for_key<'a>(
        &'a self,
        key: &'a KeyData,
    ) -> impl Iterator<Item = &'a SignerEntry> + 'a {
        self.entries
            .iter()
            .filter(move |e| !e.cert_authority && e.key == *key)
    }

    /// Returns the `cert-authority` lines whose key is `ca`.
    pub fn authorities_for_key<'a>(
        &'a self,
        ca: &'a KeyData,
    ) -> impl Iterator<Item = &'a SignerEntry> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.cert_authority && e.key == *ca)
    }
}

/// One signer line of an `allowed_signers` file.
#[derive(Debug, Clone)]
pub struct SignerEntry {
    /// The 1-based line number in the file.
    pub line: usize,
    /// The principals pattern-list, as written (without the quotes, if it was quoted).
    pub principals: String,
    /// Whether the key is a certificate authority (`cert-authority`) rather than a signing key.
    pub cert_authority: bool,
    /// The `namespaces=` pattern-list, unquoted; `None` allows every namespace.
    pub namespaces: Option<String>,
    /// The `valid-after=` time: the key is not valid before it.
    pub valid_after: Option<Timestamp>,
    /// The `valid-before=` time: the key is not valid after it.
    pub valid_before: Option<Timestamp>,
    /// The public key.
    pub key: KeyData,
    /// The text after the key, if any.
    pub comment: Option<String>,
}

impl SignerEntry {
    /// Returns whether `principal` (such as a committer email) matches the principals field.
    ///
    /// The field is an OpenSSH pattern-list, matched case-sensitively as `sshsig.c` does; see
    /// [`match_pattern_list`].
    pub fn matches_principal(&self, principal: &str) -> bool {
        match_pattern_list(principal, &self.principals)
    }

    /// Returns whether the line allows signatures in `namespace` (such as `"git"`).
    ///
    /// Without `namespaces=` every namespace is allowed; otherwise the namespace must match the
    /// pattern-list (`check_allowed_keys_line`). An empty list, `namespaces=""`, allows none.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespaces
            .as_deref()
            .is_none_or(|list| match_pattern_list(namespace, list))
    }

    /// Checks that the key is valid at `t`.
    ///
    /// Both bounds are inclusive and compared in whole seconds, as in `check_allowed_keys_line`:
    /// the key is refused when `t < valid-after` or `t > valid-before`.
    pub fn check_validity(&self, t: Timestamp) -> Result<(), Validity> {
        // OpenSSH compares whole seconds (`uint64_t verify_time`); `as_second` truncates the
        // fraction, so a time within the last second of the window is still inside it.
        let now = t.as_second();
        if let Some(valid_after) = self.valid_after
            && now < valid_after.as_second()
        {
            return Err(Validity::NotYetValid { valid_after });
        }
        if let Some(valid_before) = self.valid_before
            && now > valid_before.as_second()
        {
            return Err(Validity::Expired { valid_before });
        }
        Ok(())
    }
}
