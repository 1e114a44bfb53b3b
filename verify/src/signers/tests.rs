//! Tests of the `allowed_signers` parser.

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

// ---- keys -----------------------------------------------------------------------------

#[test]
fn parses_every_supported_key_type() {
    for (line, algorithm) in [
        (ED25519, "ssh-ed25519"),
        (P256, "ecdsa-sha2-nistp256"),
        (P384, "ecdsa-sha2-nistp384"),
        (P521, "ecdsa-sha2-nistp521"),
        (RSA3072, "ssh-rsa"),
        (RSA1024, "ssh-rsa"),
        (SK_ED25519, "sk-ssh-ed25519@openssh.com"),
        (SK_P256, "sk-ecdsa-sha2-nistp256@openssh.com"),
    ] {
        let e = one(&format!("alice@example.com {line}"));
        assert_eq!(e.key, key(line));
        assert_eq!(e.key.algorithm().as_str(), algorithm);
        assert_eq!(e.principals, "alice@example.com");
        assert_eq!(e.line, 1);
        assert!(!e.cert_authority);
        assert_eq!(e.namespaces, None);
        assert_eq!(e.valid_after, None);
        assert_eq!(e.valid_before, None);
        assert_eq!(e.comment, None);
    }
}

#[test]
fn rsa_signature_algorithm_names_read_as_ssh_rsa_as_openssh_does() {
    let blob = RSA3072.split(' ').nth(1).unwrap();
    for name in ["rsa-sha2-256", "rsa-sha2-512"] {
        assert_eq!(
            one(&format!("a@example.com {name} {blob}")).key,
            key(RSA3072)
        );
    }
}

#[test]
fn webauthn_name_reads_as_sk_ecdsa_as_openssh_does() {
    let blob = SK_P256.split(' ').nth(1).unwrap();
    let e = one(&format!(
        "a@example.com webauthn-sk-ecdsa-sha2-nistp256@openssh.com {blob}"
    ));
    assert_eq!(e.key, key(SK_P256));
}

#[test]
fn certificate_instead_of_key_is_refused() {
    assert_refused!(
        format!("alice@example.com {CERT}"),
        SignersError::CertificateKey { ref keytype, .. } if keytype == "ssh-ed25519-cert-v01@openssh.com",
        1
    );
}

#[test]
fn certificate_as_cert_authority_is_refused() {
    assert_refused!(
        format!("*@example.com cert-authority {CERT}"),
        SignersError::CertificateKey { .. },
        1
    );
}

#[test]
fn every_certificate_type_is_refused() {
    let blob = ED25519.split(' ').nth(1).unwrap();
    for t in [
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
        "rsa-sha2-512-cert-v01@openssh.com",
        "sk-ssh-ed25519-cert-v01@openssh.com",
        "webauthn-sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    ] {
        assert_refused!(
            format!("a {t} {blob}"),
            SignersError::CertificateKey { .. },
            1
        );
    }
}

#[test]
fn dsa_key_is_unsupported() {
    assert_refused!(
        format!("a@example.com {DSA}"),
        SignersError::UnsupportedKeyType { ref keytype, .. } if keytype == "ssh-dss",
        1
    );
}

#[test]
fn other_key_types_openssh_knows_are_unsupported() {
    let blob = ED25519.split(' ').nth(1).unwrap();
    for t in ["ssh-xmss@openssh.com", "ssh-mldsa44-ed25519@openssh.com"] {
        assert_refused!(
            format!("a@example.com namespaces=\"git\" {t} {blob}"),
            SignersError::UnsupportedKeyType { .. },
            1
        );
    }
}

#[test]
fn bad_key_after_options_is_refused() {
    assert_refused!(
        format!("a@example.com cert-authority {ED25519_SHORT}"),
        SignersError::BadKey { .. },
        1
    );
}

#[test]
fn key_type_typo_is_named() {
    let blob = ED25519.split(' ').nth(1).unwrap();
    assert_refused!(
        format!("a@example.com ssh-ed2551 {blob}"),
        SignersError::UnknownKeyType { ref keytype, .. } if keytype == "ssh-ed2551",
        1
    );
    assert_refused!(
        format!("a@example.com namespaces=\"git\" ssh-ed2551 {blob} comment"),
        SignersError::UnknownKeyType { ref keytype, .. } if keytype == "ssh-ed2551",
        1
    );
    let e = assert_refused!(
        format!("a@example.com SSH-ED25519 {blob}"),
        SignersError::UnknownKeyType { ref keytype, .. } if keytype == "SSH-ED25519",
        1
    );
    assert!(
        e.to_string()
            .contains("expected ssh-ed25519, ecdsa-sha2-nistp256"),
        "{e}"
    );
}

#[test]
fn key_without_type_is_refused() {
    let blob = ED25519.split(' ').nth(1).unwrap();
    assert_refused!(
        format!("a@example.com {blob}"),
        SignersError::MissingKeyType { .. },
        1
    );
    assert_refused!(
        format!("a@example.com {blob} comment"),
        SignersError::MissingKeyType { .. },
        1
    );
    assert_refused!(
        format!("a@example.com cert-authority {blob}"),
        SignersError::MissingKeyType { .. },
        1
    );
}

#[test]
fn line_without_key_is_refused() {
    for text in [
        "alice@example.com",
        "alice@example.com ",
        "alice@example.com\t\r",
        "alice@example.com cert-authority",
        "alice@example.com cert-authority ",
        "alice@example.com namespaces=\"git\"",
        "alice@example.com ssh-ed25519",
        "alice@example.com ssh-ed25519 ",
        "alice@example.com cert-authority ssh-ed25519",
        "\"alice@example.com\"",
    ] {
        assert_refused!(text, SignersError::MissingKey { .. }, 1);
    }
}

