//! Campaigns: segments of customers and broadcasts to them, fanned out in
//! the background below transactional sends.

pub mod broadcasts;
pub mod fanout;
pub mod report_days;
pub mod segments;
