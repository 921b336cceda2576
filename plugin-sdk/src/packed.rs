//! Decoder of the packed batch encoding (`wit/PACKED.md`), the mirror of the
//! host's `host/crates/core/src/model/packed.rs`: `on-packed-events` hands the guest one
//! buffer, and this turns it back into the very `Vec<Event>` that
//! `on-events` would have received; `on-packed-findings` (WIT 0.1.5) one
//! buffer that becomes the `Vec<FindingEvent>` of `correlate.on-findings`.
//!
//! Decoding allocates from the batch arena like the canonical ABI's lifting
//! does, so a plugin's `on_events` sees no difference. Any malformed buffer
//! is refused with a [`PackedError`], never guessed at. A component's
//! `on-packed-events` reads its batch as borrowed views instead
//! ([`crate::view`], the same rules and errors), and copies them into owned
//! events only for a detector that does not read views.

use crate::types::{
    ContainerAction, ContainerEvent, ContainerRef, ContainerRole, ContainerSecurity, Direction,
    Entity, EntityKind, EntityVerdict, Event, EventBody, ExecInfo, FileChange, FileEvent,
    FileState, Finding, FindingEvent, KeyValue, KubernetesEvent, Mount, NetworkEvent, OwnerRef,
    PodContainer, PodSpec, Protocol, Severity,
};

/// The only format version this SDK reads: the first byte of a batch.
pub const PACKED_VERSION: u8 = 1;

/// Why a packed batch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedError {
    /// Byte offset where decoding stopped.
    pub offset: usize,
    /// What was wrong there.
    pub reason: &'static str,
}

impl core::fmt::Display for PackedError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "invalid packed batch at byte {}: {}",
            self.offset, self.reason
        )
    }
}

/// Decodes a whole packed batch.
///
/// # Errors
/// A [`PackedError`] for another version, a truncated or malformed field,
/// or bytes after the last event.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Event>, PackedError> {
    decode_list(bytes, "trailing bytes after the last event")
}

/// Decodes a whole packed batch of findings (`packed-correlate`, WIT
/// 0.1.5): the version byte, then the `list<finding-event>` that
/// `correlate.on-findings` would have received.
///
/// # Errors
/// A [`PackedError`], on the same grounds as [`decode_batch`].
pub fn decode_findings(bytes: &[u8]) -> Result<Vec<FindingEvent>, PackedError> {
    decode_list(bytes, "trailing bytes after the last finding")
}

/// A batch of either kind: the version byte, a `list<T>`, nothing after it
/// (`trailing`: the reason given when something is).
fn decode_list<T: Unpack>(bytes: &[u8], trailing: &'static str) -> Result<Vec<T>, PackedError> {
    read_batch(bytes, T::MIN, trailing, |r| T::unpack(r))
}

/// The frame of every packed batch: the version byte, the count (each item
/// at least `min` bytes), `item` read that many times, nothing after them
/// (`trailing`: the reason given when something is). Shared by the owned
/// decoders and [`crate::view::decode_views`], so that both refuse a buffer
/// alike.
pub(crate) fn read_batch<'a, T>(
    bytes: &'a [u8],
    min: usize,
    trailing: &'static str,
    mut item: impl FnMut(&mut Reader<'a>) -> Result<T, PackedError>,
) -> Result<Vec<T>, PackedError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.u8()? != PACKED_VERSION {
        return Err(r.error_at(0, "unsupported format version"));
    }
    let n = r.len(min)?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(item(&mut r)?);
    }
    if r.pos != bytes.len() {
        return Err(r.error(trailing));
    }
    Ok(items)
}

