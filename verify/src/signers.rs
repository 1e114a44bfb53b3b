//! Git's `allowed_signers` file (placeholder until the parser lands).
#![allow(missing_docs, dead_code, unused_variables)]
use jiff::Timestamp;
use ssh_key::public::KeyData;
#[derive(Debug, Clone)]
pub struct AllowedSigners { entries: Vec<SignerEntry> }
impl AllowedSigners {
    pub fn parse(text: &str) -> Result<Self, SignersError> { Err(SignersError::Todo) }
    pub fn load(path: &std::path::Path) -> Result<Self, SignersError> { Err(SignersError::Todo) }
    pub fn entries(&self) -> &[SignerEntry] { &self.entries }
    pub fn is_empty(&self) -> bool { self.entries.is_empty() }
    pub fn entries_for_key<'a>(&'a self, key: &'a KeyData) -> impl Iterator<Item = &'a SignerEntry> + 'a { self.entries.iter().filter(move |e| !e.cert_authority && &e.key == key) }
    pub fn authorities_for_key<'a>(&'a self, ca: &'a KeyData) -> impl Iterator<Item = &'a SignerEntry> + 'a { self.entries.iter().filter(move |e| e.cert_authority && &e.key == ca) }
}
#[derive(Debug, Clone)]
pub struct SignerEntry { pub line: usize, pub principals: String, pub cert_authority: bool, pub namespaces: Option<String>, pub valid_after: Option<Timestamp>, pub valid_before: Option<Timestamp>, pub key: KeyData, pub comment: Option<String> }
impl SignerEntry {
    pub fn matches_principal(&self, principal: &str) -> bool { false }
    pub fn allows_namespace(&self, namespace: &str) -> bool { false }
    pub fn check_validity(&self, t: Timestamp) -> Result<(), Validity> { Ok(()) }
}
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Validity { #[error("not yet valid")] NotYetValid { valid_after: Timestamp }, #[error("expired")] Expired { valid_before: Timestamp } }
#[derive(Debug, thiserror::Error)]
pub enum SignersError { #[error("todo")] Todo, #[error("io")] Io { path: std::path::PathBuf, source: std::io::Error } }