#[test]
fn key_data_of_another_type_is_refused() {
    let ed_blob = ED25519.split(' ').nth(1).unwrap();
    let p256_blob = P256.split(' ').nth(1).unwrap();
    for text in [
        format!("a ssh-rsa {ed_blob}"),
        format!("a ecdsa-sha2-nistp256 {ed_blob}"),
        // Curve mismatch: OpenSSH's SSH_ERR_EC_CURVE_MISMATCH.
        format!("a ecdsa-sha2-nistp384 {p256_blob}"),
        format!("a sk-ssh-ed25519@openssh.com {ed_blob}"),
        format!("a ssh-ed25519 {}", SK_ED25519.split(' ').nth(1).unwrap()),
    ] {
        let e = assert_refused!(text, SignersError::BadKey { .. }, 1);
        assert!(
            e.to_string().contains("not of the type written before it"),
            "{e}"
        );
    }
}

#[test]
fn malformed_base64_is_refused() {
    let blob = ED25519.split(' ').nth(1).unwrap();
    for bad in [
        &blob[..blob.len() - 1],         // truncated
        &blob[..blob.len() - 4],         // a whole quantum short
        "AAAAC3NzaC1lZDI1NTE5AAAAIIS4!", // not base64
        "AAAA",                          // too short to hold a key
        "====",
    ] {
        assert_refused!(
            format!("a@example.com ssh-ed25519 {bad}"),
            SignersError::BadKey { .. },
            1
        );
    }
}

#[test]
fn trailing_bytes_after_key_data_are_refused() {
    assert_refused!(
        format!("a@example.com {ED25519_TRAILING_BYTE}"),
        SignersError::BadKey { .. },
        1
    );
}

#[test]
fn short_ed25519_key_is_refused() {
    assert_refused!(
        format!("a@example.com {ED25519_SHORT}"),
        SignersError::BadKey { .. },
        1
    );
}

#[test]
fn compressed_ec_point_is_refused_as_openssh_does() {
    let e = assert_refused!(
        format!("a@example.com {P256_COMPRESSED}"),
        SignersError::BadKey { .. },
        1
    );
    assert!(e.to_string().contains("uncompressed"), "{e}");
}

#[test]
fn compressed_sk_ec_point_is_refused() {
    let point = match key(P256_COMPRESSED) {
        KeyData::Ecdsa(ssh_key::public::EcdsaPublicKey::NistP256(p)) => p,
        other => panic!("{other:?}"),
    };
    let sk = KeyData::SkEcdsaSha2NistP256(ssh_key::public::SkEcdsaSha2NistP256::new(point, "ssh:"));
    let line = ssh_key::PublicKey::new(sk, "").to_openssh().unwrap();
    assert_refused!(
        format!("a@example.com {line}"),
        SignersError::BadKey { .. },
        1
    );
}

fn rsa_line(e: &[u8], n: &[u8]) -> String {
    let rsa = ssh_key::public::RsaPublicKey {
        e: ssh_key::Mpint::from_bytes(e).unwrap(),
        n: ssh_key::Mpint::from_bytes(n).unwrap(),
    };
    ssh_key::PublicKey::new(KeyData::Rsa(rsa), "")
        .to_openssh()
        .unwrap()
}

#[test]
fn rsa_modulus_under_1024_bits_is_refused() {
    let e = assert_refused!(
        format!("a@example.com {RSA768}"),
        SignersError::BadKey { .. },
        1
    );
    assert!(e.to_string().contains("1024"), "{e}");
    // 1023 bits: one short.
    let mut n = vec![0xff; 128];
    n[0] = 0x7f;
    assert_refused!(
        format!("a@example.com {}", rsa_line(&[1, 0, 1], &n)),
        SignersError::BadKey { .. },
        1
    );
}

#[test]
fn rsa_modulus_of_exactly_1024_bits_is_accepted() {
    let mut n = vec![0xff; 129];
    n[0] = 0; // mpint sign byte
    one(&format!("a@example.com {}", rsa_line(&[1, 0, 1], &n)));
}

#[test]
fn rsa_modulus_over_16384_bits_is_refused() {
    let mut n = vec![0x01; 2049];
    n[0] = 0x7f;
    let e = assert_refused!(
        format!("a@example.com {}", rsa_line(&[1, 0, 1], &n)),
        SignersError::BadKey { .. },
        1
    );
    assert!(e.to_string().contains("16384"), "{e}");
    // Exactly 16384 bits is the largest OpenSSH reads.
    let mut n = vec![0x01; 2049];
    n[0] = 0;
    n[1] = 0x80;
    one(&format!("a@example.com {}", rsa_line(&[1, 0, 1], &n)));
}

#[test]
fn rsa_negative_numbers_are_refused() {
    assert_refused!(
        format!("a@example.com {RSA_NEGATIVE_E}"),
        SignersError::BadKey { .. },
        1
    );
    let mut n = vec![0x01; 256];
    n[0] = 0x80; // sign bit set: negative
    let e = assert_refused!(
        format!("a@example.com {}", rsa_line(&[1, 0, 1], &n)),
        SignersError::BadKey { .. },
        1
    );
    assert!(e.to_string().contains("negative"), "{e}");
}

// ---- lines, whitespace, comments ------------------------------------------------------

#[test]
fn comments_and_blank_lines_are_skipped_and_counted() {
    let text =
        format!("# a comment\n\n   \n\t# indented comment\n\r\nalice@example.com {ED25519}\n#last");
    let signers = parse(&text).unwrap();
    assert_eq!(signers.entries().len(), 1);
    assert_eq!(signers.entries()[0].line, 6);
}

#[test]
fn empty_and_comment_only_files_have_no_signers() {
    for text in ["", "\n", "# nobody\n", "  \t\r\n\n"] {
        let signers = parse(text).unwrap();
        assert!(signers.is_empty(), "{text:?}");
    }
    assert!(AllowedSigners::default().is_empty());
}

