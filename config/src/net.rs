//! Client address lists (`forwarded_allow_ips`, `proxy_allow_ips`): parsed and checked once
//! here, so that the worker only matches peers against them.

use std::net::IpAddr;

/// An IP network: an address and a prefix length (a plain address is a network of its full
/// length, 32 or 128 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network of `addr`'s first `prefix` bits; `None` if `prefix` is longer than the
    /// address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        (prefix <= full_length(addr)).then_some(IpNet { addr, prefix })
    }

    /// The network holding `addr` alone.
    pub fn host(addr: IpAddr) -> IpNet {
        IpNet {
            addr,
            prefix: full_length(addr),
        }
    }

    /// Parses `ADDRESS` or `ADDRESS/PREFIX`; the error names `text` and what is wrong.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address"))?;
        let Some(prefix) = prefix else {
            return Ok(IpNet::host(addr));
        };
        let max = full_length(addr);
        prefix
            .parse::<u8>()
            .ok()
            .and_then(|p| IpNet::new(addr, p))
            .ok_or_else(|| format!("{text:?} has a bad prefix length (0 to {max})"))
    }

    /// Whether `ip` is in this network. An IPv4 address is never in an IPv6 network, nor
    /// the reverse.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (ip, self.addr) {
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(n) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(n)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(n) & mask
            }
            _ => false,
        }
    }
}

fn full_length(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// A list of trusted client addresses: IP addresses, `ADDRESS/PREFIX` networks, or `*`
/// for any. Keeps the items as written, for `--print-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAllowList {
    items: Vec<String>,
    any: bool,
    nets: Vec<IpNet>,
}

impl IpAllowList {
    /// Parses each item; the first that is neither `*` nor a network is the error.
    pub fn parse(items: Vec<String>) -> Result<IpAllowList, String> {
        let mut any = false;
        let mut nets = Vec::new();
        for item in &items {
            if item == "*" {
                any = true;
            } else {
                nets.push(IpNet::parse(item)?);
            }
        }
        Ok(IpAllowList { items, any, nets })
    }

    /// `127.0.0.1` and `::1`: the default of both lists.
    pub fn localhost() -> IpAllowList {
        let v4 = IpAddr::from([127, 0, 0, 1]);
        let v6 = IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
        IpAllowList {
            items: vec!["127.0.0.1".to_string(), "::1".to_string()],
            any: false,
            nets: vec![IpNet::host(v4), IpNet::host(v6)],
        }
    }

    /// The items as they were written.
    pub fn items(&self) -> &[String] {
        &self.items
    }

    /// Whether `ip` is trusted. An IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.any || self.nets.iter().any(|net| net.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> IpAllowList {
        IpAllowList::parse(items.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_networks_and_any() {
        let l = IpAllowList::localhost();
        assert_eq!(l, list(&["127.0.0.1", "::1"]));
        assert!(l.allows(ip("127.0.0.1")) && l.allows(ip("::1")));
        assert!(l.allows(ip("::ffff:127.0.0.1")), "IPv4-mapped");
        assert!(!l.allows(ip("10.0.0.1")));
        assert!(list(&["*"]).allows(ip("10.0.0.1")));
        let nets = list(&["10.1.0.0/16", "fd00::/8"]);
        assert!(nets.allows(ip("10.1.200.3")) && !nets.allows(ip("10.2.0.1")));
        assert!(nets.allows(ip("fd12::1")) && !nets.allows(ip("fe80::1")));
        assert!(list(&["0.0.0.0/0"]).allows(ip("8.8.8.8")));
        assert!(!list(&["0.0.0.0/0"]).allows(ip("2001:db8::1")));
    }

    #[test]
    fn errors_name_the_item() {
        let bad = |s: &str| IpAllowList::parse(vec![s.to_string()]).unwrap_err();
        assert_eq!(bad("localhost"), "\"localhost\" is not an IP address");
        assert_eq!(
            bad("10.0.0.0/33"),
            "\"10.0.0.0/33\" has a bad prefix length (0 to 32)"
        );
        assert_eq!(bad("::/x"), "\"::/x\" has a bad prefix length (0 to 128)");
    }
}
