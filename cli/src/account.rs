//! A wallet over the light-node protocol: reads an account's holdings and
//! moves its money from the user's own machine, trusting no single
//! validator (every answer is backed by f + 1 of them, see
//! `idlegrid_node::facts`). Integrators' programs do the same with
//! [`run`].

use std::path::Path;

use idlegrid_dag_ledger::ledger::TxKind;
use idlegrid_entrap::TrapSpec;
use idlegrid_node::client::{ClientEvent, ClientNode, TrapPolicy, TrapSource};
use idlegrid_node::wire::AccountState;
use idlegrid_primitives::{AccountId, Amount, Digest, Domain, Timestamp};
use idlegrid_transport::{Clock, Transport};
use tokio::sync::mpsc;

use crate::CliError;
use crate::config::{Loaded, Role as NodeRole};
use crate::runtime::{Completion, Log, REACH_WITHIN, Role, bind, drive, reach_validators};

/// What to do with the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Report its holdings.
    Balance,
    /// Submit this ledger transaction (transfer, bond, unbond, withdraw),
    /// then report the holdings after it.
    Submit(TxKind),
}

/// A wallet posts no jobs, so it is never asked for a trap; if it were,
/// the trap it names would be one no provider can pass, never one that
/// frames: its expected answer is its input's own digest.
#[derive(Debug)]
pub(crate) struct NoTraps;

impl TrapSource for NoTraps {
    fn trap(&mut self, job: u64, lot: u32, i: u64) -> TrapSpec {
        let input = Digest::of(Domain::new("idlegrid/cli/wallet/no-trap"), &(job, lot, i));
        TrapSpec::precomputed(input, input)
    }
}

struct AccountRole {
    node: ClientNode,
    log: Log,
    tx: Option<TxKind>,
    applied: bool,
    error: Option<String>,
}

impl Role for AccountRole {
    type M = ClientNode;

    fn machine(&mut self) -> &mut ClientNode {
        &mut self.node
    }

    fn on_event(&mut self, ev: ClientEvent, _: Timestamp, _: &mpsc::Sender<Completion<Self>>) {
        match ev {
            ClientEvent::Applied { tx } if Some(&*tx) == self.tx.as_ref() => {
                self.applied = true;
                self.log.line("applied");
            }
            ClientEvent::LedgerRejected { tx, reason } if Some(&*tx) == self.tx.as_ref() => {
                self.error = Some(format!("the ledger refused it: {}", reason.detail));
            }
            _ => {}
        }
    }

    fn status(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    fn finished(&self) -> bool {
        let settled = self.tx.is_none() || self.applied;
        self.error.is_some() || (settled && self.node.core().holdings().is_some())
    }
}

/// Runs `req` for the account of `cfg` (a client's config) against the
/// running network; gives up after `timeout`.
pub async fn run(
    cfg: &Loaded,
    req: Request,
    timeout: std::time::Duration,
) -> Result<AccountState, CliError> {
    if cfg.me.role != NodeRole::Client {
        return Err(CliError::Invalid(format!(
            "{} is a {}; account commands take a client's config",
            cfg.me.name, cfg.me.role
        )));
    }
    let clock = Clock::since_unix_micros(cfg.network.genesis_unix_micros);
    let log = Log::new(&cfg.me.name, clock);
    let index = cfg
        .network
        .with_role(NodeRole::Client)
        .position(|m| m.name == cfg.me.name)
        .unwrap_or(0);
    let policy = TrapPolicy {
        cost_per_subtask: Amount::new(1),
        stake: Amount::new(1),
        price_to_pay_divisor: 1,
    };
    let seed = crate::runtime::secret_seed();
    let mut node = ClientNode::new(
        cfg.network.light_setup(&cfg.key, index),
        policy,
        Box::new(NoTraps),
        seed,
    );
    let tx = match req {
        Request::Balance => {
            node.request_holdings();
            None
        }
        Request::Submit(kind) => {
            node.submit_ledger(clock.now(), kind.clone())
                .map_err(|e| CliError::Invalid(format!("cannot submit: {e}")))?;
            Some(kind)
        }
    };
    let mut role = AccountRole {
        node,
        log,
        tx,
        applied: false,
        error: None,
    };
    let net = bind(cfg).await?;
    if let Err(e) = reach_validators(&net, cfg, REACH_WITHIN).await {
        net.shutdown().await;
        return Err(e);
    }
    let r = drive(&mut role, &net, clock, None, tokio::time::sleep(timeout)).await;
    net.shutdown().await;
    r?;
    if let Some(e) = role.error {
        return Err(CliError::Invalid(e));
    }
    match (
        role.node.core().holdings(),
        role.tx.is_none() || role.applied,
    ) {
        (Some(h), true) => Ok(*h),
        _ => Err(CliError::Network(format!(
            "no answer backed by f + 1 validators within {} s: is the network up?",
            timeout.as_secs()
        ))),
    }
}

/// The account a `--to` names: a member of the network file by name, or a
/// node id in hex.
pub fn recipient(cfg: &Loaded, to: &str) -> Result<AccountId, CliError> {
    if let Some(m) = cfg.network.members.iter().find(|m| m.name == to) {
        return Ok(crate::config::NetworkConfig::id_of(m).account());
    }
    to.parse::<idlegrid_primitives::NodeId>()
        .map(|n| n.account())
        .map_err(|_| {
            CliError::Invalid(format!(
                "--to {to:?}: neither a member of {} nor a node id",
                Path::new("network.toml").display()
            ))
        })
}