#[test]
fn hash_after_the_principals_is_not_a_comment() {
    // Only a line *starting* with '#' is a comment; here '#' is the principal.
    let e = one(&format!("a#b {ED25519}"));
    assert_eq!(e.principals, "a#b");
    assert!(parse(&format!("#a {ED25519}")).unwrap().is_empty());
    // ...and a '#' after the key is part of the comment.
    let e = one(&format!("a {ED25519} # alice's laptop"));
    assert_eq!(e.comment.as_deref(), Some("# alice's laptop"));
}

#[test]
fn leading_whitespace_and_tabs_separate_fields() {
    let blob = ED25519.split(' ').nth(1).unwrap();
    let e = one(&format!(
        " \t alice@example.com\t \tssh-ed25519\t{blob}\t laptop  "
    ));
    assert_eq!(e.principals, "alice@example.com");
    assert_eq!(e.key, key(ED25519));
    assert_eq!(e.comment.as_deref(), Some("laptop"));
}

#[test]
fn crlf_line_endings_are_accepted() {
    let text = format!(
        "# windows\r\n\r\nalice@example.com {ED25519} laptop\r\nbob@example.com namespaces=\"git\" {P256}\r\n"
    );
    let signers = parse(&text).unwrap();
    let [a, b] = signers.entries() else {
        panic!("{:?}", signers.entries())
    };
    assert_eq!((a.line, a.comment.as_deref()), (3, Some("laptop")));
    assert_eq!((b.line, b.comment.as_deref()), (4, None));
    assert_eq!(b.namespaces.as_deref(), Some("git"));
}

#[test]
fn carriage_return_after_principals_is_whitespace_as_in_strdelimw() {
    let e = one(&format!("alice@example.com\r {ED25519}"));
    assert_eq!(e.principals, "alice@example.com");
}

#[test]
fn last_line_needs_no_newline() {
    let signers = parse(&format!("a@example.com {ED25519}\nb@example.com {P256}")).unwrap();
    assert_eq!(signers.entries().len(), 2);
    assert_eq!(signers.entries()[1].line, 2);
}

#[test]
fn comment_keeps_inner_spaces() {
    let e = one(&format!("a@example.com {ED25519} alice  on   her laptop "));
    assert_eq!(e.comment.as_deref(), Some("alice  on   her laptop"));
}

#[test]
fn nul_byte_is_refused() {
    assert_refused!(
        format!("a@example.com {ED25519}\0evil"),
        SignersError::NulByte { .. },
        1
    );
    assert_refused!(
        format!("# ok\n\0{ED25519}"),
        SignersError::NulByte { .. },
        2
    );
}

#[test]
fn error_names_the_first_bad_line_after_good_ones() {
    let text = format!(
        "# signers\na@example.com {ED25519}\n\nb@example.com {P256}\nc@example.com valid-afer=\"20240101\" {P384}\nd@example.com nonsense"
    );
    assert_refused!(text, SignersError::UnknownOption { .. }, 5);
}

#[test]
fn a_bad_line_anywhere_refuses_the_whole_file() {
    // OpenSSH stops at the first matching line and never reads later mistakes; tally
    // reads them all, failing closed.
    let text = format!("a@example.com {ED25519}\nb@example.com {ED25519_SHORT}");
    assert_refused!(text, SignersError::BadKey { .. }, 2);
}

// ---- principals -----------------------------------------------------------------------

#[test]
fn several_principals_each_match() {
    let e = one(&format!("alice@example.com,bob@example.com {ED25519}"));
    assert_eq!(e.principals, "alice@example.com,bob@example.com");
    assert!(e.matches_principal("alice@example.com"));
    assert!(e.matches_principal("bob@example.com"));
    assert!(!e.matches_principal("carol@example.com"));
    assert!(!e.matches_principal("alice@example.com,bob@example.com"));
    assert!(!e.matches_principal(""));
}

#[test]
fn domain_wildcard_does_not_match_lookalike_domains() {
    let e = one(&format!("*@example.com {ED25519}"));
    assert!(e.matches_principal("alice@example.com"));
    assert!(e.matches_principal("@example.com"));
    assert!(!e.matches_principal("alice@example.com.evil.org"));
    assert!(!e.matches_principal("alice@evilexample.com"));
    assert!(!e.matches_principal("alice@EXAMPLE.COM"));
    assert!(!e.matches_principal("alice@example.co"));
}

#[test]
fn negated_principal_wins_in_any_position() {
    for principals in [
        "!bad@example.com,*@example.com",
        "*@example.com,!bad@example.com",
    ] {
        let e = one(&format!("{principals} {ED25519}"));
        assert!(!e.matches_principal("bad@example.com"), "{principals}");
        assert!(e.matches_principal("good@example.com"), "{principals}");
    }
}

#[test]
fn negation_alone_matches_no_one() {
    let e = one(&format!("!bad@example.com {ED25519}"));
    assert!(!e.matches_principal("good@example.com"));
    assert!(!e.matches_principal("bad@example.com"));
}

#[test]
fn principal_match_is_case_sensitive() {
    let e = one(&format!("Alice@Example.com {ED25519}"));
    assert!(e.matches_principal("Alice@Example.com"));
    assert!(!e.matches_principal("alice@example.com"));
}

#[test]
fn quoted_principals_may_hold_spaces() {
    let e = one(&format!(
        "\"alice smith@example.com,bob@example.com\" {ED25519}"
    ));
    assert_eq!(e.principals, "alice smith@example.com,bob@example.com");
    assert!(e.matches_principal("alice smith@example.com"));
}

#[test]
fn quote_may_start_mid_word_as_in_strdelimw() {
    let e = one(&format!("al\"ice @ex\" {ED25519}"));
    assert_eq!(e.principals, "alice @ex");
}

