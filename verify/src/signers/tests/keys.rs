//! Key fields: every supported type, and the keys and key types OpenSSH refuses.

use super::*;

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