/// A cursor over a packed buffer; every read is bounds-checked. Shared with
/// the borrowed views of [`crate::view`].
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn error(&self, reason: &'static str) -> PackedError {
        self.error_at(self.pos, reason)
    }

    pub(crate) fn error_at(&self, offset: usize, reason: &'static str) -> PackedError {
        PackedError { offset, reason }
    }

    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], PackedError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.error("truncated"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    #[inline]
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], PackedError> {
        // `first_chunk` rather than `copy_from_slice`: the plugins are built
        // for size, and there the latter stays a call per field read.
        let a = *self.bytes[self.pos..]
            .first_chunk::<N>()
            .ok_or_else(|| self.error("truncated"))?;
        self.pos += N;
        Ok(a)
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, PackedError> {
        Ok(self.array::<1>()?[0])
    }

    /// A count or length; bounded by the bytes left, so a hostile count
    /// cannot make the decoder reserve more than the buffer could hold.
    #[inline]
    pub(crate) fn len(&mut self, min_item_size: usize) -> Result<usize, PackedError> {
        let n = u32::from_le_bytes(self.array()?) as usize;
        let left = self.bytes.len() - self.pos;
        if n.saturating_mul(min_item_size.max(1)) > left {
            return Err(self.error("length exceeds the bytes left"));
        }
        Ok(n)
    }

    /// A byte of a buffer already checked ([`crate::view`]).
    #[inline]
    pub(crate) fn checked_u8(&mut self) -> u8 {
        let b = self.bytes[self.pos];
        self.pos += 1;
        b
    }

    /// A count of a buffer already checked.
    #[inline]
    pub(crate) fn checked_len(&mut self) -> usize {
        let at = self.pos;
        self.skip_checked(4);
        let word = &self.bytes[at..self.pos];
        u32::from_le_bytes([word[0], word[1], word[2], word[3]]) as usize
    }

    /// The bytes of a string of a buffer already checked.
    #[inline]
    pub(crate) fn checked_bytes(&mut self) -> &'a [u8] {
        let n = self.checked_len();
        let at = self.pos;
        self.skip_checked(n);
        &self.bytes[at..self.pos]
    }

    /// Steps over `n` bytes of a buffer already checked.
    #[inline]
    pub(crate) fn skip_checked(&mut self, n: usize) {
        // Never past the end, even for a reader that only skips: a bug
        // here panics (a trap), it does not read out of bounds.
        self.pos = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .unwrap_or_else(|| unreachable!("skipped past the end of a checked buffer"));
    }

    #[inline]
    pub(crate) fn index<T: Copy>(
        &mut self,
        cases: &[T],
        what: &'static str,
    ) -> Result<T, PackedError> {
        let at = self.pos;
        let i = self.u8()?;
        cases
            .get(usize::from(i))
            .copied()
            .ok_or_else(|| self.error_at(at, what))
    }
}

pub(crate) trait Unpack: Sized {
    /// The fewest bytes an encoded value takes (bounds hostile counts).
    const MIN: usize;
    fn unpack(r: &mut Reader<'_>) -> Result<Self, PackedError>;
}

impl Unpack for String {
    const MIN: usize = 4;
    #[inline]
    fn unpack(r: &mut Reader<'_>) -> Result<Self, PackedError> {
        let n = r.len(1)?;
        let at = r.pos;
        let bytes = r.take(n)?;
        if let Some(s) = short_ascii(bytes) {
            return Ok(s);
        }
        match text(bytes) {
            Some(s) => Ok(s.to_owned()),
            None => Err(r.error_at(at, "invalid UTF-8 in a string")),
        }
    }
}

/// `bytes` as a `String` when they are ASCII and at most 32 long (most of
/// an event's strings: verbs, names, modes, stages, images), else `None`.
/// They are loaded as a few overlapping words, which are both checked for
/// ASCII and stored into the new string. In wasmtime, `to_owned`'s
/// `memory.copy` is a call out of the guest costing several times a short
/// string's copy, and `is_ascii` would be a second pass over the bytes.
#[inline]
#[allow(
    unsafe_code,
    reason = "unaligned loads within the slice, stores into a Vec's spare capacity"
)]
pub(crate) fn short_ascii(bytes: &[u8]) -> Option<String> {
    let n = bytes.len();
    if n == 0 {
        return Some(String::new());
    }
    if n > 32 {
        return None;
    }
    let src = bytes.as_ptr();
    let mut v = Vec::<u8>::with_capacity(n);
    let dst = v.as_mut_ptr();
    // SAFETY: for each length the words at these offsets lie within `0..n`
    // and together cover it (overlapping where `n` is not a multiple of
    // their width); `src` is valid for `n` bytes, `dst` for `n` bytes of
    // capacity.
    let ascii = unsafe {
        match n {
            1..=3 => copy_ascii_words::<u8, 3>(src, dst, [0, n / 2, n - 1]),
            4..=7 => copy_ascii_words::<u32, 2>(src, dst, [0, n - 4]),
            8..=16 => copy_ascii_words::<u64, 2>(src, dst, [0, n - 8]),
            17..=32 => copy_ascii_words::<u64, 4>(src, dst, [0, 8, n - 16, n - 8]),
            _ => false,
        }
    };
    if !ascii {
        return None;
    }
    // SAFETY: all `n` bytes were written, and they are ASCII (UTF-8).
    unsafe {
        v.set_len(n);
        Some(String::from_utf8_unchecked(v))
    }
}

