//! Lines for the pusher: plain ASCII, prefixed, and marked for GitLab when it runs the hook.
//!
//! Git masks control characters in hook output, and GitLab shows a custom hook's message in
//! its web interface only for lines prefixed `GL-HOOK-ERR:`. Every line fits a terminal of
//! [`WIDTH`] columns once git has put `remote: ` before it: a longer text is wrapped, its
//! continuation lines indented, each keeping the prefixes.

use std::io::Write;

/// Columns a line may take on the pusher's terminal, git's `remote: ` included.
pub const WIDTH: usize = 100;

/// What git puts before each line of hook output on the pusher's side.
const REMOTE: &str = "remote: ";

/// What tally puts before each line.
const TALLY: &str = "tally: ";

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

    /// An informational line (wrapped to fit).
    pub fn line(&mut self, text: &str) {
        self.write("", "", text);
    }

    /// A refusal line (wrapped to fit).
    pub fn error(&mut self, text: &str) {
        self.error_block("", text);
    }

    /// A refusal line led by `lead` (`"  fix: "`), wrapped to fit, its continuation lines
    /// indented under the text.
    pub fn error_block(&mut self, lead: &str, text: &str) {
        let prefix = if self.gitlab { "GL-HOOK-ERR: " } else { "" };
        self.write(prefix, lead, text);
    }

    fn write(&mut self, prefix: &str, lead: &str, text: &str) {
        let width = WIDTH.saturating_sub(REMOTE.len() + prefix.len() + TALLY.len());
        for line in wrap(&ascii(text), width, lead) {
            let _ = writeln!(self.out, "{prefix}{TALLY}{line}");
        }
    }

    /// A push refused because the server cannot judge or record it (not the pusher's fault):
    /// the reason, and who can fix it.
    pub fn server_problem(&mut self, what: &str) {
        self.error(&format!("push refused: {what}"));
        self.error("this is a server configuration problem; contact the repository administrator");
    }
}

/// Splits `text` into lines of at most `width` columns: the first led by `lead`, the others
/// indented as far (two spaces without a lead). Where it can, a line ends after a `;`, `:` or
/// `,`. What a person copies is never split (see `units`): a quoted name, and a `git ...`
/// command up to the end of its clause; such a unit longer than a line gets a line of its
/// own, longer than `width`, rather than be cut into something that runs another command.
/// Spacing inside the text is kept: `two  spaces.sh` stays that file's name.
pub fn wrap(text: &str, width: usize, lead: &str) -> Vec<String> {
    let indent = if lead.is_empty() {
        "  ".to_owned()
    } else {
        " ".repeat(lead.len())
    };
    let mut lines: Vec<String> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let len = |words: &[String], first: bool| {
        let start = if first { lead.len() } else { indent.len() };
        start + words.iter().map(String::len).sum::<usize>() + words.len().saturating_sub(1)
    };
    let emit = |words: &[String], lines: &mut Vec<String>| {
        let start = if lines.is_empty() { lead } else { &indent };
        lines.push(format!("{start}{}", words.join(" ")));
    };
    for word in units(text.trim_matches(' ')) {
        words.push(word);
        while words.len() > 1 && len(&words, lines.is_empty()) > width {
            let first = lines.is_empty();
            let mut fits = words.len() - 1;
            while fits > 1 && len(&words[..fits], first) > width {
                fits -= 1;
            }
            let clause = (1..=fits).rev().find(|&k| {
                words[k - 1].ends_with([';', ':', ',']) && 2 * len(&words[..k], first) >= width
            });
            let cut = clause.unwrap_or(fits);
            emit(&words[..cut], &mut lines);
            words.drain(..cut);
        }
    }
    if !words.is_empty() || lines.is_empty() {
        emit(&words, &mut lines);
    }
    lines
}

