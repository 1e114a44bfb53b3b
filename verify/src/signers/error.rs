//! Why an `allowed_signers` file cannot be used: one variant per mistake, each naming the line
//! and saying what to fix.

use std::path::PathBuf;

use jiff::Timestamp;

use super::options::NAMESPACES;

/// Why an `allowed_signers` file cannot be used.
///
/// Every variant about the content carries the 1-based `line`; messages say what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignersError {
    /// The file cannot be read.
    #[error("cannot read allowed_signers file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The content of a file read by [`AllowedSigners::load`](super::AllowedSigners::load) is
    /// malformed. Shown as `<path>:<line>: <what>` (the path as the user gave it), the form
    /// compilers use and editors jump to.
    #[error("{}", in_file(path, error))]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        error: Box<SignersError>,
    },
    /// The file is not UTF-8.
    #[error("allowed_signers line {line}: not valid UTF-8; save the file as UTF-8 text")]
    NotUtf8 {
        /// The line holding the first invalid byte.
        line: usize,
    },
    /// A line holds a NUL byte, where OpenSSH would silently cut the line short.
    #[error("allowed_signers line {line}: contains a NUL byte; remove it")]
    NulByte {
        /// The line.
        line: usize,
    },
    /// A double quote is not closed.
    #[error("allowed_signers line {line}: a double quote is not closed; close it or remove it")]
    UnterminatedQuote {
        /// The line.
        line: usize,
    },
    /// The line starts with a key type: a `.pub` file (or its line) given as allowed_signers.
    /// OpenSSH would read the key type as the principal and fail on the key.
    #[error(
        "allowed_signers line {line} has no principal: start the line with the signer's email, e.g. \"alice@example.com ssh-ed25519 AAAA...\""
    )]
    NoPrincipal {
        /// The line.
        line: usize,
    },
    /// The principals field is `""`, which no one matches.
    #[error(
        "allowed_signers line {line}: the principals field is empty; write the signer's email, or a pattern such as *@example.com"
    )]
    EmptyPrincipals {
        /// The line.
        line: usize,
    },
    /// The line has principals but no key.
    #[error(
        "allowed_signers line {line}: no key; write `principals [options] keytype base64-key [comment]`, as in a .pub file prefixed with the signer's email"
    )]
    MissingKey {
        /// The line.
        line: usize,
    },
    /// The base64 key is not preceded by its key type.
    #[error(
        "allowed_signers line {line}: the key type is missing; write it before the base64 key, e.g. ssh-ed25519"
    )]
    MissingKeyType {
        /// The line.
        line: usize,
    },
    /// The key type is not one OpenSSH knows.
    #[error(
        "allowed_signers line {line}: unknown key type {keytype:?}; expected {SUPPORTED_TYPES}"
    )]
    UnknownKeyType {
        /// The line.
        line: usize,
        /// The word found where the key type should be.
        keytype: String,
    },
    /// The key type is one OpenSSH knows but tally cannot verify.
    #[error(
        "allowed_signers line {line}: key type {keytype} is not supported; use a key of type {SUPPORTED_TYPES}"
    )]
    UnsupportedKeyType {
        /// The line.
        line: usize,
        /// The key type.
        keytype: String,
    },
    /// The key is a certificate, which an `allowed_signers` line cannot list.
    #[error(
        "allowed_signers line {line}: {keytype} is a certificate; list the plain public key instead, or the issuing CA's key with the cert-authority option"
    )]
    CertificateKey {
        /// The line.
        line: usize,
        /// The certificate type.
        keytype: String,
    },
    /// The base64 key is not a valid key of its type.
    #[error(
        "allowed_signers line {line}: invalid {keytype} key ({reason}); copy the key exactly as in the signer's .pub file"
    )]
    BadKey {
        /// The line.
        line: usize,
        /// The key type written on the line.
        keytype: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An option is not one of the four OpenSSH defines.
    #[error(
        "allowed_signers line {line}: unknown option {option:?}; expected cert-authority, namespaces=, valid-after= or valid-before="
    )]
    UnknownOption {
        /// The line.
        line: usize,
        /// The option as written, up to the next comma.
        option: String,
    },
    /// An option that takes a value has none.
    #[error(
        "allowed_signers line {line}: option {option} needs a value in double quotes, e.g. {option}=\"{}\"",
        example(option)
    )]
    MissingValue {
        /// The line.
        line: usize,
        /// The option.
        option: &'static str,
    },
    /// An option value is not in double quotes, which OpenSSH requires.
    #[error(
        "allowed_signers line {line}: the value of {option}= must be in double quotes, e.g. {option}=\"{}\"",
        example(option)
    )]
    UnquotedValue {
        /// The line.
        line: usize,
        /// The option.
        option: &'static str,
    },
    /// Text follows an option without a separating comma.
    #[error(
        "allowed_signers line {line}: unexpected {garbage:?} after option {option}; separate options with commas, without spaces"
    )]
    GarbageAfterOption {
        /// The line.
        line: usize,
        /// The option.
        option: &'static str,
        /// The text after it, up to the next comma.
        garbage: String,
    },
    /// The option list ends with a comma.
    #[error("allowed_signers line {line}: the options end with a comma; remove it")]
    TrailingComma {
        /// The line.
        line: usize,
    },
    /// An option that may appear once appears again.
    #[error("allowed_signers line {line}: option {option} is given more than once; keep one")]
    DuplicateOption {
        /// The line.
        line: usize,
        /// The option.
        option: &'static str,
    },
    /// A time is not in one of the accepted forms, or is not a real date and time.
    #[error(
        "allowed_signers line {line}: invalid {option} time {value:?}; write YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, followed by Z for UTC"
    )]
    BadTime {
        /// The line.
        line: usize,
        /// `valid-after` or `valid-before`.
        option: &'static str,
        /// The time as written.
        value: String,
    },
    /// A time is not after the Unix epoch, which OpenSSH refuses.
    #[error(
        "allowed_signers line {line}: {option} time {value:?} is not after 1970-01-01T00:00:00Z; use a later time"
    )]
    TimeBeforeEpoch {
        /// The line.
        line: usize,
        /// `valid-after` or `valid-before`.
        option: &'static str,
        /// The time as written.
        value: String,
    },
    /// `valid-before` is not after `valid-after`, so the key would never be valid.
    #[error(
        "allowed_signers line {line}: valid-before ({valid_before}) is not after valid-after ({valid_after}); the key would never be valid"
    )]
    EmptyValidity {
        /// The line.
        line: usize,
        /// The `valid-after` time.
        valid_after: Timestamp,
        /// The `valid-before` time.
        valid_before: Timestamp,
    },
}

