//! .gitattributes that would make a checkout differ from the signed tree (issue 10).

use super::*;
use crate::common::*;

#[test]
fn refuses_gitattributes_lfs_filter_whose_pointers_are_valid_yaml() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("lfs")
        .file(
            ".gitattributes",
            "*.yaml filter=lfs diff=lfs merge=lfs -text\n",
        )
        .file(
            "big.yaml",
            "version https://git-lfs.github.com/spec/v1\n\
             oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n\
             size 12345\n",
        )
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    let line = push.line_with(&[
        short(&c),
        ".gitattributes: line 1: \"*.yaml filter=lfs diff=lfs merge=lfs -text\" sets filter=lfs, which makes git check out bytes other than the signed ones",
        "remove line 1 from '.gitattributes'",
    ]);
    assert!(!line.contains("big.yaml"), "{line}");
    assert_eq!(push.violations().len(), 1, "{}", push.stderr);
}

#[test]
fn refuses_nested_gitattributes_ident_and_eol_which_git_applies_at_checkout() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("conversions")
        .file(
            "apps/.gitattributes",
            "# conversions\n*.yaml ident\n*.json eol=crlf -diff\n",
        )
        .file("apps/a.yaml", "id: $Id$\n")
        .create();
    // What git does with the same tree: a fresh checkout is not the signed blob.
    let clone = env.root().join("plain-clone");
    run_ok(
        env.git(env.root())
            .args(["clone", "-q"])
            .arg(&work.path)
            .arg(&clone),
    );
    let checked_out = std::fs::read_to_string(clone.join("apps/a.yaml")).unwrap();
    assert!(checked_out.starts_with("id: $Id: "), "{checked_out}");

    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "apps/.gitattributes: line 2: \"*.yaml ident\" sets ident",
    ]);
    push.line_with(&[
        short(&c),
        "apps/.gitattributes: line 3: \"*.json eol=crlf -diff\" sets eol=crlf",
        "remove line 3 from 'apps/.gitattributes'",
    ]);
    assert_eq!(push.violations().len(), 2, "{}", push.stderr);
}

#[test]
fn refuses_gitattributes_macro_that_switches_on_conversion() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("macro")
        .file(
            ".gitattributes",
            "[attr]manifest text=auto\n*.yaml manifest\n",
        )
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        ".gitattributes: line 1: \"[attr]manifest text=auto\" sets text=auto",
    ]);
    assert_eq!(push.violations().len(), 1, "{}", push.stderr);
}

#[test]
fn accepts_gitattributes_that_only_turn_conversions_off() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    push_base(&work);
    work.commit("attributes")
        .file(
            ".gitattributes",
            "*.json binary\n*.yaml -text diff linguist-generated !eol -filter\n\
             [attr]plain -text -crlf\n\"with space.yaml\" plain\n",
        )
        .create();
    work.push_main_ok();
}

/// The function an agent runs on the tree it deploys finds the same problems in a whole tree.
#[test]
fn check_checkout_judges_a_whole_tree_by_the_same_rules() {
    use tally_verify::objects::Objects;
    use tally_verify::revision::{Problem, check_checkout};

    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let blob = work.hash_literally("blob", b"a: 1\n");
    let attributes = work.hash_literally("blob", b"* -text\n*.yaml filter=lfs\n");
    let dir = work.raw_tree(&[("100644", b".gitattributes", &attributes)]);
    let root = work.raw_tree(&[
        ("40000", b".GIT", &dir),
        ("100644", b"a.yaml", &dir),
        ("40000", b"apps", &dir),
        ("100644", b"b.yaml", &blob),
    ]);
    let objects = Objects::open(
        &work.path.join(".git"),
        None,
        Vec::new(),
        gix::hash::Kind::Sha1,
    )
    .unwrap();
    let id = |hex: &str| gix::ObjectId::from_hex(hex.as_bytes()).unwrap();
    let found = check_checkout(&objects, "refs/heads/main", id(&blob), id(&root)).unwrap();
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let has = |part: &str| lines.iter().any(|l| l.contains(part));
    assert!(has(".GIT: tree entry is named .git"), "{lines:#?}");
    assert!(
        has("a.yaml: tree entry mode says blob but the object is a tree"),
        "{lines:#?}"
    );
    assert!(
        has("apps/.gitattributes: line 2: \"*.yaml filter=lfs\" sets filter=lfs"),
        "{lines:#?}"
    );
    assert!(has(".GIT/.gitattributes: line 2:"), "{lines:#?}");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(
        found
            .iter()
            .all(|v| matches!(v.problem, Problem::Tree(_) | Problem::File(_)))
    );
}
