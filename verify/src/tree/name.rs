//! Names that a file system may read as `.git`, `.gitmodules` and the other files git gives
//! meaning to, as git's `fsck` recognises them (`path.c` `is_ntfs_dotgit`,
//! `is_ntfs_dot_generic`; `utf8.c` `is_hfs_dot_generic`).
//!
//! fsck checks both spellings on every platform, because the repository may be cloned on any:
//! HFS+ (macOS) ignores some Unicode code points when it compares names, so `.g\u{200c}it` is
//! `.git`; NTFS (Windows) drops trailing dots and spaces, resolves 8.3 short names (`git~1`)
//! and opens alternate data streams (`.git::$INDEX_ALLOCATION` is the directory `.git`), and
//! Windows reads a backslash as a directory separator.

/// A file git reads from the work tree by name, which must therefore be a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `.gitmodules`: submodule URLs and paths.
    Gitmodules,
    /// `.gitattributes`: filters and conversions applied at checkout.
    Gitattributes,
    /// `.gitignore`.
    Gitignore,
    /// `.mailmap`.
    Mailmap,
}

impl Special {
    /// Every special file.
    pub const ALL: [Special; 4] = [
        Special::Gitmodules,
        Special::Gitattributes,
        Special::Gitignore,
        Special::Mailmap,
    ];

    /// The file name, with its dot.
    pub fn file_name(self) -> &'static str {
        match self {
            Special::Gitmodules => ".gitmodules",
            Special::Gitattributes => ".gitattributes",
            Special::Gitignore => ".gitignore",
            Special::Mailmap => ".mailmap",
        }
    }

    /// The fallback NTFS short-name prefix git hard-codes for the name (`path.c`).
    fn ntfs_prefix(self) -> &'static [u8; 6] {
        match self {
            Special::Gitmodules => b"gi7eba",
            Special::Gitattributes => b"gi7d29",
            Special::Gitignore => b"gi250a",
            Special::Mailmap => b"maba30",
        }
    }

    /// Whether a tree entry name is this file on HFS+ or NTFS (`is_hfs_dotgitmodules(name) ||
    /// is_ntfs_dotgitmodules(name)` and its siblings). For `.gitmodules`, fsck also looks
    /// after each backslash, as Windows would.
    pub fn matches(self, name: &[u8]) -> bool {
        let needle = &self.file_name().as_bytes()[1..];
        if is_hfs_dot(name, needle) || is_ntfs_dot(name, needle, self.ntfs_prefix()) {
            return true;
        }
        self == Special::Gitmodules
            && after_backslashes(name).any(|rest| is_ntfs_dot(rest, needle, self.ntfs_prefix()))
    }
}

/// Whether a tree entry name is `.git` to HFS+, to NTFS, or to Windows after a backslash
/// (`fsck_tree`'s `has_dotgit`).
pub fn is_dotgit(name: &[u8]) -> bool {
    is_hfs_dot(name, b"git") || is_ntfs_dotgit(name) || after_backslashes(name).any(is_ntfs_dotgit)
}

/// What follows each backslash of `name`.
fn after_backslashes(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    name.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\\')
        .map(move |(i, _)| &name[i + 1..])
}

/// The code points HFS+ ignores when it compares names (`utf8.c` `next_hfs_char`, after
/// Apple's TN1150).
fn hfs_ignores(c: char) -> bool {
    matches!(
        c as u32,
        0x200c..=0x200f | 0x202a..=0x202e | 0x206a..=0x206f | 0xfeff
    )
}

/// `is_hfs_dot_generic`: `.` then `needle` case-insensitively (ASCII only), ignoring the code
/// points HFS+ ignores, then the end of the name or `/`. git's UTF-8 reader returns 0 (end of
/// name) at the first malformed sequence, so malformed bytes after the needle still match.
fn is_hfs_dot(name: &[u8], needle: &[u8]) -> bool {
    let mut chars = name
        .utf8_chunks()
        .flat_map(|chunk| {
            // A malformed sequence ends the name for git: stop there.
            let end = (!chunk.invalid().is_empty()).then_some(None);
            chunk.valid().chars().map(Some).chain(end)
        })
        .map_while(|c| c)
        .filter(|c| !hfs_ignores(*c));
    if chars.next() != Some('.') {
        return false;
    }
    for &n in needle {
        match chars.next() {
            Some(c) if c.is_ascii() && c.to_ascii_lowercase() == char::from(n) => {}
            _ => return false,
        }
    }
    matches!(chars.next(), None | Some('/'))
}

