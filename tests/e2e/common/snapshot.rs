//! Output made stable for snapshot tests (`insta`): what changes from run to run (commit ids
//! of signed commits, keys generated per run, the temporary directory, repository ids, Merkle
//! roots, a checkpoint's age) is replaced by a label, so that a snapshot changes only when
//! what people read changes.

/// `text` with every `(value, label)` replaced (longest value first, so a full commit id is
/// labelled before its 10-digit abbreviation), then what is left that varies by its shape:
/// 64-hex roots (`<root>`), 40-hex commits not named (`<commit>`), 16-hex repository ids
/// (`<repository>`), `SHA256:` fingerprints not named (`SHA256:<key>`), and ages
/// (`<N> s ago`, `<N> min ago` become `<age> ago`).
pub fn normalise(text: &str, known: &[(&str, &str)]) -> String {
    let mut known: Vec<(&str, &str)> = known.to_vec();
    known.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
    let mut text = text.to_owned();
    for (value, label) in known {
        text = text.replace(value, label);
    }
    let text = by_shape(&text);
    ages(&text)
}

fn by_shape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix("SHA256:") {
            let n = tail
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
                .count();
            out.push_str(if n == 43 { "SHA256:<key>" } else { "SHA256:" });
            rest = if n == 43 { &tail[n..] } else { tail };
            continue;
        }
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .count();
        if n > 0 {
            let word = &rest[..n];
            out.push_str(match n {
                64 => "<root>",
                40 => "<commit>",
                16 => "<repository>",
                _ => word,
            });
            rest = &rest[n..];
            continue;
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn ages(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut line = line.to_owned();
        for unit in [" s ago", " min ago"] {
            if let Some(end) = line.find(unit) {
                let start = line[..end]
                    .rfind(|c: char| !c.is_ascii_digit())
                    .map_or(0, |i| i + 1);
                if start < end {
                    line.replace_range(start..end + unit.len(), "<age> ago");
                }
            }
        }
        out.push_str(&line);
    }
    out
}
