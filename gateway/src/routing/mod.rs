//! Route planning: which channel reaches a customer best, and why.
//!
//! [`plan::plan`] is pure (request, profile, policy, clock in; plan out) so it
//! is tested exhaustively and every decision can be explained to the platform.

pub mod plan;
pub mod policy;
pub mod profile;

pub use plan::{Plan, PlannedDelivery, Reason, Request, plan};
pub use policy::Policy;
pub use profile::{Profile, PushAddress, PushFormat};
