//! Decoding the kernel's ctnetlink messages: a datagram holds netlink
//! messages (`nlmsghdr`), each a netfilter message (`nfgenmsg`) followed
//! by attributes (`nlattr`, some nested). Only what the source needs is
//! read: the original and reply tuples (addresses, protocol, ports) and the
//! conntrack id; every other attribute is skipped.
//!
//! Pure and safe: the input is whatever the socket returned, so every
//! length is checked against what is left and nothing can panic or read
//! out of bounds (`host/tests/fuzz_conntrack.rs` mutates real captures).
//! Netlink headers are in the machine's byte order, attribute payloads
//! (addresses, ports, ids) in network order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `NLMSG_NOOP`, `NLMSG_ERROR`, `NLMSG_DONE`, `NLMSG_OVERRUN`.
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
/// `nlmsghdr` and `nfgenmsg` sizes.
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;
/// `NFNL_SUBSYS_CTNETLINK`, the high byte of a conntrack message's type.
pub const SUBSYS_CTNETLINK: u8 = 1;
/// `IPCTNL_MSG_CT_NEW`, `IPCTNL_MSG_CT_DELETE`.
const MSG_CT_NEW: u8 = 0;
const MSG_CT_DELETE: u8 = 2;
/// `NLM_F_CREATE`: a `CT_NEW` that creates the entry (else an update).
const NLM_F_CREATE: u16 = 0x400;
/// Attribute type bits that are flags, not the type.
const NLA_TYPE_MASK: u16 = 0x3fff;

// enum ctattr_type
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ID: u16 = 12;
// enum ctattr_tuple
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
// enum ctattr_ip
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
// enum ctattr_l4proto
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;

/// IANA protocol numbers the source reports.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// One direction of a connection as conntrack saw its first packet
/// (original) or expects the answer (reply, after NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IANA protocol number.
    pub protocol: u8,
    /// 0 for protocols without ports.
    pub src_port: u16,
    pub dst_port: u16,
}

/// What happened to the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// Created (the first packet was accepted).
    New,
    /// Changed (state, mark, …).
    Update,
    /// Removed (closed or timed out).
    Destroy,
}

/// A conntrack entry from an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub kind: FlowKind,
    pub orig: Tuple,
    /// Absent only in malformed or truncated dumps.
    pub reply: Option<Tuple>,
    /// The kernel's id of the entry, when sent.
    pub id: Option<u32>,
}

/// One netlink message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// A conntrack entry.
    Flow(Flow),
    /// An error or acknowledgement (errno 0) answering a request.
    Error { errno: i32 },
    /// Another netfilter or netlink message (end of dump, statistics, …).
    Other { msg_type: u16 },
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes left than a netlink header: the rest of the datagram is lost.
    #[error("netlink header truncated ({left} bytes left)")]
    Header { left: usize },
    /// A header's length is smaller than the header or larger than what is left.
    #[error("netlink message length {len} out of bounds ({left} bytes left)")]
    Length { len: usize, left: usize },
    /// A netfilter message shorter than its `nfgenmsg`.
    #[error("netfilter message without its nfgenmsg header")]
    NfGenMsg,
    /// An attribute's length does not fit its message.
    #[error("attribute length {len} out of bounds ({left} bytes left)")]
    Attribute { len: usize, left: usize },
    /// An attribute's payload has the wrong size.
    #[error("attribute {name} has {len} bytes, expected {want}")]
    Payload {
        name: &'static str,
        len: usize,
        want: usize,
    },
    /// A conntrack message without a required part.
    #[error("conntrack message without {0}")]
    Missing(&'static str),
}

/// The messages of one datagram, in order. A broken header ends the
/// iteration (lengths cannot be trusted any more); a broken message body
/// is one error and the next message is still read.
pub fn messages(datagram: &[u8]) -> Messages<'_> {
    Messages { rest: datagram }
}

/// Iterator returned by [`messages`].
#[derive(Debug)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

