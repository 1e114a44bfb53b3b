//! Lowercase hexadecimal, the one implementation every tally crate uses (for JSON output,
//! state files, error messages and verifier keys), over the maintained `base16ct` crate.

use std::fmt;

/// Encodes bytes as lowercase hexadecimal.
pub fn encode(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// Appends the lowercase hexadecimal of `bytes` to `out` (for rows written byte by byte).
pub fn push(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + 2 * bytes.len(), 0);
    // The buffer is exactly twice the input's length, so encoding cannot fail.
    let _ = base16ct::lower::encode(bytes, &mut out[start..]);
}

/// Decodes lowercase hexadecimal; `None` for anything else (uppercase, odd length).
pub fn decode_lower(text: &str) -> Option<Vec<u8>> {
    base16ct::lower::decode_vec(text).ok()
}

/// Decodes lowercase hexadecimal of exactly `N` bytes.
pub fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    decode_lower(text)?.try_into().ok()
}

/// Displays bytes as lowercase hexadecimal without allocating a string for all of them.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        for chunk in self.0.chunks(32) {
            let text = base16ct::lower::encode_str(chunk, &mut buf).map_err(|_| fmt::Error)?;
            f.write_str(text)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Serialises as a string of lowercase hexadecimal; ids and hashes (up to 64 bytes) are
/// encoded on the stack, without allocating.
impl serde::Serialize for Hex<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 128];
        match base16ct::lower::encode_str(self.0, &mut buf) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.collect_str(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_uppercase_and_odd_lengths() {
        assert_eq!(encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(decode_lower("00abff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(decode_lower("00ABff"), None);
        assert_eq!(decode_lower("abc"), None);
        assert_eq!(decode_lower("zz"), None);
        assert_eq!(Hex(&[1, 2]).to_string(), "0102");
        let long: Vec<u8> = (0..=255).collect();
        assert_eq!(Hex(&long).to_string(), encode(&long));
        let mut out = b"x=".to_vec();
        push(&mut out, &[0xde, 0xad]);
        assert_eq!(out, b"x=dead");
    }
}
