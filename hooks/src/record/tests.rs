#![allow(clippy::unwrap_used)]

use super::*;

fn update(name: &str) -> Update {
    Update {
        refname: name.to_owned(),
        old: None,
        new: None,
    }
}

fn encoded_len(groups: &[(Update, Vec<String>)]) -> usize {
    groups
        .iter()
        .map(|(u, r)| u.refname.len() + r.iter().map(|x| x.len() + 4).sum::<usize>())
        .sum()
}

/// Issue 10, class 6: a refusal with a hundred refs, each with fifty long reasons,
/// is still recorded, in a few KiB.
#[test]
fn a_huge_refusal_is_recorded_in_a_few_kib() {
    let reasons: Vec<String> = (0..50)
        .map(|i| format!("{i} {}", "x".repeat(3000)))
        .collect();
    let refused: Vec<(Update, Vec<String>)> = (0..100)
        .map(|i| (update(&format!("refs/heads/r{i}")), reasons.clone()))
        .collect();
    let bounded = bounded_refusal(&refused);
    assert_eq!(bounded.len(), MAX_REFUSED_REFS);
    assert!(
        encoded_len(&bounded) < 8 * 1024,
        "{}",
        encoded_len(&bounded)
    );
    let last = &bounded.last().unwrap().1;
    assert!(
        last[0].starts_with("93 refs refused in this push"),
        "{last:?}"
    );
    assert!(last[1].starts_with("refs/heads/r7: 0 xxx"), "{last:?}");
    assert!(
        last.last().unwrap().contains("4650 reasons in all"),
        "{last:?}"
    );
    for (_, r) in &bounded {
        assert!(r.iter().all(|x| x.len() <= MAX_REASON_LEN + 100));
        assert!(r.last().unwrap().contains("sha256 of the full list: "));
    }
}

#[test]
fn a_small_refusal_is_recorded_as_is() {
    let refused = vec![(
        update("refs/heads/main"),
        vec!["a".to_owned(), "b".to_owned()],
    )];
    assert_eq!(bounded_refusal(&refused), refused);
}

#[test]
fn long_ref_names_and_reasons_are_cut_at_character_boundaries() {
    let name = format!("refs/heads/{}", "\u{e9}".repeat(500));
    let refused = vec![(update(&name), vec!["\u{e9}".repeat(500)])];
    let bounded = bounded_refusal(&refused);
    let (u, r) = &bounded[0];
    assert!(u.refname.len() <= MAX_REASON_LEN);
    assert!(r[0].starts_with(&format!("ref name of {} bytes", name.len())));
    assert!(r[1].len() <= MAX_REASON_LEN && r[1].chars().all(|c| c == '\u{e9}'));
    assert!(r[2].starts_with("1 reason in all"));
}
