//! What a checkout wrote is byte for byte the verified tree.
//!
//! git transforms blobs on their way to the work tree when attributes or configuration say
//! so: `core.autocrlf`/`core.eol`, `.git/info/attributes` and `core.attributesFile`, clean and
//! smudge filters (git-lfs fetches the real content from a server nobody verified). tally
//! refuses `.gitattributes` lines that ask for any of that, but an agent machine's own
//! configuration is outside any tree. So after `tally pull` moved the work tree, every file
//! of the verified tree is read back and compared with its blob; any difference refuses the
//! deployment, naming the files.

use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use crate::AgentError;
use tally_verify::objects::Objects;

/// Most differing paths named in the refusal.
const MAX_NAMED: usize = 10;

/// Compares every blob and symlink of `tree` with what is at its path under `work_tree`.
pub fn compare(objects: &Objects, tree: ObjectId, work_tree: &Path) -> Result<(), AgentError> {
    let mut differ = Vec::new();
    let mut total = 0usize;
    walk(
        objects,
        tree,
        work_tree,
        &mut PathBuf::new(),
        &mut |path, why| {
            total += 1;
            if differ.len() < MAX_NAMED {
                differ.push(format!("{} ({why})", path.display()));
            }
        },
    )?;
    if total == 0 {
        return Ok(());
    }
    if total > differ.len() {
        differ.push(format!("and {} more", total - differ.len()));
    }
    Err(AgentError::WorkTreeDiffers {
        work_tree: work_tree.to_owned(),
        tree,
        paths: differ,
        total,
    })
}

fn clone_error(e: impl std::fmt::Display) -> AgentError {
    AgentError::Clone {
        message: e.to_string(),
    }
}

fn walk(
    objects: &Objects,
    tree: ObjectId,
    root: &Path,
    prefix: &mut PathBuf,
    report: &mut impl FnMut(&Path, &str),
) -> Result<(), AgentError> {
    let mut buf = Vec::new();
    let raw = objects
        .read(&tree, gix::objs::Kind::Tree, &mut buf)
        .map_err(clone_error)?;
    let entries: Vec<(EntryKind, Vec<u8>, ObjectId)> =
        gix::objs::TreeRefIter::from_bytes(raw, objects.hash_kind())
            .map(|e| {
                e.map(|e| (e.mode.kind(), e.filename.to_vec(), e.oid.to_owned()))
                    .map_err(clone_error)
            })
            .collect::<Result<_, _>>()?;
    let mut blob = Vec::new();
    for (kind, name, id) in entries {
        let name = std::str::from_utf8(&name)
            .map_err(|_| clone_error(format!("tree {tree} has a name that is not UTF-8")))?;
        prefix.push(name);
        let on_disk = root.join(&*prefix);
        match kind {
            EntryKind::Tree => walk(objects, id, root, prefix, report)?,
            EntryKind::Commit => {}
            EntryKind::Link => {
                let want = objects
                    .read(&id, gix::objs::Kind::Blob, &mut blob)
                    .map_err(clone_error)?;
                match std::fs::read_link(&on_disk) {
                    Ok(target) if target.as_os_str().as_encoded_bytes() == want => {}
                    Ok(_) => report(prefix, "symbolic link to another target"),
                    Err(_) => report(prefix, "not the symbolic link the tree holds"),
                }
            }
            EntryKind::Blob | EntryKind::BlobExecutable => {
                let want = objects
                    .read(&id, gix::objs::Kind::Blob, &mut blob)
                    .map_err(clone_error)?;
                match std::fs::symlink_metadata(&on_disk) {
                    Ok(m) if m.is_file() => match std::fs::read(&on_disk) {
                        Ok(bytes) if bytes == want => {}
                        Ok(_) => report(prefix, "content differs from the signed blob"),
                        Err(e) => report(prefix, &format!("unreadable: {e}")),
                    },
                    Ok(_) => report(prefix, "not a regular file"),
                    Err(_) => report(prefix, "missing"),
                }
            }
        }
        prefix.pop();
    }
    Ok(())
}
