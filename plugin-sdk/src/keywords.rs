//! What a customer's inbound text means. Carriers and WhatsApp's policy
//! treat a few words alone in a message as "stop" and "start again"; every
//! other text is a reply the conversation goes on with.

use crate::{InboundEvent, InboundMessage};

/// Opt-out keywords, as Twilio and US carriers honour them.
pub const OPT_OUT: &[&str] = &["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
/// Keywords that undo the sender's STOP, and nothing more. `YES` is not
/// one: it answers whatever was asked ("Reply YES to confirm your
/// appointment") and reaches the platform as a reply.
pub const OPT_IN: &[&str] = &["START", "UNSTOP"];

/// An opt-out or opt-in of the sender when the whole text is a keyword
/// (any case, surrounding spaces ignored); the reply itself otherwise.
pub fn classify(message: InboundMessage) -> InboundEvent {
    let keyword = message.text.trim().to_ascii_uppercase();
    if OPT_OUT.contains(&keyword.as_str()) {
        InboundEvent::OptOut(message.from)
    } else if OPT_IN.contains(&keyword.as_str()) {
        InboundEvent::OptIn(message.from)
    } else {
        InboundEvent::Message(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(text: &str) -> InboundMessage {
        InboundMessage {
            from: "+31612345678".into(),
            text: text.into(),
            ..InboundMessage::default()
        }
    }

    #[test]
    fn only_a_keyword_alone_changes_consent() {
        assert_eq!(
            classify(text(" stop ")),
            InboundEvent::OptOut("+31612345678".into())
        );
        assert_eq!(
            classify(text("Start")),
            InboundEvent::OptIn("+31612345678".into())
        );
        assert_eq!(classify(text("Yes")), InboundEvent::Message(text("Yes")));
        assert_eq!(
            classify(text("please stop the noise")),
            InboundEvent::Message(text("please stop the noise"))
        );
    }
}
