//! The bundle's `README`: what an auditor reads first, in plain words, with the facts of this
//! export filled in and the steps to verify it, with tally and without.

use crate::checkpoint::VerifiedCheckpoint;

use super::{Description, REVOKED_KEYS};

/// Renders `README` for the bundle `d` describes, signed by `checkpoint`.
pub(super) fn readme(d: &Description, checkpoint: &VerifiedCheckpoint) -> String {
    let rows = match (d.first_seq, d.last_seq) {
        (Some(first), Some(last)) => format!("{} entries, seq {first} to {last}", d.rows),
        _ => "none: no entry falls in the range".to_owned(),
    };
    let branch = match &d.branch {
        Some(b) => format!("{b}, and the ledger-wide entries (empty ref, e.g. policy changes)"),
        None => "every branch".to_owned(),
    };
    let since = d
        .since
        .as_deref()
        .map_or("the first entry".to_owned(), |t| format!("{t} (inclusive)"));
    let until = d
        .until
        .as_deref()
        .map_or("the checkpoint".to_owned(), |t| format!("{t} (exclusive)"));
    let signed = jiff::Timestamp::from_second(i64::try_from(checkpoint.time()).unwrap_or(0))
        .map(|t| t.to_string())
        .unwrap_or_else(|_| checkpoint.time().to_string());
    let revoked = if d.policy_files.iter().any(|f| f == REVOKED_KEYS) {
        "  revoked_keys    The revocation file in force (whatever its name in the repository).\n"
    } else {
        ""
    };
    format!(
        "TALLY AUDIT EXPORT
==================

This directory is an export of a tally ledger: the signed, tamper-evident record of every
push that was accepted or refused on the protected branches of a git repository (who pushed
what, when, signed by whom, and why a refusal was made).

What was exported
-----------------
  Ledger:       {origin}
  Entries:      {size}, Merkle root {root}
  Checkpoint:   signed by the ledger key at {signed}
  Rows:         {rows}
  Branch:       {branch}
  From:         {since}
  Until:        {until}
  Exported:     {exported_at} by {exported_by}
  Policy:       the policy files in this directory have digest {policy_digest}

The files
---------
  entries.csv     One row per exported entry, for spreadsheets. CSV as in RFC 4180: UTF-8,
                  CRLF line ends, a header row; a field with a comma, a double quote or a line
                  break is quoted, with double quotes doubled. Lists (commits, principals,
                  fingerprints, reasons) hold one item per line inside their cell.
  entries.jsonl   The same rows, one JSON object per line, for scripts.
  ledger.bin      The raw bytes of every entry of the ledger, from the first one to the
                  checkpoint, each preceded by its length (4 bytes, big-endian). These bytes are
                  what the ledger hashes and signs; the rows are derived from them. They cover
                  the whole ledger, not only the rows, so that nothing can be left out unseen.
  checkpoint      The ledger's signed checkpoint: its size and Merkle root, signed with the
                  ledger key (a C2SP signed note).
  ledger_key.pub  The ledger's public key as the exporter had it. Do not rely on this copy:
                  verify with a copy of the key you obtained independently.
  policy.toml     The policy in force when the export was made.
  allowed_signers The keys allowed to sign commits, in git's allowed_signers format.
{revoked}  export.json     What was exported (the range and the counts above), machine-readable.
  MANIFEST        The SHA-256 of every other file, one `<hash>  <file>` line each.
  MANIFEST.sig    The ledger key's SSH signature over MANIFEST (namespace tally-export).

How to verify it
----------------
1. Obtain the ledger's public key from a source you trust, not from this directory (the
   repository's administrators print it with `tally ledger key`; deployment agents pin it).
   Save it as, say, ledger.pub.

2. Run

       tally export verify <this directory> --ledger-key ledger.pub

   It checks that MANIFEST is signed by that key, that every file has the hash MANIFEST
   gives and that no file is missing or added; it recomputes every entry's hash, the hash
   chain and the Merkle root from ledger.bin and checks that the checkpoint signs exactly that
   root and size; and it checks that entries.csv and entries.jsonl say exactly what the raw
   entries in the range say, row by row. It exits 0 if all of this holds, and otherwise 1,
   naming the file and the row at fault.

3. Without tally, standard tools check that the files are the ones the ledger key signed:

       sha256sum -c MANIFEST
       echo \"ledger namespaces=\\\"tally-export\\\" $(cat ledger.pub)\" > ledger.signers
       ssh-keygen -Y verify -f ledger.signers -I ledger -n tally-export -s MANIFEST.sig < MANIFEST

   (`ssh-keygen -Y check-novalidate -n tally-export -s MANIFEST.sig < MANIFEST` checks the
   signature alone, without checking whose key made it.) These do not recompute the hash
   chain or the Merkle root; `tally export verify` does.

What the signature proves, and what it does not
-----------------------------------------------
Whoever holds the ledger key could sign a different history. To rule that out, compare the
checkpoint's size and root with one recorded independently, for example by a deployment
agent (`tally verify` keeps it in its state file) or in an earlier export: the ledger is
append-only, so a later checkpoint must contain every entry of an earlier one unchanged
(the first entries of ledger.bin must be the earlier export's).

The column order of entries.csv, the fields of entries.jsonl and the byte layout of every
file are documented in tally's docs/export.md.
",
        origin = d.origin,
        size = d.size,
        root = d.root,
        exported_at = d.exported_at,
        exported_by = d.exported_by,
        policy_digest = d.policy_digest,
    )
}
