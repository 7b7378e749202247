//! Browsers on other origins: which web origins may call the API (CORS), and
//! the same check for WebSocket upgrades, which browsers do not preflight.
//!
//! Tokens travel in the `Authorization` header, never in cookies, so no
//! origin is ever given credentials: `*` is safe to offer.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight answer.
const MAX_AGE: Duration = Duration::from_secs(600);

/// The web origins that may call the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// None configured: no CORS headers, and WebSocket upgrades are not
    /// checked (as for any non-browser client).
    Unset,
    /// Any origin.
    Any,
    /// Exactly these origins (`scheme://host[:port]`).
    List(Vec<HeaderValue>),
}

impl Origins {
    /// From the setting's values: empty, `*`, or exact origins (checked
    /// one by one by `config::parse_origin`).
    pub fn from_setting(values: &[String]) -> anyhow::Result<Self> {
        if values.is_empty() {
            return Ok(Self::Unset);
        }
        if values.iter().any(|v| v == "*") {
            anyhow::ensure!(
                values.len() == 1,
                "ITSM_CORS_ORIGINS is either `*` or a list of origins, not both"
            );
            return Ok(Self::Any);
        }
        let list = values
            .iter()
            .map(|v| HeaderValue::from_str(v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::List(list))
    }

    /// The CORS layer, when origins are configured.
    pub fn layer(&self) -> Option<CorsLayer> {
        let allow = match self {
            Self::Unset => return None,
            Self::Any => AllowOrigin::any(),
            Self::List(list) => AllowOrigin::list(list.clone()),
        };
        Some(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::ACCEPT,
                    HeaderName::from_static("x-request-id"),
                    HeaderName::from_static("apollo-require-preflight"),
                ])
                .expose_headers([
                    HeaderName::from_static("x-request-id"),
                    header::RETRY_AFTER,
                    header::WWW_AUTHENTICATE,
                ])
                .max_age(MAX_AGE),
        )
    }

    /// May a WebSocket upgrade with this `Origin` header proceed? Clients
    /// that send none (not browsers) may, so may a page of the service's own
    /// origin (the explorer: its `Origin` names the `Host` it connects to),
    /// and so may everyone when no origins are configured.
    pub fn allows_socket(&self, origin: Option<&HeaderValue>, host: Option<&HeaderValue>) -> bool {
        match (self, origin) {
            (Self::Unset | Self::Any, _) | (_, None) => true,
            (Self::List(list), Some(origin)) => {
                list.contains(origin) || is_same_origin(origin, host)
            }
        }
    }
}

/// True when `origin` (`scheme://host[:port]`) names `host`, the `Host` the
/// request was sent to: the page came from this service.
fn is_same_origin(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), host.map(HeaderValue::to_str)) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stands_alone() {
        assert_eq!(Origins::from_setting(&[]).ok(), Some(Origins::Unset));
        assert_eq!(
            Origins::from_setting(&["*".into()]).ok(),
            Some(Origins::Any)
        );
        assert!(Origins::from_setting(&["*".into(), "https://a.example".into()]).is_err());
    }

    #[test]
    fn sockets_are_checked_only_against_a_list() {
        let list = Origins::from_setting(&["https://portal.example.com".into()]).expect("list");
        let portal = HeaderValue::from_static("https://portal.example.com");
        let evil = HeaderValue::from_static("https://evil.example");
        let host = HeaderValue::from_static("api.example.com:8443");
        assert!(list.allows_socket(Some(&portal), Some(&host)));
        assert!(!list.allows_socket(Some(&evil), Some(&host)));
        assert!(
            list.allows_socket(None, Some(&host)),
            "non-browser clients send no Origin"
        );
        assert!(Origins::Any.allows_socket(Some(&evil), None));
        assert!(Origins::Unset.allows_socket(Some(&evil), None));
        // The service's own pages (the explorer) come from the host they call.
        let own = HeaderValue::from_static("https://api.example.com:8443");
        assert!(list.allows_socket(Some(&own), Some(&host)));
        assert!(!list.allows_socket(Some(&own), None));
        let other_port = HeaderValue::from_static("https://api.example.com:9000");
        assert!(!list.allows_socket(Some(&other_port), Some(&host)));
        assert!(!list.allows_socket(Some(&HeaderValue::from_static("null")), Some(&host)));
    }
}
