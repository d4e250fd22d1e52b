//! Light nodes: providers and clients, their behaviours and their
//! transaction outboxes (nonces, resubmission).

use std::collections::{BTreeMap, VecDeque};

use idlegrid_dag_ledger::ledger::{ChainId, Nonce, SignedTransaction, Transaction, TxKind};
use idlegrid_entrap::JobPlan;
use idlegrid_executor::{
    Behaviour, CostModel, Limits, Program, SimContext, SimulatedExecutor, Task, output_digest,
    reference_output,
};
use idlegrid_primitives::{AccountId, Amount, Digest, Domain, Keypair, Timestamp, encode};

use idlegrid_node::market::{MARKETPLACE_APP, MarketTx};

const INPUT_DOMAIN: Domain = Domain::new("idlegrid/sim/marketplace/input");

/// Bytes of every subtask input (traps have the same size).
pub const SUBTASK_INPUT_BYTES: usize = 4_096;

/// The program every simulated job runs (its bytes only count for cost).
pub fn program() -> Program {
    Program::wasm(vec![0u8; 256])
}

/// The subtask whose input digest is `d`.
pub fn task_for(d: &Digest) -> Task {
    let mut input = Vec::with_capacity(SUBTASK_INPUT_BYTES);
    while input.len() < SUBTASK_INPUT_BYTES {
        input.extend_from_slice(d.as_bytes());
    }
    input.truncate(SUBTASK_INPUT_BYTES);
    Task::new(program(), input)
}

/// The correct output digest of the subtask with input digest `d` (what a
/// deterministic referee re-execution yields).
pub fn truth(d: &Digest) -> Digest {
    output_digest(&reference_output(&task_for(d)))
}

/// A fresh input digest.
pub fn input_digest(owner: &AccountId, job: u64, lot: u32, i: u64) -> Digest {
    Digest::of(INPUT_DOMAIN, &(owner, job, lot, i))
}

/// A provider behaviour label used in reports.
pub fn behaviour_name(b: &Behaviour) -> &'static str {
    match b {
        Behaviour::Honest => "honest",
        Behaviour::LazyCheater { .. } => "lazy",
        Behaviour::Faulty { .. } => "faulty",
        Behaviour::TrapGuessing { .. } => "trap_guessing",
        Behaviour::Colluding { .. } => "colluding",
        Behaviour::BaitAndSwitch { .. } => "bait_and_switch",
    }
}

/// True for deliberate cheating behaviours.
pub fn is_cheater(b: &Behaviour) -> bool {
    !matches!(b, Behaviour::Honest | Behaviour::Faulty { .. })
}

/// A signed-transaction outbox with nonce tracking (marketplace payloads
/// and plain ledger transactions share the account's nonce sequence).
#[derive(Debug)]
pub struct Outbox {
    key: Keypair,
    chain: ChainId,
    next_nonce: u64,
    inflight: VecDeque<(u64, Timestamp, TxKind)>,
    resent: bool,
    failovers: u32,
}

impl Outbox {
    /// An outbox for `key`.
    pub fn new(key: Keypair, chain: ChainId) -> Self {
        Self {
            key,
            chain,
            next_nonce: 0,
            inflight: VecDeque::new(),
            resent: false,
            failovers: 0,
        }
    }

    /// The account.
    pub fn account(&self) -> AccountId {
        self.key.account_id()
    }

    /// Signs marketplace transaction `tx` with the next nonce.
    pub fn sign(&mut self, now: Timestamp, tx: MarketTx) -> SignedTransaction {
        self.sign_ledger(
            now,
            TxKind::App {
                app_id: MARKETPLACE_APP,
                payload: encode(&tx),
            },
        )
    }

    /// Signs a plain ledger transaction (transfer, bond, unbond, withdraw)
    /// with the next nonce.
    pub fn sign_ledger(&mut self, now: Timestamp, kind: TxKind) -> SignedTransaction {
        let n = self.next_nonce;
        self.next_nonce += 1;
        let signed = self.signed(n, &kind);
        self.inflight.push_back((n, now, kind));
        signed
    }

    fn signed(&self, n: u64, kind: &TxKind) -> SignedTransaction {
        Transaction {
            chain: self.chain,
            sender: self.key.account_id(),
            nonce: Nonce::new(n),
            kind: kind.clone(),
        }
        .sign(&self.key)
    }