/// The byte at `i`, or 0 past the end (git's names are NUL-terminated strings).
fn at(name: &[u8], i: usize) -> u8 {
    name.get(i).copied().unwrap_or(0)
}

/// `is_ntfs_dotgit`: `.git` or `git~1`, case-insensitively, then only dots and spaces up to
/// the end, a `/`, a `\` or a `:` (an alternate data stream).
fn is_ntfs_dotgit(name: &[u8]) -> bool {
    let rest = if at(name, 0) == b'.'
        && name
            .get(1..4)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"git"))
    {
        &name[4..]
    } else if name
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case(b"git~1"))
    {
        &name[5..]
    } else {
        return false;
    };
    for &c in rest {
        match c {
            b'/' | b'\\' | b':' => return true,
            b'.' | b' ' => {}
            _ => return false,
        }
    }
    true
}

/// `is_ntfs_dot_generic`: `.<needle>`, its regular short name (`<first six>~1` to `~4`), or
/// its fallback short name (up to six characters of `prefix`, `~`, digits; eight in all), each
/// followed only by dots and spaces up to the end or a `:`.
fn is_ntfs_dot(name: &[u8], needle: &[u8], prefix: &[u8; 6]) -> bool {
    let only_spaces_and_periods = |from: usize| {
        for &c in name.get(from..).unwrap_or_default() {
            match c {
                b':' => return true,
                b' ' | b'.' => {}
                _ => return false,
            }
        }
        true
    };
    let len = needle.len();
    if at(name, 0) == b'.'
        && name
            .get(1..=len)
            .is_some_and(|s| s.eq_ignore_ascii_case(needle))
    {
        return only_spaces_and_periods(len + 1);
    }
    if name
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case(&needle[..6]))
        && at(name, 6) == b'~'
        && (b'1'..=b'4').contains(&at(name, 7))
    {
        return only_spaces_and_periods(8);
    }
    let mut saw_tilde = false;
    let mut i = 0;
    while i < 8 {
        let c = at(name, i);
        if c == 0 {
            return false;
        } else if saw_tilde {
            if !c.is_ascii_digit() {
                return false;
            }
        } else if c == b'~' {
            i += 1;
            if !(b'1'..=b'9').contains(&at(name, i)) {
                return false;
            }
            saw_tilde = true;
        } else if i >= 6 || c & 0x80 != 0 || c.to_ascii_lowercase() != prefix[i] {
            return false;
        }
        i += 1;
    }
    only_spaces_and_periods(8)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dotgit_in_any_case() {
        for name in [".git", ".GIT", ".Git", ".gIt"] {
            assert!(is_dotgit(name.as_bytes()), "{name}");
        }
        for name in [
            "git", ".gi", ".gitx", "x.git", ".git-foo", "..git", ".github",
        ] {
            assert!(!is_dotgit(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn dotgit_with_code_points_hfs_ignores() {
        for name in [
            ".g\u{200c}it",
            "\u{200d}.git",
            ".git\u{feff}",
            ".\u{200e}G\u{200f}I\u{202a}T\u{206f}",
            ".gi\u{202e}t",
        ] {
            assert!(is_dotgit(name.as_bytes()), "{name:?}");
        }
        // Other invisible code points are not ignored by HFS+ (nor by git).
        assert!(!is_dotgit(".g\u{200b}it".as_bytes()));
        // A malformed UTF-8 sequence ends the name for git's reader.
        assert!(is_dotgit(b".git\xff"));
        assert!(!is_dotgit(b".gi\xfft"));
    }

    #[test]
    fn dotgit_as_ntfs_reads_it() {
        for name in [
            ".git.",
            ".git ",
            ".git. . ",
            "git~1",
            "GIT~1",
            "git~1...",
            ".git::$INDEX_ALLOCATION",
            ".git:stream",
            "git~1:x",
            // Windows reads a backslash as a separator.
            ".git\\hooks",
            "a\\.git",
            "a\\b\\GIT~1",
            "a\\.git.\\x",
        ] {
            assert!(is_dotgit(name.as_bytes()), "{name}");
        }
        for name in [
            "git~2", "git~10", ".git.x", "git~", "a\\git", ".git~1", "x:.git",
        ] {
            assert!(!is_dotgit(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn special_files_in_their_spellings() {
        use Special::*;
        let cases: &[(Special, &str)] = &[
            (Gitmodules, ".gitmodules"),
            (Gitmodules, ".GITMODULES"),
            (Gitmodules, ".gitmodules . "),
            (Gitmodules, ".gitmodules:$DATA"),
            (Gitmodules, "gitmod~1"),
            (Gitmodules, "GITMOD~4"),
            (Gitmodules, "gi7eba~1"),
            (Gitmodules, "gi7eb~12"),
            (Gitmodules, "gi7e~123"),
            (Gitmodules, ".git\u{200c}modules"),
            (Gitmodules, "x\\.gitmodules"),
            (Gitmodules, "x\\gitmod~1"),
            (Gitattributes, ".gitattributes"),
            (Gitattributes, ".GitAttributes."),
            (Gitattributes, "gitatt~1"),
            (Gitattributes, "gi7d29~1"),
            (Gitattributes, ".gitattri\u{feff}butes"),
            (Gitignore, ".gitignore"),
            (Gitignore, "gitign~1"),
            (Gitignore, "gi250a~1"),
            (Mailmap, ".mailmap"),
            (Mailmap, "mailma~1"),
            (Mailmap, "maba30~1"),
            (Mailmap, ".MAILMAP "),
        ];
        for (special, name) in cases {
            assert!(special.matches(name.as_bytes()), "{special:?} {name:?}");
        }
        let not: &[(Special, &str)] = &[
            (Gitmodules, ".gitmodule"),
            (Gitmodules, ".gitmodulesx"),
            (Gitmodules, "gitmod~5"),
            (Gitmodules, "gi7eba~0"),
            (Gitmodules, "gi7ebb~1"),
            (Gitmodules, "gi7eba~1x"),
            (Gitmodules, "gitmodules"),
            (Gitattributes, "gitattributes"),
            (Gitattributes, "x\\.gitattributes"),
            (Gitignore, "gitignore~1"),
            (Mailmap, "mailmap"),
        ];
        for (special, name) in not {
            assert!(!special.matches(name.as_bytes()), "{special:?} {name:?}");
        }
    }

    /// gix-validate implements the same HFS+ and NTFS readings for `.git` and `.gitmodules`
    /// (after git's); where the two overlap, they must agree.
    #[test]
    fn agrees_with_gix_validate_where_both_judge() {
        use gix::validate::path::component::{Error, Mode, Options};
        let options = Options {
            protect_windows: false,
            protect_hfs: true,
            protect_ntfs: true,
        };
        let mut names: Vec<String> = Vec::new();
        for stem in [
            ".git",
            "git~1",
            ".gitmodules",
            "gitmod~1",
            "gi7eba~1",
            "a",
            ".gi",
        ] {
            for tail in [
                "",
                ".",
                " ",
                " .",
                ":x",
                "::$INDEX_ALLOCATION",
                "x",
                "~1",
                "\u{200c}",
            ] {
                names.push(format!("{stem}{tail}"));
                names.push(format!("\u{feff}{stem}{tail}").to_uppercase());
            }
        }
        for name in &names {
            let bytes = name.as_bytes();
            let gix_dotgit = matches!(
                gix::validate::path::component(bytes.into(), None, options),
                Err(Error::DotGitDir)
            );
            assert_eq!(is_dotgit(bytes), gix_dotgit, "{name:?}");
            let gix_modules = matches!(
                gix::validate::path::component(bytes.into(), Some(Mode::Symlink), options),
                Err(Error::SymlinkedGitModules)
            );
            if !gix_dotgit {
                assert_eq!(Special::Gitmodules.matches(bytes), gix_modules, "{name:?}");
            }
        }
    }
}
