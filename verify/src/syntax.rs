//! Bounded syntax validation (placeholder until the validator lands).
#![allow(missing_docs, dead_code, unused_variables)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)] pub enum Format { Yaml, Json, Toml }
impl Format { pub fn for_path(path: &str) -> Option<Format> { None } }
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize, serde::Serialize)]
pub struct Limits { pub max_depth: usize, pub max_yaml_aliases: u64, pub max_yaml_expanded_nodes: u64, pub max_documents: u64 }
pub fn validate(format: Format, bytes: &[u8], limits: &Limits) -> Result<(), SyntaxError> { Ok(()) }
#[derive(Debug, thiserror::Error)] pub enum SyntaxError { #[error("todo")] Todo }
