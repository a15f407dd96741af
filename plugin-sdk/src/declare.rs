//! `settings!`: a connector's `[connectors.config]` declared once, as a
//! typed struct. The macro writes the struct, the [`Setting`](crate::Setting)
//! list the gateway checks (`crossgate check`, load, reload) and the harness
//! checks before every call, and `read`, which fills the struct from the
//! configuration through the same declarations: no key can be read that is
//! not declared, and none declared goes unread.
//!
//! ```ignore
//! crossgate_plugin_sdk::settings! {
//!     /// Vonage's keys.
//!     pub struct VonageSettings {
//!         api_key: required text,
//!         api_secret: required secret text,
//!         signature_method: optional choice["md5hash", "sha256"],
//!         timeout_secs: optional number,
//!         sandbox: optional boolean,
//!         base_url: optional url,
//!     }
//! }
//! // In the connector: const SETTINGS = VonageSettings::DECLARED;
//! // in `new`: let settings = VonageSettings::read(config)?;
//! ```
//!
//! Field types: `required text` and `url` are `String`, `optional` ones
//! `Option<String>`; `number` is `f64` (`Option<f64>`); `boolean` is `bool`
//! (`false` when unset); `choice[...]` is the declaration's own
//! `&'static str` (`Option<&'static str>`), so a `match` covers every word.

/// Declares a connector's settings as a typed struct; see the
/// [module](crate::declare) for the grammar.
#[macro_export]
macro_rules! settings {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $field:ident : $need:ident $($spec:ident)+ $([ $($word:literal),* $(,)? ])? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $name {
            $( pub $field: $crate::__setting_type!($need $($spec)+), )*
        }

        impl $name {
            /// The declarations, for `Connector::SETTINGS`.
            pub const DECLARED: &'static [$crate::Setting] = &[
                $( $crate::__setting_declared!(
                    stringify!($field), $need $($spec)+ $([ $($word),* ])?
                ), )*
            ];

            /// The settings as the configuration gives them, each held to
            /// its declaration (kind, requiredness, choices).
            pub fn read(config: &$crate::Config) -> ::core::result::Result<Self, $crate::ConfigError> {
                let mut declared = Self::DECLARED.iter();
                Ok($name {
                    $( $field: {
                        let setting = declared.next().expect("one declaration per field");
                        $crate::__setting_read!(config, setting, $need $($spec)+)
                    }, )*
                })
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __setting_type {
    ($need:ident secret $kind:ident) => { $crate::__setting_type!($need $kind) };
    (required text) => { ::std::string::String };
    (optional text) => { ::core::option::Option<::std::string::String> };
    (required url) => { ::std::string::String };
    (optional url) => { ::core::option::Option<::std::string::String> };
    (required number) => { f64 };
    (optional number) => { ::core::option::Option<f64> };
    (required boolean) => { bool };
    (optional boolean) => { bool };
    (required choice) => { &'static str };
    (optional choice) => { ::core::option::Option<&'static str> };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __setting_declared {
    ($key:expr, required secret $kind:ident $([ $($word:literal),* ])?) => {
        $crate::__setting_declared!($key, required $kind $([ $($word),* ])?).secret()
    };
    ($key:expr, optional secret $kind:ident $([ $($word:literal),* ])?) => {
        $crate::__setting_declared!($key, optional $kind $([ $($word),* ])?).secret()
    };
    ($key:expr, required $kind:ident $([ $($word:literal),* ])?) => {
        $crate::__setting_declared!($key, optional $kind $([ $($word),* ])?).required()
    };
    ($key:expr, optional text) => { $crate::Setting::text($key) };
    ($key:expr, optional url) => { $crate::Setting::url($key) };
    ($key:expr, optional number) => { $crate::Setting::number($key) };
    ($key:expr, optional boolean) => { $crate::Setting::boolean($key) };
    ($key:expr, optional choice [ $($word:literal),* ]) => {
        $crate::Setting::choice($key, &[ $($word),* ])
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __setting_read {
    ($config:ident, $s:ident, $need:ident secret $kind:ident) => {
        $crate::__setting_read!($config, $s, $need $kind)
    };
    ($config:ident, $s:ident, required text) => { $config.require($s)?.to_owned() };
    ($config:ident, $s:ident, optional text) => { $config.setting($s)?.map(str::to_owned) };
    ($config:ident, $s:ident, required url) => { $config.require($s)?.to_owned() };
    ($config:ident, $s:ident, optional url) => { $config.setting($s)?.map(str::to_owned) };
    ($config:ident, $s:ident, required number) => {
        $config.number($s)?.ok_or_else(|| $crate::ConfigError::new($s.name, "is required"))?
    };
    ($config:ident, $s:ident, optional number) => { $config.number($s)? };
    ($config:ident, $s:ident, $need:ident boolean) => { $config.boolean($s, false)? };
    ($config:ident, $s:ident, required choice) => {
        $config.choice($s)?.ok_or_else(|| $crate::ConfigError::new($s.name, "is required"))?
    };
    ($config:ident, $s:ident, optional choice) => { $config.choice($s)? };
}

#[cfg(test)]
mod tests {
    use crate::settings::{Declared, check};
    use crate::{Config, SettingKind};

    crate::settings! {
        /// A provider's keys, as a connector would declare them.
        struct Example {
            api_key: required secret text,
            region: required choice["eu", "us"],
            retries: optional number,
            sandbox: optional boolean,
            base_url: optional url,
        }
    }

    fn config(entries: &[(&str, &str)]) -> Config {
        entries.iter().copied().collect()
    }

    #[test]
    fn one_definition_declares_and_reads() {
        let names: Vec<&str> = Example::DECLARED.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            ["api_key", "region", "retries", "sandbox", "base_url"]
        );
        assert!(Example::DECLARED[0].required && Example::DECLARED[0].secret);
        assert_eq!(
            Example::DECLARED[1].kind,
            SettingKind::Choice(&["eu", "us"])
        );
        let read = Example::read(&config(&[
            ("api_key", "k"),
            ("region", "eu"),
            ("sandbox", "true"),
        ]))
        .unwrap();
        assert_eq!(
            read,
            Example {
                api_key: "k".into(),
                region: "eu",
                retries: None,
                sandbox: true,
                base_url: None,
            }
        );
        let refused = Example::read(&config(&[("api_key", "k"), ("region", "mars")])).unwrap_err();
        assert_eq!(refused.key, "region");
        let missing = Example::read(&config(&[("region", "us")])).unwrap_err();
        assert_eq!(missing.key, "api_key");
        // The gateway's check reads the same declarations.
        let declared: Vec<Declared<'_>> = Example::DECLARED.iter().map(Into::into).collect();
        let mistakes = check(
            &declared,
            config(&[("api_key", "k"), ("regoin", "eu")]).entries(),
        );
        assert!(
            mistakes
                .iter()
                .any(|m| m.message.ends_with("did you mean \"region\"?"))
        );
    }
}
