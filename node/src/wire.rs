//! The node's wire vocabulary: what validators, providers and clients say
//! to each other.
//!
//! - Validators talk consensus ([`NodeMessage::Consensus`]).
//! - A light node (provider, client) talks to validators through
//!   [`GatewayRequest`]s — submit a signed transaction, subscribe to the
//!   facts about its account — and hears back [`FactBatch`]es: after every
//!   committed batch, each validator sends each subscriber the [`Fact`]s of
//!   that batch that concern it (ledger outcomes of its own transactions and
//!   marketplace facts where it is a party).
//! - Light nodes hand work to each other off the ledger ([`PeerMessage`]).
//!
//! Who sent a message is the transport's word (the TCP transport
//! authenticates both ends by their node keys; the simulator delivers the
//! sender's id), so facts carry no signature of their own. A light node acts
//! on a fact only once validators holding a validity quorum (f + 1 of the
//! stake) sent it identically for the same commit — see
//! [`facts::FactQuorum`](crate::facts::FactQuorum). One lying validator, a
//! gateway included, can therefore neither forge a match, a delivery, a
//! verdict or a payment, nor hide one for long: every validator reports.

use std::sync::Arc;

use idlegrid_dag_ledger::consensus::ConsensusMessage;
use idlegrid_dag_ledger::ledger::{LedgerError, SignedTransaction};
use idlegrid_entrap::{DisputedTrap, SubtaskIndex};
use idlegrid_primitives::{AccountId, Amount, Digest, Domain, NodeId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::market::{BatchNo, MarketError, Notice, OrderKey, SealError, Settlement};

/// Most facts one validator sends one subscriber per commit.
pub const MAX_FACTS_PER_BATCH: usize = 4_096;
/// Most inputs one lot hands to its provider.
pub const MAX_LOT_INPUTS: usize = 4_096;

/// Every message between two nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeMessage {
    /// Validator ↔ validator: DAG consensus.
    Consensus(ConsensusMessage),
    /// Light node → validator.
    Gateway(GatewayRequest),
    /// Validator → light node: the facts of one commit that concern it.
    Facts(FactBatch),
    /// Light node ↔ light node: off-ledger hand-offs.
    Peer(PeerMessage),
    /// Validator ↔ validator: state-sync snapshots.
    Sync(SyncMessage),
    /// Validator → validators: a consensus message (its own block) carrying
    /// the sender's votes on the facts of the commits it applied since its
    /// last block (at most [`MAX_VOTES_PER_BLOCK`]; see
    /// [`crate::certified`]): the votes ride on a message every validator
    /// receives anyway.
    Voted {
        /// The consensus message.
        consensus: ConsensusMessage,
        /// The votes (shared by the copies of one broadcast).
        votes: Arc<[FactsVote]>,
    },
    /// Validator → light node: the leaves of a commit's facts tree that
    /// concern it, proven against the commit's certificate (shared by every
    /// subscriber of the commit).
    Certified(ProvenFacts),
}

pub use crate::certified::{
    FactsCertificate, FactsMode, FactsVote, MAX_VOTES_PER_BLOCK, ProvenFacts, ProvenLeaf,
};

pub use crate::snapshot::{Manifest, SnapshotOffer, SyncMessage};

/// What a light node asks of a validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GatewayRequest {
    /// Send me the facts about my account (the sender's node key is its
    /// account key) after every commit from now on.
    Subscribe,
    /// Check and queue this transaction for a block.
    Submit(Box<SignedTransaction>),
    /// Report my holdings ([`Fact::Balance`]) even if no commit touches
    /// them: a subscriber hears them at the next few commits whose index is
    /// a multiple of [`HOLDINGS_EVERY`] (see
    /// [`HOLDINGS_REPORTS`](crate::validator::HOLDINGS_REPORTS)) — the same
    /// commits at every honest validator, so the fact reaches its f + 1
    /// quorum.
    Holdings,
    /// Subscribe, and send me the facts about my account of the commits
    /// from this index on that you still hold (the last
    /// [`REPLAY_COMMITS`](crate::validator::REPLAY_COMMITS)): what a light
    /// node asks of the sources its window widens to, so facts its other
    /// sources did not back in time are decided. Served only to a node not
    /// subscribed already (a subscriber hears every fact as it commits).
    SubscribeFrom(u64),
    /// Subscribe (again), with the facts sent as `mode` says; `from`: as
    /// [`GatewayRequest::SubscribeFrom`] (proven facts when `mode` is
    /// [`FactsMode::Certified`], those of the kept certificates, replayed
    /// unless this validator sent this node certified facts already).
    SubscribeWith {
        /// Replay from this commit.
        from: Option<u64>,
        /// How the facts are sent.
        mode: FactsMode,
    },
    /// Send me, once, the proven facts about my account of the kept
    /// certificates from this commit on, whatever I am subscribed to: what
    /// a light node asks another validator when a fact it expected has not
    /// come from its sources of certified facts
    /// ([`LightCore::suspect_withheld`](crate::light::LightCore::suspect_withheld)).
    Replay {
        /// Replay from this commit.
        from: u64,
    },
}