/// The pieces [`wrap`] may put on different lines, in order; joined with single spaces they
/// give `text` back. A piece is a word, or one of what must stay whole:
/// - a single-quoted span (`'a name with spaces.yaml'`, `'git commit --amend -S'`);
/// - a command: from a word `git`, `tally` or `ssh-keygen` (maybe after `(` or a backquote)
///   to the end of its clause, the first word that
///   ends with `;`, `,`, `:` or `)`, or the end of the text.
///
/// Runs of spaces stay inside a piece, so nothing a person copies loses its spacing.
fn units(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut quoted = false;
    let mut command = false;
    // A command that opened with a backquote ends with the word that closes it.
    let mut backquoted = false;
    for word in text.split(' ') {
        match current.as_mut() {
            Some(unit) => {
                unit.push(' ');
                unit.push_str(word);
            }
            None => {
                command = ["git", "tally", "ssh-keygen"]
                    .iter()
                    .any(|c| word.trim_start_matches(['(', '`']) == *c);
                backquoted = command && word.trim_start_matches('(').starts_with('`');
                current = Some(word.to_owned());
            }
        }
        // A word that starts with a quote (or `(`, then a quote) and holds an odd number of
        // them opens a quoted span; inside one, a word with an odd number closes it. An
        // apostrophe inside a word of prose ("agent's") does neither.
        let odd = word.matches('\'').count() % 2 == 1;
        if quoted {
            quoted = !odd;
        } else {
            quoted = odd && word.trim_start_matches('(').starts_with('\'');
        }
        let clause_ends = if backquoted {
            word.matches('`').count() % 2 == 1 && current.as_deref() != Some(word)
        } else {
            word.ends_with([';', ',', ':', ')'])
        };
        if !quoted && (!command || clause_ends) {
            out.extend(current.take());
            command = false;
        }
    }
    out.extend(current);
    out
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
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn ascii_escapes_controls_and_non_ascii() {
        assert_eq!(super::ascii("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(super::ascii("caf\u{e9}"), "caf\\u{e9}");
        assert_eq!(super::ascii("plain text: ok"), "plain text: ok");
    }

    #[test]
    fn wrapped_lines_fit_and_break_after_a_clause() {
        let fix = "set up SSH signing once: git config gpg.format ssh; git config user.signingkey ~/.ssh/id_ed25519.pub; then re-sign: git rebase --exec 'git commit --amend --no-edit -S' 0a1b2c3d4e";
        let lines = super::wrap(fix, 78, "  fix: ");
        assert_eq!(
            lines,
            [
                "  fix: set up SSH signing once: git config gpg.format ssh;",
                "       git config user.signingkey ~/.ssh/id_ed25519.pub; then re-sign:",
                "       git rebase --exec 'git commit --amend --no-edit -S' 0a1b2c3d4e",
            ]
        );
        assert_eq!(super::wrap("short", 78, ""), ["short"]);
        assert_eq!(super::wrap("", 78, "  fix: "), ["  fix: "]);
        let long = format!("a {} b", "x".repeat(100));
        assert_eq!(
            super::wrap(&long, 20, ""),
            ["a", &format!("  {}", "x".repeat(100)), "  b"]
        );
    }

    /// What a person copies stays on one line, with its spacing: a command is never cut
    /// before its base commit or inside its quotes, nor a quoted file name.
    #[test]
    fn commands_and_quoted_names_are_never_split() {
        let fix = "sign it, then: git rebase --exec 'git commit --amend --no-edit --reset-author -S' 6254f4fecd";
        for width in [20, 40, 60, 80] {
            let lines = super::wrap(fix, width, "  fix: ");
            assert!(
                lines.iter().any(|l| l.trim_start().starts_with(
                    "git rebase --exec 'git commit --amend --no-edit --reset-author -S' 6254f4fecd"
                )),
                "{width}: {lines:?}"
            );
        }
        let name = "remove it (git rm --cached -- 'a  long name with   spaces in it.sh') or ask";
        let lines = super::wrap(name, 30, "");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("(git rm --cached -- 'a  long name with   spaces in it.sh')")),
            "{lines:?}"
        );
        assert_eq!(super::wrap("a  b", 78, ""), ["a  b"]);
        // An apostrophe in prose opens nothing.
        let prose = super::wrap(
            "this agent's own check: signing key is not in allowed_signers",
            20,
            "",
        );
        assert!(
            prose.len() > 2 && prose.iter().all(|l| l.len() <= 30),
            "{prose:?}"
        );
        // Prose around them still wraps.
        assert!(super::wrap(&"word ".repeat(40), 30, "").len() > 3);
    }

    #[test]
    fn every_line_keeps_the_gitlab_prefix_and_fits_with_it() {
        let mut out = Vec::new();
        let mut r = super::Reporter {
            out: &mut out,
            gitlab: true,
        };
        r.error_block("  fix: ", &"word ".repeat(60));
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().count() > 2, "{text}");
        for line in text.lines() {
            assert!(line.starts_with("GL-HOOK-ERR: tally: "), "{line}");
            assert!(super::REMOTE.len() + line.len() <= super::WIDTH, "{line}");
        }
    }
}
