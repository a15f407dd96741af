//! Secrets anyone can read: the credentials in this repository's own
//! configuration (the provider simulator's, for `make run`). They are fine
//! on a loopback gateway without keys, which only its own machine reaches;
//! anywhere else they would let a stranger sign a STOP webhook or forge an
//! unsubscribe link. A gateway with API keys or listening off loopback
//! refuses to start with one, whatever key it is set under.

use std::collections::HashSet;
use std::sync::OnceLock;

/// The simulator's FCM service account, which the shipped config reads with `file:`.
const SIMULATOR_SERVICE_ACCOUNT: &str =
    include_str!("../../../config/simulator/fcm-service-account.json");

/// Values once shipped and since removed from the files, still public in
/// the repository's history.
const FORMERLY_SHIPPED: &[&str] = &["local-development-unsubscribe-secret"];

/// Whether a setting's name says it holds a secret.
fn names_a_secret(key: &str) -> bool {
    ["secret", "token", "key", "password", "service_account"]
        .iter()
        .any(|word| key.contains(word))
}

/// Every secret value this repository ships.
fn values() -> &'static HashSet<String> {
    static VALUES: OnceLock<HashSet<String>> = OnceLock::new();
    VALUES.get_or_init(|| {
        let mut values: HashSet<String> = FORMERLY_SHIPPED.iter().map(|v| v.to_string()).collect();
        values.insert(SIMULATOR_SERVICE_ACCOUNT.to_owned());
        if let Ok(table) = super::EMBEDDED_DEFAULT.parse::<toml::Table>() {
            collect(&toml::Value::Table(table), "", &mut values);
        }
        values
    })
}

fn collect(value: &toml::Value, key: &str, values: &mut HashSet<String>) {
    match value {
        toml::Value::String(s) if names_a_secret(key) && !s.starts_with("env:") => {
            values.insert(s.clone());
        }
        toml::Value::Table(table) => {
            for (key, value) in table {
                collect(value, key, values);
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                collect(item, key, values);
            }
        }
        _ => {}
    }
}

/// Whether `value` (resolved: what `env:` or `file:` gave) is a secret this
/// repository ships.
pub fn is_shipped(value: &str) -> bool {
    values().contains(value) || values().contains(value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configuration_secrets_are_known() {
        for secret in [
            "simulator-auth-token",
            "simulator-whatsapp-token",
            "SG.simulator-key",
            "local-development-unsubscribe-secret",
            SIMULATOR_SERVICE_ACCOUNT,
        ] {
            assert!(is_shipped(secret), "{secret}");
        }
        // Identifiers beside them are not secrets.
        assert!(!is_shipped("+15005550006"));
        assert!(!is_shipped("AC00000000000000000000000000000000"));
        assert!(!is_shipped("orders@shop.example"));
    }
}
