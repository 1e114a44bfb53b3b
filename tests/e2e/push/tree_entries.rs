//! Tree entries git itself would refuse with receive.fsckObjects on (issue 10).

use super::*;
use crate::common::*;

/// A tree entry as written: mode, name, object id.
type RawEntry = (String, Vec<u8>, String);

fn entry(mode: &str, name: impl AsRef<[u8]>, id: &str) -> RawEntry {
    (mode.to_owned(), name.as_ref().to_vec(), id.to_owned())
}

/// Sorts entries in git's tree order: by name, a tree's name as if it ended in `/`.
fn git_order(mut entries: Vec<RawEntry>) -> Vec<RawEntry> {
    let key = |e: &RawEntry| {
        let mut k = e.1.clone();
        if e.0 == "40000" {
            k.push(b'/');
        }
        k
    };
    entries.sort_by_key(key);
    entries
}

/// A server with `receive.fsckObjects` explicitly off, a clone as alice with `base.yaml`
/// pushed, and a signed commit on top whose root tree is `base.yaml` plus what `build` returns
/// (written as given, unsorted unless `build` sorts). Returns the refused push and the commit.
fn push_raw_tree(build: impl FnOnce(&Work<'_>) -> Vec<RawEntry>, sort: bool) -> (Push, String) {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    run_ok(
        server
            .git()
            .args(["config", "receive.fsckObjects", "false"]),
    );
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let base_yaml = work.git_ok(&["rev-parse", "HEAD:base.yaml"]);
    let mut entries = build(&work);
    entries.push(entry("100644", "base.yaml", &base_yaml));
    if sort {
        entries = git_order(entries);
    }
    let raw: Vec<(&str, &[u8], &str)> = entries
        .iter()
        .map(|(m, n, i)| (m.as_str(), n.as_slice(), i.as_str()))
        .collect();
    let tree = work.raw_tree(&raw);
    let commit = work.commit_tree(&tree, "hostile tree");
    let push = work.push(&["origin", "HEAD:refs/heads/main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    (push, commit)
}

/// A tree holding one valid `a.yaml`.
fn yaml_dir(work: &Work<'_>) -> String {
    let blob = work.hash_literally("blob", b"a: 1\n");
    work.raw_tree(&[("100644", b"a.yaml", &blob)])
}

#[test]
fn refuses_dotgit_tree_entries_in_hfs_and_ntfs_spellings_with_fsck_objects_off() {
    let names: [&str; 6] = [
        ".GIT",
        ".g\u{200c}it",
        "git~1",
        ".git::$INDEX_ALLOCATION",
        ".git. ",
        "x\\.git",
    ];
    let (push, c) = push_raw_tree(
        |work| {
            let dir = yaml_dir(work);
            names.iter().map(|n| entry("40000", n, &dir)).collect()
        },
        true,
    );
    for name in names {
        let printable = name.as_bytes().escape_ascii().to_string();
        push.line_with(&[
            short(&c),
            &format!("{printable}: tree entry is named .git or a name macOS (HFS+) or Windows (NTFS) reads as .git"),
            "git mv",
        ]);
    }
}

#[test]
fn refuses_dot_dotdot_and_slash_in_tree_entry_names() {
    let (push, c) = push_raw_tree(
        |work| {
            let dir = yaml_dir(work);
            let blob = work.hash_literally("blob", b"a: 1\n");
            vec![
                entry("40000", ".", &dir),
                entry("40000", "..", &dir),
                entry("100644", "etc/a.yaml", &blob),
            ]
        },
        true,
    );
    push.line_with(&[short(&c), " .: tree entry is named '.';"]);
    push.line_with(&[
        short(&c),
        " ..: tree entry is named '..', which would leave its directory",
    ]);
    push.line_with(&[
        short(&c),
        "etc/a.yaml: tree entry name contains '/'",
        "git never writes such a tree",
    ]);
}

#[test]
fn refuses_a_file_and_a_directory_of_the_same_name_that_are_not_neighbours() {
    let (push, c) = push_raw_tree(
        |work| {
            let dir = yaml_dir(work);
            let blob = work.hash_literally("blob", b"a: 1\n");
            vec![
                entry("100644", "app", &blob),
                entry("100644", "app.yaml", &blob),
                entry("40000", "app", &dir),
            ]
        },
        false,
    );
    push.line_with(&[short(&c), "app: tree holds two entries of this name"]);
}

#[test]
fn refuses_unsorted_tree() {
    let (push, c) = push_raw_tree(
        |work| {
            let blob = work.hash_literally("blob", b"a: 1\n");
            vec![
                entry("100644", "z.yaml", &blob),
                entry("100644", "a.yaml", &blob),
            ]
        },
        false,
    );
    push.line_with(&[short(&c), "a.yaml: tree entries are not in git's order"]);
}

#[test]
fn refuses_zero_padded_and_non_canonical_modes() {
    let (push, c) = push_raw_tree(
        |work| {
            let blob = work.hash_literally("blob", b"a: 1\n");
            vec![
                entry("0100644", "a.yaml", &blob),
                entry("100664", "b.yaml", &blob),
            ]
        },
        true,
    );
    push.line_with(&[short(&c), "a.yaml: tree entry mode 0100644 is zero-padded"]);
    push.line_with(&[
        short(&c),
        "b.yaml: tree entry mode 100664 is not one git writes",
    ]);
}

#[test]
fn refuses_symlinked_gitmodules_and_gitattributes() {
    let (push, c) = push_raw_tree(
        |work| {
            let target = work.hash_literally("blob", b"/etc/passwd");
            vec![
                entry("120000", ".gitattributes", &target),
                entry("120000", ".GITMODULES", &target),
            ]
        },
        true,
    );
    push.line_with(&[
        short(&c),
        ".gitattributes: .gitattributes is a symbolic link; git reads it from the work tree",
    ]);
    push.line_with(&[
        short(&c),
        ".GITMODULES: .gitmodules is a symbolic link",
        "replace the link with a regular file",
    ]);
}

#[test]
fn refuses_file_entry_that_points_to_a_tree() {
    let (push, c) = push_raw_tree(
        |work| vec![entry("100644", "a.yaml", &yaml_dir(work))],
        true,
    );
    push.line_with(&[
        short(&c),
        "a.yaml: tree entry mode says blob but the object is a tree",
    ]);
}

/// The adversary's view: git's own fsck flags each of these trees with the message id tally's
/// rule is named after, so tally enforces what git would with receive.fsckObjects on.
#[test]
fn git_fsck_flags_the_trees_tally_refuses() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let blob = work.hash_literally("blob", b"a: 1\n");
    let dir = work.raw_tree(&[("100644", b"a.yaml", &blob)]);
    type Entries<'a> = Vec<(&'a str, &'a [u8], &'a str)>;
    let cases: Vec<(Entries<'_>, &str)> = vec![
        (vec![("40000", b".GIT", &dir)], "hasDotgit"),
        (
            vec![("40000", ".g\u{200c}it".as_bytes(), &dir)],
            "hasDotgit",
        ),
        (vec![("40000", b"git~1", &dir)], "hasDotgit"),
        (vec![("40000", b"x\\.git", &dir)], "hasDotgit"),
        (vec![("40000", b"..", &dir)], "hasDotdot"),
        (vec![("40000", b".", &dir)], "hasDot"),
        (vec![("100644", b"a/b", &blob)], "fullPathname"),
        (vec![("0100644", b"a", &blob)], "zeroPaddedFilemode"),
        (vec![("100600", b"a", &blob)], "badFilemode"),
        (
            vec![("100644", b"b", &blob), ("100644", b"a", &blob)],
            "treeNotSorted",
        ),
        (
            vec![
                ("100644", b"app", &blob),
                ("100644", b"app.yaml", &blob),
                ("40000", b"app", &dir),
            ],
            "duplicateEntries",
        ),
        (vec![("120000", b".gitmodules", &blob)], "gitmodulesSymlink"),
        (
            vec![("120000", b".gitattributes", &blob)],
            "gitattributesSymlink",
        ),
    ];
    let trees: Vec<(String, &str)> = cases
        .iter()
        .map(|(entries, id)| (work.raw_tree(entries), *id))
        .collect();
    // --strict: badFilemode (100600) is only reported then; tally always refuses it.
    let out = work
        .git()
        .args(["fsck", "--strict", "--no-dangling"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    for (tree, msg_id) in trees {
        assert!(
            report.contains(&format!("{tree}: {msg_id}:")),
            "git fsck does not report {msg_id} for {tree}:\n{report}"
        );
    }
}