#[test]
fn closing_quote_ends_the_principals_field() {
    // strdelimw returns at the closing quote, so the key may follow without a space.
    let e = one(&format!("\"alice@example.com\"{ED25519}"));
    assert_eq!(e.principals, "alice@example.com");
    assert_eq!(e.key, key(ED25519));
}

#[test]
fn unterminated_quote_in_principals_is_refused() {
    assert_refused!(
        format!("\"alice@example.com {ED25519}"),
        SignersError::UnterminatedQuote { .. },
        1
    );
}

#[test]
fn empty_quoted_principals_are_refused() {
    assert_refused!(
        format!("\"\" {ED25519}"),
        SignersError::EmptyPrincipals { .. },
        1
    );
}

// ---- match_pattern_list ---------------------------------------------------------------

#[test]
fn pattern_list_wildcards() {
    assert!(match_pattern_list("alice@example.com", "*"));
    assert!(match_pattern_list("", "*"));
    assert!(match_pattern_list("abc", "a?c"));
    assert!(!match_pattern_list("ac", "a?c"));
    assert!(match_pattern_list("ac", "a*c"));
    assert!(match_pattern_list("abbbc", "a*c"));
    assert!(!match_pattern_list("abbbcd", "a*c"));
    assert!(match_pattern_list("a*c", "a*c"));
    assert!(match_pattern_list("aXbYc", "a*b*c"));
    assert!(match_pattern_list("x", "y,x"));
}

#[test]
fn question_mark_matches_one_byte_not_one_character() {
    // OpenSSH matches bytes: 'é' is two bytes in UTF-8.
    assert!(!match_pattern_list("é", "?"));
    assert!(match_pattern_list("é", "??"));
}

#[test]
fn empty_list_matches_nothing() {
    assert!(!match_pattern_list("", ""));
    assert!(!match_pattern_list("a", ""));
}

#[test]
fn empty_subpattern_matches_only_the_empty_string() {
    assert!(match_pattern_list("", "a,,b"));
    assert!(!match_pattern_list("c", "a,,b"));
    // A trailing comma ends the list without an empty sub-pattern.
    assert!(!match_pattern_list("", "a,"));
    assert!(match_pattern_list("a", "a,"));
    // A leading comma does start one.
    assert!(match_pattern_list("", ",a"));
    assert!(!match_pattern_list("", "!"));
}

#[test]
fn overlong_subpattern_makes_the_whole_list_fail_as_in_openssh() {
    let long = "a".repeat(1023);
    // OpenSSH returns "no match" at once, even after an earlier positive match.
    assert!(!match_pattern_list(&long, &long));
    assert!(!match_pattern_list("x", &format!("x,{long}")));
    let longest = "a".repeat(1022);
    assert!(match_pattern_list(&longest, &longest));
    // The '!' does not count toward the length.
    assert!(!match_pattern_list(&longest, &format!("*,!{longest}")));
}

#[test]
fn nul_ends_both_strings_as_in_c() {
    assert!(match_pattern_list("alice\0junk", "alice"));
    assert!(match_pattern_list("alice", "alice\0,!alice"));
}

#[test]
fn many_stars_do_not_backtrack_exponentially() {
    let s = "a".repeat(5000);
    let pattern = format!("{}b", "*a".repeat(200));
    assert!(!match_pattern_list(&s, &pattern));
    assert!(match_pattern_list(&s, &"*a".repeat(200)));
}

// ---- options --------------------------------------------------------------------------