/// A word `short_ascii` moves: its bytes' high bits, widened.
trait Word: Copy {
    const HIGH: u64;
    fn high_bits(self) -> u64;
}

macro_rules! word {
    ($($t:ty),*) => {$(
        impl Word for $t {
            const HIGH: u64 = 0x8080_8080_8080_8080 & (<$t>::MAX as u64);
            #[inline]
            fn high_bits(self) -> u64 {
                u64::from(self) & Self::HIGH
            }
        }
    )*};
}
word!(u8, u32, u64);

/// Loads the `W` words at `offsets` of `src` and, when no byte of them has
/// its high bit set, stores them at the same offsets of `dst`; whether it
/// did. Nothing is stored for bytes that are not ASCII.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of every word at
/// `offsets` (unaligned).
#[inline]
#[allow(unsafe_code, reason = "raw unaligned loads and stores; see # Safety")]
unsafe fn copy_ascii_words<W: Word, const K: usize>(
    src: *const u8,
    dst: *mut u8,
    offsets: [usize; K],
) -> bool {
    // SAFETY: the caller's contract.
    let words = offsets.map(|at| unsafe { src.add(at).cast::<W>().read_unaligned() });
    if words.iter().fold(0, |high, w| high | w.high_bits()) != 0 {
        return false;
    }
    for (at, w) in offsets.into_iter().zip(words) {
        // SAFETY: the caller's contract.
        unsafe { dst.add(at).cast::<W>().write_unaligned(w) };
    }
    true
}

/// `bytes` as a `str`, if they are UTF-8. Nearly every string of an event
/// is short ASCII (ids, names, verbs, images), which `is_ascii` accepts in
/// a fraction of what `from_utf8`'s general path costs per call on wasm32.
#[inline]
#[allow(
    unsafe_code,
    reason = "from_utf8_unchecked of bytes checked to be ASCII"
)]
pub(crate) fn text(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Some(unsafe { core::str::from_utf8_unchecked(bytes) })
    } else {
        core::str::from_utf8(bytes).ok()
    }
}

impl Unpack for bool {
    const MIN: usize = 1;
    #[inline]
    fn unpack(r: &mut Reader<'_>) -> Result<Self, PackedError> {
        r.index(&[false, true], "a bool must be 0 or 1")
    }
}

macro_rules! unpack_le {
    ($($t:ty),*) => {$(
        impl Unpack for $t {
            const MIN: usize = core::mem::size_of::<$t>();
            #[inline]
    fn unpack(r: &mut Reader<'_>) -> Result<Self, PackedError> {
                Ok(<$t>::from_le_bytes(r.array()?))
            }
        }
    )*};
}
unpack_le!(u16, u32, i32, u64);

impl<T: Unpack> Unpack for Option<T> {
    const MIN: usize = 1;
    #[inline]
    fn unpack(r: &mut Reader<'_>) -> Result<Self, PackedError> {
        if r.index(&[false, true], "an option tag must be 0 or 1")? {
            Ok(Some(T::unpack(r)?))
        } else {
            Ok(None)
        }
    }
}

