//! Addresses, CIDR blocks and port sets.

use core::fmt;
use std::net::IpAddr;

use vigil_plugin_sdk::Protocol;

/// An address block (`172.16.0.0/12`, `fd00::/8`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::/n` or a bare address; `None` when invalid.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (
                addr.parse::<IpAddr>().ok()?,
                Some(prefix.parse::<u8>().ok()?),
            ),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let full = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(full);
        (prefix <= full).then_some(Self { net: addr, prefix })
    }

    /// True when `addr` lies in the block (IPv4-mapped IPv6 addresses are
    /// compared as IPv4).
    pub(crate) fn contains(&self, addr: IpAddr) -> bool {
        match (self.net, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(addr) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(addr) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; other addresses unchanged.
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// Parses an address as the network source writes it; `None` for empty or
/// malformed text.
pub(crate) fn parse_addr(text: &str) -> Option<IpAddr> {
    text.trim().parse::<IpAddr>().ok().map(canonical)
}

/// True for `0.0.0.0`, `::`: a socket bound to every address.
pub(crate) fn is_wildcard(addr: IpAddr) -> bool {
    addr.is_unspecified()
}

/// Which transport protocols a port entry covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocols {
    Both,
    Tcp,
    Udp,
}

impl Protocols {
    fn covers(self, protocol: Protocol) -> bool {
        match self {
            Protocols::Both => true,
            Protocols::Tcp => protocol == Protocol::Tcp,
            Protocols::Udp => protocol == Protocol::Udp,
        }
    }
}

/// One entry of a port list: `443`, `"123/udp"`, `"8000-8099"`, `"8000-8099/tcp"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortRange {
    first: u16,
    last: u16,
    protocols: Protocols,
}

impl PortRange {
    /// One port, both protocols.
    pub(crate) const fn port(port: u16) -> Self {
        Self {
            first: port,
            last: port,
            protocols: Protocols::Both,
        }
    }

    /// Parses the text form; the error says why.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (range, protocols) = match text.split_once('/') {
            Some((range, proto)) => match proto.trim().to_ascii_lowercase().as_str() {
                "tcp" => (range, Protocols::Tcp),
                "udp" => (range, Protocols::Udp),
                _ => return Err(format!("`{text}`: the protocol must be `tcp` or `udp`")),
            },
            None => (text, Protocols::Both),
        };
        let port = |p: &str| -> Result<u16, String> {
            match p.trim().parse::<u16>() {
                Ok(0) | Err(_) => Err(format!(
                    "`{text}` is not a port (1-65535), a range (`8000-8099`) or either with `/tcp` or `/udp`"
                )),
                Ok(port) => Ok(port),
            }
        };
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (port(first)?, port(last)?),
            None => {
                let p = port(range)?;
                (p, p)
            }
        };
        if first > last {
            return Err(format!("`{text}`: the range is reversed"));
        }
        Ok(Self {
            first,
            last,
            protocols,
        })
    }

    fn contains(&self, port: u16, protocol: Protocol) -> bool {
        (self.first..=self.last).contains(&port) && self.protocols.covers(protocol)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)?;
        } else {
            write!(f, "{}-{}", self.first, self.last)?;
        }
        match self.protocols {
            Protocols::Both => Ok(()),
            Protocols::Tcp => f.write_str("/tcp"),
            Protocols::Udp => f.write_str("/udp"),
        }
    }
}

/// A list of port entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PortSet(pub(crate) Vec<PortRange>);

impl PortSet {
    pub(crate) fn contains(&self, port: u16, protocol: Protocol) -> bool {
        self.0.iter().any(|range| range.contains(port, protocol))
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, range) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{range}")?;
        }
        Ok(())
    }
}

/// `tcp`/`udp`.
pub(crate) fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// A port and protocol packed into one number for compact profiles:
/// the port for TCP, 65536 + the port for UDP.
pub(crate) fn pack(port: u16, protocol: Protocol) -> u32 {
    match protocol {
        Protocol::Tcp => u32::from(port),
        Protocol::Udp => 65_536 + u32::from(port),
    }
}

/// The text of a packed port: `8443/tcp`.
pub(crate) fn packed_name(packed: u32) -> String {
    if packed >= 65_536 {
        format!("{}/udp", packed - 65_536)
    } else {
        format!("{packed}/tcp")
    }
}

/// `host:port`, with brackets for IPv6.
pub(crate) fn endpoint(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}
