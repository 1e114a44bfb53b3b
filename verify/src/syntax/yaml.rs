//! YAML: one pass over the parser's events, with aliases sized but never expanded.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScanError, Tag};

use super::keys::{self, IdBuilder, Identity, KeyId};
use super::{Limits, SyntaxError, tags};

/// What an anchored node adds wherever an alias to it appears.
#[derive(Clone)]
struct Anchored {
    nodes: u64,
    height: usize,
    /// Its identity as a mapping key.
    id: Identity,
}

/// A mapping or sequence that has started and not yet ended.
struct Open {
    /// Its anchor id, or 0 (the parser numbers anchors from 1).
    anchor: usize,
    /// The running node count just before it started.
    nodes_before: u64,
    /// Height of its tallest finished child: 0 while it has only scalars.
    child_height: usize,
    /// Where it starts, for a message about it as a key.
    line: usize,
    column: usize,
    /// For a mapping, its keys so far; `None` for a sequence.
    keys: Option<Keys>,
    /// Its identity, built while it is open when anything may need it: it is anchored,
    /// a key, or inside a collection whose identity is being built.
    id: Option<IdBuilder>,
}

/// The keys of an open mapping.
#[derive(Default)]
struct Keys {
    /// Each key so far, with the line it is on.
    seen: HashMap<KeyId, usize>,
    /// Whether the next child is a value rather than a key.
    value_next: bool,
}

/// A second occurrence of a key, with the line of the first.
struct Duplicate {
    first_line: usize,
    merge: bool,
}

impl Duplicate {
    /// The refusal for the second occurrence, shown as `key`, at `line` and `column`.
    fn error(self, key: String, line: usize, column: usize) -> SyntaxError {
        let first_line = self.first_line;
        if self.merge {
            SyntaxError::DuplicateMergeKey {
                line,
                column,
                first_line,
            }
        } else {
            SyntaxError::DuplicateKey {
                line,
                column,
                key,
                first_line,
            }
        }
    }
}

/// The running totals of one file.
struct Counts<'l> {
    limits: &'l Limits,
    /// Open collections, innermost last; never longer than `max_depth`.
    open: Vec<Open>,
    /// Finished anchored nodes of the current document, by the parser's anchor id.
    anchors: HashMap<usize, Anchored>,
    /// Nodes so far with aliases expanded, over all documents.
    nodes: u64,
    aliases: u64,
    documents: u64,
}

impl Counts<'_> {
    /// Adds `count` nodes, refusing once the expanded total passes the limit.
    fn add_nodes(&mut self, count: u64, line: usize) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(count);
        let max = self.limits.max_yaml_expanded_nodes;
        if self.nodes <= max {
            Ok(())
        } else if self.aliases > 0 {
            Err(SyntaxError::AliasExpansion { line, max })
        } else {
            Err(SyntaxError::TooManyNodes { line, max })
        }
    }

    /// Whether the next child of the innermost open collection needs an identity: it is a
    /// mapping key, or that collection's own identity is being built.
    fn needs_id(&self) -> bool {
        self.open.last().is_some_and(|parent| {
            parent.id.is_some() || parent.keys.as_ref().is_some_and(|k| !k.value_next)
        })
    }

    /// Records a finished child of height `height` in the innermost open collection, with
    /// its identity `id`, which [`Self::needs_id`] said whether to compute when the child
    /// began. A second occurrence of a key is returned, not recorded.
    fn child(&mut self, height: usize, id: Option<Identity>, line: usize) -> Result<(), Duplicate> {
        let Some(parent) = self.open.last_mut() else {
            return Ok(());
        };
        parent.child_height = parent.child_height.max(height);
        if let (Some(builder), Some(id)) = (&mut parent.id, &id) {
            builder.child(&id.id);
        }
        let Some(keys) = &mut parent.keys else {
            return Ok(());
        };
        keys.value_next = !keys.value_next;
        if !keys.value_next {
            // A value.
            return Ok(());
        }
        // A key: `needs_id` held when it began, and nothing changes a parent while a child
        // is open, so its identity was computed.
        let Identity { id, number } =
            id.expect("a mapping key's identity is computed when it begins");
        let first = keys
            .seen
            .get(&id)
            .or_else(|| keys.seen.get(number.as_ref()?));
        if let Some(&first_line) = first {
            let merge = id.is_merge();
            return Err(Duplicate { first_line, merge });
        }
        keys.seen.insert(id, line);
        if let Some(number) = number {
            keys.seen.insert(number, line);
        }
        Ok(())
    }
}