/// Commits between two reports of requested holdings
/// ([`GatewayRequest::Holdings`]).
pub const HOLDINGS_EVERY: u64 = 8;

/// The facts of commit `index` that concern one subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactBatch {
    /// The commit's index (identical at every honest validator).
    pub index: u64,
    /// The facts, in ledger order (shared: a validator sends the same
    /// slice to every subscriber it concerns, and validators that applied
    /// a commit together share it; encoded as a sequence).
    pub facts: Arc<[Fact]>,
}

/// A ledger fact a light node may act on once f + 1 validators back it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fact {
    /// A transaction of `sender` was applied.
    Applied {
        /// Sender.
        sender: AccountId,
        /// Its id ([`SignedTransaction::id`]).
        tx: Digest,
    },
    /// A transaction of `sender` was rejected, without effect.
    Rejected {
        /// Sender.
        sender: AccountId,
        /// Its id ([`SignedTransaction::id`]).
        tx: Digest,
        /// Why (boxed, as [`Fact::Settled`]'s settlement: rare and large).
        reason: Box<Rejection>,
    },
    /// A job's lot was matched to `provider` at `price`.
    Matched {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// Seller price per compute-second.
        price: Amount,
        /// The provider's credibility at the match, parts per million
        /// (what the client's trap optimizer is fed).
        credibility_ppm: u32,
        /// The provider's trap-carrying lots that settled clean since its
        /// last slash, over every client (what the lifetime trap mode
        /// discounts by).
        verified_lots: u32,
        /// Unplanned by then, the lot lapses ([`Fact::Unplanned`]).
        plan_by: Timestamp,
    },
    /// Lots of a job lapsed unmatched.
    Lapsed {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Unmatched lots.
        lots: u32,
    },
    /// A lot's round opened: the plan is on the ledger, the stake bonded.
    RoundOpened {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// The plan's slot inputs, slot order (what the provider must run).
        inputs: Vec<Digest>,
    },
    /// A lot's outputs were revealed on the ledger.
    Delivered {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// Output digests, slot order.
        outputs: Vec<Digest>,
    },
    /// The client accused the provider on `traps`.
    Accused {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// Accused slots.
        traps: Vec<SubtaskIndex>,
    },
    /// A dispute went to a referee committee.
    DisputeOpened {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// Referees.
        committee: Vec<NodeId>,
        /// The disputed traps.
        disputed: Vec<DisputedTrap>,
    },
    /// A lot settled: who was paid, slashed, refunded (boxed: the largest
    /// fact by far, and facts fill every validator's batches).
    Settled(Box<Settlement>),
    /// An account's holdings after a commit that touched it (sent to a
    /// subscriber with its other facts of that commit, and when it receives
    /// a transfer).
    Balance(AccountState),
    /// A job closed; the remainder of its escrow was refunded.
    JobClosed {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Refunded remainder.
        refunded: Amount,
    },
    /// A sealed order (no price) was committed in `batch`.
    OrderSealed {
        /// Owner.
        owner: AccountId,
        /// Which order.
        order: OrderKey,
        /// Its batch.
        batch: BatchNo,
    },
    /// Every batch up to `batch` is closed for commits: their orders may be
    /// revealed now (sent to every subscriber).
    SealingClosed {
        /// The last closed batch.
        batch: BatchNo,
    },
    /// A sealed order was opened after its batch closed.
    OrderRevealed {
        /// Owner.
        owner: AccountId,
        /// Which order.
        order: OrderKey,
        /// Its batch.
        batch: BatchNo,
        /// The revealed price.
        price: Amount,
    },
    /// A sealed order was not revealed in time: its bond was burned.
    BondForfeited {
        /// Owner.
        owner: AccountId,
        /// Which order.
        order: OrderKey,
        /// Its batch.
        batch: BatchNo,
        /// The burned bond.
        bond: Amount,
    },
    /// A job's revealed bid left lots unfilled: it may be re-sealed as
    /// attempt `next_attempt` until its deadline.
    BidUnfilled {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Unfilled lots.
        lots: u32,
        /// The attempt a re-seal must carry.
        next_attempt: u32,
    },
    /// A sealing transaction of `owner` was refused, typed (the
    /// [`Fact::Rejected`] of the same commit frees its nonce).
    SealRejected {
        /// Sender.
        owner: AccountId,
        /// Why.
        error: SealError,
    },
    /// A matched lot lapsed unplanned (its client sent no plan in time):
    /// the provider's slot is free, the client's lot bond burned.
    Unplanned {
        /// Client.
        client: AccountId,
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Provider.
        provider: AccountId,
        /// The burned lot bond.
        bond: Amount,
    },
}

