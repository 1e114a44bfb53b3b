//! The RFC 6962 Merkle tree over the ledger's entries.
//!
//! RFC 6962, section 2.1: the hash of an empty tree is `SHA-256("")`; a leaf's hash is
//! `SHA-256(0x00 || entry bytes)`; an interior node's hash is `SHA-256(0x01 || left || right)`,
//! where a tree of `n > 1` leaves splits at `k`, the largest power of two smaller than `n`.
//! Inclusion proofs are RFC 6962 section 2.1.1's `PATH`, consistency proofs section 2.1.2's
//! `PROOF`; both are verified with the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.
//!
//! Proof generation reads only hashes of *complete* subtrees (a power-of-two number of leaves
//! starting at a multiple of that power), through a caller-supplied lookup, so the store can
//! answer from the node hashes it keeps instead of rereading every leaf.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree, `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The largest tree the frontier can describe: its size is a `u64` and each set bit holds one
/// hash, so 64 levels.
const MAX_LEVELS: usize = 64;

/// Returns the leaf hash of an entry's stored bytes, `SHA-256(0x00 || bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(bytes);
    h.finalize().into()
}

/// Returns the hash of an interior node, `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Why a proof could not be produced or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The first size of a consistency proof is larger than the second.
    #[error("cannot prove consistency from size {first} to the smaller size {second}")]
    SizesOutOfOrder {
        /// The first (older) size.
        first: u64,
        /// The second (newer) size.
        second: u64,
    },
    /// The proof has the wrong number of hashes for the sizes it is about.
    #[error("proof has {found} hashes; sizes {first} and {second} need {expected}")]
    WrongLength {
        /// The first size (or leaf index).
        first: u64,
        /// The second size (or tree size).
        second: u64,
        /// How many hashes the proof must have.
        expected: usize,
        /// How many it has.
        found: usize,
    },
    /// The proof does not lead to the expected root.
    #[error("proof does not match the root")]
    RootMismatch,
    /// The proof does not lead to the first (older) root of a consistency proof.
    #[error("consistency proof does not match the first root")]
    FirstRootMismatch,
    /// A tree of a size this crate cannot address was asked for.
    #[error("tree size {size} is too large")]
    SizeTooLarge {
        /// The size asked for.
        size: u64,
    },
}

/// Returns the largest power of two strictly smaller than `n` (for `n >= 2`), the split point
/// of RFC 6962.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Returns the root of a tree whose leaf hashes are given, by RFC 6962's recursive definition.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.append(leaf);
    }
    frontier.root()
}

/// Hash of the leaves `[start, end)`, which must be a right-edge range in RFC 6962's recursion,
/// computed from complete subtrees only: `complete(level, index)` must return the hash of the
/// `2^level` leaves starting at `index << level`.
fn range_hash<E>(
    start: u64,
    end: u64,
    complete: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
) -> Result<Hash, E> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return complete(level, start >> level);
    }
    let k = split(n);
    let left = range_hash(start, start + k, complete)?;
    let right = range_hash(start + k, end, complete)?;
    Ok(node_hash(&left, &right))
}

/// Returns the root of the tree of `size` leaves from complete-subtree hashes (see
/// [`inclusion_proof_with`] for what `complete` must return).
pub fn root_with<E>(
    size: u64,
    mut complete: impl FnMut(u32, u64) -> Result<Hash, E>,
) -> Result<Hash, E> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    range_hash(0, size, &mut complete)
}

