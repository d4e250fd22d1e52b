//! Blocks: the vertices of the DAG.
//!
//! A block of round `r` by author `a` carries a [`BlockHeader`] — author,
//! round, the author's clock reading, references to parents and the digest
//! of its transactions — the transactions themselves and the author's
//! signature. A block is identified by [`BlockRef`]: `(round, author,
//! digest)` where the digest is blake3 over the canonical encoding of the
//! header under [`BLOCK_DOMAIN`]; the signature signs that digest under
//! [`BLOCK_SIGNATURE_DOMAIN`]. Because the header commits to the
//! transactions by digest, a signed header alone is enough to prove
//! equivocation (see [`super::evidence`]).
//!
//! Validity ([`VerifiedBlock::verify`]): the author is a committee member,
//! the round is at least 1 (round-0 genesis blocks are implicit), parents
//! are sorted by author with one parent per author, all parents are from
//! round `r-1` except the author's own previous block which may be older and
//! must be present, the round `r-1` parents hold a quorum of stake, the
//! transactions are within bounds and match the header, and the signature
//! verifies.

use core::fmt;
use core::ops::Deref;
use std::sync::{Arc, OnceLock};

use idlegrid_primitives::{
    BatchItem, CryptoError, CryptoRng, Digest, DigestHasher, Domain, Keypair, PublicKey, RngCore,
    Round, Signature, SignatureVerifier, Timestamp,
};
use serde::{Deserialize, Serialize};

use super::block_hashes::{HashMemo, Hashes, StructureKey};
use super::committee::{AuthorityIndex, Committee, StakeAggregator};
use super::committer::SupportMemo;
use super::config::ConsensusConfig;
use super::error::ConsensusError;

/// Domain of a block digest (over the canonical header encoding).
pub const BLOCK_DOMAIN: Domain = Domain::new("idlegrid/dag/block");
/// Domain of a block signature (over the block digest).
pub const BLOCK_SIGNATURE_DOMAIN: Domain = Domain::new("idlegrid/dag/block-signature");
/// Domain of the digest over a block's transactions.
pub const TRANSACTIONS_DOMAIN: Domain = Domain::new("idlegrid/dag/transactions");

/// An opaque transaction: bytes the consensus orders but never interprets.
///
/// The bytes are shared: cloning a transaction (as every validator's
/// [`Linearizer`](super::Linearizer) does into its commits) copies a
/// pointer. Encoded exactly as a `Vec<u8>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Transaction(Arc<[u8]>);

impl Transaction {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes.into())
    }
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// A copy of the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0.to_vec()
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True for zero bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// True if both share one byte buffer (then their bytes are equal).
    pub(super) fn shares_bytes(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl From<Vec<u8>> for Transaction {
    fn from(v: Vec<u8>) -> Self {
        Self::new(v)
    }
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len().min(8);
        write!(f, "Tx({}B:{})", self.0.len(), hex_prefix(&self.0[..n]))
    }
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The identity of a block: `(round, author, digest)`, ordered in that order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlockRef {
    /// Round of the block.
    pub round: Round,
    /// Author of the block.
    pub author: AuthorityIndex,
    /// Digest of the block's header.
    pub digest: Digest,
}

impl fmt::Debug for BlockRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "B({},{},{})",
            self.round,
            self.author,
            self.digest.short()
        )
    }
}

/// The signed part of a block.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Who proposed the block.
    pub author: AuthorityIndex,
    /// Its round.
    pub round: Round,
    /// The author's clock when proposing (informational, not validated).
    pub timestamp: Timestamp,
    /// Parents, sorted by author, one per author.
    pub parents: Vec<BlockRef>,
    /// Digest of the transactions under [`TRANSACTIONS_DOMAIN`].
    pub transactions_digest: Digest,
}

impl BlockHeader {
    /// The header's digest, the block's identity: `Digest::of(BLOCK_DOMAIN,
    /// header)`, computed by `BlockHeader::encode_to` (every received
    /// block is hashed, and serde writes a digest one byte at a time).
    pub fn digest(&self) -> Digest {
        static HASHER: OnceLock<DigestHasher> = OnceLock::new();
        let mut h = HashSink::new(HASHER.get_or_init(|| DigestHasher::new(BLOCK_DOMAIN)));
        self.encode_to(&mut h);
        h.finalize()
    }

