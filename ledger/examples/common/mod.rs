//! What the ledger benchmarks append: entries shaped like a deployment branch's pushes.

use tally_ledger::{CommitSigner, Kind, NewEntry};

/// The commit entry `n` moves its branch to.
fn previous(n: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(20);
    for i in 0..20u64 {
        v.push((n.wrapping_mul(31).wrapping_add(i * 7 + 2) % 251) as u8);
    }
    v
}

/// Entry `n` of a ledger whose pushes all go to `refs/heads/main`, every tenth one refused.
pub fn entry(n: u64) -> NewEntry {
    let id = |salt: u64| {
        let mut v = Vec::with_capacity(20);
        for i in 0..20u64 {
            v.push((n.wrapping_mul(31).wrapping_add(i * 7 + salt) % 251) as u8);
        }
        v
    };
    NewEntry {
        kind: if n % 10 == 9 {
            Kind::Rejected
        } else {
            Kind::Accepted
        },
        refname: "refs/heads/main".to_owned(),
        // Continuity: each accepted move starts where the previous accepted one ended (every
        // tenth entry is a refusal, which moves nothing).
        old: match n {
            0 => None,
            n if (n - 1) % 10 == 9 => Some(previous(n - 2)),
            n => Some(previous(n - 1)),
        },
        new: Some(id(2)),
        new_tree: Some(id(3)),
        commits: vec![CommitSigner {
            commit: id(2),
            principal: "alice@example.com".to_owned(),
            fingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".to_owned(),
        }],
        pusher: "alice".to_owned(),
        policy_digest: [0x5a; 32],
        reasons: if n % 10 == 9 {
            vec!["commit 1234: not signed (fix: git commit -S)".to_owned()]
        } else {
            vec![]
        },
        aborts: None,
    }
}

/// The value at quantile `p` of sorted values (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