impl<T: Unpack> Unpack for Vec<T> {
    const MIN: usize = 4;
    #[inline]
    fn unpack(r: &mut Reader<'_>) -> Result<Self, PackedError> {
        let n = r.len(T::MIN)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(T::unpack(r)?);
        }
        Ok(v)
    }
}

/// Enums: the case list in WIT declaration order.
macro_rules! unpack_enum {
    ($t:ty, $what:literal, [$($case:ident),* $(,)?]) => {
        impl Unpack for $t {
            const MIN: usize = 1;
            #[inline]
    fn unpack(r: &mut Reader<'_>) -> Result<Self, PackedError> {
                r.index(&[$(<$t>::$case),*], $what)
            }
        }
    };
}

unpack_enum!(
    ContainerAction,
    "unknown container-action",
    [
        Create,
        Start,
        Restart,
        Stop,
        Die,
        Kill,
        Destroy,
        Pause,
        Unpause,
        ExecCreate,
        ExecStart,
        ExecDie,
        Oom,
        Rename,
        Update,
        Attach,
        NetworkConnect,
        NetworkDisconnect,
        Running,
        Other,
    ]
);
unpack_enum!(
    ContainerRole,
    "unknown container-role",
    [Main, Init, Ephemeral]
);
unpack_enum!(Protocol, "unknown protocol", [Tcp, Udp]);
unpack_enum!(
    Direction,
    "unknown direction",
    [Inbound, Outbound, Listen, Unknown]
);
unpack_enum!(
    FileChange,
    "unknown file-change",
    [Created, Modified, Metadata, Deleted]
);
unpack_enum!(
    Severity,
    "unknown severity",
    [Info, Low, Medium, High, Critical]
);
unpack_enum!(
    EntityKind,
    "unknown entity-kind",
    [Container, Pod, Node, File, Image, User, Address]
);
unpack_enum!(
    EntityVerdict,
    "unknown entity-verdict",
    [NotChecked, Unverified, Verified]
);

/// Records: their fields in WIT declaration order.
macro_rules! unpack_record {
    ($t:ident { $($f:ident : $ft:ty),* $(,)? }) => {
        impl Unpack for $t {
            const MIN: usize = 0 $(+ <$ft as Unpack>::MIN)*;
            #[inline]
    fn unpack(r: &mut Reader<'_>) -> Result<Self, PackedError> {
                Ok($t { $($f: <$ft>::unpack(r)?),* })
            }
        }
    };
}