    /// Writes the header's canonical (postcard) encoding: varints for the
    /// integers and lengths, digests as their 32 bytes. Equal to
    /// `encode(self)` (tested), without serde's per-byte calls.
    fn encode_to(&self, out: &mut impl Sink) {
        put_varint(out, self.author.get().into());
        put_varint(out, self.round.get());
        put_varint(out, self.timestamp.as_micros());
        put_varint(out, self.parents.len() as u64);
        for p in &self.parents {
            put_varint(out, p.round.get());
            put_varint(out, p.author.get().into());
            out.put(p.digest.as_bytes());
        }
        out.put(self.transactions_digest.as_bytes());
    }
    /// The block reference of this header.
    pub fn reference(&self) -> BlockRef {
        BlockRef {
            round: self.round,
            author: self.author,
            digest: self.digest(),
        }
    }
}

/// Where a hand-written canonical encoding goes: a hasher or a counter.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

/// Feeds a hasher through a stack buffer: an encoding is a dozen pieces of
/// a few bytes, and blake3's fixed cost per `update` call exceeded the
/// hashing of a whole header.
struct HashSink {
    hasher: DigestHasher,
    buf: [u8; HASH_SINK_BUF],
    len: usize,
}

const HASH_SINK_BUF: usize = 256;

impl HashSink {
    /// Starts from a clone of `hasher` (a fresh domain hasher).
    fn new(hasher: &DigestHasher) -> Self {
        Self {
            hasher: hasher.clone(),
            buf: [0; HASH_SINK_BUF],
            len: 0,
        }
    }

    fn finalize(mut self) -> Digest {
        self.hasher.update(&self.buf[..self.len]);
        self.hasher.finalize()
    }
}