    /// Nothing in flight: every signed transaction has been applied (or
    /// dropped) as of the last [`Outbox::reconcile`].
    pub fn idle(&self) -> bool {
        self.inflight.is_empty()
    }

    /// How many times this light node switched to another gateway.
    pub fn failovers(&self) -> u32 {
        self.failovers
    }

    /// Given the ledger's nonce for this account, forgets applied
    /// transactions. If the oldest in-flight one has been stuck for
    /// `patience`, first re-sends everything in flight unchanged through
    /// the next gateway (the last one may be crashed, partitioned or
    /// Byzantine); if it is stuck again it was rejected: drops it and
    /// re-signs the rest.
    pub fn reconcile(
        &mut self,
        ledger_nonce: u64,
        now: Timestamp,
        patience: idlegrid_primitives::Duration,
    ) -> Vec<SignedTransaction> {
        while self
            .inflight
            .front()
            .is_some_and(|(n, _, _)| *n < ledger_nonce)
        {
            self.inflight.pop_front();
            self.resent = false;
        }
        let stuck = self
            .inflight
            .front()
            .is_some_and(|(_, at, _)| now.saturating_since(*at) > patience);
        if !stuck {
            return Vec::new();
        }
        self.failovers += 1;
        if !self.resent {
            self.resent = true;
            for e in self.inflight.iter_mut() {
                e.1 = now;
            }
            return self
                .inflight
                .iter()
                .map(|(n, _, t)| self.signed(*n, t))
                .collect();
        }
        self.resent = false;
        self.inflight.pop_front();
        self.next_nonce = ledger_nonce;
        let rest: Vec<TxKind> = self.inflight.drain(..).map(|(_, _, t)| t).collect();
        rest.into_iter().map(|t| self.sign_ledger(now, t)).collect()
    }
}

/// A provider (light node).
#[derive(Debug)]
pub struct ProviderAgent {
    /// Its outbox.
    pub outbox: Outbox,
    /// Behaviour.
    pub behaviour: Behaviour,
    /// The executor.
    pub exec: SimulatedExecutor,
    /// Price per compute-second.
    pub price: Amount,
    /// Operating cost per compute-second (what honest work costs it).
    pub cost_per_second: Amount,
    /// Region index.
    pub region: u16,
    /// Capacity (parallel lots).
    pub capacity: u32,
    /// Compute microseconds actually spent.
    pub spent_micros: u64,
    /// Lots in which it cheated on at least one subtask.
    pub cheated_lots: u64,
    /// Per lot: outputs, whether each slot was cheated, usage.
    pub work: BTreeMap<(AccountId, u64, u32), LotWork>,
    /// Initial wealth (balance + stake) of the machine's first identity;
    /// zero for a whitewashed identity (funded by its predecessor, so a
    /// machine's profit is the sum over its identities).
    pub initial_wealth: Amount,
    /// The machine behind this identity.
    pub machine: MachineId,
    /// How this identity entered the market.
    pub identity: Identity,
    /// Where it is in its life cycle.
    pub stage: Stage,
    /// Entry, work and exit times (Sybil figures).
    pub presence: Presence,
    /// Lowest ask it will undercut to (1.1 × its operating cost).
    pub floor: Amount,
    /// Lots matched since its last repricing.
    pub recent_matches: u32,
}

/// The machine behind one or more provider identities (a whitewasher
/// burns through several keys; everyone else has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineId(pub u32);

/// How a provider identity entered the market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Offers at genesis and keeps its key.
    Genesis,
    /// An honest provider that offers first at `join_at` (the control
    /// group for whitewashers).
    Newcomer {
        /// When it submits its `Offer`.
        join_at: Timestamp,
    },
    /// Key number `generation` of a whitewashing machine (0 is its genesis
    /// key; later ones were created after a slash).
    Whitewash {
        /// 0 for the genesis key.
        generation: u32,
    },
}

/// Where a provider identity is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A newcomer before its join time.
    Waiting,
    /// A whitewashed key waiting for its predecessor's transfer of at least
    /// `need` (then it bonds `need` and offers).
    Funding {
        /// Stake it bonds once funded.
        need: Amount,
    },
    /// Offering (or offered) in the market.
    Active,
    /// Abandoned after a slash; moving what is left to its successor.
    Left(Sweep),
}

/// An abandoned identity's clean-up: its free stake was unbonded when it
/// left; once the unbonding matures it withdraws and transfers the balance
/// to the machine's newest identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Waiting for the unbonding to mature.
    Unbonding,
    /// `Withdraw` sent.
    Withdrawing,
    /// Nothing left to move.
    Done,
}

