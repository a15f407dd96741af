//! An origin (scheme, host, port): what `allowed_hosts` lists and what an
//! outbound request's URI is checked as. One parser for both, so the gate
//! compares like with like.

use serde::Deserialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Origin {
    pub scheme: String,
    /// Lower-cased.
    pub host: String,
    /// The scheme's default when the URI names none.
    pub port: u16,
}

impl Origin {
    /// The origin a request goes to, from its parsed URI (never a Host header).
    pub fn of(uri: &http::Uri) -> Result<Origin, String> {
        let scheme = match uri.scheme_str().map(str::to_ascii_lowercase) {
            Some(s) if s == "http" || s == "https" => s,
            Some(_) => return Err("scheme must be http or https".to_owned()),
            None => return Err("no scheme".to_owned()),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or("no host")?
            .to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok(Origin { scheme, host, port })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// `allowed_hosts = ["https://api.twilio.com"]`: an origin, without a path.
impl TryFrom<String> for Origin {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let uri: http::Uri = value
            .parse()
            .map_err(|e| format!("invalid origin {value:?}: {e}"))?;
        let origin = Origin::of(&uri).map_err(|e| format!("invalid origin {value:?}: {e}"))?;
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(format!(
                "invalid origin {value:?}: give scheme://host[:port] without a path"
            ));
        }
        Ok(origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_and_requested_origins_compare_alike() {
        let allowed = Origin::try_from("https://API.twilio.com".to_owned()).unwrap();
        let uri: http::Uri = "https://api.twilio.com:443/2010-04-01/Accounts"
            .parse()
            .unwrap();
        assert_eq!(Origin::of(&uri).unwrap(), allowed);
        let other: http::Uri = "http://api.twilio.com/".parse().unwrap();
        assert_ne!(
            Origin::of(&other).unwrap(),
            allowed,
            "scheme and port count"
        );
        assert!(Origin::try_from("https://x.example/path".to_owned()).is_err());
        assert!(Origin::try_from("ftp://x.example".to_owned()).is_err());
    }
}