impl Sink for HashSink {
    fn put(&mut self, bytes: &[u8]) {
        if bytes.len() > HASH_SINK_BUF - self.len {
            self.hasher.update(&self.buf[..self.len]);
            self.len = 0;
            if bytes.len() >= HASH_SINK_BUF {
                self.hasher.update(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

/// Counts encoded bytes.
struct Len(usize);

impl Sink for Len {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// A postcard varint (LEB128).
fn put_varint(out: &mut impl Sink, mut v: u64) {
    let mut buf = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        buf[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    out.put(&buf[..=n]);
}

/// Writes the canonical encoding of a transaction list (a sequence of byte
/// strings: length, then each one's length and bytes).
fn encode_transactions(transactions: &[Transaction], out: &mut impl Sink) {
    put_varint(out, transactions.len() as u64);
    for tx in transactions {
        put_varint(out, tx.len() as u64);
        out.put(tx.as_bytes());
    }
}

/// `Digest::of(TRANSACTIONS_DOMAIN, transactions)`, without serde. The
/// digest of no transactions (every genesis block, every block of an idle
/// network) is computed once.
fn transactions_digest(transactions: &[Transaction]) -> Digest {
    static HASHER: OnceLock<DigestHasher> = OnceLock::new();
    static EMPTY: OnceLock<Digest> = OnceLock::new();
    let digest = |transactions: &[Transaction]| {
        let mut h = HashSink::new(HASHER.get_or_init(|| DigestHasher::new(TRANSACTIONS_DOMAIN)));
        encode_transactions(transactions, &mut h);
        h.finalize()
    };
    if transactions.is_empty() {
        *EMPTY.get_or_init(|| digest(&[]))
    } else {
        digest(transactions)
    }
}

/// A header with its author's signature: what equivocation evidence carries.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedHeader {
    /// The header.
    pub header: BlockHeader,
    /// Signature over the header digest under [`BLOCK_SIGNATURE_DOMAIN`].
    pub signature: Signature,
}

impl SignedHeader {
    /// Verifies the signature against `public`.
    pub fn verify_signature(&self, public: &PublicKey) -> Result<(), ConsensusError> {
        public
            .verify(
                BLOCK_SIGNATURE_DOMAIN,
                self.header.digest().as_bytes(),
                &self.signature,
            )
            .map_err(ConsensusError::BadSignature)
    }
}

/// A block as it crosses the wire (not yet validated).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Block {
    /// The signed header.
    pub header: BlockHeader,
    /// The transactions, matching `header.transactions_digest`.
    pub transactions: Vec<Transaction>,
    /// The author's signature over the header digest.
    pub signature: Signature,
    /// The digests computed from the fields above, once per block.
    #[serde(skip)]
    hashes: HashMemo,
    /// Its support as a certificate, counted once per block (see
    /// [`SupportMemo`]).
    #[serde(skip)]
    support: SupportMemo,
}

impl Block {
    /// Assembles a block from its parts, unchecked (see
    /// [`VerifiedBlock::verify`]).
    pub fn from_parts(
        header: BlockHeader,
        transactions: Vec<Transaction>,
        signature: Signature,
    ) -> Self {
        Self {
            header,
            transactions,
            signature,
            hashes: HashMemo::default(),
            support: SupportMemo::default(),
        }
    }

    /// Builds and signs a block.
    pub fn new_signed(
        keypair: &Keypair,
        author: AuthorityIndex,
        round: Round,
        timestamp: Timestamp,
        parents: Vec<BlockRef>,
        transactions: Vec<Transaction>,
    ) -> Self {
        let plain = SignatureVerifier::plain();
        Self::new_signed_with(
            &plain,
            keypair,
            author,
            round,
            timestamp,
            parents,
            transactions,
        )
    }

    /// Builds a block and signs it through `signatures` (which, with a
    /// memo, remembers the signature as one that verifies: see
    /// [`SignatureVerifier::sign`]).
    pub fn new_signed_with(
        signatures: &SignatureVerifier,
        keypair: &Keypair,
        author: AuthorityIndex,
        round: Round,
        timestamp: Timestamp,
        parents: Vec<BlockRef>,
        transactions: Vec<Transaction>,
    ) -> Self {
        let digest = transactions_digest(&transactions);
        let header = BlockHeader {
            author,
            round,
            timestamp,
            parents,
            transactions_digest: digest,
        };
        let hashes = Hashes {
            header: header.digest(),
            transactions: digest,
        };
        let signature = signatures.sign(keypair, BLOCK_SIGNATURE_DOMAIN, hashes.header.as_bytes());
        let block = Self::from_parts(header, transactions, signature);
        block
            .hashes
            .remember(&block.header, &block.transactions, hashes);
        block
    }

    /// The implicit round-0 block of `author`: no parents, no transactions,
    /// no signature. Every validator builds the same genesis blocks.
    pub fn genesis(author: AuthorityIndex) -> Self {
        let transactions = Vec::new();
        let header = BlockHeader {
            author,
            round: Round::ZERO,
            timestamp: Timestamp::ZERO,
            parents: Vec::new(),
            transactions_digest: transactions_digest(&transactions),
        };
        Self::from_parts(header, transactions, Signature::from_bytes([0; 64]))
    }

    /// The commit rule's memo of this block's support as a certificate.
    pub(super) fn support_memo(&self) -> &SupportMemo {
        &self.support
    }

    /// The header digest and the transactions' digest, computed on the first
    /// call and remembered for this header and these transactions (see
    /// [`HashMemo`]).
    fn hashes(&self) -> Hashes {
        if let Some(h) = self.hashes.get(&self.header, &self.transactions) {
            return h;
        }
        let h = Hashes {
            header: self.header.digest(),
            transactions: transactions_digest(&self.transactions),
        };
        self.hashes.remember(&self.header, &self.transactions, h);
        h
    }

    /// The block's reference: `self.header.reference()`, with the header
    /// hashed once per block (a block built by [`Block::new_signed`] never
    /// again; a received one once, by its first reader).
    pub fn reference(&self) -> BlockRef {
        BlockRef {
            round: self.header.round,
            author: self.header.author,
            digest: self.hashes().header,
        }
    }

    /// The length of the block's canonical encoding (`encoded_len(self)`,
    /// without serde): header, transactions, 64-byte signature.
    pub fn encoded_len(&self) -> usize {
        // The signature is a 64-byte tuple: its bytes, no length.
        let mut len = Len(64);
        self.header.encode_to(&mut len);
        encode_transactions(&self.transactions, &mut len);
        len.0
    }

    /// The signed header (for evidence).
    pub fn signed_header(&self) -> SignedHeader {
        SignedHeader {
            header: self.header.clone(),
            signature: self.signature,
        }
    }

    /// Checks everything except the signature; returns the block reference.
    pub fn verify_structure(
        &self,
        committee: &Committee,
        config: &ConsensusConfig,
    ) -> Result<BlockRef, ConsensusError> {
        let h = &self.header;
        let key = StructureKey {
            committee: committee.digest(),
            limits: [
                config.max_block_transactions,
                config.max_transaction_bytes,
                config.max_block_bytes,
            ],
        };
        if let Some(hashes) = self.hashes.get_checked(h, &self.transactions, &key) {
            return Ok(BlockRef {
                round: h.round,
                author: h.author,
                digest: hashes.header,
            });
        }
        committee.authority(h.author)?;
        let Some(prev_round) = h.round.prev() else {
            return Err(ConsensusError::GenesisBlock);
        };
        if self.transactions.len() > config.max_block_transactions {
            return Err(ConsensusError::TooManyTransactions {
                count: self.transactions.len(),
                max: config.max_block_transactions,
            });
        }
        for tx in &self.transactions {
            if tx.is_empty() || tx.len() > config.max_transaction_bytes {
                return Err(ConsensusError::BadTransactionSize {
                    len: tx.len(),
                    max: config.max_transaction_bytes,
                });
            }
        }
        let len = self.encoded_len();
        if len > config.max_block_bytes {
            return Err(ConsensusError::BlockTooLarge {
                len,
                max: config.max_block_bytes,
            });
        }
        let mut stake = StakeAggregator::new(committee);
        let mut own = false;
        let mut last: Option<AuthorityIndex> = None;
        for p in &h.parents {
            committee.authority(p.author)?;
            if last.is_some_and(|l| l >= p.author) {
                return Err(ConsensusError::UnsortedParents);
            }
            last = Some(p.author);
            if p.author == h.author {
                own = true;
                if p.round >= h.round {
                    return Err(ConsensusError::ParentWrongRound {
                        parent: *p,
                        round: h.round,
                    });
                }
            } else if p.round != prev_round {
                return Err(ConsensusError::ParentWrongRound {
                    parent: *p,
                    round: h.round,
                });
            }
            if p.round == prev_round {
                stake.add(p.author, committee);
            }
        }
        if !own {
            return Err(ConsensusError::MissingOwnParent);
        }
        if !committee.is_quorum(stake.stake()) {
            return Err(ConsensusError::InsufficientParentStake {
                stake: stake.stake(),
                quorum: committee.quorum_threshold(),
            });
        }
        let hashes = self.hashes();
        if hashes.transactions != h.transactions_digest {
            return Err(ConsensusError::TransactionsDigestMismatch);
        }
        self.hashes.remember_checked(h, &self.transactions, key);
        Ok(BlockRef {
            round: h.round,
            author: h.author,
            digest: hashes.header,
        })
    }
}

/// A block that passed validation (or was built locally), with its
/// reference cached. Dereferences to [`Block`].
///
/// The block sits behind an [`Arc`], so cloning a `VerifiedBlock` is a
/// reference-count bump: the DAG store, the pending set, fetch responses and
/// outgoing [`ConsensusMessage`](super::ConsensusMessage)s all share the one
/// allocation made when the block was built or decoded (as Sui's
/// `VerifiedBlock` shares its `Arc<SignedBlock>`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedBlock {
    block: Arc<Block>,
    reference: BlockRef,
}

/// The signatures of `blocks`, whose structure was checked (each with the
/// reference [`Block::verify_structure`] returned): in one batch when there
/// are several, one by one if the batch fails (to tell which). One result
/// per block, in order.
pub(crate) fn verify_signatures<R: RngCore + CryptoRng>(
    blocks: Vec<(Arc<Block>, BlockRef)>,
    committee: &Committee,
    signatures: &SignatureVerifier,
    rng: &mut R,
) -> Vec<Result<VerifiedBlock, CryptoError>> {
    // The structure check accepted the author, so it indexes the committee.
    let key = |r: &BlockRef| {
        committee.authorities()[r.author.as_usize()]
            .node
            .public_key()
    };
    if blocks.len() > 1 {
        let pks: Vec<PublicKey> = blocks.iter().map(|(_, r)| key(r)).collect();
        let items: Vec<BatchItem<'_>> = blocks
            .iter()
            .zip(&pks)
            .map(|((b, r), pk)| BatchItem {
                domain: BLOCK_SIGNATURE_DOMAIN,
                msg: r.digest.as_bytes(),
                public: pk,
                signature: &b.signature,
            })
            .collect();
        if signatures.verify_batch(&items, rng).is_ok() {
            let wrap = |(b, r): (Arc<Block>, BlockRef)| Ok(VerifiedBlock::from_checked(b, r));
            return blocks.into_iter().map(wrap).collect();
        }
    }
    let one = |(b, r): (Arc<Block>, BlockRef)| {
        let pk = key(&r);
        signatures
            .verify(
                &pk,
                BLOCK_SIGNATURE_DOMAIN,
                r.digest.as_bytes(),
                &b.signature,
            )
            .map(|()| VerifiedBlock::from_checked(b, r))
    };
    blocks.into_iter().map(one).collect()
}

impl VerifiedBlock {
    /// Validates `block` fully, its signature included.
    pub fn verify(
        block: impl Into<Arc<Block>>,
        committee: &Committee,
        config: &ConsensusConfig,
    ) -> Result<Self, ConsensusError> {
        Self::verify_with(block, committee, config, &SignatureVerifier::plain())
    }

    /// As [`VerifiedBlock::verify`], checking the signature through
    /// `signatures` (a validator's verifier, which may remember
    /// signatures that verified).
    pub fn verify_with(
        block: impl Into<Arc<Block>>,
        committee: &Committee,
        config: &ConsensusConfig,
        signatures: &SignatureVerifier,
    ) -> Result<Self, ConsensusError> {
        let block = block.into();
        let reference = block.verify_structure(committee, config)?;
        let pk = committee.authority(reference.author)?.node.public_key();
        signatures
            .verify(
                &pk,
                BLOCK_SIGNATURE_DOMAIN,
                reference.digest.as_bytes(),
                &block.signature,
            )
            .map_err(ConsensusError::BadSignature)?;
        Ok(Self { block, reference })
    }

    /// Validates `blocks` fully, as [`VerifiedBlock::verify_with`] does one
    /// by one, with their signatures checked in one batch (through
    /// `signatures`, so a memo remembers each that verified): one result
    /// per block, in order. A block failing its structure check is left
    /// out of the batch; if the batch fails, the signatures are checked
    /// one by one to tell which.
    pub fn verify_all_with<R: RngCore + CryptoRng>(
        blocks: impl IntoIterator<Item = Arc<Block>>,
        committee: &Committee,
        config: &ConsensusConfig,
        signatures: &SignatureVerifier,
        rng: &mut R,
    ) -> Vec<Result<Self, ConsensusError>> {
        let mut failed = Vec::new();
        let mut sound = Vec::new();
        for b in blocks {
            match b.verify_structure(committee, config) {
                Ok(r) => {
                    sound.push((b, r));
                    failed.push(None);
                }
                Err(e) => failed.push(Some(e)),
            }
        }
        let mut checked = verify_signatures(sound, committee, signatures, rng).into_iter();
        let mut next = || match checked.next() {
            Some(r) => r.map_err(ConsensusError::BadSignature),
            None => unreachable!("one signature result per sound block"),
        };
        failed
            .into_iter()
            .map(|f| match f {
                Some(e) => Err(e),
                None => next(),
            })
            .collect()
    }

    /// Wraps a block without any check: for locally built blocks (our own
    /// proposals, genesis) and hand-built test DAGs.
    pub fn new_unchecked(block: impl Into<Arc<Block>>) -> Self {
        let block = block.into();
        let reference = block.reference();
        Self { block, reference }
    }

    /// Wraps a block whose structure and signature the caller checked; `reference` is what [`Block::verify_structure`]
    /// returned for this same block, so the header is not hashed a second
    /// time (not even by a debug assertion: that re-hash was a twentieth
    /// of the consensus fuzz target's time).
    pub(crate) fn from_checked(block: Arc<Block>, reference: BlockRef) -> Self {
        debug_assert_eq!(
            (block.header.round, block.header.author),
            (reference.round, reference.author)
        );
        Self { block, reference }
    }

    /// The block's reference.
    pub fn reference(&self) -> BlockRef {
        self.reference
    }
    /// The author.
    pub fn author(&self) -> AuthorityIndex {
        self.reference.author
    }
    /// The round.
    pub fn round(&self) -> Round {
        self.reference.round
    }
    /// The parents.
    pub fn parents(&self) -> &[BlockRef] {
        &self.block.header.parents
    }
    /// The parent authored by `author`, if any. Parents are sorted by
    /// author, one per author, so `author`'s is at index `author` or below:
    /// looked up there first (a block referencing every author of the
    /// previous round has each at its own index), then by binary search
    /// below it.
    pub fn parent_by(&self, author: AuthorityIndex) -> Option<&BlockRef> {
        let ps = self.parents();
        let guess = author.as_usize().min(ps.len().checked_sub(1)?);
        if ps[guess].author == author {
            return Some(&ps[guess]);
        }
        ps[..guess]
            .binary_search_by_key(&author, |p| p.author)
            .ok()
            .map(|i| &ps[i])
    }
    /// The underlying shared block: `Arc::clone(vb.block())` puts it in a
    /// message without copying it.
    pub fn block(&self) -> &Arc<Block> {
        &self.block
    }
}

impl Deref for VerifiedBlock {
    type Target = Block;
    fn deref(&self) -> &Block {
        &self.block
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::encoded_len;
    use proptest::prelude::*;

    fn arb_digest() -> impl Strategy<Value = Digest> {
        any::<[u8; 32]>().prop_map(Digest::from_bytes)
    }

    fn arb_block() -> impl Strategy<Value = Block> {
        // Small and large integers, so every varint length occurs; long
        // transactions, so their lengths take two bytes.
        let int = prop_oneof![0..300u64, any::<u64>()];
        let author = prop_oneof![0..300u32, any::<u32>()];
        let parent = (int.clone(), author.clone(), arb_digest()).prop_map(|(r, a, d)| BlockRef {
            round: Round::new(r),
            author: AuthorityIndex::new(a),
            digest: d,
        });
        (
            author,
            int.clone(),
            int,
            proptest::collection::vec(parent, 0..6),
            arb_digest(),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..5),
            any::<[u8; 32]>(),
        )
            .prop_map(|(author, round, time, parents, txd, txs, sig)| {
                Block::from_parts(
                    BlockHeader {
                        author: AuthorityIndex::new(author),
                        round: Round::new(round),
                        timestamp: Timestamp::from_micros(time),
                        parents,
                        transactions_digest: txd,
                    },
                    txs.into_iter().map(Transaction::new).collect(),
                    Signature::from_bytes([sig, sig].concat().try_into().unwrap()),
                )
            })
    }

    proptest! {
        /// The hand-written encodings equal serde's canonical encoding.
        #[test]
        fn direct_encoding_is_the_canonical_one(b in arb_block()) {
            prop_assert_eq!(b.header.digest(), Digest::of(BLOCK_DOMAIN, &b.header));
            prop_assert_eq!(
                transactions_digest(&b.transactions),
                Digest::of(TRANSACTIONS_DOMAIN, &b.transactions)
            );
            prop_assert_eq!(b.encoded_len(), encoded_len(&b));
        }

        /// `parent_by` (own index first, then binary search below it)
        /// finds exactly what a linear search finds, for parents sorted by
        /// author with one per author.
        #[test]
        fn parent_by_is_a_linear_search(
            authors in proptest::collection::btree_set(0u32..40, 0..40),
            probe in 0u32..45,
        ) {
            let parents: Vec<BlockRef> = authors
                .iter()
                .map(|&a| BlockRef {
                    round: Round::new(1),
                    author: AuthorityIndex::new(a),
                    digest: Digest::from_bytes([a as u8; 32]),
                })
                .collect();
            let header = BlockHeader {
                author: AuthorityIndex::new(0),
                round: Round::new(2),
                timestamp: Timestamp::from_micros(0),
                parents: parents.clone(),
                transactions_digest: transactions_digest(&[]),
            };
            let vb = VerifiedBlock::new_unchecked(Block::from_parts(
                header,
                Vec::new(),
                Signature::from_bytes([0; 64]),
            ));
            let a = AuthorityIndex::new(probe);
            prop_assert_eq!(vb.parent_by(a), parents.iter().find(|p| p.author == a));
        }
    }

    #[test]
    fn empty_transactions_digest_is_the_canonical_one() {
        for _ in 0..2 {
            assert_eq!(
                transactions_digest(&[]),
                Digest::of(TRANSACTIONS_DOMAIN, &Vec::<Transaction>::new())
            );
        }
    }
    use idlegrid_primitives::Seed;

    fn setup(n: usize) -> (Vec<Keypair>, Committee, ConsensusConfig) {
        let keys: Vec<Keypair> = (0..n)
            .map(|i| Keypair::from_seed(&Seed::from_u64(i as u64)))
            .collect();
        let c = Committee::equal(keys.iter().map(Keypair::node_id)).unwrap();
        (keys, c, ConsensusConfig::default())
    }

    fn genesis_refs(n: u32) -> Vec<BlockRef> {
        (0..n)
            .map(|i| Block::genesis(AuthorityIndex::new(i)).header.reference())
            .collect()
    }

    #[test]
    fn valid_round_one_block() {
        let (keys, c, cfg) = setup(4);
        let b = Block::new_signed(
            &keys[0],
            AuthorityIndex::new(0),
            Round::new(1),
            Timestamp::ZERO,
            genesis_refs(4),
            vec![Transaction::new(vec![1, 2])],
        );
        let v = VerifiedBlock::verify(b.clone(), &c, &cfg).unwrap();
        assert_eq!(v.reference(), b.header.reference());
        // Wrong signer.
        let mut bad = b.clone();
        bad.signature = keys[1].sign(BLOCK_SIGNATURE_DOMAIN, v.reference().digest.as_bytes());
        assert!(matches!(
            VerifiedBlock::verify(bad, &c, &cfg),
            Err(ConsensusError::BadSignature(_))
        ));
        // Tampered transactions.
        let mut bad = b;
        bad.transactions.push(Transaction::new(vec![9]));
        assert_eq!(
            VerifiedBlock::verify(bad, &c, &cfg),
            Err(ConsensusError::TransactionsDigestMismatch)
        );
    }

    #[test]
    fn verifying_all_answers_as_one_by_one() {
        use idlegrid_primitives::{ChaCha20Rng, SeedableRng, SignatureMemo};
        let (keys, c, cfg) = setup(4);
        let block = |a: usize| {
            let b = Block::new_signed(
                &keys[a],
                AuthorityIndex::new(a as u32),
                Round::new(1),
                Timestamp::ZERO,
                genesis_refs(4),
                vec![Transaction::new(vec![a as u8])],
            );
            Arc::new(b)
        };
        let wrong_signer = |a: usize| {
            let mut b = (*block(a)).clone();
            b.signature =
                keys[(a + 1) % 4].sign(BLOCK_SIGNATURE_DOMAIN, b.reference().digest.as_bytes());
            Arc::new(b)
        };
        let tampered = |a: usize| {
            let mut b = (*block(a)).clone();
            b.transactions.push(Transaction::new(vec![9]));
            Arc::new(b)
        };
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let cases: Vec<Vec<Arc<Block>>> = vec![
            vec![],
            vec![block(0)],
            (0..4).map(block).collect(),
            vec![block(0), wrong_signer(1), block(2), tampered(3)],
            vec![tampered(0), wrong_signer(1)],
        ];
        for blocks in cases {
            let memo = SignatureMemo::shared(&Seed::from_u64(9));
            let verifier = SignatureVerifier::memoized(memo.clone());
            let all = VerifiedBlock::verify_all_with(blocks.clone(), &c, &cfg, &verifier, &mut rng);
            let each: Vec<_> = blocks
                .iter()
                .map(|b| VerifiedBlock::verify(Arc::clone(b), &c, &cfg))
                .collect();
            assert_eq!(all, each);
            // What verified is remembered.
            let good = each.iter().filter(|r| r.is_ok()).count() as u64;
            let hits = memo.stats().hits;
            for b in &blocks {
                let _ = VerifiedBlock::verify_with(Arc::clone(b), &c, &cfg, &verifier);
            }
            assert_eq!(memo.stats().hits - hits, good);
        }
    }

    #[test]
    fn hashes_are_remembered_and_never_stale() {
        let (keys, c, cfg) = setup(4);
        let tx = || Transaction::new(vec![1, 2]);
        let mut b = Block::new_signed(
            &keys[0],
            AuthorityIndex::new(0),
            Round::new(1),
            Timestamp::ZERO,
            genesis_refs(4),
            vec![tx()],
        );
        assert!(b.hashes.is_set(), "the author's hashing is remembered");
        assert!(!b.clone().hashes.is_set(), "a clone starts empty");
        let r = b.header.reference();
        assert_eq!(b.reference(), r);
        assert_eq!(b.verify_structure(&c, &cfg), Ok(r));
        // Altered in place after hashing: the memo does not answer.
        b.header.timestamp = Timestamp::from_micros(5);
        assert_eq!(b.reference(), b.header.reference());
        assert_ne!(b.reference(), r);
        b.header.timestamp = Timestamp::ZERO;
        assert_eq!(b.reference(), r);
        // Equal bytes in a new buffer: recomputed, same digest.
        b.transactions = vec![tx()];
        assert_eq!(b.verify_structure(&c, &cfg), Ok(r));
        b.transactions.push(tx());
        assert_eq!(
            b.verify_structure(&c, &cfg),
            Err(ConsensusError::TransactionsDigestMismatch)
        );
    }

    #[test]
    fn a_passed_structural_check_is_remembered_for_its_committee_and_limits_only() {
        let (keys, c, cfg) = setup(4);
        let mut b = Block::new_signed(
            &keys[0],
            AuthorityIndex::new(0),
            Round::new(1),
            Timestamp::ZERO,
            genesis_refs(4),
            vec![Transaction::new(vec![1; 100])],
        );
        let r = b.header.reference();
        assert_eq!(b.verify_structure(&c, &cfg), Ok(r));
        let key = |c: &Committee, cfg: &ConsensusConfig| StructureKey {
            committee: c.digest(),
            limits: [
                cfg.max_block_transactions,
                cfg.max_transaction_bytes,
                cfg.max_block_bytes,
            ],
        };
        assert_eq!(
            b.hashes
                .get_checked(&b.header, &b.transactions, &key(&c, &cfg)),
            b.hashes.get(&b.header, &b.transactions),
            "the pass is remembered"
        );
        // Tighter limits, or a committee the parents do not reach a quorum
        // of: checked again, and refused.
        let tight = ConsensusConfig {
            max_transaction_bytes: 50,
            ..cfg.clone()
        };
        assert!(matches!(
            b.verify_structure(&c, &tight),
            Err(ConsensusError::BadTransactionSize { len: 100, max: 50 })
        ));
        let (_, big, _) = setup(7);
        assert!(b.verify_structure(&big, &cfg).is_err());
        // Altered in place after the check: the memo does not answer for it.
        let parents = b.header.parents.clone();
        b.header.parents.truncate(2);
        assert!(matches!(
            b.verify_structure(&c, &cfg),
            Err(ConsensusError::InsufficientParentStake { .. })
        ));
        b.header.parents = parents;
        assert_eq!(b.verify_structure(&c, &cfg), Ok(r));
    }

    #[test]
    fn parent_rules() {
        let (keys, c, cfg) = setup(4);
        let mk = |parents: Vec<BlockRef>| {
            Block::new_signed(
                &keys[0],
                AuthorityIndex::new(0),
                Round::new(1),
                Timestamp::ZERO,
                parents,
                vec![],
            )
        };
        let g = genesis_refs(4);
        assert_eq!(
            VerifiedBlock::verify(mk(g[1..].to_vec()), &c, &cfg),
            Err(ConsensusError::MissingOwnParent)
        );
        assert!(matches!(
            VerifiedBlock::verify(mk(g[..2].to_vec()), &c, &cfg),
            Err(ConsensusError::InsufficientParentStake {
                stake: 2,
                quorum: 3
            })
        ));
        let mut rev = g.clone();
        rev.reverse();
        assert_eq!(
            VerifiedBlock::verify(mk(rev), &c, &cfg),
            Err(ConsensusError::UnsortedParents)
        );
        let gen_block = Block::genesis(AuthorityIndex::new(0));
        assert_eq!(
            VerifiedBlock::verify(gen_block, &c, &cfg),
            Err(ConsensusError::GenesisBlock)
        );
    }
}