#[test]
fn cert_authority_marks_a_ca_key() {
    let text = format!("*@example.com cert-authority {CA_ED25519}\nalice@example.com {ED25519}");
    let signers = parse(&text).unwrap();
    let ca = key(CA_ED25519);
    let alice = key(ED25519);
    assert!(signers.entries()[0].cert_authority);
    assert_eq!(
        signers
            .authorities_for_key(&ca)
            .map(|e| e.line)
            .collect::<Vec<_>>(),
        [1]
    );
    // A CA line does not vouch for signatures made with the CA key itself.
    assert_eq!(signers.entries_for_key(&ca).count(), 0);
    assert_eq!(
        signers
            .entries_for_key(&alice)
            .map(|e| e.line)
            .collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(signers.authorities_for_key(&alice).count(), 0);
}

#[test]
fn the_same_key_on_several_lines_is_found_on_each() {
    let text = format!(
        "a@example.com {ED25519}\nb@example.com {P256}\nc@example.com namespaces=\"file\" {ED25519}\nd@example.com cert-authority {ED25519}"
    );
    let signers = parse(&text).unwrap();
    let k = key(ED25519);
    let lines: Vec<_> = signers.entries_for_key(&k).map(|e| e.line).collect();
    assert_eq!(lines, [1, 3]);
    let lines: Vec<_> = signers.authorities_for_key(&k).map(|e| e.line).collect();
    assert_eq!(lines, [4]);
    assert_eq!(signers.entries_for_key(&key(P384)).count(), 0);
}

#[test]
fn rsa_alias_lines_hold_the_same_key() {
    let blob = RSA3072.split(' ').nth(1).unwrap();
    let text = format!("a {RSA3072}\nb rsa-sha2-512 {blob}");
    let signers = parse(&text).unwrap();
    assert_eq!(signers.entries_for_key(&key(RSA3072)).count(), 2);
}

#[test]
fn option_names_are_case_insensitive() {
    let e = one(&format!(
        "a@example.com Cert-Authority,NAMESPACES=\"git\",Valid-After=\"20240101Z\",VALID-BEFORE=\"20250101Z\" {CA_ED25519}"
    ));
    assert!(e.cert_authority);
    assert_eq!(e.namespaces.as_deref(), Some("git"));
    assert_eq!(e.valid_after, Some(ts("2024-01-01T00:00:00Z")));
    assert_eq!(e.valid_before, Some(ts("2025-01-01T00:00:00Z")));
}

#[test]
fn all_options_together() {
    let e = one(&format!(
        "*@example.com cert-authority,namespaces=\"git,file\",valid-after=\"20240101Z\",valid-before=\"20241231235959Z\" {CA_ED25519} corp CA"
    ));
    assert!(e.cert_authority);
    assert_eq!(e.namespaces.as_deref(), Some("git,file"));
    assert_eq!(e.valid_after, Some(ts("2024-01-01T00:00:00Z")));
    assert_eq!(e.valid_before, Some(ts("2024-12-31T23:59:59Z")));
    assert_eq!(e.comment.as_deref(), Some("corp CA"));
}

#[test]
fn namespaces_is_a_pattern_list() {
    let e = one(&format!("a namespaces=\"git,file\" {ED25519}"));
    assert!(e.allows_namespace("git"));
    assert!(e.allows_namespace("file"));
    assert!(!e.allows_namespace("ssh"));
    assert!(!e.allows_namespace("Git"));
    assert!(!e.allows_namespace(""));
    let e = one(&format!("a namespaces=\"!file,*\" {ED25519}"));
    assert!(e.allows_namespace("git"));
    assert!(!e.allows_namespace("file"));
    let e = one(&format!("a namespaces=\"g?t\" {ED25519}"));
    assert!(e.allows_namespace("git"));
    assert!(!e.allows_namespace("gits"));
}

#[test]
fn no_namespaces_allows_every_namespace() {
    let e = one(&format!("a {ED25519}"));
    assert!(e.allows_namespace("git"));
    assert!(e.allows_namespace("anything"));
}

#[test]
fn empty_namespaces_allows_none() {
    let e = one(&format!("a namespaces=\"\" {ED25519}"));
    assert_eq!(e.namespaces.as_deref(), Some(""));
    assert!(!e.allows_namespace("git"));
    assert!(!e.allows_namespace(""));
}

#[test]
fn quoted_value_may_hold_spaces_commas_and_escaped_quotes() {
    let e = one(&format!("a namespaces=\"git, file\" {ED25519}"));
    assert_eq!(e.namespaces.as_deref(), Some("git, file"));
    assert!(e.allows_namespace("git"));
    assert!(!e.allows_namespace("file")); // the sub-pattern is " file"
    assert!(e.allows_namespace(" file"));
    let e = one(&format!("a namespaces=\"a\\\"b\" {ED25519}"));
    assert_eq!(e.namespaces.as_deref(), Some("a\"b"));
    let e = one(&format!("a namespaces=\"a\\b\" {ED25519}"));
    assert_eq!(e.namespaces.as_deref(), Some("a\\b"));
}

#[test]
fn empty_option_items_are_skipped_as_openssh_does() {
    let e = one(&format!("a ,cert-authority {CA_ED25519}"));
    assert!(e.cert_authority);
    let e = one(&format!(
        "a cert-authority,,namespaces=\"git\" {CA_ED25519}"
    ));
    assert!(e.cert_authority);
    assert_eq!(e.namespaces.as_deref(), Some("git"));
}

#[test]
fn repeated_cert_authority_is_allowed_as_in_openssh() {
    assert!(one(&format!("a cert-authority,cert-authority {CA_ED25519}")).cert_authority);
}

#[test]
fn misspelt_option_is_refused() {
    let e = assert_refused!(
        format!("# x\n\na valid-afer=\"20240101\" {ED25519}"),
        SignersError::UnknownOption { ref option, .. } if option == "valid-afer=\"20240101\"",
        3
    );
    assert_eq!(
        e.to_string(),
        "allowed_signers line 3: unknown option \"valid-afer=\\\"20240101\\\"\"; expected cert-authority, namespaces=, valid-after= or valid-before="
    );
}

#[test]
fn unknown_option_after_a_good_one_is_refused() {
    assert_refused!(
        format!("a cert-authority,no-touch-required {CA_ED25519}"),
        SignersError::UnknownOption { ref option, .. } if option == "no-touch-required",
        1
    );
    assert_refused!(
        format!("a cert-authority,principals=\"x\" {CA_ED25519}"),
        SignersError::UnknownOption { .. },
        1
    );
}

#[test]
fn unquoted_value_is_refused() {
    for text in [
        format!("a namespaces=git {ED25519}"),
        format!("a namespaces= {ED25519}"),
        format!("a valid-after=20240101 {ED25519}"),
        format!("a cert-authority,valid-before=20240101 {ED25519}"),
    ] {
        assert_refused!(text, SignersError::UnquotedValue { .. }, 1);
    }
    let e = err(&format!("a namespaces=git {ED25519}"));
    assert!(e.to_string().contains("namespaces=\"git\""), "{e}");
}

#[test]
fn option_without_value_is_refused() {
    assert_refused!(
        format!("a namespaces {ED25519}"),
        SignersError::MissingValue {
            option: "namespaces",
            ..
        },
        1
    );
    assert_refused!(
        format!("a cert-authority,Valid-Before {ED25519}"),
        SignersError::MissingValue {
            option: "valid-before",
            ..
        },
        1
    );
}

#[test]
fn trailing_comma_is_refused() {
    assert_refused!(
        format!("a cert-authority, {ED25519}"),
        SignersError::TrailingComma { .. },
        1
    );
    assert_refused!(
        format!("a namespaces=\"git\", {ED25519}"),
        SignersError::TrailingComma { .. },
        1
    );
}

#[test]
fn space_after_comma_in_options_is_refused() {
    // The space ends the options at "cert-authority,".
    assert_refused!(
        format!("a cert-authority, namespaces=\"git\" {ED25519}"),
        SignersError::TrailingComma { .. },
        1
    );
}

#[test]
fn text_glued_to_an_option_is_refused() {
    for (text, garbage) in [
        (format!("a cert-authorityX {ED25519}"), "X"),
        (format!("a cert-authority=yes {ED25519}"), "=yes"),
        (
            format!("a namespaces=\"git\"x,cert-authority {ED25519}"),
            "x",
        ),
        (
            format!("a namespaces=\"git\"\"file\" {ED25519}"),
            "\"file\"",
        ),
    ] {
        assert_refused!(
            text,
            SignersError::GarbageAfterOption { garbage: ref g, .. } if g == garbage,
            1
        );
    }
}

#[test]
fn unterminated_quote_in_options_is_refused() {
    assert_refused!(
        format!("a namespaces=\"git {ED25519}"),
        SignersError::UnterminatedQuote { .. },
        1
    );
    assert_refused!(
        format!("a namespaces=\"git\\\" {ED25519}"),
        SignersError::UnterminatedQuote { .. },
        1
    );
}

#[test]
fn repeated_options_are_refused() {
    for (options, name) in [
        ("namespaces=\"git\",namespaces=\"file\"", "namespaces"),
        (
            "valid-after=\"20240101Z\",valid-after=\"20240102Z\"",
            "valid-after",
        ),
        (
            "valid-before=\"20240101Z\",VALID-BEFORE=\"20240102Z\"",
            "valid-before",
        ),
        // Refused before the second value is read, as in sshsigopt_parse.
        (
            "valid-after=\"20240101Z\",valid-after=\"garbage\"",
            "valid-after",
        ),
    ] {
        assert_refused!(
            format!("a {options} {ED25519}"),
            SignersError::DuplicateOption { option, .. } if option == name,
            1
        );
    }
}

#[test]
fn window_that_closes_before_it_opens_is_refused() {
    assert_refused!(
        format!("a valid-after=\"20250101Z\",valid-before=\"20240101Z\" {ED25519}"),
        SignersError::EmptyValidity { .. },
        1
    );
    // valid-before must be strictly after valid-after.
    assert_refused!(
        format!("a valid-before=\"20240101Z\",valid-after=\"20240101Z\" {ED25519}"),
        SignersError::EmptyValidity { .. },
        1
    );
    one(&format!(
        "a valid-after=\"20240101Z\",valid-before=\"20240101000001Z\" {ED25519}"
    ));
}

// ---- times ----------------------------------------------------------------------------

#[test]
fn every_time_format_in_utc() {
    for (value, expected) in [
        ("20240229Z", "2024-02-29T00:00:00Z"),
        ("202402291234Z", "2024-02-29T12:34:00Z"),
        ("20240229123456Z", "2024-02-29T12:34:56Z"),
        ("20240229123456z", "2024-02-29T12:34:56Z"),
        ("20240229123456UTC", "2024-02-29T12:34:56Z"),
        ("20240229123456utc", "2024-02-29T12:34:56Z"),
        // Past Timestamp::MAX, which stands in for it.
        ("99991231235959Z", "9999-12-30T22:00:00.999999999Z"),
        ("99991231Z", "9999-12-30T22:00:00.999999999Z"),
        ("19700101000001Z", "1970-01-01T00:00:01Z"),
    ] {
        assert_eq!(valid_before(value, &berlin()), ts(expected), "{value}");
    }
}

#[test]
fn every_time_format_in_a_fixed_local_zone() {
    let tz = TimeZone::fixed(jiff::tz::offset(5)); // +05:00
    assert_eq!(valid_before("20240101", &tz), ts("2023-12-31T19:00:00Z"));
    assert_eq!(
        valid_before("202401011230", &tz),
        ts("2024-01-01T07:30:00Z")
    );
    assert_eq!(
        valid_before("20240101123045", &tz),
        ts("2024-01-01T07:30:45Z")
    );
    let tz = TimeZone::fixed(jiff::tz::Offset::from_seconds(-(3 * 3600 + 30 * 60)).unwrap());
    assert_eq!(
        valid_before("202401011230", &tz),
        ts("2024-01-01T16:00:00Z")
    );
}

#[test]
fn local_winter_time_is_read_on_the_wall_clock() {
    assert_eq!(
        valid_before("202401011000", &berlin()),
        ts("2024-01-01T09:00:00Z")
    );
    assert_eq!(
        valid_before("20240101", &new_york()),
        ts("2024-01-01T05:00:00Z")
    );
}

#[test]
fn local_summer_time_is_read_as_standard_time_as_openssh_does() {
    // parse_absolute_time calls mktime(3) with tm_isdst = 0. Observed with OpenSSH 9.2
    // on glibc, TZ=Europe/Berlin: valid-before="202407011000" admits 09:00:00Z and
    // refuses 09:00:01Z, that is 11:00 on the summer wall clock; in New York
    // valid-before="20240701" ends at 05:00:00Z.
    assert_eq!(
        valid_before("202407011000", &berlin()),
        ts("2024-07-01T09:00:00Z")
    );
    assert_eq!(
        valid_before("20240701", &berlin()),
        ts("2024-06-30T23:00:00Z")
    );
    assert_eq!(
        valid_before("20240701", &new_york()),
        ts("2024-07-01T05:00:00Z")
    );
}

#[test]
fn local_time_in_the_spring_gap_is_read_as_standard_time() {
    // 02:30 does not exist on 2024-03-31 in Berlin; OpenSSH 9.2 reads it as 01:30:00Z.
    assert_eq!(
        valid_before("202403310230", &berlin()),
        ts("2024-03-31T01:30:00Z")
    );
}

#[test]
fn local_time_in_the_autumn_fold_is_read_as_standard_time() {
    // 02:30 happens twice on 2024-10-27 in Berlin; OpenSSH 9.2 takes the second.
    assert_eq!(
        valid_before("202410270230", &berlin()),
        ts("2024-10-27T01:30:00Z")
    );
}

#[test]
fn local_time_without_any_standard_time_keeps_the_dst_offset() {
    // DST all year round (the POSIX idiom for permanent DST): mktime finds no standard
    // offset nearby and keeps the one in force.
    let tz = TimeZone::posix("XST-1XDT,0/0,J365/25").unwrap();
    let t = valid_before("202407011000", &tz);
    assert_eq!(t, ts("2024-07-01T08:00:00Z"));
}

#[test]
fn z_time_ignores_the_local_zone() {
    assert_eq!(
        valid_before("202407011000Z", &new_york()),
        ts("2024-07-01T10:00:00Z")
    );
}

#[test]
fn parse_uses_the_system_zone_only_for_local_times() {
    let text = format!("a valid-after=\"20240101Z\" {ED25519}");
    let signers = AllowedSigners::parse(&text).unwrap();
    assert_eq!(
        signers.entries()[0].valid_after,
        Some(ts("2024-01-01T00:00:00Z"))
    );
}

#[test]
fn malformed_times_are_refused() {
    for value in [
        "",
        "Z",
        "2024010",
        "202401011",
        "2024010112",
        "2024010112345",
        "202401011234567",
        "2024-01-01",
        "2024-01-01T00:00:00Z",
        "20240101T",
        "20240101ZZ",
        "20240101 Z",
        "2024 1 1",
        " 2024010",
        "+2024010",
        "-2024010",
        "20240101+0100",
        "20240101GMT",
        "２０２４０１０１",
        "0x240101",
        "now",
    ] {
        assert_refused!(
            format!("a valid-after=\"{value}\" {ED25519}"),
            SignersError::BadTime { option: "valid-after", value: ref v, .. } if v == value,
            1
        );
    }
}

#[test]
fn impossible_dates_are_refused_not_normalised() {
    // mktime(3) would move these to a real date; tally refuses them.
    for value in [
        "20240230",
        "20230229Z",
        "20241301",
        "20240001",
        "20240100",
        "20240431",
        "202401012400",
        "202401011260",
        "20240101235960Z",
        "20240101235961Z",
    ] {
        assert_refused!(
            format!("a valid-before=\"{value}\" {ED25519}"),
            SignersError::BadTime {
                option: "valid-before",
                ..
            },
            1
        );
    }
}

#[test]
fn times_not_after_the_epoch_are_refused() {
    for value in ["19700101Z", "19700101000000Z", "19691231Z", "00000101Z"] {
        assert_refused!(
            format!("a valid-after=\"{value}\" {ED25519}"),
            SignersError::TimeBeforeEpoch { .. },
            1
        );
    }
    // Local midnight in a zone east of UTC is before the epoch.
    let text = format!("a valid-before=\"19700101\" {ED25519}");
    let e = AllowedSigners::parse_in(&text, &berlin()).unwrap_err();
    assert!(matches!(e, SignersError::TimeBeforeEpoch { .. }), "{e:?}");
}

// ---- validity -------------------------------------------------------------------------

fn window() -> SignerEntry {
    one(&format!(
        "a valid-after=\"20240101Z\",valid-before=\"20241231Z\" {ED25519}"
    ))
}

#[test]
fn validity_bounds_are_inclusive() {
    let e = window();
    assert_eq!(e.check_validity(ts("2024-01-01T00:00:00Z")), Ok(()));
    assert_eq!(e.check_validity(ts("2024-12-31T00:00:00Z")), Ok(()));
    assert_eq!(e.check_validity(ts("2024-06-15T12:00:00Z")), Ok(()));
}

#[test]
fn one_second_outside_the_window_is_refused() {
    let e = window();
    assert_eq!(
        e.check_validity(ts("2023-12-31T23:59:59Z")),
        Err(Validity::NotYetValid {
            valid_after: ts("2024-01-01T00:00:00Z")
        })
    );
    assert_eq!(
        e.check_validity(ts("2024-12-31T00:00:01Z")),
        Err(Validity::Expired {
            valid_before: ts("2024-12-31T00:00:00Z")
        })
    );
}

#[test]
fn validity_compares_whole_seconds_as_openssh_does() {
    let e = window();
    let end = ts("2024-12-31T00:00:00Z");
    assert_eq!(
        e.check_validity(end + SignedDuration::from_millis(999)),
        Ok(())
    );
    let start = ts("2024-01-01T00:00:00Z");
    assert!(matches!(
        e.check_validity(start - SignedDuration::from_millis(1)),
        Err(Validity::NotYetValid { .. })
    ));
}

#[test]
fn open_ended_windows() {
    let e = one(&format!("a valid-after=\"20240101Z\" {ED25519}"));
    assert_eq!(e.check_validity(ts("9999-01-01T00:00:00Z")), Ok(()));
    assert!(e.check_validity(ts("1969-01-01T00:00:00Z")).is_err());
    let e = one(&format!("a valid-before=\"20240101Z\" {ED25519}"));
    assert_eq!(e.check_validity(ts("1969-01-01T00:00:00Z")), Ok(()));
    assert!(e.check_validity(ts("2024-01-01T00:00:01Z")).is_err());
    let e = one(&format!("a {ED25519}"));
    assert_eq!(e.check_validity(Timestamp::MIN), Ok(()));
    assert_eq!(e.check_validity(Timestamp::MAX), Ok(()));
}

#[test]
fn validity_messages() {
    let t = ts("2024-01-01T00:00:00Z");
    assert_eq!(
        Validity::NotYetValid { valid_after: t }.to_string(),
        "not yet valid (valid-after 2024-01-01T00:00:00Z)"
    );
    assert_eq!(
        Validity::Expired { valid_before: t }.to_string(),
        "expired (valid-before 2024-01-01T00:00:00Z)"
    );
}

// ---- files ----------------------------------------------------------------------------

#[test]
fn load_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowed_signers");
    std::fs::write(&path, format!("alice@example.com {ED25519}\n")).unwrap();
    let signers = AllowedSigners::load(&path).unwrap();
    assert_eq!(signers.entries().len(), 1);
}

