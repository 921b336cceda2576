//! The addresses of a network namespace, read from procfs without netlink:
//! `net/fib_trie` (IPv4: local addresses and directly connected subnets)
//! and `net/if_inet6` (IPv6 addresses and their prefixes). Used to learn
//! which address belongs to which container, and which addresses are the
//! host's own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// A subnet: address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: IpAddr,
    pub len: u8,
}

impl Subnet {
    /// Whether `ip` is in this subnet (same family only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.len.min(32)))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len.min(128)))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// What a namespace's tables say about its addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    /// Addresses assigned to the namespace's interfaces (loopback and
    /// link-local left out: they say nothing about who is who).
    pub local: Vec<IpAddr>,
    /// Subnets reachable without a gateway.
    pub connected: Vec<Subnet>,
}

impl Addresses {
    /// Reads `<proc_root>/<who>/net/{fib_trie,if_inet6}`; a missing table
    /// (IPv6 off, process gone) adds nothing.
    pub fn read(proc_root: &Path, who: &str) -> Self {
        let net = proc_root.join(who).join("net");
        let mut out = Self::default();
        if let Ok(text) = std::fs::read_to_string(net.join("fib_trie")) {
            parse_fib_trie(&text, &mut out);
        }
        if let Ok(text) = std::fs::read_to_string(net.join("if_inet6")) {
            parse_if_inet6(&text, &mut out);
        }
        out.local.sort_unstable();
        out.local.dedup();
        out.connected.dedup();
        out
    }

    /// Whether `ip` is one of the local addresses.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.local.contains(&ip)
    }

    /// Whether `ip` is on a directly connected subnet.
    pub fn is_connected(&self, ip: IpAddr) -> bool {
        self.connected.iter().any(|s| s.contains(ip))
    }
}

/// Whether an address can name a container or a peer (not loopback,
/// unspecified, multicast, broadcast or link-local).
pub fn is_meaningful(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            !(v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || v.is_broadcast()
                || v.is_link_local())
        }
        IpAddr::V6(v) => {
            !(v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || v.is_unicast_link_local())
        }
    }
}

/// `fib_trie`: a leaf line `|-- A.B.C.D` is followed by one line per route
/// to it, `/LEN SCOPE TYPE`: `/32 host LOCAL` is a local address, `link
/// UNICAST` a connected subnet. Internal nodes (`+-- …`) are skipped.
pub fn parse_fib_trie(text: &str, out: &mut Addresses) {
    let mut leaf: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(addr) = t.strip_prefix("|-- ") {
            leaf = addr.trim().parse().ok();
        } else if let Some(route) = t.strip_prefix('/') {
            let Some(addr) = leaf else { continue };
            let mut parts = route.split_ascii_whitespace();
            let (Some(len), Some(scope), Some(kind)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(len) = len.parse::<u8>() else { continue };
            let ip = IpAddr::V4(addr);
            match (len, scope, kind) {
                (32, "host", "LOCAL") if is_meaningful(ip) => out.local.push(ip),
                (0..=31, "link", "UNICAST") => out.connected.push(Subnet { addr: ip, len }),
                _ => {}
            }
        } else {
            leaf = None;
        }
    }
}

/// `if_inet6`: `ADDR32HEX IFINDEX PREFIXLEN SCOPE FLAGS NAME` per address.
pub fn parse_if_inet6(text: &str, out: &mut Addresses) {
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(hex), Some(_), Some(len)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (Ok(bits), Ok(len)) = (u128::from_str_radix(hex, 16), u8::from_str_radix(len, 16))
        else {
            continue;
        };
        if hex.len() != 32 || len > 128 {
            continue;
        }
        let ip = IpAddr::V6(Ipv6Addr::from(bits));
        if is_meaningful(ip) {
            out.local.push(ip);
            out.connected.push(Subnet { addr: ip, len });
        }
    }
}