impl Iterator for Messages<'_> {
    type Item = Result<Message, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let left = self.rest.len();
        if left < NLMSG_HDRLEN {
            self.rest = &[];
            return Some(Err(DecodeError::Header { left }));
        }
        let len = u32_ne(&self.rest[0..4]) as usize;
        if len < NLMSG_HDRLEN || len > left {
            self.rest = &[];
            return Some(Err(DecodeError::Length { len, left }));
        }
        let msg_type = u16_ne(&self.rest[4..6]);
        let flags = u16_ne(&self.rest[6..8]);
        let body = &self.rest[NLMSG_HDRLEN..len];
        self.rest = &self.rest[align4(len).min(left)..];
        Some(message(msg_type, flags, body))
    }
}

fn message(msg_type: u16, flags: u16, body: &[u8]) -> Result<Message, DecodeError> {
    match msg_type {
        NLMSG_ERROR => {
            let errno = body
                .get(0..4)
                .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            return Ok(Message::Error { errno: -errno });
        }
        NLMSG_NOOP | NLMSG_DONE | NLMSG_OVERRUN => return Ok(Message::Other { msg_type }),
        _ => {}
    }
    let [subsys, msg] = msg_type.to_be_bytes();
    let kind = match (subsys, msg) {
        (SUBSYS_CTNETLINK, MSG_CT_NEW) if flags & NLM_F_CREATE != 0 => FlowKind::New,
        (SUBSYS_CTNETLINK, MSG_CT_NEW) => FlowKind::Update,
        (SUBSYS_CTNETLINK, MSG_CT_DELETE) => FlowKind::Destroy,
        _ => return Ok(Message::Other { msg_type }),
    };
    let attrs = body.get(NFGENMSG_LEN..).ok_or(DecodeError::NfGenMsg)?;
    let mut orig = None;
    let mut reply = None;
    let mut id = None;
    for attr in Attrs::new(attrs) {
        let (ty, payload) = attr?;
        match ty {
            CTA_TUPLE_ORIG => orig = Some(tuple(payload)?),
            CTA_TUPLE_REPLY => reply = Some(tuple(payload)?),
            CTA_ID => id = Some(u32::from_be_bytes(fixed(payload, "CTA_ID")?)),
            _ => {}
        }
    }
    Ok(Message::Flow(Flow {
        kind,
        orig: orig.ok_or(DecodeError::Missing("CTA_TUPLE_ORIG"))?,
        reply,
        id,
    }))
}