unpack_record!(KeyValue {
    key: String,
    value: String
});
unpack_record!(Entity {
    kind: EntityKind,
    id: String,
    name: String,
});
unpack_record!(Finding {
    rule_id: String,
    title: String,
    severity: Severity,
    summary: String,
    techniques: Vec<String>,
    entities: Vec<Entity>,
    evidence: Vec<KeyValue>,
    event_ids: Vec<String>,
});
unpack_record!(FindingEvent {
    id: String,
    plugin: String,
    plugin_version: String,
    time: u64,
    node: String,
    depth: u32,
    finding: Finding,
    verdicts: Vec<EntityVerdict>,
});
unpack_record!(Mount {
    source: String,
    destination: String,
    read_only: bool,
    kind: String,
});
unpack_record!(ContainerSecurity {
    network_mode: String,
    pid_mode: String,
    ipc_mode: String,
    userns_mode: String,
    cgroupns_mode: String,
    uts_mode: String,
    privileged: bool,
    cap_add: Vec<String>,
    cap_drop: Vec<String>,
    devices: Vec<String>,
    mounts: Vec<Mount>,
    user: String,
    allow_privilege_escalation: Option<bool>,
    read_only_rootfs: bool,
    seccomp_profile: String,
    apparmor_profile: String,
    log_driver: String,
    restart_policy: String,
});
unpack_record!(ExecInfo {
    command: String,
    user: String,
    privileged: bool,
    tty: bool,
});
unpack_record!(ContainerEvent {
    action: ContainerAction,
    raw_action: String,
    id: String,
    name: String,
    image: String,
    image_digest: String,
    runtime: String,
    labels: Vec<KeyValue>,
    security: Option<ContainerSecurity>,
    actor: String,
    exit_code: Option<i32>,
    signal: String,
    exec: Option<ExecInfo>,
    network: String,
    lifetime_ms: Option<u64>,
});
unpack_record!(PodContainer {
    role: ContainerRole,
    name: String,
    image: String,
    security: ContainerSecurity,
});
unpack_record!(PodSpec {
    host_network: bool,
    host_pid: bool,
    host_ipc: bool,
    service_account: String,
    node_name: String,
    containers: Vec<PodContainer>,
});
unpack_record!(OwnerRef {
    kind: String,
    name: String
});
unpack_record!(KubernetesEvent {
    verb: String,
    resource: String,
    subresource: String,
    api_group: String,
    namespace: String,
    name: String,
    user: String,
    groups: Vec<String>,
    stage: String,
    response_code: Option<u16>,
    request_uri: String,
    source_ips: Vec<String>,
    user_agent: String,
    audit_id: String,
    pod: Option<PodSpec>,
    owner: Option<OwnerRef>,
});
unpack_record!(ContainerRef {
    id: String,
    name: String,
    image: String,
    pod: String,
});
unpack_record!(NetworkEvent {
    protocol: Protocol,
    local_address: String,
    local_port: u16,
    remote_address: String,
    remote_port: u16,
    direction: Direction,
    state: String,
    container: Option<ContainerRef>,
    host_network: bool,
});
unpack_record!(FileState {
    sha256: String,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
});
unpack_record!(FileEvent {
    path: String,
    change: FileChange,
    before: Option<FileState>,
    after: Option<FileState>,
});

impl Unpack for EventBody {
    const MIN: usize = 1;
    #[inline]
    fn unpack(r: &mut Reader<'_>) -> Result<Self, PackedError> {
        let at = r.pos;
        Ok(match r.u8()? {
            0 => Self::Container(ContainerEvent::unpack(r)?),
            1 => Self::Kubernetes(KubernetesEvent::unpack(r)?),
            2 => Self::Network(NetworkEvent::unpack(r)?),
            3 => Self::File(FileEvent::unpack(r)?),
            _ => return Err(r.error_at(at, "unknown event-body case")),
        })
    }
}

