//! Tests of the `allowed_signers` parser, by topic, with the keys and helpers they share.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use ssh_key::public::KeyData;

use super::pattern::match_pattern;
use super::*;

// Public keys made with `ssh-keygen -t <type> -N ''` (OpenSSH 9.2).
const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIS48AyNQNJ3zGIFR4EqYAF3Drm2kFEYiRb030iIjuMS";
const CA_ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBr+x+9GvnJ0uLVphYg7GQYh1RXFU74f77iz57zbZVX8";
const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBCOUJvtPUs5/mXYi+/krRRIBKQ+MeILihG83upkZCe2SvYNBs8Aac6gXy+0X8opXKzEYiBGa8Bytqdpcn/ZHPeA=";
const P384: &str = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBLEP94hLlDceU5jJUoTWXwlvXmx4jd1MO1N/UjSnnN3JotnHYbmyNlLGXHe6WGWW4AnlizrG0JpRuNvzshNBS5RjnFxhplXk8VNrI1bC80iUPOH514Lka4xRTW0ZoSjfKg==";
const P521: &str = "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAHdXhBYfhQeVlkZKlsIrRmyR0trjmdk6hqvb9ROYb/GZion+c7H7jFtH8tTdphHSBa5m5/qMZX1sj/6OzfSMxQhdQEK6VMPLm30VIjr6HyJdJ8kFaklo26nfIgAj+eeSGLoeZiaZPxLHblhnH/UxUHeSPiL2D4HZPb4pZK/hILeT7mAQQ==";
const RSA3072: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDZ2XJNo23ImSSFMlSylG2YM3ACMHBpv7bsPfQ4H+uJqHXYglwck8Q7k7xIlLcih08nP/tWFtsznbR8inLYaOHwnUQmye3xagfq0/BGjBwamm7/mCApzJUIJJXhPxDsJjX+z7kVvuzbSW/Yk/IHzc03mwpdxszpRAh2GTjM4WafUSv4Coxd+orw+4Se1uCu3btfgWKVS064jxpzfK+u/nB44WUT8bp/6uCFijQZqvomEIs6VfmJUCu/FKLQkWwNsypruqXgCnw5Wqde0K27GfLQfRGKkkQafcr3sQ15Wa68en2oJpxSlqV0Puc/mD7aMeVBdjYwQSmP+ENCgg8kqbI/XNP/jfwiZG/xym0eRYUrnboY7ZnD4hXS732MPhgGfMFIOf2VJjHAfLLNgPMDHyPW5DhPQR0QlI5bwZmEbNzaxXXNc1rwEre8P/ZInB+CSsXcP2qhsLwpbCO6dT+VXszQ1mDFYwGzvuYFEhbCGCXlZmYyJsvs36Zz7NA7e0+Pypc=";
/// The smallest RSA key OpenSSH accepts (`ssh-keygen -t rsa -b 1024`).
const RSA1024: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCTCWWRxKVBs6zSHuaMQilhF3ObAUFThE6KzyUvnX75uFvjfbYCnYSZF+l7NtSDPQQa4KdUccXVdfbprMPPU5Gu4rQvxHAqpIgVJvocLVNXwUHp5rJP03Yi4cCjYOEcjjRXRmIJzYmDbWbGEffiKdTJeMKCezY8KQcy4PR68s8FfQ==";
/// `ssh-keygen -s ca -I id -n alice@example.com ed25519.pub`: ED25519 certified by
/// CA_ED25519.
const CERT: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIKcorTRGjm6ZgiIoBCaOsYh8mhjANCWqsQo2V75WOvSkAAAAIIS48AyNQNJ3zGIFR4EqYAF3Drm2kFEYiRb030iIjuMSAAAAAAAAAAAAAAABAAAAAmlkAAAAFQAAABFhbGljZUBleGFtcGxlLmNvbQAAAAAAAAAA//////////8AAAAAAAAAggAAABVwZXJtaXQtWDExLWZvcndhcmRpbmcAAAAAAAAAF3Blcm1pdC1hZ2VudC1mb3J3YXJkaW5nAAAAAAAAABZwZXJtaXQtcG9ydC1mb3J3YXJkaW5nAAAAAAAAAApwZXJtaXQtcHR5AAAAAAAAAA5wZXJtaXQtdXNlci1yYwAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACAa/sfvRr5ydLi1aYWIOxkGIdUVxVO+H++4s+e822VV/AAAAFMAAAALc3NoLWVkMjU1MTkAAABAjvFfLoKp5bD2lFFgliPLwqunveCKUOVg2h8jrC5yW5B03EIpuwFx9T4fVkKEXvbDUx7I3c6gORW+R1hFiYrkDg==";

