//! What git hands a hook on stdin, read whole or not at all.
//!
//! A hook that judged only the first part of its input would pass whatever came after it: an
//! atomic push with enough long ref names puts a protected ref past any cap (issue 10). So
//! input over the cap, and any read error, is an error the caller turns into a refusal; no
//! hook ever judges a prefix.

use std::io::Read;

/// Largest hook input accepted: git sends one line per ref (`<old> <new> <ref>`), about 100
/// bytes, so this is over half a million refs in one push.
pub const MAX_HOOK_INPUT: u64 = 64 * 1024 * 1024;

/// Why the hook input could not be read whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// More bytes than [`MAX_HOOK_INPUT`].
    #[error(
        "hook input is longer than {limit} bytes (too many refs in one push); nothing was judged: push the refs in smaller groups"
    )]
    TooLong {
        /// The cap.
        limit: u64,
    },
    /// Reading stdin failed.
    #[error("cannot read hook input: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the whole hook input, or fails: never a prefix of it.
pub fn read_all(input: &mut impl Read) -> Result<Vec<u8>, InputError> {
    read_all_capped(input, MAX_HOOK_INPUT)
}

fn read_all_capped(input: &mut impl Read, limit: u64) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    input.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        // Drain the rest, so that git never writes into a closed pipe and reports the
        // refusal rather than a broken pipe.
        let _ = std::io::copy(input, &mut std::io::sink());
        return Err(InputError::TooLong { limit });
    }
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn input_at_the_cap_is_read_whole() {
        let bytes = [b'x'; 100];
        assert_eq!(read_all_capped(&mut &bytes[..], 100).unwrap().len(), 100);
    }

    /// Issue 10: a protected ref past the cap must never go unjudged.
    #[test]
    fn input_over_the_cap_is_an_error_not_a_prefix() {
        let bytes = [b'x'; 101];
        assert!(matches!(
            read_all_capped(&mut &bytes[..], 100),
            Err(InputError::TooLong { limit: 100 })
        ));
    }

    #[test]
    fn read_errors_are_errors() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("boom"))
            }
        }
        assert!(matches!(read_all(&mut Broken), Err(InputError::Io(_))));
    }
}
