//! Journeys: customer events drive runs through steps across channels (a
//! welcome email, a week's wait, an SMS unless they bought). A journey is
//! configured in TOML ([`crate::config::journeys`]); a run is a pure state machine
//! ([`engine`]) stored whole, with its timer, so any node can move it on and
//! a restart loses nothing; conditions are minijinja expressions
//! ([`crate::expression`]).

pub mod engine;
pub mod experiments;
pub mod intake;
pub mod runner;
pub mod sends;
pub mod simulate;

pub use crate::config::journeys::{
    Catalogue, JourneyConfig, Journeys, Pinned, check, check_config, reserved_name, valid_name,
};
