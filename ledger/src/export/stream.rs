//! The entries and the rows, streamed together: `ledger.bin` is decoded, chained and added to
//! the Merkle tree entry by entry, and each entry in the range is compared with the next row
//! of `entries.jsonl` and `entries.csv`, so no file is ever held whole in memory.

use std::fs::File;
use std::io::{self, BufRead, Read};

use crate::chain::ChainVerifier;
use crate::checkpoint::SignedCheckpoint;
use crate::entry::{EntryView, MAX_ENCODED_LEN};
use crate::hex::Hex;
use crate::merkle::{Frontier, Hash, leaf_hash};

use super::diff::{csv_difference, json_difference};
use super::hashing::ChunkReader;
use super::rows::{csv_header, csv_row, json_row};
use super::verify::Verifier;
use super::{
    BundleProblem, CSV_COLUMNS, Description, ENTRIES_CSV, ENTRIES_JSONL, LEDGER_BIN, Range,
};

/// After this many problems in the rows, the verifier stops listing more.
const MAX_ROW_PROBLEMS: usize = 20;

/// What streaming the entries found.
pub(super) struct Streamed {
    pub(super) rows: u64,
}

impl Verifier<'_> {
    /// Opens one of the three streamed files on its hashing reader thread; `None` if it is
    /// missing (already reported) or cannot be opened (reported here).
    fn open_stream(&mut self, name: &'static str) -> Option<Rows> {
        if !self.present.contains(name) {
            return None;
        }
        match File::open(self.dir.join(name)) {
            Ok(file) => Some(Rows {
                name,
                reader: ChunkReader::open(file),
                buf: Vec::new(),
                expected: Vec::new(),
                rows: 0,
                lines: 0,
                stopped: false,
            }),
            Err(e) => {
                self.problems.push(BundleProblem::Unreadable {
                    name: name.to_owned(),
                    reason: e.to_string(),
                });
                None
            }
        }
    }

    /// Streams `ledger.bin`, `entries.jsonl` and `entries.csv` in step: every raw entry is
    /// decoded, chained and added to the tree, and every entry in the range is compared with
    /// the next row of each file. Then each file is read to its end for its hash.
    pub(super) fn stream(
        &mut self,
        range: Option<&Range>,
        description: Option<&Description>,
        checkpoint: Option<&SignedCheckpoint>,
        content: &mut Vec<BundleProblem>,
    ) -> Streamed {
        let mut bin = self.open_stream(LEDGER_BIN);
        let mut files = RowFiles {
            jsonl: self.open_stream(ENTRIES_JSONL),
            csv: self.open_stream(ENTRIES_CSV),
        };
        let mut content = Content {
            problems: content,
            row_problems: 0,
        };

        // The CSV header.
        if let Some(csv) = &mut files.csv {
            check_csv_header(csv, &mut content);
        }

        let mut rows = 0;
        if let Some(bin) = &mut bin {
            // The raw entries, each in the range compared with its rows.
            let entries = read_entries(
                &mut bin.reader,
                range,
                description,
                &mut files,
                &mut content,
            );
            rows = entries.rows;
            if entries.ok {
                // What the entries add up to, against the checkpoint.
                if let Some(note) = checkpoint {
                    check_tree(&entries.frontier, note, &mut content);
                }
                if let Some(d) = description
                    && range.is_some()
                {
                    check_counts(d, &entries, &mut content);
                }
                // Rows left over.
                if range.is_some() {
                    files.check_left_over(&mut content);
                }
            }
        }

        // Read every file to its end, for its hash.
        self.finish_streams([bin, files.jsonl, files.csv], &mut content);
        Streamed { rows }
    }

    /// Reads each file to its end and records its hash.
    fn finish_streams(&mut self, streams: [Option<Rows>; 3], content: &mut Content<'_>) {
        for stream in streams.into_iter().flatten() {
            match stream.reader.finish() {
                Ok(hash) => {
                    self.hashes.insert(stream.name, hash);
                }
                Err(e) => content.push(BundleProblem::Unreadable {
                    name: stream.name.to_owned(),
                    reason: e.to_string(),
                }),
            }
        }
    }
}

/// The problems found in the entries and the rows, in the order found.
struct Content<'a> {
    problems: &'a mut Vec<BundleProblem>,
    /// The problems found in the rows so far, listed or not.
    row_problems: usize,
}

impl Content<'_> {
    fn push(&mut self, problem: BundleProblem) {
        self.problems.push(problem);
    }

    /// Lists a problem in the rows, up to [`MAX_ROW_PROBLEMS`], then says once that more were
    /// not listed.
    fn push_row(&mut self, problem: BundleProblem) {
        self.row_problems += 1;
        if self.row_problems <= MAX_ROW_PROBLEMS {
            self.problems.push(problem);
        } else if self.row_problems == MAX_ROW_PROBLEMS + 1 {
            self.problems.push(BundleProblem::MoreRowProblems);
        }
    }
}

