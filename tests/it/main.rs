//! Integration tests: the real gateway, real wasm plugins, and the provider
//! simulator, all on loopback.

mod api;
mod config_check;
mod consistency;
mod durability;
mod faults;
mod routing;
mod sms;
mod support;
mod twilio_spec;
mod webhooks;
