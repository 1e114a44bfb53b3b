//! Why a file is not a valid document set, [`SyntaxError`], and how a message shows a position.

// Only the docs of SyntaxError's variants link to it.
#[cfg(doc)]
use super::Limits;

/// Why a file is not a valid document set within the [`Limits`].
///
/// Lines and columns count from 1; columns count characters, not bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxError {
    /// The file is not UTF-8 (YAML, JSON and TOML files must be).
    #[error("byte {offset}: not valid utf-8; save the file as utf-8")]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The YAML parser rejected the file.
    #[error("{}yaml syntax error: {message}", at(*line, *column))]
    Yaml {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// What the parser expected or found.
        message: String,
    },
    /// The JSON parser rejected the file.
    #[error("{}json syntax error: {message}", at(*line, *column))]
    Json {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// What the parser expected or found.
        message: String,
    },
    /// The TOML parser rejected the file.
    #[error("{}toml syntax error: {message}", at(*line, *column))]
    Toml {
        /// Line of the error, or 0 when the parser gave no position.
        line: usize,
        /// Column of the error, or 0 when the parser gave no position.
        column: usize,
        /// What the parser expected or found.
        message: String,
    },
    /// Mappings, sequences, arrays or tables nest deeper than [`Limits::max_depth`].
    #[error(
        "line {line}: nesting deeper than {max} levels; flatten the document or raise [syntax] max_depth"
    )]
    TooDeep {
        /// Line where the nesting went too deep.
        line: usize,
        /// The limit in force.
        max: usize,
    },
    /// More YAML aliases than [`Limits::max_yaml_aliases`].
    #[error(
        "line {line}: more than {max} yaml aliases; write some of the values out or raise [syntax] max_yaml_aliases"
    )]
    TooManyAliases {
        /// Line of the first alias over the limit.
        line: usize,
        /// The limit in force.
        max: u64,
    },
    /// Expanding the YAML aliases would make more nodes than
    /// [`Limits::max_yaml_expanded_nodes`].
    #[error(
        "line {line}: yaml alias expansion would exceed {max} nodes (billion laughs?); remove the anchors or raise [syntax] max_yaml_expanded_nodes"
    )]
    AliasExpansion {
        /// Line where the count went over.
        line: usize,
        /// The limit in force.
        max: u64,
    },
    /// More YAML documents than [`Limits::max_documents`].
    #[error(
        "more than {max} yaml documents in one file; split the file or raise [syntax] max_documents"
    )]
    TooManyDocuments {
        /// The limit in force.
        max: u64,
    },
    /// A YAML file without any alias has more nodes than [`Limits::max_yaml_expanded_nodes`].
    #[error(
        "line {line}: more than {max} yaml nodes; split the file or raise [syntax] max_yaml_expanded_nodes"
    )]
    TooManyNodes {
        /// Line where the count went over.
        line: usize,
        /// The limit in force.
        max: u64,
    },
    /// A YAML alias names no anchor defined before it in the same document.
    #[error(
        "{}yaml alias *{name} has no anchor &{name} before it in the same document; define the anchor first or write the value out",
        at(*line, *column)
    )]
    UndefinedAlias {
        /// Line of the alias.
        line: usize,
        /// Column of the alias.
        column: usize,
        /// The alias name, without `*`.
        name: String,
    },
    /// A YAML alias refers to a node that contains it, so it would expand forever.
    #[error(
        "{}yaml alias *{name} is inside the node anchored &{name} and would expand forever; remove the alias",
        at(*line, *column)
    )]
    RecursiveAlias {
        /// Line of the alias.
        line: usize,
        /// Column of the alias.
        column: usize,
        /// The alias name, without `*`.
        name: String,
    },
    /// A YAML mapping or JSON object has the same key twice (see the `keys` module for what
    /// counts as the same).
    #[error(
        "{}duplicate key {key} (first at line {first_line}); readers disagree on which value wins, keep only one",
        at(*line, *column)
    )]
    DuplicateKey {
        /// Line of the second occurrence.
        line: usize,
        /// Column of the second occurrence.
        column: usize,
        /// The key as shown: quoted text, `*alias`, or `[...]`/`{...}` for a collection.
        key: String,
        /// Line of the first occurrence.
        first_line: usize,
    },
    /// A YAML mapping has two merge keys (`<<`).
    #[error(
        "{}second merge key << in one mapping (first at line {first_line}); loaders disagree on whether both merge, write one with a list: <<: [*a, *b]",
        at(*line, *column)
    )]
    DuplicateMergeKey {
        /// Line of the second merge key.
        line: usize,
        /// Column of the second merge key.
        column: usize,
        /// Line of the first.
        first_line: usize,
    },
    /// A YAML node has a tag that is neither one of YAML's own types nor in
    /// [`Limits::allowed_yaml_tags`].
    #[error(
        "{}yaml tag {} is not allowed: tags other than yaml's own types can make a loader build objects or run code; remove the tag, or ask an administrator to add {tag:?} to [syntax] allowed_yaml_tags",
        at(*line, *column),
        shown_tag(written, tag)
    )]
    ForbiddenTag {
        /// Line of the tagged node.
        line: usize,
        /// Column of the tagged node.
        column: usize,
        /// The tag as written, when it could be read from the line (else empty).
        written: String,
        /// The tag as the document resolves it, which is what an allow-list entry must say.
        tag: String,
    },
}

/// Shows a tag as written, with what it resolves to when that differs.
fn shown_tag(written: &str, resolved: &str) -> String {
    if written.is_empty() || written == resolved {
        resolved.to_owned()
    } else {
        format!("{written} (resolved: {resolved})")
    }
}

/// Formats the position prefix of a message, or nothing when the position is unknown.
fn at(line: usize, column: usize) -> String {
    match (line, column) {
        (0, _) => String::new(),
        (line, 0) => format!("line {line}: "),
        (line, column) => format!("line {line} column {column}: "),
    }
}