unpack_record!(Event {
    id: String,
    time: u64,
    node: String,
    source: String,
    body: EventBody,
});

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One file event, "/x" modified (also read by `crate::view`'s tests).
    pub(crate) fn tiny_batch() -> Vec<u8> {
        let mut b = vec![PACKED_VERSION, 1, 0, 0, 0];
        // event: id "e", time 7, node "", source ""
        b.extend_from_slice(&[1, 0, 0, 0, b'e']);
        b.extend_from_slice(&7u64.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        // body: file "/x" modified, no before/after
        b.extend_from_slice(&[3, 2, 0, 0, 0, b'/', b'x', 1, 0, 0]);
        b
    }

    #[test]
    fn decodes_a_file_event() {
        let events = decode_batch(&tiny_batch()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, "e");
        assert_eq!(events[0].time, 7);
        match &events[0].body {
            EventBody::File(f) => {
                assert_eq!(f.path, "/x");
                assert_eq!(f.change, FileChange::Modified);
                assert!(f.before.is_none() && f.after.is_none());
            }
            other => panic!("not a file event: {other:?}"),
        }
    }

    #[test]
    fn refuses_every_truncation_and_trailing_bytes() {
        let b = tiny_batch();
        for cut in 0..b.len() {
            assert!(
                decode_batch(&b[..cut]).is_err(),
                "prefix of {cut} bytes accepted"
            );
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            decode_batch(&long).unwrap_err().reason,
            "trailing bytes after the last event"
        );
    }

    #[test]
    fn refuses_bad_tags_and_versions() {
        let mut b = tiny_batch();
        b[0] = 2;
        assert_eq!(
            decode_batch(&b).unwrap_err().reason,
            "unsupported format version"
        );
        let mut b = tiny_batch();
        let body = b.len() - 10;
        b[body] = 9;
        assert_eq!(
            decode_batch(&b).unwrap_err().reason,
            "unknown event-body case"
        );
        let mut b = tiny_batch();
        let last = b.len() - 1;
        b[last] = 2;
        assert_eq!(
            decode_batch(&b).unwrap_err().reason,
            "an option tag must be 0 or 1"
        );
    }

    #[test]
    fn strings_are_checked_for_utf8_whether_ascii_or_not() {
        assert_eq!(text(b""), Some(""));
        assert_eq!(text(b"nginx:1.25"), Some("nginx:1.25"));
        assert_eq!(
            text("r\u{e9}sum\u{e9} \u{1f433}".as_bytes()),
            Some("r\u{e9}sum\u{e9} \u{1f433}")
        );
        for bad in [&b"\xff"[..], b"abc\xc3", b"\xed\xa0\x80", b"ok\x80ok"] {
            assert_eq!(text(bad), None, "{bad:?}");
        }
        // Through the decoder: the file event's path, not ASCII, then not UTF-8.
        let mut b = tiny_batch();
        let path = b.len() - 5;
        b[path] = 0xc3;
        b[path + 1] = 0xa9;
        assert!(decode_batch(&b).is_ok());
        b[path + 1] = b'x';
        let e = decode_batch(&b).unwrap_err();
        assert_eq!((e.offset, e.reason), (path, "invalid UTF-8 in a string"));
    }

    #[test]
    fn short_ascii_strings_are_copied_exactly_and_nothing_else_is_taken() {
        // Every length around the copy's cases (0, 1–3, 4–7, 8–16, 17–32,
        // longer), with distinct bytes so that a misplaced word shows, and a
        // byte that is not ASCII on each side: a load outside the slice
        // would see it and refuse the string.
        let ascii: Vec<u8> = (b'!'..=b'~').cycle().take(70).collect();
        for n in 0..=ascii.len() {
            let mut guarded = vec![0xC3];
            guarded.extend_from_slice(&ascii[..n]);
            guarded.push(0xC3);
            let s = &guarded[1..=n];
            match short_ascii(s) {
                Some(copy) => {
                    assert!(n <= 32, "{n} bytes are left to the general path");
                    assert_eq!(copy.as_bytes(), s, "{n} bytes");
                }
                None => assert!(n > 32, "{n} ASCII bytes are copied here"),
            }
        }
        // A byte that is not ASCII, at every place of every short length:
        // the check must see each one (the words overlap and cover them all).
        for n in 1..=32 {
            for at in 0..n {
                let mut bytes = ascii[..n].to_vec();
                bytes[at] = 0xC3;
                assert_eq!(short_ascii(&bytes), None, "{n} bytes, high byte at {at}");
            }
        }
    }

    #[test]
    fn strings_of_every_length_decode_as_written() {
        let ascii: String = ('!'..='~').cycle().take(70).collect();
        let wide: String = "aé€😀".chars().cycle().take(40).collect();
        for base in [&ascii, &wide] {
            for n in 0..=base.len() {
                let Some(s) = base.get(..n) else { continue };
                let mut buf = u32::try_from(n).unwrap().to_le_bytes().to_vec();
                buf.extend_from_slice(s.as_bytes());
                let mut r = Reader {
                    bytes: &buf,
                    pos: 0,
                };
                assert_eq!(String::unpack(&mut r).as_deref(), Ok(s), "{n} bytes");
                assert_eq!(r.pos, buf.len());
            }
        }
    }

    #[test]
    fn a_hostile_count_is_refused_before_allocating() {
        let b = [PACKED_VERSION, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            decode_batch(&b).unwrap_err().reason,
            "length exceeds the bytes left"
        );
    }
}