#[test]
fn load_of_a_missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope");
    let e = AllowedSigners::load(&path).unwrap_err();
    assert!(matches!(e, SignersError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    assert_eq!(e.line(), None);
}

#[test]
fn load_error_names_the_path_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowed_signers");
    std::fs::write(&path, format!("a {ED25519}\nb namespaces=git {ED25519}\n")).unwrap();
    let e = AllowedSigners::load(&path).unwrap_err();
    let SignersError::InFile { error, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        matches!(**error, SignersError::UnquotedValue { line: 2, .. }),
        "{error:?}"
    );
    assert_eq!(e.line(), Some(2));
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}: allowed_signers line 2: ", path.display())),
        "{msg}"
    );
}

#[test]
fn load_refuses_invalid_utf8_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowed_signers");
    let mut bytes = format!("# ok\na {ED25519}\n# caf").into_bytes();
    bytes.extend_from_slice(b"\xe9\n");
    std::fs::write(&path, bytes).unwrap();
    let e = AllowedSigners::load(&path).unwrap_err();
    assert_eq!(e.line(), Some(3));
    assert!(e.to_string().contains("UTF-8"), "{e}");
}

// ---- properties -----------------------------------------------------------------------

/// Pieces that steer random lines into every branch of the parser.
fn fragment() -> impl Strategy<Value = String> {
    let blob = ED25519.split(' ').nth(1).unwrap().to_owned();
    prop_oneof![
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just("\r".to_owned()),
        Just("\n".to_owned()),
        Just("\"".to_owned()),
        Just("\\\"".to_owned()),
        Just(",".to_owned()),
        Just("=".to_owned()),
        Just("#".to_owned()),
        Just("!".to_owned()),
        Just("*".to_owned()),
        Just("a@example.com".to_owned()),
        Just("cert-authority".to_owned()),
        Just("namespaces=".to_owned()),
        Just("valid-after=".to_owned()),
        Just("valid-before=".to_owned()),
        Just("\"20240101Z\"".to_owned()),
        Just("\"19700101\"".to_owned()),
        Just("ssh-ed25519".to_owned()),
        Just("rsa-sha2-256".to_owned()),
        Just("ssh-ed25519-cert-v01@openssh.com".to_owned()),
        Just(blob),
        Just(ED25519.to_owned()),
        "\\PC{0,8}",
    ]
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC*") {
        let _ = AllowedSigners::parse_in(&text, &berlin());
    }

    #[test]
    fn parse_never_panics_on_near_miss_lines(
        parts in prop::collection::vec(fragment(), 0..16),
    ) {
        let text = parts.concat();
        if let Err(e) = AllowedSigners::parse_in(&text, &berlin()) {
            // Every content error names a line within the text.
            let line = e.line().unwrap();
            prop_assert!(line >= 1 && line <= text.split('\n').count());
        }
    }

    #[test]
    fn match_pattern_agrees_with_a_backtracking_reference(
        s in "[ab]{0,8}",
        pattern in "[ab*?]{0,8}",
    ) {
        let (s, pattern) = (s.as_bytes(), pattern.as_bytes());
        prop_assert_eq!(match_pattern(s, pattern), reference(s, pattern));
    }

    #[test]
    fn written_entries_read_back(
        principals in "[a-z*?!@.]{1,12}(,[a-z*?!@.]{1,12}){0,3}",
        ca in any::<bool>(),
        namespaces in prop::option::of("[a-z*!,]{0,12}"),
        after in prop::option::of(1i64..2_000_000_000),
        length in 1i64..1_000_000_000,
        before in any::<bool>(),
        comment in prop::option::of("[a-zA-Z0-9@.]{1,10}( [a-z]{1,5})?"),
    ) {
        let mut options = Vec::new();
        if ca {
            options.push("cert-authority".to_owned());
        }
        if let Some(ns) = &namespaces {
            options.push(format!("namespaces=\"{ns}\""));
        }
        let fmt = |s: i64| {
            Timestamp::from_second(s).unwrap().strftime("%Y%m%d%H%M%SZ").to_string()
        };
        if let Some(a) = after {
            options.push(format!("valid-after=\"{}\"", fmt(a)));
        }
        let before = before.then(|| after.unwrap_or(0) + length);
        if let Some(b) = before {
            options.push(format!("valid-before=\"{}\"", fmt(b)));
        }
        let mut line = principals.clone();
        if !options.is_empty() {
            line = format!("{line} {}", options.join(","));
        }
        line = format!("{line} {P256}");
        if let Some(c) = &comment {
            line = format!("{line} {c}");
        }
        let signers = AllowedSigners::parse_in(&line, &berlin()).unwrap();
        let e = &signers.entries()[0];
        prop_assert_eq!(&e.principals, &principals);
        prop_assert_eq!(e.cert_authority, ca);
        prop_assert_eq!(&e.namespaces, &namespaces);
        prop_assert_eq!(e.valid_after.map(|t| t.as_second()), after);
        prop_assert_eq!(e.valid_before.map(|t| t.as_second()), before);
        prop_assert_eq!(&e.comment, &comment);
        prop_assert_eq!(&e.key, &key(P256));
    }
}

/// A plain backtracking wildcard matcher: the recursive `match_pattern` OpenSSH had
/// before its NFA rewrite.
fn reference(s: &[u8], p: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| reference(&s[i..], rest)),
        Some((&c, rest)) => s
            .split_first()
            .is_some_and(|(&d, s)| (c == b'?' || c == d) && reference(s, rest)),
    }
}
