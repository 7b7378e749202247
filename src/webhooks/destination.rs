//! Where webhooks may be sent. An endpoint's URL names a host the service
//! resolves and connects to from inside the network it runs in, so an
//! unchecked URL would let whoever sets it reach the cloud's metadata
//! service, the database, or anything else on the private network
//! (server-side request forgery). The allow-list setting decides:
//!
//! - `public`: any address on the public internet (the default);
//! - a network in CIDR form (`10.20.0.0/16`, `fd00::/8`), or one address;
//! - a host name (`hooks.internal.example`), or every name under a domain
//!   (`*.internal.example`), whatever it resolves to.
//!
//! Loopback, private, link-local (the metadata service), shared, multicast
//! and reserved addresses are refused unless a network or host entry allows
//! them. Every address a name resolves to is checked, at delivery time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The allow-list entry for every public address.
pub const PUBLIC: &str = "public";

/// Which destinations the setting allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    public: bool,
    networks: Vec<IpNet>,
    hosts: Vec<String>,
    domains: Vec<String>,
}

/// Why a destination is refused: said to the admin who set it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a URL: {0}")]
    Malformed(String),
    #[error("only http and https URLs take webhooks")]
    Scheme,
    #[error("a webhook URL carries no user name or password (the signature authenticates)")]
    Credentials,
    #[error("the URL names no host")]
    NoHost,
    #[error("{0} is not an address webhooks may go to (see ITSM_WEBHOOK_ALLOW)")]
    Address(IpAddr),
}

impl Policy {
    /// Reads the setting's entries.
    pub fn from_entries(entries: &[String]) -> anyhow::Result<Self> {
        let mut policy = Self {
            public: false,
            networks: Vec::new(),
            hosts: Vec::new(),
            domains: Vec::new(),
        };
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let lower = entry.to_ascii_lowercase();
            if lower == PUBLIC {
                policy.public = true;
            } else if let Ok(network) = entry.parse::<IpNet>() {
                policy.networks.push(network.trunc());
            } else if let Ok(address) = entry.parse::<IpAddr>() {
                policy.networks.push(IpNet::from(address));
            } else if let Some(domain) = lower.strip_prefix("*.") {
                check_name(domain, entry)?;
                policy.domains.push(domain.to_owned());
            } else {
                check_name(&lower, entry)?;
                policy.hosts.push(lower);
            }
        }
        Ok(policy)
    }

    /// Checks a URL's shape (http or https, a host, no credentials) and,
    /// when it names an address rather than a host, the address.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, Refusal> {
        let parsed =
            reqwest::Url::parse(url.trim()).map_err(|e| Refusal::Malformed(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Refusal::Scheme);
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Refusal::Credentials);
        }
        let host = parsed.host_str().ok_or(Refusal::NoHost)?;
        // The parser has already read every spelling of an IPv4 address
        // (`2130706433`, `0x7f.1`) as dotted decimal; IPv6 comes bracketed.
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(address) = literal.parse::<IpAddr>() {
            self.check("", address)?;
        }
        Ok(parsed)
    }

    /// Checks one address `host` resolved to (`host` empty for a literal address).
    pub fn check(&self, host: &str, address: IpAddr) -> Result<(), Refusal> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let named = !host.is_empty()
            && (self.hosts.contains(&host)
                || self
                    .domains
                    .iter()
                    .any(|domain| host.ends_with(&format!(".{domain}"))));
        let address = canonical(address);
        if named
            || self
                .networks
                .iter()
                .any(|network| network.contains(&address))
            || (self.public && is_public(address))
        {
            Ok(())
        } else {
            Err(Refusal::Address(address))
        }
    }
}

fn check_name(name: &str, entry: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(())
    } else {
        anyhow::bail!(
            "ITSM_WEBHOOK_ALLOW: `{entry}` is not `public`, a network, an address, a host name or `*.domain`"
        )
    }
}

/// An IPv4 address carried in IPv6 (mapped, or NAT64) as the IPv4 address
/// it reaches, so a wrapped loopback is judged as loopback.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let [a, b, ..] = v6.segments();
            if a == 0x64 && b == 0xff9b {
                let octets = v6.octets();
                return IpAddr::V4(Ipv4Addr::new(
                    octets[12], octets[13], octets[14], octets[15],
                ));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// On the public internet: not loopback, private, link-local, shared,
/// multicast, documentation, benchmarking or reserved.
fn is_public(address: IpAddr) -> bool {
    match canonical(address) {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (18..20).contains(&b))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10, and the old site-local, fec0::/10.
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible and other addresses under ::/96 left after mapping.
        || ip.segments()[..6].iter().all(|s| *s == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> Policy {
        Policy::from_entries(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>())
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn by_default_only_public_addresses_are_reached() {
        let default = policy(&[PUBLIC]);
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:2800:220:1:248:1893:25c8:1946",
        ] {
            assert_eq!(
                default.check("hooks.example.com", ip(public)),
                Ok(()),
                "{public}"
            );
        }
        for private in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            // IPv4 inside IPv6: mapped, NAT64 and the old compatible form.
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
        ] {
            assert_eq!(
                default.check("hooks.example.com", ip(private)),
                Err(Refusal::Address(canonical(ip(private)))),
                "{private}"
            );
        }
    }

    #[test]
    fn networks_hosts_and_domains_allow_private_destinations() {
        let allowed = policy(&[
            "10.20.0.0/16",
            "127.0.0.1",
            "hooks.internal.example",
            "*.corp.example",
        ]);
        assert_eq!(allowed.check("x", ip("10.20.5.6")), Ok(()));
        assert!(allowed.check("x", ip("10.21.0.1")).is_err());
        assert_eq!(allowed.check("", ip("127.0.0.1")), Ok(()));
        assert_eq!(allowed.check("", ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(
            allowed.check("Hooks.Internal.Example.", ip("192.168.9.9")),
            Ok(())
        );
        assert_eq!(allowed.check("ci.corp.example", ip("192.168.9.9")), Ok(()));
        assert!(
            allowed
                .check("corp.example.evil.com", ip("192.168.9.9"))
                .is_err()
        );
        assert!(
            allowed
                .check("evilcorp.example", ip("192.168.9.9"))
                .is_err()
        );
        // Without `public`, the public internet is not allowed either.
        assert!(
            allowed
                .check("hooks.example.com", ip("93.184.216.34"))
                .is_err()
        );
    }

    #[test]
    fn urls_are_http_with_a_host_and_no_credentials() {
        let default = policy(&[PUBLIC]);
        assert!(default.check_url("https://hooks.example.com/itsm").is_ok());
        assert_eq!(
            default.check_url("ftp://hooks.example.com/"),
            Err(Refusal::Scheme)
        );
        assert_eq!(
            default.check_url("file:///etc/passwd"),
            Err(Refusal::Scheme)
        );
        assert_eq!(
            default.check_url("https://user:pw@hooks.example.com/"),
            Err(Refusal::Credentials)
        );
        assert!(matches!(
            default.check_url("not a url"),
            Err(Refusal::Malformed(_))
        ));
        // Literal addresses are judged at once, in every spelling.
        for literal in [
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            assert!(
                matches!(default.check_url(literal), Err(Refusal::Address(_))),
                "{literal}"
            );
        }
    }

    #[test]
    fn bad_entries_are_refused_at_start_up() {
        for bad in [
            "hooks example",
            "*.",
            "10.0.0.0/33",
            "https://hooks.example",
        ] {
            assert!(Policy::from_entries(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }
}