// Hand-built keys (no FIDO token at hand), from the points of ED25519 and P256, with the
// default application "ssh:". OpenSSH 9.2 accepts both.
const SK_ED25519: &str = "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIIS48AyNQNJ3zGIFR4EqYAF3Drm2kFEYiRb030iIjuMSAAAABHNzaDo=";
const SK_P256: &str = "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzdHAyNTYAAABBBCOUJvtPUs5/mXYi+/krRRIBKQ+MeILihG83upkZCe2SvYNBs8Aac6gXy+0X8opXKzEYiBGa8Bytqdpcn/ZHPeAAAAAEc3NoOg==";

// Hand-built malformed keys; OpenSSH 9.2 reports "invalid key" for each.
/// P256's point in compressed form.
const P256_COMPRESSED: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAAAhAiOUJvtPUs5/mXYi+/krRRIBKQ+MeILihG83upkZCe2S";
/// A 768-bit modulus.
const RSA768: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAYQCAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACrze8=";
/// e = -255 (mpint 0x81 0x01).
const RSA_NEGATIVE_E: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAACgQEAAAEBAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAMDk=";
/// ED25519's blob followed by one stray byte.
const ED25519_TRAILING_BYTE: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIS48AyNQNJ3zGIFR4EqYAF3Drm2kFEYiRb030iIjuMSAA==";
/// A 31-byte Ed25519 public key.
const ED25519_SHORT: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAH4S48AyNQNJ3zGIFR4EqYAF3Drm2kFEYiRb030iIjuM=";
/// A (toy) DSA key, a type OpenSSH 10 no longer knows.
const DSA: &str = "ssh-dss AAAAB3NzaC1kc3MAAAABBwAAAAELAAAAAQ0AAAABEQ==";

fn utc() -> TimeZone {
    TimeZone::UTC
}

/// Central European time as a POSIX rule, so the tests need no tz database.
fn berlin() -> TimeZone {
    TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
}

fn new_york() -> TimeZone {
    TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap()
}

fn parse(text: &str) -> Result<AllowedSigners, SignersError> {
    AllowedSigners::parse_in(text, &utc())
}

/// Parses a file that must hold exactly one signer line.
fn one(text: &str) -> SignerEntry {
    let signers = parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"));
    assert_eq!(signers.entries().len(), 1, "{text:?}");
    signers.entries()[0].clone()
}

fn err(text: &str) -> SignersError {
    match parse(text) {
        Ok(s) => panic!("{text:?} should be refused, got {:?}", s.entries()),
        Err(e) => e,
    }
}

fn key(line: &str) -> KeyData {
    ssh_key::PublicKey::from_openssh(line)
        .unwrap()
        .key_data()
        .clone()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn valid_before(value: &str, tz: &TimeZone) -> Timestamp {
    let text = format!("a@example.com valid-before=\"{value}\" {ED25519}");
    AllowedSigners::parse_in(&text, tz).unwrap().entries()[0]
        .valid_before
        .unwrap()
}

/// Asserts `$text` is refused with `$pattern` (which binds `line`) on line `$line`.
macro_rules! assert_refused {
    ($text:expr, $pattern:pat $(if $guard:expr)?, $line:expr) => {{
        let text: &str = &$text;
        let e = err(text);
        assert!(matches!(e, $pattern $(if $guard)?), "{text:?}: got {e:?}");
        assert_eq!(e.line(), Some($line), "{text:?}: {e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("allowed_signers line {}: ", $line)),
            "{msg}"
        );
        assert!(!msg.ends_with('.'), "{msg}");
        e
    }};
}

mod files;
mod keys;
mod lines;
mod options;
mod principals;
mod properties;
mod times;
