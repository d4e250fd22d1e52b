//! The crate's error type.

use idlegrid_primitives::{Amount, AmountError, Commitment, Timestamp};
use thiserror::Error;

use crate::types::OrderId;

/// Everything that can go wrong in the market. Peer and user mistakes are
/// errors; nothing in this crate panics on input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MarketError {
    /// An order asks for or offers zero slots.
    #[error("order {0} has zero slots; an order must trade at least one slot")]
    ZeroSlots(OrderId),
    /// An order's slot count exceeds the configured limit.
    #[error("order {order} has {slots} slots, above the limit of {max}; split it")]
    TooManySlots {
        /// The order.
        order: OrderId,
        /// Its slot count.
        slots: u32,
        /// The limit.
        max: u32,
    },
    /// An order's price is zero.
    #[error("order {0} has a zero price; prices are positive")]
    ZeroPrice(OrderId),
    /// An order's price exceeds the configured limit.
    #[error("order {order} has price {price}, above the limit of {max}")]
    PriceTooHigh {
        /// The order.
        order: OrderId,
        /// Its price.
        price: Amount,
        /// The limit.
        max: Amount,
    },
    /// An order's resource vector is empty or exceeds the configured caps.
    #[error("order {0} has an absurd resource vector (zero CPU or memory, or above the caps)")]
    AbsurdResources(OrderId),
    /// An ask's window is empty or an order names an invalid region,
    /// executor set or reputation.
    #[error("order {order} is malformed: {what}")]
    Malformed {
        /// The order.
        order: OrderId,
        /// What is wrong.
        what: &'static str,
    },
    /// An order's deadline (bid) or window end (ask) has passed.
    #[error("order {order} expired at {at}; submit a fresh order")]
    Expired {
        /// The order.
        order: OrderId,
        /// When it expired.
        at: Timestamp,
    },
    /// Two orders carry the same id.
    #[error("duplicate order id {0}; ids are unique across asks and bids")]
    DuplicateOrderId(OrderId),
    /// A batch or book is at its size limit.
    #[error("capacity exhausted: at most {max} {what}")]
    Full {
        /// What is full.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// Money arithmetic overflowed.
    #[error("amount arithmetic: {0}")]
    Amount(#[from] AmountError),
    /// A batch input arrived in the wrong phase.
    #[error("{action} is not allowed in the {phase} phase")]
    WrongPhase {
        /// The attempted action.
        action: &'static str,
        /// The current phase.
        phase: &'static str,
    },
    /// A commitment was submitted twice.
    #[error("commitment {0} was already submitted")]
    DuplicateCommitment(Commitment),
    /// A reveal names a commitment this batch never received.
    #[error("no commitment {0} in this batch; commit before revealing")]
    UnknownCommitment(Commitment),
    /// A reveal was sent by someone other than the committer.
    #[error("only the committer may reveal commitment {0}")]
    NotCommitter(Commitment),
    /// A commitment was already revealed or forfeited.
    #[error("commitment {0} was already revealed or forfeited")]
    AlreadySettled(Commitment),
    /// The revealed order and salt do not open the commitment; the bond is forfeited.
    #[error("reveal does not match commitment {0}; its bond is forfeited")]
    RevealMismatch(Commitment),
    /// The reveal arrived after the reveal window; the bond is forfeited.
    #[error("reveal for commitment {0} arrived after the reveal window; its bond is forfeited")]
    RevealLate(Commitment),
    /// The revealed order names another account as its owner; the bond is forfeited.
    #[error(
        "the order revealed for commitment {0} belongs to another account; its bond is forfeited"
    )]
    OwnerMismatch(Commitment),
    /// The revealed order is invalid; the bond is forfeited.
    #[error(
        "the order revealed for commitment {commitment} is invalid ({reason}); its bond is forfeited"
    )]
    InvalidReveal {
        /// The commitment.
        commitment: Commitment,
        /// Why the order was rejected.
        reason: Box<MarketError>,
    },
    /// A commitment's bond is below the minimum.
    #[error("bond {bond} is below the minimum of {min}")]
    BondTooSmall {
        /// The bond offered.
        bond: Amount,
        /// The minimum.
        min: Amount,
    },
    /// No resting order has this id.
    #[error("no resting order {0}")]
    UnknownOrder(OrderId),
    /// The continuous order book trades compute only; bids that reference
    /// apps or datasets go through a sealed batch with a registry.
    #[error("bid {0} references apps or datasets; submit it to a sealed batch")]
    GoodsNotSupported(OrderId),
    /// A mechanism or configuration parameter is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
}
