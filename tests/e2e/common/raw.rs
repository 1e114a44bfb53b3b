//! Raw commit objects crafted byte by byte, for what `git commit` would never write.

/// The byte range of the `gpgsig` header and its continuation lines in a raw commit.
pub fn signature_header_range(raw: &[u8]) -> std::ops::Range<usize> {
    let text = std::str::from_utf8(raw).unwrap();
    let start = text.find("\ngpgsig ").expect("commit has a gpgsig header") + 1;
    let mut end = start + text[start..].find('\n').unwrap() + 1;
    while text[end..].starts_with(' ') {
        end += text[end..].find('\n').unwrap() + 1;
    }
    start..end
}

/// Formats `name` and a multi-line value as a git header with continuation lines.
pub fn header(name: &str, value: &str) -> String {
    let mut out = String::new();
    for (i, line) in value.lines().enumerate() {
        out.push_str(if i == 0 { name } else { "" });
        out.push(' ');
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The commit with a copy of its `gpgsig` header added as `gpgsig-sha256`: git, in a SHA-1
/// repository, ignores the second header when verifying, so the old signature still "verifies"
/// a commit with a new id.
pub fn with_second_signature_header(raw: &[u8]) -> Vec<u8> {
    let range = signature_header_range(raw);
    let block = std::str::from_utf8(&raw[range.clone()]).unwrap();
    let copy = block.replacen("gpgsig ", "gpgsig-sha256 ", 1);
    let mut out = raw[..range.end].to_vec();
    out.extend_from_slice(copy.as_bytes());
    out.extend_from_slice(&raw[range.end..]);
    out
}

/// A syntactically plausible OpenPGP signature armor block.
pub const PGP_ARMOR: &str = "-----BEGIN PGP SIGNATURE-----\n\n\
iHUEABYKAB0WIQTUJmy6JEoV6NmOGbStyvLuWzXcYQUCZVPWkAAKCRCtyvLuWzXc\n\
YXhCAQDc7mI2Vg6oXhMpG7Q5v5d9sWg2mVZkVh8m3pD0m1rE4QEA0n0x5r0Q2i7w\n\
b1sG8o0Z7m3yWm1c6h0l2m7G9gkX8wY=\n=Jd5B\n\
-----END PGP SIGNATURE-----\n";

/// The commit with its SSH signature replaced by an OpenPGP armor block.
pub fn with_pgp_signature(raw: &[u8]) -> Vec<u8> {
    let range = signature_header_range(raw);
    let mut out = raw[..range.start].to_vec();
    out.extend_from_slice(header("gpgsig", PGP_ARMOR).as_bytes());
    out.extend_from_slice(&raw[range.end..]);
    out
}