/// What the raw entries of `ledger.bin` gave, up to the first that failed.
struct Entries {
    /// The Merkle tree of the entries read.
    frontier: Frontier,
    /// Whether every entry decoded and chained, up to the end of the file.
    ok: bool,
    /// The number of entries in the range.
    rows: u64,
    /// The seq of the first entry in the range.
    first_seq: Option<u64>,
    /// The seq of the last entry in the range.
    last_seq: Option<u64>,
}

/// Checks that `entries.csv` starts with the documented header record; if not, its rows are
/// not checked.
fn check_csv_header(csv: &mut Rows, content: &mut Content<'_>) {
    let mut header = Vec::new();
    csv_header(&mut header);
    match csv.next_csv_record() {
        Ok(true) if csv.buf == header => {}
        Ok(_) => {
            csv.stopped = true;
            content.push_row(BundleProblem::Row {
                file: ENTRIES_CSV,
                row: 0,
                line: 1,
                reason: format!(
                    "the header is not the documented column list {}",
                    CSV_COLUMNS.join(",")
                ),
            });
        }
        Err(e) => {
            csv.stopped = true;
            content.push(BundleProblem::Unreadable {
                name: ENTRIES_CSV.to_owned(),
                reason: e.to_string(),
            });
        }
    }
    csv.rows = 0;
}

/// Reads every raw entry of `ledger.bin`, decodes it, chains it and adds it to the tree, and
/// compares each entry in the range with the next row of each file. Stops at the first entry
/// that fails.
fn read_entries(
    reader: &mut ChunkReader,
    range: Option<&Range>,
    description: Option<&Description>,
    files: &mut RowFiles,
    content: &mut Content<'_>,
) -> Entries {
    let mut entries = Entries {
        frontier: Frontier::new(),
        ok: true,
        rows: 0,
        first_seq: None,
        last_seq: None,
    };
    let mut chain: Option<ChainVerifier> = None;
    let mut offset = 0u64;
    let mut bytes = Vec::new();
    loop {
        let index = entries.frontier.size();
        let raw_problem = |reason: String| BundleProblem::RawEntry {
            index,
            offset,
            reason,
        };
        match read_raw_entry(reader, &mut bytes) {
            Ok(None) => break,
            Ok(Some(())) => {}
            Err(reason) => {
                content.push(raw_problem(reason));
                entries.ok = false;
                break;
            }
        }
        let view = match EntryView::parse(&bytes) {
            Ok(view) => view,
            Err(e) => {
                content.push(raw_problem(format!("does not decode: {e}")));
                entries.ok = false;
                break;
            }
        };
        let leaf = leaf_hash(&bytes);
        let repository = description.map_or(view.repository, |d| d.repository.as_str());
        let chain = chain.get_or_insert_with(|| ChainVerifier::new(repository));
        if let Err(e) = chain.check(&view, &leaf) {
            content.push(raw_problem(e.to_string()));
            entries.ok = false;
            break;
        }
        entries.frontier.append(&leaf);
        offset += 4 + bytes.len() as u64;

        let Some(range) = range else { continue };
        if !range.contains(&view) {
            continue;
        }
        entries.rows += 1;
        entries.first_seq.get_or_insert(view.seq);
        entries.last_seq = Some(view.seq);
        files.compare_rows(&view, &leaf, content);
    }
    entries
}

/// Checks that the entries hash to the size and root the checkpoint signs.
fn check_tree(frontier: &Frontier, checkpoint: &SignedCheckpoint, content: &mut Content<'_>) {
    let signed = checkpoint.unverified();
    if signed.size != frontier.size() {
        content.push(BundleProblem::Tree {
            reason: format!(
                "holds {} entries, but the checkpoint signs size {}",
                frontier.size(),
                signed.size
            ),
        });
    } else if signed.root != frontier.root() {
        content.push(BundleProblem::Tree {
            reason: format!(
                "the entries' Merkle root is {}, but the checkpoint signs {}",
                Hex(&frontier.root()),
                Hex(&signed.root)
            ),
        });
    }
}

/// Checks the counts `export.json` gives (rows, first and last seq) against the entries in
/// the range.
fn check_counts(d: &Description, entries: &Entries, content: &mut Content<'_>) {
    let mut differs = |what: &str, declared: String, found: String| {
        if declared != found {
            content.push(BundleProblem::Description {
                reason: format!(
                    "{what} is {declared}, but the entries of ledger.bin in the range give {found}"
                ),
            });
        }
    };
    let show = |s: Option<u64>| s.map_or("null".to_owned(), |s| s.to_string());
    differs("rows", d.rows.to_string(), entries.rows.to_string());
    differs("first_seq", show(d.first_seq), show(entries.first_seq));
    differs("last_seq", show(d.last_seq), show(entries.last_seq));
}

/// The two row files, each `None` if missing or unopenable (already reported).
struct RowFiles {
    jsonl: Option<Rows>,
    csv: Option<Rows>,
}

impl RowFiles {
    /// The row files still being checked: `entries.jsonl`, then `entries.csv`.
    fn checking(&mut self) -> impl Iterator<Item = &mut Rows> {
        [&mut self.jsonl, &mut self.csv]
            .into_iter()
            .flatten()
            .filter(|rows_file| !rows_file.stopped)
    }