/// What an account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// The account.
    pub account: AccountId,
    /// Spendable balance.
    pub balance: Amount,
    /// Bonded stake (locked and free).
    pub bonded: Amount,
    /// Bonded stake not held by any lock.
    pub free_stake: Amount,
    /// Stake unbonding, matured or not.
    pub unbonding: Amount,
    /// Unbonding stake that has matured (a `Withdraw` moves it).
    pub withdrawable: Amount,
    /// The nonce its next transaction must carry.
    pub nonce: u64,
}

impl Fact {
    /// The fact a marketplace notice becomes, if light nodes hear of it.
    pub fn from_notice(n: &Notice) -> Option<Fact> {
        Some(match n.clone() {
            Notice::Matched {
                client,
                job,
                lot,
                provider,
                price,
                credibility_ppm,
                verified_lots,
                plan_by,
            } => Fact::Matched {
                client,
                job,
                lot,
                provider,
                price,
                credibility_ppm,
                verified_lots,
                plan_by,
            },
            Notice::Lapsed { client, job, lots } => Fact::Lapsed { client, job, lots },
            Notice::Unplanned {
                client,
                job,
                lot,
                provider,
                bond,
            } => Fact::Unplanned {
                client,
                job,
                lot,
                provider,
                bond,
            },
            Notice::RoundOpened {
                client,
                job,
                lot,
                provider,
                inputs,
            } => Fact::RoundOpened {
                client,
                job,
                lot,
                provider,
                inputs,
            },
            Notice::Delivered {
                client,
                job,
                lot,
                provider,
                outputs,
            } => Fact::Delivered {
                client,
                job,
                lot,
                provider,
                outputs,
            },
            Notice::Accused {
                client,
                job,
                lot,
                provider,
                traps,
            } => Fact::Accused {
                client,
                job,
                lot,
                provider,
                traps,
            },
            Notice::DisputeOpened {
                client,
                job,
                lot,
                provider,
                committee,
                disputed,
                ..
            } => Fact::DisputeOpened {
                client,
                job,
                lot,
                provider,
                committee,
                disputed,
            },
            Notice::Settled(s) => Fact::Settled(Box::new(s)),
            Notice::JobClosed {
                client,
                job,
                refunded,
            } => Fact::JobClosed {
                client,
                job,
                refunded,
            },
            other => return Self::from_sealing_notice(other),
        })
    }

    /// The sealed-bid market's notices as facts (see [`Fact::from_notice`]).
    fn from_sealing_notice(n: Notice) -> Option<Fact> {
        Some(match n {
            Notice::OrderSealed {
                owner,
                order,
                batch,
            } => Fact::OrderSealed {
                owner,
                order,
                batch,
            },
            Notice::SealingClosed { batch } => Fact::SealingClosed { batch },
            Notice::OrderRevealed {
                owner,
                order,
                batch,
                price,
            } => Fact::OrderRevealed {
                owner,
                order,
                batch,
                price,
            },
            Notice::BondForfeited {
                owner,
                order,
                batch,
                bond,
            } => Fact::BondForfeited {
                owner,
                order,
                batch,
                bond,
            },
            Notice::BidUnfilled {
                client,
                job,
                lots,
                next_attempt,
            } => Fact::BidUnfilled {
                client,
                job,
                lots,
                next_attempt,
            },
            Notice::SealRejected { owner, error } => Fact::SealRejected { owner, error },
            _ => return None,
        })
    }

