//! What every provider callback needs and each connector used to write
//! again: its parameters however they came (query string, form or JSON
//! body), hex, a comparison that does not leak how much of a signature
//! matched, and a window for signed timestamps against replays.

use crate::WebhookRequest;

impl WebhookRequest {
    /// The query string's parameters, decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        match self.url.split_once('?') {
            Some((_, query)) => {
                let query = query.split('#').next().unwrap_or_default();
                form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect()
            }
            None => Vec::new(),
        }
    }

    /// Every parameter the provider sent, whichever way: the query string's
    /// first, then the body's, read as a flat JSON object (strings, numbers
    /// and booleans as text) when it is one, else as a form. Providers such
    /// as Vonage send the same receipt by GET or by POST in either body.
    pub fn params(&self) -> Vec<(String, String)> {
        let mut params = self.query();
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(serde_json::Value::Object(fields)) => {
                params.extend(fields.into_iter().filter_map(|(k, v)| {
                    let text = match v {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Number(n) => n.to_string(),
                        serde_json::Value::Bool(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((k, text))
                }))
            }
            _ => params.extend(self.form()),
        }
        params
    }

    /// One parameter of [`Self::params`], the first by that name.
    pub fn param(&self, name: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Bytes as lowercase hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex (either case) as bytes; `None` for an odd length or a non-hex digit.
pub fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `a` and `b` are equal, in a time that depends only on their
/// length: comparing a signature with `==` stops at the first difference,
/// and how long it took tells a forger how much was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Seconds since 1970 on the gateway's clock (the sandbox's wall clock).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whether something signed at `signed_at` (Unix seconds) is recent at
/// `now`: within `window_secs` either way, enough for a slow queue and a
/// clock a little off, too little for a captured callback to be sent again
/// later (its signature would still hold).
pub fn fresh(signed_at: i64, now: i64, window_secs: i64) -> Result<(), String> {
    let skew = now.saturating_sub(signed_at);
    if skew.abs() > window_secs {
        return Err(format!(
            "signed {skew} s from now, more than {window_secs} s: refused as a replay"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, body: &str) -> WebhookRequest {
        WebhookRequest {
            method: "POST".into(),
            url: url.into(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn parameters_come_from_the_query_a_form_or_json() {
        let get = request(
            "https://gw.test/v1/webhooks/v?messageId=A1&status=delivered",
            "",
        );
        assert_eq!(get.param("messageId").as_deref(), Some("A1"));
        let form = request(
            "https://gw.test/v1/webhooks/v",
            "messageId=A1&text=hi+there",
        );
        assert_eq!(form.param("text").as_deref(), Some("hi there"));
        let json = request(
            "https://gw.test/v1/webhooks/v",
            r#"{"messageId":"A1","price":0.03,"nested":{"x":1}}"#,
        );
        assert_eq!(json.param("price").as_deref(), Some("0.03"));
        assert_eq!(json.param("nested"), None);
        assert_eq!(json.param("missing"), None);
    }

    #[test]
    fn hex_goes_both_ways_and_refuses_what_is_not() {
        assert_eq!(hex_encode(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(hex_decode("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
    }

    #[test]
    fn equal_only_when_equal() {
        assert!(constant_time_eq(b"signature", b"signature"));
        assert!(!constant_time_eq(b"signature", b"signaturf"));
        assert!(!constant_time_eq(b"sig", b"signature"));
    }

    #[test]
    fn only_a_recent_signature_is_fresh() {
        assert!(fresh(1_767_225_600, 1_767_225_600 + 299, 300).is_ok());
        assert!(fresh(1_767_225_600, 1_767_225_600 - 30, 300).is_ok());
        assert!(fresh(1_767_225_600, 1_767_225_600 + 301, 300).is_err());
    }
}
