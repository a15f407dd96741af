//! Route planning: which channel reaches a customer best, and why.
//!
//! [`plan::plan`] is pure (request, profile, suppressions, policy, clock in;
//! plan out) so it is tested exhaustively and every decision can be
//! explained to the platform. Every send goes through it, by customer or by
//! address.

pub mod control;
pub mod plan;
pub mod policy;
pub mod senders;

pub use plan::{Plan, PlannedDelivery, Reason, Request, plan};
pub use policy::Policy;