/// Entry, work and exit times of one identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presence {
    /// When its `Offer` was submitted.
    pub joined_at: Option<Timestamp>,
    /// When it abandoned the identity.
    pub left_at: Option<Timestamp>,
    /// Its first match.
    pub first_match_at: Option<Timestamp>,
    /// Lots matched while present and clients were posting jobs.
    pub matches_present: u64,
    /// Traps in its first matched lot (fresh-identity credibility).
    pub first_lot_traps: u64,
    /// Real subtasks in its first matched lot.
    pub first_lot_real: u64,
    /// Traps in its matched lots.
    pub traps_faced: u64,
    /// Real subtasks in its matched lots.
    pub real_faced: u64,
    /// Lots settled.
    pub lots_settled: u64,
    /// First settlement that convicted it of cheating.
    pub convicted_at: Option<Timestamp>,
    /// Lots settled up to and including that conviction.
    pub lots_to_conviction: u64,
}

/// One lot's execution record at a provider.
#[derive(Debug, Clone)]
pub struct LotWork {
    /// Output digests, slot order.
    pub outputs: Vec<Digest>,
    /// Slots cheated on.
    pub cheated: Vec<bool>,
    /// Slots that were traps (ground truth the simulator knows).
    pub is_trap: Vec<bool>,
    /// Metered microseconds.
    pub usage_micros: u64,
    /// Virtual time the work is done.
    pub done_at: Timestamp,
    /// Round opened on the ledger.
    pub opened: bool,
    /// Deliver sent.
    pub delivered: bool,
}

impl ProviderAgent {
    /// The label it is reported under: `whitewashing` and `newcomer` for
    /// the Sybil populations, else its behaviour's name.
    pub fn label(&self) -> &'static str {
        match self.identity {
            Identity::Whitewash { .. } => "whitewashing",
            Identity::Newcomer { .. } => "newcomer",
            Identity::Genesis => behaviour_name(&self.behaviour),
        }
    }

    /// The machine's first identity (the one that holds its endowment).
    pub fn is_first_identity(&self) -> bool {
        !matches!(self.identity, Identity::Whitewash { generation } if generation > 0)
    }

    /// In the market: offered and not abandoned.
    pub fn is_active(&self) -> bool {
        self.stage == Stage::Active
    }

    /// Executes a lot; returns its work record.
    pub fn execute(&mut self, slot_inputs: &[Digest], is_trap: &[bool], now: Timestamp) -> LotWork {
        let limits = Limits::default();
        let mut outputs = Vec::with_capacity(slot_inputs.len());
        let mut cheated = Vec::with_capacity(slot_inputs.len());
        let mut usage = 0u64;
        for (d, trap) in slot_inputs.iter().zip(is_trap) {
            let task = task_for(d);
            match self.exec.run(&task, &limits, SimContext { is_trap: *trap }) {
                Ok(o) => {
                    outputs.push(o.execution.output_digest);
                    cheated.push(o.cheated);
                    usage += o.execution.usage.compute_micros;
                }
                Err(_) => {
                    outputs.push(Digest::of(INPUT_DOMAIN, &"failed"));
                    cheated.push(false);
                }
            }
        }
        self.spent_micros += usage;
        if cheated.iter().any(|c| *c) {
            self.cheated_lots += 1;
        }
        LotWork {
            outputs,
            cheated,
            is_trap: is_trap.to_vec(),
            usage_micros: usage,
            done_at: now + idlegrid_primitives::Duration::from_micros(usage),
            opened: false,
            delivered: false,
        }
    }
}

/// A client (light node).
#[derive(Debug)]
pub struct ClientAgent {
    /// Its outbox.
    pub outbox: Outbox,
    /// Plants wrong trap answers to frame providers.
    pub framing: bool,
    /// Region index.
    pub region: u16,
    /// Next job id.
    pub next_job: u64,
    /// Plans of matched lots.
    pub plans: BTreeMap<(u64, u32), JobPlan>,
    /// Initial wealth.
    pub initial_wealth: Amount,
}

/// Cost models by machine speed.
pub fn cost_model(speed_units_per_second: u64) -> CostModel {
    CostModel {
        startup: idlegrid_primitives::Duration::from_millis(5),
        work_per_byte: 10_000,
        units_per_second: speed_units_per_second.max(1),
    }
}