impl SignersError {
    /// Returns the 1-based line the error is about, if it is about a line.
    pub fn line(&self) -> Option<usize> {
        match self {
            SignersError::Io { .. } => None,
            SignersError::InFile { error, .. } => error.line(),
            SignersError::NotUtf8 { line }
            | SignersError::NulByte { line }
            | SignersError::UnterminatedQuote { line }
            | SignersError::NoPrincipal { line }
            | SignersError::EmptyPrincipals { line }
            | SignersError::MissingKey { line }
            | SignersError::MissingKeyType { line }
            | SignersError::UnknownKeyType { line, .. }
            | SignersError::UnsupportedKeyType { line, .. }
            | SignersError::CertificateKey { line, .. }
            | SignersError::BadKey { line, .. }
            | SignersError::UnknownOption { line, .. }
            | SignersError::MissingValue { line, .. }
            | SignersError::UnquotedValue { line, .. }
            | SignersError::GarbageAfterOption { line, .. }
            | SignersError::TrailingComma { line }
            | SignersError::DuplicateOption { line, .. }
            | SignersError::BadTime { line, .. }
            | SignersError::TimeBeforeEpoch { line, .. }
            | SignersError::EmptyValidity { line, .. } => Some(*line),
        }
    }
}

/// `<path>:<line>: <what>` for an error in a file; `<path>: <error>` for one about no line.
fn in_file(path: &std::path::Path, error: &SignersError) -> String {
    let text = error.to_string();
    match error.line() {
        Some(line) => {
            let what = text
                .strip_prefix(&format!("allowed_signers line {line}: "))
                .or_else(|| text.strip_prefix("allowed_signers "))
                .unwrap_or(&text);
            format!("{}:{line}: {what}", path.display())
        }
        None => format!("{}: {text}", path.display()),
    }
}

/// The key types tally accepts, for error messages.
const SUPPORTED_TYPES: &str = "ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, \
    ecdsa-sha2-nistp521, ssh-rsa, sk-ssh-ed25519@openssh.com or \
    sk-ecdsa-sha2-nistp256@openssh.com";

/// Returns an example value for an option, for error messages.
fn example(option: &str) -> &'static str {
    if option == NAMESPACES {
        "git"
    } else {
        "20250101Z"
    }
}