    /// Compares the next row of each file with the row the entry gives; a file stops being
    /// checked at its first wrong row.
    fn compare_rows(&mut self, view: &EntryView<'_>, leaf: &Hash, content: &mut Content<'_>) {
        for rows_file in self.checking() {
            rows_file.expected.clear();
            let is_csv = rows_file.name == ENTRIES_CSV;
            if is_csv {
                csv_row(view, leaf, &mut rows_file.expected);
            } else {
                json_row(view, leaf, &mut rows_file.expected);
            }
            if let Some(problem) = rows_file.compare_next(view.seq) {
                rows_file.stopped = true;
                content.push_row(problem);
            }
        }
    }

    /// Reports a row after the last one the entries call for.
    fn check_left_over(&mut self, content: &mut Content<'_>) {
        for rows_file in self.checking() {
            let more = if rows_file.name == ENTRIES_CSV {
                rows_file.next_csv_record()
            } else {
                rows_file.next_line()
            };
            match more {
                Ok(false) => {}
                Ok(true) => content.push_row(BundleProblem::ExtraRow {
                    file: rows_file.name,
                    row: rows_file.rows,
                    line: rows_file.lines - rows_file.buf_lines() + 1,
                }),
                Err(e) => content.push(BundleProblem::Unreadable {
                    name: rows_file.name.to_owned(),
                    reason: e.to_string(),
                }),
            }
        }
    }
}

/// Reads one length-prefixed entry of `ledger.bin` into `bytes`; `None` at a clean end.
fn read_raw_entry(reader: &mut impl Read, bytes: &mut Vec<u8>) -> Result<Option<()>, String> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match reader.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err("the file ends inside an entry's length (truncated)".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot be read: {e}")),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_ENCODED_LEN {
        return Err(format!(
            "claims a length of {len} bytes, more than an entry can have"
        ));
    }
    bytes.clear();
    bytes.resize(len, 0);
    reader.read_exact(bytes).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            format!("the file ends inside the entry's {len} bytes (truncated)")
        } else {
            format!("cannot be read: {e}")
        }
    })?;
    Ok(Some(()))
}

/// One of the two row files, read row by row.
pub(super) struct Rows {
    pub(super) name: &'static str,
    pub(super) reader: ChunkReader,
    /// The last row read, with its line break.
    pub(super) buf: Vec<u8>,
    /// The row the raw entry calls for.
    pub(super) expected: Vec<u8>,
    /// Rows read so far.
    pub(super) rows: u64,
    /// Lines read so far.
    pub(super) lines: u64,
    /// Set after the first wrong row: later rows would only repeat it.
    pub(super) stopped: bool,
}

impl Rows {
    /// Reads the next line of a JSON Lines file into `buf`; `false` at the end.
    fn next_line(&mut self) -> io::Result<bool> {
        self.buf.clear();
        if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(false);
        }
        self.rows += 1;
        self.lines += 1;
        Ok(true)
    }

    /// Reads the next CSV record into `buf`, across the line breaks inside quoted fields;
    /// `false` at the end.
    pub(super) fn next_csv_record(&mut self) -> io::Result<bool> {
        self.buf.clear();
        let mut quoted = false;
        loop {
            let start = self.buf.len();
            if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
                break;
            }
            self.lines += 1;
            // Inside a quoted field every quote toggles the state; a doubled quote toggles
            // it twice. A record ends at a line feed outside quotes.
            let quotes = self.buf[start..].iter().filter(|b| **b == b'"').count();
            quoted ^= quotes % 2 == 1;
            if !quoted {
                break;
            }
        }
        if self.buf.is_empty() {
            return Ok(false);
        }
        self.rows += 1;
        Ok(true)
    }

    /// The number of physical lines `buf` spans.
    fn buf_lines(&self) -> u64 {
        let breaks = self.buf.iter().filter(|b| **b == b'\n').count() as u64;
        if self.buf.ends_with(b"\n") {
            breaks
        } else {
            breaks + 1
        }
    }

    /// Reads the next row and compares it with `expected`, the row for entry `seq`.
    fn compare_next(&mut self, seq: u64) -> Option<BundleProblem> {
        let is_csv = self.name == ENTRIES_CSV;
        let read = if is_csv {
            self.next_csv_record()
        } else {
            self.next_line()
        };
        match read {
            Err(e) => {
                return Some(BundleProblem::Unreadable {
                    name: self.name.to_owned(),
                    reason: e.to_string(),
                });
            }
            Ok(false) => {
                return Some(BundleProblem::MissingRow {
                    file: self.name,
                    row: self.rows + 1,
                    seq,
                });
            }
            Ok(true) => {}
        }
        if self.buf == self.expected {
            return None;
        }
        let reason = if is_csv {
            csv_difference(&self.buf, &self.expected)
        } else {
            json_difference(&self.buf, &self.expected)
        };
        Some(BundleProblem::Row {
            file: self.name,
            row: self.rows,
            line: self.lines - self.buf_lines() + 1,
            reason: format!("{reason} (ledger.bin entry seq {seq})"),
        })
    }
}