    /// Sent to every subscriber rather than to its [`Fact::parties`]
    /// (every sealer paces its reveals and asks by it).
    pub fn to_every_subscriber(&self) -> bool {
        matches!(self, Fact::SealingClosed { .. })
    }

    /// The accounts this fact concerns (who it is sent to; none for a fact
    /// [sent to every subscriber](Fact::to_every_subscriber)).
    pub fn parties(&self) -> [Option<AccountId>; 2] {
        match self {
            Fact::SealingClosed { .. } => [None, None],
            Fact::OrderSealed { owner, .. }
            | Fact::OrderRevealed { owner, .. }
            | Fact::BondForfeited { owner, .. }
            | Fact::SealRejected { owner, .. } => [Some(*owner), None],
            Fact::BidUnfilled { client, .. } => [Some(*client), None],
            Fact::Applied { sender, .. } | Fact::Rejected { sender, .. } => [Some(*sender), None],
            Fact::Balance(a) => [Some(a.account), None],
            Fact::Lapsed { client, .. } | Fact::JobClosed { client, .. } => [Some(*client), None],
            Fact::Matched {
                client, provider, ..
            }
            | Fact::RoundOpened {
                client, provider, ..
            }
            | Fact::Delivered {
                client, provider, ..
            }
            | Fact::Accused {
                client, provider, ..
            }
            | Fact::DisputeOpened {
                client, provider, ..
            }
            | Fact::Unplanned {
                client, provider, ..
            } => [Some(*client), Some(*provider)],
            Fact::Settled(s) => [Some(s.client), Some(s.provider)],
        }
    }
}

/// Why the ledger rejected a transaction: a kind a program can branch on,
/// the marketplace's own typed error when the marketplace refused it, and
/// the words for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The kind.
    pub kind: RejectionKind,
    /// The marketplace's error (decoded from the receipt's typed
    /// application error) when `kind` is [`RejectionKind::Market`].
    pub market: Option<MarketError>,
    /// The message: the marketplace's error or the ledger's.
    pub detail: String,
    /// For a nonce rejection, the account's next nonce at that commit (the
    /// f + 1 validators that back the fact agree on it).
    pub expected_nonce: Option<u64>,
}

/// The kinds of [`Rejection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectionKind {
    /// The nonce was not the account's next one (a duplicate or a gap).
    Nonce,
    /// Not enough balance or free stake.
    Funds,
    /// The account's quota of transactions per epoch is used up.
    Quota,
    /// The marketplace refused the payload (a rule of the market).
    Market,
    /// Anything else (malformed, wrong chain, unknown account…).
    Invalid,
}

impl Rejection {
    /// The rejection a ledger error becomes.
    pub fn from_ledger(e: &LedgerError) -> Self {
        let kind = match e {
            LedgerError::BadNonce { .. } | LedgerError::NonceExhausted => RejectionKind::Nonce,
            LedgerError::InsufficientBalance { .. } | LedgerError::InsufficientStake { .. } => {
                RejectionKind::Funds
            }
            LedgerError::QuotaExceeded { .. } => RejectionKind::Quota,
            LedgerError::App { .. } => RejectionKind::Market,
            _ => RejectionKind::Invalid,
        };
        let market = MarketError::from_ledger(e);
        let detail = market
            .as_ref()
            .map_or_else(|| e.to_string(), |m| m.to_string());
        let expected_nonce = match e {
            LedgerError::BadNonce { expected, .. } => Some(expected.get()),
            _ => None,
        };
        Self {
            kind,
            market,
            detail,
            expected_nonce,
        }
    }
}

/// Light node ↔ light node, off the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// Client → matched provider: the lot's slot inputs (content
    /// addresses; real subtasks and traps look alike), in slot order.
    Inputs {
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Slot inputs.
        inputs: Vec<Digest>,
        /// The program and the bytes behind `inputs` (absent when the
        /// driver's executor works on content addresses alone, as the
        /// simulator's does).
        data: Option<LotData>,
    },
    /// Provider → validators: what referees need to re-run a dispute.
    Evidence(Evidence),
    /// Provider → client, after its delivery: the bytes behind the output
    /// digests it put on the ledger, in slot order. The client keeps only
    /// bytes whose [`output_digest`] the ledger holds.
    Outputs {
        /// Job.
        job: u64,
        /// Lot.
        lot: u32,
        /// Slot outputs.
        outputs: Vec<Vec<u8>>,
    },
}