/// A nested `CTA_TUPLE_*`: addresses and the layer-4 protocol.
fn tuple(nested: &[u8]) -> Result<Tuple, DecodeError> {
    let (mut src, mut dst, mut protocol) = (None, None, None);
    let (mut src_port, mut dst_port) = (0, 0);
    for attr in Attrs::new(nested) {
        let (ty, payload) = attr?;
        match ty {
            CTA_TUPLE_IP => {
                for ip in Attrs::new(payload) {
                    let (ty, p) = ip?;
                    match ty {
                        CTA_IP_V4_SRC => src = Some(v4(p, "CTA_IP_V4_SRC")?),
                        CTA_IP_V4_DST => dst = Some(v4(p, "CTA_IP_V4_DST")?),
                        CTA_IP_V6_SRC => src = Some(v6(p, "CTA_IP_V6_SRC")?),
                        CTA_IP_V6_DST => dst = Some(v6(p, "CTA_IP_V6_DST")?),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for l4 in Attrs::new(payload) {
                    let (ty, p) = l4?;
                    match ty {
                        CTA_PROTO_NUM => protocol = Some(fixed::<1>(p, "CTA_PROTO_NUM")?[0]),
                        CTA_PROTO_SRC_PORT => {
                            src_port = u16::from_be_bytes(fixed(p, "CTA_PROTO_SRC_PORT")?);
                        }
                        CTA_PROTO_DST_PORT => {
                            dst_port = u16::from_be_bytes(fixed(p, "CTA_PROTO_DST_PORT")?);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Tuple {
        src: src.ok_or(DecodeError::Missing("a source address"))?,
        dst: dst.ok_or(DecodeError::Missing("a destination address"))?,
        protocol: protocol.ok_or(DecodeError::Missing("CTA_PROTO_NUM"))?,
        src_port,
        dst_port,
    })
}

fn v4(p: &[u8], name: &'static str) -> Result<IpAddr, DecodeError> {
    Ok(IpAddr::V4(Ipv4Addr::from(fixed::<4>(p, name)?)))
}

fn v6(p: &[u8], name: &'static str) -> Result<IpAddr, DecodeError> {
    Ok(IpAddr::V6(Ipv6Addr::from(fixed::<16>(p, name)?)))
}

/// A payload of exactly `N` bytes.
fn fixed<const N: usize>(p: &[u8], name: &'static str) -> Result<[u8; N], DecodeError> {
    p.try_into().map_err(|_| DecodeError::Payload {
        name,
        len: p.len(),
        want: N,
    })
}

/// The attributes of a message or of a nested attribute: (type without
/// its flag bits, payload).
struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let left = self.rest.len();
        // Trailing padding shorter than a header is not an attribute.
        if left < 4 {
            self.rest = &[];
            return None;
        }
        let len = usize::from(u16_ne(&self.rest[0..2]));
        if len < 4 || len > left {
            self.rest = &[];
            return Some(Err(DecodeError::Attribute { len, left }));
        }
        let ty = u16_ne(&self.rest[2..4]) & NLA_TYPE_MASK;
        let payload = &self.rest[4..len];
        self.rest = &self.rest[align4(len).min(left)..];
        Some(Ok((ty, payload)))
    }
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn u16_ne(b: &[u8]) -> u16 {
    u16::from_ne_bytes([b[0], b[1]])
}

fn u32_ne(b: &[u8]) -> u32 {
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

/// Builders of well-formed messages, for tests and benchmarks: the same
/// layout the kernel writes (`ctnetlink_conntrack_event`).
pub mod encode {
    use super::{
        CTA_ID, CTA_IP_V4_DST, CTA_IP_V4_SRC, CTA_IP_V6_DST, CTA_IP_V6_SRC, CTA_PROTO_DST_PORT,
        CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_TUPLE_IP, CTA_TUPLE_ORIG, CTA_TUPLE_PROTO,
        CTA_TUPLE_REPLY, MSG_CT_NEW, NLM_F_CREATE, SUBSYS_CTNETLINK, Tuple, align4,
    };
    use std::net::IpAddr;

    const NLA_F_NESTED: u16 = 0x8000;

    fn attr(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        out.extend_from_slice(&(len as u16).to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize(align4(out.len()), 0);
    }

    fn tuple(t: &Tuple) -> Vec<u8> {
        let mut ip = Vec::new();
        match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                attr(&mut ip, CTA_IP_V4_SRC, &s.octets());
                attr(&mut ip, CTA_IP_V4_DST, &d.octets());
            }
            (s, d) => {
                let v6 = |a: IpAddr| match a {
                    IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
                    IpAddr::V6(v) => v.octets(),
                };
                attr(&mut ip, CTA_IP_V6_SRC, &v6(s));
                attr(&mut ip, CTA_IP_V6_DST, &v6(d));
            }
        }
        let mut l4 = Vec::new();
        attr(&mut l4, CTA_PROTO_NUM, &[t.protocol]);
        attr(&mut l4, CTA_PROTO_SRC_PORT, &t.src_port.to_be_bytes());
        attr(&mut l4, CTA_PROTO_DST_PORT, &t.dst_port.to_be_bytes());
        let mut out = Vec::new();
        attr(&mut out, CTA_TUPLE_IP | NLA_F_NESTED, &ip);
        attr(&mut out, CTA_TUPLE_PROTO | NLA_F_NESTED, &l4);
        out
    }

    /// A `CT_NEW` event (`NLM_F_CREATE`) for `orig`, its reply and `id`.
    pub fn new_flow(orig: &Tuple, reply: &Tuple, id: u32) -> Vec<u8> {
        let family: u8 = if orig.src.is_ipv4() { 2 } else { 10 };
        let mut body = vec![family, 0, 0, 0];
        attr(&mut body, CTA_TUPLE_ORIG | NLA_F_NESTED, &tuple(orig));
        attr(&mut body, CTA_TUPLE_REPLY | NLA_F_NESTED, &tuple(reply));
        attr(&mut body, CTA_ID, &id.to_be_bytes());
        let len = 16 + body.len();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&u16::from_be_bytes([SUBSYS_CTNETLINK, MSG_CT_NEW]).to_ne_bytes());
        out.extend_from_slice(&(NLM_F_CREATE | 0x200).to_ne_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&body);
        out
    }
}