/// Checks a YAML stream; see [`super::validate`].
pub(super) fn validate(text: &str, limits: &Limits) -> Result<(), SyntaxError> {
    let mut counts = Counts {
        limits,
        open: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        aliases: 0,
        documents: 0,
    };
    // The iterator, unlike `Parser::load`, is a loop over an explicit state stack, so deep
    // input cannot recurse; `open` stops it at `max_depth` before its stacks grow further.
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| scan_error(text, &e, limits))?;
        let (line, column) = (span.start.line(), span.start.col() + 1);
        match event {
            Event::DocumentStart(_) => {
                counts.documents += 1;
                if counts.documents > limits.max_documents {
                    return Err(SyntaxError::TooManyDocuments {
                        max: limits.max_documents,
                    });
                }
                // Anchors are scoped to their document (YAML 1.2.2 §3.2.2.2); the parser's
                // iterator keeps them across documents, so an alias into an earlier document
                // reaches us and is refused below as undefined.
                counts.anchors.clear();
            }
            Event::Scalar(value, style, anchor, tag) => {
                check_tag(text, tag.as_deref(), limits, line, column)?;
                counts.add_nodes(1, line)?;
                let id = (anchor != 0 || counts.needs_id())
                    .then(|| Identity::scalar(&value, style, tag.as_deref()));
                if anchor != 0
                    && let Some(id) = &id
                {
                    let anchored = Anchored {
                        nodes: 1,
                        height: 0,
                        id: id.clone(),
                    };
                    counts.anchors.insert(anchor, anchored);
                }
                counts
                    .child(0, id, line)
                    .map_err(|d| d.error(keys::show(&value), line, column))?;
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                let mapping = matches!(event, Event::MappingStart(..));
                check_tag(text, tag.as_deref(), limits, line, column)?;
                if counts.open.len() >= limits.max_depth {
                    return Err(SyntaxError::TooDeep {
                        line,
                        max: limits.max_depth,
                    });
                }
                counts.add_nodes(1, line)?;
                let id = (anchor != 0 || counts.needs_id()).then(|| IdBuilder::new(mapping));
                counts.open.push(Open {
                    anchor,
                    nodes_before: counts.nodes - 1,
                    child_height: 0,
                    line,
                    column,
                    keys: mapping.then(Keys::default),
                    id,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(done) = counts.open.pop() {
                    let height = done.child_height + 1;
                    let id = done.id.map(|b| Identity::collection(b.finish()));
                    if done.anchor != 0
                        && let Some(id) = &id
                    {
                        let nodes = counts.nodes - done.nodes_before;
                        let id = id.clone();
                        let anchored = Anchored { nodes, height, id };
                        counts.anchors.insert(done.anchor, anchored);
                    }
                    let key = if done.keys.is_some() {
                        "{...}"
                    } else {
                        "[...]"
                    };
                    counts
                        .child(height, id, done.line)
                        .map_err(|d| d.error(key.to_owned(), done.line, done.column))?;
                }
            }
            Event::Alias(id) => {
                counts.aliases += 1;
                if counts.aliases > limits.max_yaml_aliases {
                    return Err(SyntaxError::TooManyAliases {
                        line,
                        max: limits.max_yaml_aliases,
                    });
                }
                let Some(target) = counts.anchors.get(&id).cloned() else {
                    let name = alias_name(text, line, span.start.col());
                    return Err(if counts.open.iter().any(|o| o.anchor == id) {
                        SyntaxError::RecursiveAlias { line, column, name }
                    } else {
                        SyntaxError::UndefinedAlias { line, column, name }
                    });
                };
                if counts.open.len() + target.height > limits.max_depth {
                    return Err(SyntaxError::TooDeep {
                        line,
                        max: limits.max_depth,
                    });
                }
                counts.add_nodes(target.nodes, line)?;
                let key_id = counts.needs_id().then_some(target.id);
                counts.child(target.height, key_id, line).map_err(|d| {
                    let name = alias_name(text, line, span.start.col());
                    d.error(format!("*{name}"), line, column)
                })?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(())
}

/// Refuses a tag the policy does not allow; see the `tags` module.
fn check_tag(
    text: &str,
    tag: Option<&Tag>,
    limits: &Limits,
    line: usize,
    column: usize,
) -> Result<(), SyntaxError> {
    let Some(tag) = tag else {
        return Ok(());
    };
    match tags::refused(tag, &limits.allowed_yaml_tags) {
        None => Ok(()),
        Some(resolved) => Err(SyntaxError::ForbiddenTag {
            line,
            column,
            written: tags::written(text, line, column - 1),
            tag: resolved.chars().take(200).collect(),
        }),
    }
}

/// Maps a parser error, turning the ones we have a precise variant for into it.
fn scan_error(text: &str, error: &ScanError, limits: &Limits) -> SyntaxError {
    let mark = error.marker();
    let (line, column) = (mark.line(), mark.col() + 1);
    match error.info() {
        // The scanner refuses a 256th nested flow collection (`[` or `{`) itself, before it
        // emits the events we count; below that, our own count fires first.
        "recursion limit exceeded" if limits.max_depth < 255 => SyntaxError::TooDeep {
            line,
            max: limits.max_depth,
        },
        "while parsing node, found unknown anchor" => SyntaxError::UndefinedAlias {
            line,
            column,
            name: alias_name(text, line, mark.col()),
        },
        info => SyntaxError::Yaml {
            line,
            column,
            message: info.to_owned(),
        },
    }
}

/// Reads the name of the alias at 1-based `line`, 0-based character column `col`.
///
/// Only error paths call this, so a linear search is fine. An anchor name runs to the next
/// blank or flow indicator (YAML 1.2.2 `ns-anchor-char`).
fn alias_name(text: &str, line: usize, col: usize) -> String {
    let Some(source_line) = text.split('\n').nth(line.saturating_sub(1)) else {
        return String::new();
    };
    source_line
        .chars()
        .skip(col)
        .skip_while(|&c| c == '*')
        .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}'))
        .take(200)
        .collect()
}
