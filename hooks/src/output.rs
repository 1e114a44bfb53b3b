//! Lines for the pusher: plain ASCII, prefixed, and marked for GitLab when it runs the hook.
//!
//! Git masks control characters in hook output, and GitLab shows a custom hook's message in
//! its web interface only for lines prefixed `GL-HOOK-ERR:`.

use std::io::Write;

/// Writes prefixed ASCII lines; a closed pipe is ignored (the push outcome does not depend
/// on whether anyone reads the message).
pub struct Reporter<W: Write> {
    out: W,
    gitlab: bool,
}

impl<W: Write> Reporter<W> {
    /// A reporter that marks errors for GitLab when `GL_ID` or `GL_USERNAME` is set.
    pub fn from_env(out: W) -> Reporter<W> {
        let gitlab =
            std::env::var_os("GL_ID").is_some() || std::env::var_os("GL_USERNAME").is_some();
        Reporter { out, gitlab }
    }

    /// An informational line.
    pub fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "tally: {}", ascii(text));
    }

    /// A refusal line.
    pub fn error(&mut self, text: &str) {
        let prefix = if self.gitlab { "GL-HOOK-ERR: " } else { "" };
        let _ = writeln!(self.out, "{prefix}tally: {}", ascii(text));
    }

    /// A push refused because the server cannot judge or record it (not the pusher's fault):
    /// the reason, and who can fix it.
    pub fn server_problem(&mut self, what: &str) {
        self.error(&format!("push refused: {what}"));
        self.error("this is a server configuration problem; contact the repository administrator");
    }
}

/// Escapes everything outside printable ASCII, so no byte of a path, name or email can
/// reach the pusher's terminal as a control sequence.
pub fn ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ascii_escapes_controls_and_non_ascii() {
        assert_eq!(super::ascii("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(super::ascii("caf\u{e9}"), "caf\\u{e9}");
        assert_eq!(super::ascii("plain text: ok"), "plain text: ok");
    }
}
