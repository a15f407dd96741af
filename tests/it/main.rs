//! Integration tests: the real gateway, real wasm plugins, and the provider
//! simulator, all on loopback.

mod api;
mod browser;
mod campaigns;
mod config_check;
mod consistency;
mod contract;
mod disk_full;
mod docs;
mod durability;
mod email;
mod exposure;
mod faults;
mod hardening;
mod hours;
mod inbox;
mod instances;
mod journeys;
mod layers;
mod migrations;
mod nodes;
mod operations;
mod preferences;
mod provider_specs;
mod push;
mod reload;
mod replies;
mod routing;
mod sms;
mod store;
mod support;
mod suppressions;
mod sweep;
mod templates;
mod webhooks;
mod whatsapp;
