//! Conditions (journeys' `condition` and `branch`): minijinja expressions (the language templates use),
//! e.g. `event.total > 50`, `profile.country == "NL"`,
//! `steps.welcome_email.status == "read"`. A name that is not there is
//! undefined, which is false, so a condition over an optional property
//! needs no guard.

use minijinja::Environment;
use std::sync::LazyLock;

/// One environment for every condition: chainable undefined (a missing
/// property, or a property of one, is false, not an error), no templates,
/// only expressions.
static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env
});

/// Whether `expression` compiles; the message says where it does not.
pub fn check(expression: &str) -> Result<(), String> {
    ENV.compile_expression(expression)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Whether `expression` holds over `context`.
pub fn holds(expression: &str, context: &serde_json::Value) -> Result<bool, String> {
    let compiled = ENV
        .compile_expression(expression)
        .map_err(|e| e.to_string())?;
    compiled
        .eval(minijinja::Value::from_serialize(context))
        .map(|v| v.is_true())
        .map_err(|e| format!("`{expression}`: {e}"))
}

/// `template` rendered over `context` (a digest's `key`, a send step's
/// inline text and data), with the same forgiving undefined: a missing
/// property, or a property of one, renders empty.
pub fn render(template: &str, context: &serde_json::Value) -> Result<String, String> {
    ENV.render_str(template, context)
        .map_err(|e| format!("`{template}`: {e}"))
}

/// Whether `template` compiles.
pub fn check_template(template: &str) -> Result<(), String> {
    ENV.template_from_str(template)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{check, holds};
    use serde_json::json;

    #[test]
    fn conditions_read_profile_event_and_steps() {
        let context = json!({
            "profile": {"country": "NL"},
            "event": {"total": 80},
            "steps": {"welcome": {"status": "read"}}
        });
        assert_eq!(
            holds("event.total > 50 and profile.country == 'NL'", &context),
            Ok(true)
        );
        assert_eq!(holds("steps.welcome.status == 'read'", &context), Ok(true));
        assert_eq!(holds("steps.nudge.status == 'read'", &context), Ok(false));
        assert_eq!(
            holds("event.coupon", &context),
            Ok(false),
            "missing is false"
        );
        assert!(check("event.total >").is_err());
    }
}