/// Provider → every validator, when it disputes an accusation: the bytes of
/// the accused slots, so referees can re-run them. A validator keeps only
/// bytes whose [`input_digest`] a dispute names (see
/// [`ValidatorEvent::RefereeDuty`](crate::validator::ValidatorEvent)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Client of the lot.
    pub client: AccountId,
    /// Job.
    pub job: u64,
    /// Lot.
    pub lot: u32,
    /// The accused slots' program and inputs.
    pub data: LotData,
}

/// Bytes a lot's messages may carry at most (program and inputs, or
/// outputs), well under the transport's frame limit.
pub const MAX_LOT_BYTES: usize = 8 << 20;

const INPUT_DOMAIN: Domain = Domain::new("idlegrid/node/input");
const OUTPUT_DOMAIN: Domain = Domain::new("idlegrid/node/output");

/// The content address of one subtask: its input bytes bound to the
/// program that runs them, so a plan on the ledger names both.
pub fn input_digest(program: &[u8], input: &[u8]) -> Digest {
    Digest::of(INPUT_DOMAIN, &(program, input))
}

/// The content address of one subtask's output bytes.
pub fn output_digest(output: &[u8]) -> Digest {
    Digest::of(OUTPUT_DOMAIN, output)
}

/// A lot's program and slot inputs, as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotData {
    /// The program (a Python script, a WebAssembly module).
    pub program: Vec<u8>,
    /// Slot inputs, slot order.
    pub inputs: Vec<Vec<u8>>,
}

impl LotData {
    /// Bytes held.
    pub fn size(&self) -> usize {
        self.program.len() + self.inputs.iter().map(Vec::len).sum::<usize>()
    }

    /// True if these bytes are what `digests` name, slot by slot, and fit
    /// in [`MAX_LOT_BYTES`].
    pub fn matches(&self, digests: &[Digest]) -> bool {
        self.size() <= MAX_LOT_BYTES
            && self.inputs.len() == digests.len()
            && self
                .inputs
                .iter()
                .zip(digests)
                .all(|(b, d)| input_digest(&self.program, b) == *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_stay_small() {
        // Every validator sends every subscriber its facts of each commit:
        // a rare large variant would widen them all (a settlement made every
        // fact 176 bytes, and so did a rejection, before they were boxed).
        // The common holdings report and the tag (aligned as its amounts)
        // are the floor: 144 bytes.
        let (fact, balance) = (
            std::mem::size_of::<Fact>(),
            std::mem::size_of::<AccountState>(),
        );
        assert!(fact <= balance + 16, "Fact is {fact} bytes");
    }

    fn lot(program: &[u8], inputs: &[&[u8]]) -> (LotData, Vec<Digest>) {
        let data = LotData {
            program: program.to_vec(),
            inputs: inputs.iter().map(|b| b.to_vec()).collect(),
        };
        let digests = inputs.iter().map(|b| input_digest(program, b)).collect();
        (data, digests)
    }

    #[test]
    fn lot_bytes_match_only_their_digests_program_and_order() {
        let (data, digests) = lot(b"print(1)", &[b"1\n", b"2\n"]);
        assert!(data.matches(&digests));
        // Another program over the same inputs names other subtasks.
        let (other, _) = lot(b"print(2)", &[b"1\n", b"2\n"]);
        assert!(!other.matches(&digests));
        // Swapped, missing or altered inputs do not match.
        let mut swapped = data.clone();
        swapped.inputs.swap(0, 1);
        assert!(!swapped.matches(&digests));
        assert!(!data.matches(&digests[..1]));
        let mut altered = data.clone();
        altered.inputs[1][0] ^= 1;
        assert!(!altered.matches(&digests));
    }

    #[test]
    fn oversized_lot_bytes_never_match() {
        let big = vec![b'x'; MAX_LOT_BYTES];
        let (data, digests) = lot(b"p", &[&big]);
        assert!(data.size() > MAX_LOT_BYTES);
        assert!(!data.matches(&digests));
    }

    #[test]
    fn output_digests_separate_bytes() {
        assert_ne!(output_digest(b"a"), output_digest(b"b"));
        assert_ne!(output_digest(b"a"), input_digest(b"", b"a"));
    }
}
