//! The bounds a file is checked within, [`Limits`] and [`TOML_MAX_DEPTH`], read from the policy's
//! `[syntax]` table.

use serde::{Deserialize, Serialize};

use super::AllowedTag;

/// Bounds on what a document may cost to check, and to load for whoever reads it next, and the
/// YAML tags it may use.
///
/// Read from the `[syntax]` table of the policy file; every field is optional and defaults to the
/// value documented on it. The defaults leave an order of magnitude of headroom over real
/// Kubernetes manifests, Helm values and Cargo-style TOML, and stay far below what would hurt a
/// consumer that expands aliases or recurses over nesting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Deepest nesting of mappings, sequences, arrays and tables; default 64.
    ///
    /// A top-level mapping, JSON object or the TOML root table is depth 1. YAML aliases count as
    /// the nesting they would expand to. Real manifests stay under about 20 levels (deep CRD
    /// schemas reach about 30); recursive loaders in other tools overflow somewhere in the
    /// thousands. TOML is further capped at [`TOML_MAX_DEPTH`], and YAML flow collections
    /// (`[`, `{`) at 255 by the parser itself.
    pub max_depth: usize,
    /// Most YAML alias (`*name`) occurrences in one file; default 10,000.
    ///
    /// Heavy legitimate users (`<<: *defaults` in each job of a CI file, each service of a
    /// compose file) use hundreds. The expansion bound below is what stops amplification; this one
    /// only refuses files that are mostly references, which no manifest is.
    pub max_yaml_aliases: u64,
    /// Most nodes the file would have with every alias expanded, counted over all its
    /// documents; default 1,000,000.
    ///
    /// A realistic 1 MiB manifest has on the order of 100,000 nodes, so this allows ten times that
    /// through anchors, while a consumer that expands aliases (`kubectl`, Helm, most loaders)
    /// builds at most a million nodes, some tens to hundreds of megabytes, instead of the
    /// billion of the classic attack.
    pub max_yaml_expanded_nodes: u64,
    /// Most YAML documents in one file; default 10,000.
    ///
    /// A multi-document bundle of every CRD of a large operator has a few hundred.
    pub max_documents: u64,
    /// YAML tags allowed besides YAML's own types; default none.
    ///
    /// Each entry is a local tag (`"!Ref"`) or a full tag URI, matched exactly against the tag
    /// a node resolves to; see [`AllowedTag`]. Language-specific tags such as
    /// `!!python/object/apply:os.system` are refused unless listed here.
    pub allowed_yaml_tags: Vec<AllowedTag>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_yaml_aliases: 10_000,
            max_yaml_expanded_nodes: 1_000_000,
            max_documents: 10_000,
            allowed_yaml_tags: Vec::new(),
        }
    }
}

/// Deepest TOML nesting checked, whatever [`Limits::max_depth`] says.
///
/// The `toml` crate builds its tree recursively; its own guards bound inline nesting and dotted
/// keys to 80 each, but not their product (`a = { b.c.d… = { b.c.d… = …` nests 80 × 80 deep and
/// overflows a 2 MiB thread stack). The scan before parsing lets through at most about twice this
/// depth, which leaves a wide margin.
pub const TOML_MAX_DEPTH: usize = 128;