/// Returns the inclusion proof of leaf `index` in the tree of `size` leaves (RFC 6962 2.1.1).
///
/// `complete(level, i)` must return the hash of the complete subtree of `2^level` leaves that
/// starts at leaf `i << level`; errors it returns are passed through.
pub fn inclusion_proof_with<E: From<ProofError>>(
    index: u64,
    size: u64,
    mut complete: impl FnMut(u32, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    let mut proof = Vec::new();
    // PATH(m, D[start:end]), unrolled: descend towards the leaf, collecting the sibling of each
    // subtree on the way, then reverse (the proof lists hashes from the leaf upwards).
    let (mut start, mut end, m) = (0u64, size, index);
    while end - start > 1 {
        let k = split(end - start);
        if m < start + k {
            proof.push(range_hash(start + k, end, &mut complete)?);
            end = start + k;
        } else {
            proof.push(range_hash(start, start + k, &mut complete)?);
            start += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Returns the consistency proof from the tree of `first` leaves to the tree of `second`
/// leaves (RFC 6962 2.1.2); empty when `first` is 0 or equal to `second`.
///
/// `complete` is as for [`inclusion_proof_with`].
pub fn consistency_proof_with<E: From<ProofError>>(
    first: u64,
    second: u64,
    mut complete: impl FnMut(u32, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second }.into());
    }
    let mut proof = Vec::new();
    if first == 0 || first == second {
        return Ok(proof);
    }
    // SUBPROOF(m, D[start:end], b), unrolled.
    let (mut start, mut end, mut m, mut b) = (0u64, second, first, true);
    loop {
        let n = end - start;
        if m == n {
            if !b {
                proof.push(range_hash(start, end, &mut complete)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            proof.push(range_hash(start + k, end, &mut complete)?);
            end = start + k;
        } else {
            proof.push(range_hash(start, start + k, &mut complete)?);
            start += k;
            m -= k;
            b = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Complete-subtree lookup over an in-memory list of leaf hashes.
fn from_leaves(leaves: &[Hash]) -> impl FnMut(u32, u64) -> Result<Hash, ProofError> + '_ {
    move |level, index| {
        let width = 1u64 << level;
        let start = index.saturating_mul(width);
        let end = start.saturating_add(width);
        let slice = usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| leaves.get(s..e))
            .ok_or(ProofError::SizeTooLarge { size: end })?;
        Ok(root(slice))
    }
}

/// Returns the inclusion proof of leaf `index` among all of `leaves`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    inclusion_proof_with(index, leaves.len() as u64, from_leaves(leaves))
}

/// Returns the consistency proof from the first `first` of `leaves` to all of them.
pub fn consistency_proof(leaves: &[Hash], first: u64) -> Result<Vec<Hash>, ProofError> {
    consistency_proof_with(first, leaves.len() as u64, from_leaves(leaves))
}

/// Verifies that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            first: index,
            second: size,
            expected,
            found: proof.len(),
        });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 || r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `second` leaves with root `second_root` extends the tree of
/// `first` leaves with root `first_root` (RFC 9162 2.1.4.2).
///
/// The trivial cases are strict: from size 0 the proof must be empty and `first_root` must be
/// the empty root; between equal sizes the proof must be empty and the roots equal.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    let expected = consistency_len(first, second);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            first,
            second,
            expected,
            found: proof.len(),
        });
    }
    if first == 0 {
        if *first_root != EMPTY_ROOT {
            return Err(ProofError::FirstRootMismatch);
        }
        if second == 0 && *second_root != EMPTY_ROOT {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    if first == second {
        if first_root != second_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    // Step 2: when `first` is a power of two, the first tree is itself a node of the proof.
    let mut path = proof.iter();
    let seed = if first.is_power_of_two() {
        *first_root
    } else {
        match path.next() {
            Some(h) => *h,
            None => return Err(ProofError::RootMismatch),
        }
    };
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (seed, seed);
    for c in path {
        if s_n == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::RootMismatch);
    }
    if fr != *first_root {
        return Err(ProofError::FirstRootMismatch);
    }
    if sr != *second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The number of hashes in the inclusion proof of `index` in a tree of `size` (`index < size`).
fn inclusion_len(index: u64, size: u64) -> usize {
    // Levels where the path to the leaf differs from the path to the last leaf contribute one
    // hash each, plus one per set bit of the last leaf's index above that split (RFC 9162's
    // "inner" and "border" parts).
    let last = size - 1;
    let inner = (64 - (index ^ last).leading_zeros()) as usize;
    let border = (last >> inner).count_ones() as usize;
    inner + border
}

/// The number of hashes in the consistency proof from `first` to `second` (`first <= second`).
fn consistency_len(first: u64, second: u64) -> usize {
    if first == 0 || first == second {
        return 0;
    }
    let inner = (64 - ((first - 1) ^ (second - 1)).leading_zeros()) as usize;
    let shift = (first - 1).trailing_ones() as usize;
    let border = ((second - 1) >> inner).count_ones() as usize;
    // The first tree's own hash stands in for the path's first node when `first` is a power of
    // two; otherwise that node is sent.
    let start = usize::from(!first.is_power_of_two());
    start + inner - shift.min(inner) + border
}

/// The right edge of a tree: the roots of the maximal complete subtrees of the leaves so far,
/// largest first. Appending a leaf and recomputing the root cost O(log n), and the frontier
/// serialises to a few hundred bytes so the store can keep it next to the head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One hash per set bit of `size`, from the highest bit to the lowest.
    peaks: Vec<Hash>,
}

/// Why a serialised frontier could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrontierError {
    /// The serialised frontier's length does not match the size it claims.
    #[error("frontier of size {size} needs {expected} bytes, found {found}")]
    BadLength {
        /// The size read (0 if the size itself was missing).
        size: u64,
        /// The expected length.
        expected: usize,
        /// The length found.
        found: usize,
    },
}

