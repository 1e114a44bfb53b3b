//! OpenSSH pattern-lists (`match.c`), the form of the principals and `namespaces=` fields.

/// Returns whether `s` matches the OpenSSH pattern-list `list`.
///
/// This is `match_pattern_list(s, list, 0) == 1` from OpenSSH's `match.c`: `list` is split at
/// commas; each sub-pattern may start with `!` to negate it; `*` matches any run of bytes and
/// `?` any single byte; matching is case-sensitive and byte-wise. `s` matches when some
/// positive sub-pattern matches and no negated one does, so a negated match wins wherever it
/// appears. An empty list matches nothing. Like OpenSSH, a sub-pattern of 1023 bytes or more
/// makes the whole list fail to match, and both strings end at a NUL byte as C strings do.
pub fn match_pattern_list(s: &str, list: &str) -> bool {
    // OpenSSH copies each sub-pattern into `char sub[1024]` and gives up on longer ones.
    const MAX_SUBPATTERN: usize = 1023;
    let s = c_str(s.as_bytes());
    let list = c_str(list.as_bytes());
    let mut positive = false;
    let mut i = 0;
    while i < list.len() {
        let negated = list[i] == b'!';
        if negated {
            i += 1;
        }
        let rest = &list[i..];
        let len = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        if len >= MAX_SUBPATTERN {
            return false;
        }
        let sub = &rest[..len];
        i += len;
        if i < list.len() {
            i += 1; // the comma
        }
        if match_pattern(s, sub) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

/// Returns `bytes` up to its first NUL, as C sees a string.
fn c_str(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |nul| &bytes[..nul])
}

/// Returns whether `s` matches the wildcard `pattern` (`match.c`, `match_pattern`).
///
/// Like OpenSSH's, this runs the pattern as an NFA, in O(|s| × |pattern|) time whatever the
/// input, so a hostile pattern cannot make it backtrack exponentially.
pub(super) fn match_pattern(s: &[u8], pattern: &[u8]) -> bool {
    let m = pattern.len();
    if m == 0 {
        return s.is_empty();
    }
    // One state per pattern byte plus the accepting state.
    let mut states = vec![false; m + 1];
    let mut next = vec![false; m + 1];
    states[0] = true;
    epsilon_closure(&mut states, pattern);
    for &c in s {
        next.fill(false);
        for i in 0..m {
            if !states[i] {
                continue;
            }
            if pattern[i] == b'*' {
                next[i] = true;
            } else if pattern[i] == b'?' || pattern[i] == c {
                next[i + 1] = true;
            }
        }
        epsilon_closure(&mut next, pattern);
        std::mem::swap(&mut states, &mut next);
        if !states.contains(&true) {
            return false;
        }
    }
    states[m]
}

/// Lets every active `*` state also activate the state after it, without consuming input.
fn epsilon_closure(states: &mut [bool], pattern: &[u8]) {
    for i in 0..pattern.len() {
        if states[i] && pattern[i] == b'*' {
            states[i + 1] = true;
        }
    }
}