impl Frontier {
    /// Returns the frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Returns the frontier of a tree of `size` leaves from complete-subtree hashes (see
    /// [`inclusion_proof_with`]).
    pub fn from_complete<E>(
        size: u64,
        mut complete: impl FnMut(u32, u64) -> Result<Hash, E>,
    ) -> Result<Frontier, E> {
        let mut peaks = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                peaks.push(complete(level, start >> level)?);
                start += 1u64 << level;
            }
        }
        Ok(Frontier { size, peaks })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the maximal complete subtrees, largest first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends a leaf hash.
    pub fn append(&mut self, leaf: &Hash) {
        self.append_collecting(leaf, |_| {});
    }

    /// Appends a leaf hash, passing `completed` the hash of every complete subtree the leaf
    /// finishes, smallest (level 1) first: the node at level `l` covering the `2^l` leaves
    /// that end with this one.
    pub fn append_collecting(&mut self, leaf: &Hash, mut completed: impl FnMut(&Hash)) {
        let mut hash = *leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            let Some(left) = self.peaks.pop() else { break };
            hash = node_hash(&left, &hash);
            completed(&hash);
            size >>= 1;
        }
        self.peaks.push(hash);
        self.size = self.size.saturating_add(1);
    }

    /// The root of the tree.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(mut root) = peaks.next().copied() else {
            return EMPTY_ROOT;
        };
        for peak in peaks {
            root = node_hash(peak, &root);
        }
        root
    }

    /// Serialises the frontier: the size as `u64` big-endian, then the peaks, largest first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * self.peaks.len());
        out.extend_from_slice(&self.size.to_be_bytes());
        for peak in &self.peaks {
            out.extend_from_slice(peak);
        }
        out
    }

    /// Reads a serialised frontier, strictly: exactly one hash per set bit of the size.
    pub fn from_bytes(bytes: &[u8]) -> Result<Frontier, FrontierError> {
        let Some((size, rest)) = bytes.split_first_chunk::<8>() else {
            return Err(FrontierError::BadLength {
                size: 0,
                expected: 8,
                found: bytes.len(),
            });
        };
        let size = u64::from_be_bytes(*size);
        let count = size.count_ones() as usize;
        debug_assert!(count <= MAX_LEVELS);
        if rest.len() != 32 * count {
            return Err(FrontierError::BadLength {
                size,
                expected: 8 + 32 * count,
                found: bytes.len(),
            });
        }
        let peaks = rest
            .chunks_exact(32)
            .map(|chunk| {
                let mut h = [0u8; 32];
                h.copy_from_slice(chunk);
                h
            })
            .collect();
        Ok(Frontier { size, peaks })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(hex: &str) -> Hash {
        crate::hex::decode_lower(hex).unwrap().try_into().unwrap()
    }

    // The RFC 6962 reference data used by Certificate Transparency and Trillian, as published
    // in transparency-dev/merkle, proof/verify_test.go (`leaves`, `roots`, `inclusionProofs`,
    // `consistencyProofs`; that file numbers leaves from 1).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    /// (0-based leaf index, tree size, proof).
    const INCLUSION: [(u64, u64, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    /// (first size, second size, proof).
    const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    fn reference_leaves() -> Vec<Hash> {
        LEAVES
            .iter()
            .map(|l| leaf_hash(&crate::hex::decode_lower(l).unwrap()))
            .collect()
    }

    fn hashes(list: &[&str]) -> Vec<Hash> {
        list.iter().map(|s| h(s)).collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        use sha2::Digest;
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(root(&[]), EMPTY_ROOT);
        assert_eq!(Frontier::new().root(), EMPTY_ROOT);
    }

    #[test]
    fn roots_match_the_reference() {
        let leaves = reference_leaves();
        for n in 1..=8 {
            assert_eq!(root(&leaves[..n]), h(ROOTS[n - 1]), "size {n}");
        }
    }

    #[test]
    fn inclusion_proofs_match_the_reference() {
        let leaves = reference_leaves();
        for (index, size, expected) in INCLUSION {
            let tree = &leaves[..size as usize];
            let proof = inclusion_proof(tree, index).unwrap();
            assert_eq!(proof, hashes(expected), "leaf {index} of {size}");
            verify_inclusion(
                &tree[index as usize],
                index,
                size,
                &proof,
                &h(ROOTS[size as usize - 1]),
            )
            .unwrap();
        }
    }

    #[test]
    fn consistency_proofs_match_the_reference() {
        let leaves = reference_leaves();
        for (first, second, expected) in CONSISTENCY {
            let proof = consistency_proof(&leaves[..second as usize], first).unwrap();
            assert_eq!(proof, hashes(expected), "{first} -> {second}");
            verify_consistency(
                first,
                second,
                &h(ROOTS[first as usize - 1]),
                &h(ROOTS[second as usize - 1]),
                &proof,
            )
            .unwrap();
        }
    }

    #[test]
    fn single_leaf_inclusion_is_an_empty_proof() {
        let leaf = leaf_hash(b"data");
        verify_inclusion(&leaf, 0, 1, &[], &leaf).unwrap();
        assert!(verify_inclusion(&leaf, 0, 1, &[], &EMPTY_ROOT).is_err());
        assert!(verify_inclusion(&leaf, 1, 1, &[], &leaf).is_err());
        assert!(verify_inclusion(&leaf, 0, 0, &[], &leaf).is_err());
    }

    #[test]
    fn trivial_consistency_is_strict() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]).unwrap();
        verify_consistency(0, 5, &EMPTY_ROOT, &a, &[]).unwrap();
        verify_consistency(3, 3, &a, &a, &[]).unwrap();
        assert_eq!(
            verify_consistency(3, 3, &a, &b, &[]),
            Err(ProofError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(0, 5, &a, &b, &[]),
            Err(ProofError::FirstRootMismatch)
        );
        assert!(verify_consistency(3, 3, &a, &a, &[a]).is_err());
        assert!(verify_consistency(0, 1, &EMPTY_ROOT, &a, &[a]).is_err());
        assert_eq!(
            verify_consistency(4, 3, &a, &a, &[]),
            Err(ProofError::SizesOutOfOrder {
                first: 4,
                second: 3
            })
        );
        assert!(verify_consistency(1, 2, &a, &b, &[]).is_err());
    }

    #[test]
    fn reference_proofs_fail_when_corrupted() {
        // The corruptions transparency-dev/merkle applies to each known-good proof.
        let leaves = reference_leaves();
        let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
        for (index, size, expected) in INCLUSION {
            let proof = hashes(expected);
            let root = h(ROOTS[size as usize - 1]);
            let leaf = leaves[index as usize];
            let mut probes: Vec<(u64, u64, Hash, Vec<Hash>, Hash)> = vec![
                (index.wrapping_sub(1), size, leaf, proof.clone(), root),
                (index + 1, size, leaf, proof.clone(), root),
                (index ^ 2, size, leaf, proof.clone(), root),
                (index, size * 2, leaf, proof.clone(), root),
                (index, size / 2, leaf, proof.clone(), root),
                (index, size, some, proof.clone(), root),
                (index, size, leaf, proof.clone(), EMPTY_ROOT),
                (index, size, leaf, proof.clone(), some),
                (
                    index,
                    size,
                    leaf,
                    [proof.clone(), vec![root]].concat(),
                    root,
                ),
                (
                    index,
                    size,
                    leaf,
                    [vec![root], proof.clone()].concat(),
                    root,
                ),
                (index, size, leaf, proof[..proof.len() - 1].to_vec(), root),
            ];
            for i in 0..proof.len() {
                let mut p = proof.clone();
                p[i][0] ^= 8;
                probes.push((index, size, leaf, p, root));
            }
            for (i, s, l, p, r) in probes {
                assert!(
                    verify_inclusion(&l, i, s, &p, &r).is_err(),
                    "{i} {s} accepted a corrupt proof"
                );
            }
        }
        for (first, second, expected) in CONSISTENCY.into_iter().filter(|c| !c.2.is_empty()) {
            let proof = hashes(expected);
            let r1 = h(ROOTS[first as usize - 1]);
            let r2 = h(ROOTS[second as usize - 1]);
            let mut probes: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
                (first - 1, second, r1, r2, proof.clone()),
                (first + 1, second, r1, r2, proof.clone()),
                (first ^ 2, second, r1, r2, proof.clone()),
                (first, second * 2, r1, r2, proof.clone()),
                (first, second / 2, r1, r2, proof.clone()),
                (first, second, some, r2, proof.clone()),
                (first, second, r1, some, proof.clone()),
                (first, second, r2, r1, proof.clone()),
                (first, second, r1, r2, vec![]),
                (first, second, r1, r2, [proof.clone(), vec![r1]].concat()),
                (first, second, r1, r2, [proof.clone(), vec![r2]].concat()),
                (first, second, r1, r2, [vec![r1], proof.clone()].concat()),
                (first, second, r1, r2, [vec![r2], proof.clone()].concat()),
                (
                    first,
                    second,
                    r1,
                    r2,
                    [vec![proof[0]], proof.clone()].concat(),
                ),
                (first, second, r1, r2, proof[..proof.len() - 1].to_vec()),
            ];
            for i in 0..proof.len() {
                let mut p = proof.clone();
                p[i][0] ^= 16;
                probes.push((first, second, r1, r2, p));
            }
            for (f, s, a, b, p) in probes {
                assert!(
                    verify_consistency(f, s, &a, &b, &p).is_err(),
                    "{f} {s} accepted a corrupt proof"
                );
            }
        }
    }

    #[test]
    fn proof_lengths_match_the_proofs() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=leaves.len() as u64 {
            for m in 0..n {
                let p = inclusion_proof(&leaves[..n as usize], m).unwrap();
                assert_eq!(p.len(), inclusion_len(m, n), "inclusion {m} of {n}");
            }
            for m in 0..=n {
                let p = consistency_proof(&leaves[..n as usize], m).unwrap();
                assert_eq!(p.len(), consistency_len(m, n), "consistency {m} -> {n}");
            }
        }
    }

    #[test]
    fn frontier_agrees_with_the_recursive_root_at_every_size() {
        let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = Frontier::new();
        for (i, leaf) in leaves.iter().enumerate() {
            frontier.append(leaf);
            let n = i + 1;
            assert_eq!(frontier.size(), n as u64);
            assert_eq!(frontier.root(), root_recursive(&leaves[..n]), "size {n}");
            let back = Frontier::from_bytes(&frontier.to_bytes()).unwrap();
            assert_eq!(back, frontier);
            let rebuilt = Frontier::from_complete(n as u64, from_leaves(&leaves)).unwrap();
            assert_eq!(rebuilt, frontier);
        }
    }

    #[test]
    fn frontier_reports_the_nodes_each_leaf_completes() {
        let leaves: Vec<Hash> = (0u32..64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = Frontier::new();
        for (i, leaf) in leaves.iter().enumerate() {
            let mut done = Vec::new();
            frontier.append_collecting(leaf, |h| done.push(*h));
            assert_eq!(done.len(), (i as u64).trailing_ones() as usize);
            for (level, node) in done.iter().enumerate() {
                let width = 1usize << (level + 1);
                assert_eq!(*node, root_recursive(&leaves[i + 1 - width..=i]));
            }
        }
    }

    #[test]
    fn frontier_rejects_bad_lengths() {
        assert!(Frontier::from_bytes(&[]).is_err());
        assert!(Frontier::from_bytes(&3u64.to_be_bytes()).is_err());
        let mut bytes = 1u64.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 33]);
        assert!(Frontier::from_bytes(&bytes).is_err());
        assert_eq!(
            Frontier::from_bytes(&0u64.to_be_bytes()).unwrap(),
            Frontier::new()
        );
    }

    /// RFC 6962's definition, written as literally as possible, to check the others against.
    fn root_recursive(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&root_recursive(&leaves[..k]), &root_recursive(&leaves[k..]))
            }
        }
    }

    proptest! {
        #[test]
        fn every_inclusion_proof_verifies_and_any_flipped_bit_fails(
            n in 1u64..200, pick in any::<prop::sample::Index>(), bit in 0usize..256,
        ) {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
            let index = pick.index(n as usize) as u64;
            let r = root(&leaves);
            let proof = inclusion_proof(&leaves, index).unwrap();
            prop_assert!(verify_inclusion(&leaves[index as usize], index, n, &proof, &r).is_ok());
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let which = bit % bad.len();
                bad[which][(bit / 8) % 32] ^= 1 << (bit % 8);
                prop_assert!(verify_inclusion(&leaves[index as usize], index, n, &bad, &r).is_err());
            }
            let mut bad_leaf = leaves[index as usize];
            bad_leaf[(bit / 8) % 32] ^= 1 << (bit % 8);
            prop_assert!(verify_inclusion(&bad_leaf, index, n, &proof, &r).is_err());
            let mut bad_root = r;
            bad_root[(bit / 8) % 32] ^= 1 << (bit % 8);
            prop_assert!(verify_inclusion(&leaves[index as usize], index, n, &proof, &bad_root).is_err());
        }

        #[test]
        fn every_consistency_proof_verifies_and_any_flipped_bit_fails(
            n in 1u64..200, pick in any::<prop::sample::Index>(), bit in 0usize..256,
        ) {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
            let m = pick.index(n as usize + 1) as u64;
            let r1 = root(&leaves[..m as usize]);
            let r2 = root(&leaves);
            let proof = consistency_proof(&leaves, m).unwrap();
            prop_assert!(verify_consistency(m, n, &r1, &r2, &proof).is_ok());
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let which = bit % bad.len();
                bad[which][(bit / 8) % 32] ^= 1 << (bit % 8);
                prop_assert!(verify_consistency(m, n, &r1, &r2, &bad).is_err());
            }
            let mut bad_r1 = r1;
            bad_r1[(bit / 8) % 32] ^= 1 << (bit % 8);
            prop_assert!(verify_consistency(m, n, &bad_r1, &r2, &proof).is_err());
            let mut bad_r2 = r2;
            bad_r2[(bit / 8) % 32] ^= 1 << (bit % 8);
            prop_assert!(verify_consistency(m, n, &r1, &bad_r2, &proof).is_err() || (m == 0 && n > 0));
        }
    }
}
