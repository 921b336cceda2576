//! Borrowed views of a packed batch: events read in place, without a copy.
//!
//! `on-packed-events` hands the guest one buffer (`wit/PACKED.md`).
//! [`crate::packed::decode_batch`] turns it into owned [`Event`]s: every
//! string and list of every event is allocated and copied, even the ones a
//! detector never reads. The views here read the same buffer in place:
//!
//! - a string is a `&str` into the buffer (checked to be UTF-8 once, never
//!   copied);
//! - a list is a [`List`]: its items are checked with the batch but built
//!   only when it is iterated, and a list inside them (a pod spec's
//!   containers' mounts and capabilities) is stepped over until then;
//! - numbers, flags and enum cases are plain values.
//!
//! A detector opts in by implementing [`Detector::on_event_views`]; one that
//! implements only [`Detector::on_events`] is handed owned copies as before.
//! Both see the same events.
//!
//! [`decode_views`] checks the *whole* batch before any view is handed out,
//! with the decoder's own rules and errors: a malformed buffer is refused
//! (same [`PackedError`] as [`crate::packed::decode_batch`]), never guessed
//! at, and a list's items are read again only from bytes already checked.
//!
//! [`Detector::on_event_views`]: crate::Detector::on_event_views
//! [`Detector::on_events`]: crate::Detector::on_events

// `sealed::Read` is public only so that `View` can require it; its reader is
// the crate's own, which no one outside can name or call.
#![allow(
    private_interfaces,
    reason = "the sealed trait's reader is crate-private on purpose"
)]

use crate::packed::{PackedError, Reader, Unpack, read_batch, short_ascii, text};
use crate::types::{
    ContainerAction, ContainerEvent, ContainerRef, ContainerRole, ContainerSecurity, Direction,
    Event, EventBody, EventKind, ExecInfo, FileChange, FileEvent, FileState, KeyValue,
    KubernetesEvent, Mount, NetworkEvent, OwnerRef, PodContainer, PodSpec, Protocol,
};
use core::fmt;

/// A value read in place from a packed batch, or borrowed from its owned
/// counterpart [`View::Owned`]. Implemented by every view type of this
/// module, `&str`, the numbers and the WIT enums; sealed.
pub trait View<'a>: Copy + sealed::Read<'a> {
    /// The owned type this is a view of (`String` for `&str`).
    type Owned;
    /// The view of an owned value (for [`views_of`]).
    fn of(owned: &'a Self::Owned) -> Self;
    /// An owned copy.
    fn to_owned_value(&self) -> Self::Owned;
}

mod sealed {
    use crate::packed::{PackedError, Reader};

    /// How a view is read: `check` and `read` on bytes not yet checked,
    /// `read_checked` and `skip` on bytes `check` accepted (a list's items,
    /// read when iterated). All four walk the same grammar, so that
    /// `check` accepting some bytes means the other two read them whole.
    pub trait Read<'a>: Sized {
        /// The fewest bytes an encoded value takes (bounds hostile counts).
        const MIN: usize;
        /// Checks one value at the reader's position, building nothing.
        fn check(r: &mut Reader<'a>) -> Result<(), PackedError>;
        /// Reads (and checks) one value at the reader's position.
        fn read(r: &mut Reader<'a>) -> Result<Self, PackedError>;
        /// Reads one value that `check` accepted.
        fn read_checked(r: &mut Reader<'a>) -> Self;
        /// Steps over one value that `check` accepted.
        fn skip(r: &mut Reader<'a>);
    }
}
use sealed::Read;

impl<'a> Read<'a> for &'a str {
    const MIN: usize = 4;
    #[inline]
    fn check(r: &mut Reader<'a>) -> Result<(), PackedError> {
        Self::read(r).map(drop)
    }
    #[inline]
    fn read(r: &mut Reader<'a>) -> Result<Self, PackedError> {
        let n = r.len(1)?;
        let at = r.pos;
        let bytes = r.take(n)?;
        text(bytes).ok_or_else(|| r.error_at(at, "invalid UTF-8 in a string"))
    }
    #[inline]
    fn read_checked(r: &mut Reader<'a>) -> Self {
        let bytes = r.checked_bytes();
        debug_assert!(core::str::from_utf8(bytes).is_ok());
        // SAFETY: `check` accepted these bytes, and it refuses a string
        // that is not UTF-8 (the same walk found the same string).
        #[allow(unsafe_code, reason = "UTF-8 checked by `check`")]
        unsafe {
            core::str::from_utf8_unchecked(bytes)
        }
    }
    #[inline]
    fn skip(r: &mut Reader<'a>) {
        r.checked_bytes();
    }
}

impl<'a> View<'a> for &'a str {
    type Owned = String;
    #[inline]
    fn of(owned: &'a String) -> Self {
        owned
    }
    #[inline]
    fn to_owned_value(&self) -> String {
        // The short ASCII copy of the decoder: `to_owned`'s `memory.copy`
        // is a call out of the guest in wasmtime.
        short_ascii(self.as_bytes()).unwrap_or_else(|| (*self).to_owned())
    }
}

/// Values that are their own view: numbers, flags, WIT enum cases.
macro_rules! plain {
    ($($t:ty),* $(,)?) => {$(
        impl<'a> Read<'a> for $t {
            const MIN: usize = <$t as Unpack>::MIN;
            #[inline]
            fn check(r: &mut Reader<'a>) -> Result<(), PackedError> {
                <$t as Unpack>::unpack(r).map(drop)
            }
            #[inline]
            fn read(r: &mut Reader<'a>) -> Result<Self, PackedError> {
                <$t as Unpack>::unpack(r)
            }
            #[inline]
            fn read_checked(r: &mut Reader<'a>) -> Self {
                checked(<$t as Unpack>::unpack(r))
            }
            #[inline]
            fn skip(r: &mut Reader<'a>) {
                r.skip_checked(<$t as Unpack>::MIN);
            }
        }
        impl<'a> View<'a> for $t {
            type Owned = $t;
            #[inline]
            fn of(owned: &'a $t) -> Self {
                *owned
            }
            #[inline]
            fn to_owned_value(&self) -> $t {
                *self
            }
        }
    )*};
}
plain!(
    bool,
    u16,
    u32,
    i32,
    u64,
    ContainerAction,
    ContainerRole,
    Protocol,
    Direction,
    FileChange,
);

impl<'a, T: View<'a>> Read<'a> for Option<T> {
    const MIN: usize = 1;
    #[inline]
    fn check(r: &mut Reader<'a>) -> Result<(), PackedError> {
        if r.index(&[false, true], "an option tag must be 0 or 1")? {
            T::check(r)?;
        }
        Ok(())
    }
    #[inline]
    fn read(r: &mut Reader<'a>) -> Result<Self, PackedError> {
        if r.index(&[false, true], "an option tag must be 0 or 1")? {
            Ok(Some(T::read(r)?))
        } else {
            Ok(None)
        }
    }
    #[inline]
    fn read_checked(r: &mut Reader<'a>) -> Self {
        (r.checked_u8() != 0).then(|| T::read_checked(r))
    }
    #[inline]
    fn skip(r: &mut Reader<'a>) {
        if r.checked_u8() != 0 {
            T::skip(r);
        }
    }
}

/// The value of a read that cannot fail on bytes `check` accepted.
#[inline]
fn checked<T>(value: Result<T, PackedError>) -> T {
    match value {
        Ok(value) => value,
        Err(e) => unreachable!("bytes already checked were refused: {e}"),
    }
}

impl<'a, T: View<'a>> View<'a> for Option<T> {
    type Owned = Option<T::Owned>;
    #[inline]
    fn of(owned: &'a Option<T::Owned>) -> Self {
        owned.as_ref().map(T::of)
    }
    #[inline]
    fn to_owned_value(&self) -> Option<T::Owned> {
        self.as_ref().map(T::to_owned_value)
    }
}

/// A list inside an event, read item by item when iterated: its bytes in
/// the packed batch (already checked), or the owned list it borrows.
pub struct List<'a, T: View<'a>> {
    items: Items<'a, T>,
}

enum Items<'a, T: View<'a>> {
    Packed { bytes: &'a [u8], len: usize },
    Owned(&'a [T::Owned]),
}

impl<'a, T: View<'a>> Clone for List<'a, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<'a, T: View<'a>> Copy for List<'a, T> {}
impl<'a, T: View<'a>> Clone for Items<'a, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<'a, T: View<'a>> Copy for Items<'a, T> {}

impl<'a, T: View<'a>> List<'a, T> {
    /// How many items the list has.
    #[must_use]
    pub fn len(&self) -> usize {
        match self.items {
            Items::Packed { len, .. } => len,
            Items::Owned(items) => items.len(),
        }
    }

    /// Whether the list has no item.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items in order, each read when reached.
    #[must_use]
    pub fn iter(&self) -> ListIter<'a, T> {
        match self.items {
            Items::Packed { bytes, len } => ListIter {
                items: IterItems::Packed(Reader { bytes, pos: 0 }, len),
            },
            Items::Owned(items) => ListIter {
                items: IterItems::Owned(items.iter()),
            },
        }
    }

    /// The item at `index` (read after the ones before it), if any.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<T> {
        self.iter().nth(index)
    }

    /// Owned copies of the items.
    #[must_use]
    pub fn to_vec(&self) -> Vec<T::Owned> {
        self.iter().map(|item| item.to_owned_value()).collect()
    }
}

impl<'a> List<'a, &'a str> {
    /// Whether one of the strings is `s`.
    #[must_use]
    pub fn contains(&self, s: &str) -> bool {
        self.iter().any(|item| item == s)
    }

    /// The strings joined with `sep` between them (`[T]::join`).
    #[must_use]
    pub fn join(&self, sep: &str) -> String {
        let size =
            self.iter().map(str::len).sum::<usize>() + sep.len() * self.len().saturating_sub(1);
        let mut out = String::with_capacity(size);
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(item);
        }
        out
    }
}

impl<'a, T: View<'a>> Read<'a> for List<'a, T> {
    const MIN: usize = 4;
    #[inline]
    fn check(r: &mut Reader<'a>) -> Result<(), PackedError> {
        let len = r.len(T::MIN)?;
        for _ in 0..len {
            T::check(r)?;
        }
        Ok(())
    }
    /// Checks every item now (building none), so that iterating reads
    /// checked bytes and never meets an error.
    #[inline]
    fn read(r: &mut Reader<'a>) -> Result<Self, PackedError> {
        let len = r.len(T::MIN)?;
        let start = r.pos;
        for _ in 0..len {
            T::check(r)?;
        }
        Ok(Self::packed(&r.bytes[start..r.pos], len))
    }
    #[inline]
    fn read_checked(r: &mut Reader<'a>) -> Self {
        let len = r.checked_len();
        let start = r.pos;
        for _ in 0..len {
            T::skip(r);
        }
        Self::packed(&r.bytes[start..r.pos], len)
    }
    #[inline]
    fn skip(r: &mut Reader<'a>) {
        for _ in 0..r.checked_len() {
            T::skip(r);
        }
    }
}

impl<'a, T: View<'a>> List<'a, T> {
    fn packed(bytes: &'a [u8], len: usize) -> Self {
        Self {
            items: Items::Packed { bytes, len },
        }
    }
}

impl<'a, T: View<'a>> View<'a> for List<'a, T> {
    type Owned = Vec<T::Owned>;
    #[inline]
    fn of(owned: &'a Vec<T::Owned>) -> Self {
        Self {
            items: Items::Owned(owned),
        }
    }
    fn to_owned_value(&self) -> Vec<T::Owned> {
        self.to_vec()
    }
}

impl<'a, T: View<'a>> IntoIterator for List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;
    fn into_iter(self) -> ListIter<'a, T> {
        self.iter()
    }
}

impl<'a, T: View<'a>> IntoIterator for &List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;
    fn into_iter(self) -> ListIter<'a, T> {
        self.iter()
    }
}

impl<'a, T: View<'a> + PartialEq> PartialEq for List<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a, T: View<'a> + Eq> Eq for List<'a, T> {}

impl<'a, T: View<'a> + fmt::Debug> fmt::Debug for List<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The iterator of a [`List`].
pub struct ListIter<'a, T: View<'a>> {
    items: IterItems<'a, T>,
}

enum IterItems<'a, T: View<'a>> {
    /// The reader over the list's checked bytes, and the items left.
    Packed(Reader<'a>, usize),
    Owned(core::slice::Iter<'a, T::Owned>),
}

impl<'a, T: View<'a>> Clone for ListIter<'a, T> {
    fn clone(&self) -> Self {
        Self {
            items: match &self.items {
                IterItems::Packed(r, left) => IterItems::Packed(r.clone(), *left),
                IterItems::Owned(items) => IterItems::Owned(items.clone()),
            },
        }
    }
}

impl<'a, T: View<'a>> Iterator for ListIter<'a, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        match &mut self.items {
            IterItems::Packed(r, left) => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // `List::read` checked these bytes, and refused the batch
                // had they been malformed.
                Some(T::read_checked(r))
            }
            IterItems::Owned(items) => items.next().map(T::of),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.items {
            IterItems::Packed(_, left) => *left,
            IterItems::Owned(items) => items.len(),
        };
        (n, Some(n))
    }
}

impl<'a, T: View<'a>> ExactSizeIterator for ListIter<'a, T> {}

/// A record's view: its fields in WIT declaration order (the order they are
/// packed in), each a view of the owned field of the same name.
macro_rules! view_record {
    ($(#[$doc:meta])* $view:ident of $owned:ident { $($f:ident : $ft:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $view<'a> {
            $(
                #[doc = concat!("[`", stringify!($owned), "::", stringify!($f), "`], borrowed.")]
                pub $f: $ft,
            )*
        }

        impl<'a> Read<'a> for $view<'a> {
            const MIN: usize = 0 $(+ <$ft as Read<'a>>::MIN)*;
            #[inline]
            fn check(r: &mut Reader<'a>) -> Result<(), PackedError> {
                $(<$ft as Read<'a>>::check(r)?;)*
                Ok(())
            }
            #[inline]
            fn read(r: &mut Reader<'a>) -> Result<Self, PackedError> {
                Ok(Self { $($f: <$ft as Read<'a>>::read(r)?),* })
            }
            #[inline]
            fn read_checked(r: &mut Reader<'a>) -> Self {
                Self { $($f: <$ft as Read<'a>>::read_checked(r)),* }
            }
            #[inline]
            fn skip(r: &mut Reader<'a>) {
                $(<$ft as Read<'a>>::skip(r);)*
            }
        }

        impl<'a> View<'a> for $view<'a> {
            type Owned = $owned;
            #[inline]
            fn of(owned: &'a $owned) -> Self {
                Self { $($f: <$ft as View<'a>>::of(&owned.$f)),* }
            }
            fn to_owned_value(&self) -> $owned {
                $owned { $($f: self.$f.to_owned_value()),* }
            }
        }
    };
}

view_record!(
    /// A [`KeyValue`], borrowed.
    KeyValueView of KeyValue {
        key: &'a str,
        value: &'a str,
    }
);
view_record!(
    /// A [`Mount`], borrowed.
    MountView of Mount {
        source: &'a str,
        destination: &'a str,
        read_only: bool,
        kind: &'a str,
    }
);
view_record!(
    /// A [`ContainerSecurity`], borrowed.
    ContainerSecurityView of ContainerSecurity {
        network_mode: &'a str,
        pid_mode: &'a str,
        ipc_mode: &'a str,
        userns_mode: &'a str,
        cgroupns_mode: &'a str,
        uts_mode: &'a str,
        privileged: bool,
        cap_add: List<'a, &'a str>,
        cap_drop: List<'a, &'a str>,
        devices: List<'a, &'a str>,
        mounts: List<'a, MountView<'a>>,
        user: &'a str,
        allow_privilege_escalation: Option<bool>,
        read_only_rootfs: bool,
        seccomp_profile: &'a str,
        apparmor_profile: &'a str,
        log_driver: &'a str,
        restart_policy: &'a str,
    }
);
view_record!(
    /// An [`ExecInfo`], borrowed.
    ExecInfoView of ExecInfo {
        command: &'a str,
        user: &'a str,
        privileged: bool,
        tty: bool,
    }
);
view_record!(
    /// A [`ContainerEvent`], borrowed.
    ContainerEventView of ContainerEvent {
        action: ContainerAction,
        raw_action: &'a str,
        id: &'a str,
        name: &'a str,
        image: &'a str,
        image_digest: &'a str,
        runtime: &'a str,
        labels: List<'a, KeyValueView<'a>>,
        security: Option<ContainerSecurityView<'a>>,
        actor: &'a str,
        exit_code: Option<i32>,
        signal: &'a str,
        exec: Option<ExecInfoView<'a>>,
        network: &'a str,
        lifetime_ms: Option<u64>,
    }
);
view_record!(
    /// A [`PodContainer`], borrowed.
    PodContainerView of PodContainer {
        role: ContainerRole,
        name: &'a str,
        image: &'a str,
        security: ContainerSecurityView<'a>,
    }
);
view_record!(
    /// A [`PodSpec`], borrowed; its containers are read when iterated.
    PodSpecView of PodSpec {
        host_network: bool,
        host_pid: bool,
        host_ipc: bool,
        service_account: &'a str,
        node_name: &'a str,
        containers: List<'a, PodContainerView<'a>>,
    }
);
view_record!(
    /// An [`OwnerRef`], borrowed.
    OwnerRefView of OwnerRef {
        kind: &'a str,
        name: &'a str,
    }
);
view_record!(
    /// A [`KubernetesEvent`], borrowed.
    KubernetesEventView of KubernetesEvent {
        verb: &'a str,
        resource: &'a str,
        subresource: &'a str,
        api_group: &'a str,
        namespace: &'a str,
        name: &'a str,
        user: &'a str,
        groups: List<'a, &'a str>,
        stage: &'a str,
        response_code: Option<u16>,
        request_uri: &'a str,
        source_ips: List<'a, &'a str>,
        user_agent: &'a str,
        audit_id: &'a str,
        pod: Option<PodSpecView<'a>>,
        owner: Option<OwnerRefView<'a>>,
    }
);
view_record!(
    /// A [`ContainerRef`], borrowed.
    ContainerRefView of ContainerRef {
        id: &'a str,
        name: &'a str,
        image: &'a str,
        pod: &'a str,
    }
);
view_record!(
    /// A [`NetworkEvent`], borrowed.
    NetworkEventView of NetworkEvent {
        protocol: Protocol,
        local_address: &'a str,
        local_port: u16,
        remote_address: &'a str,
        remote_port: u16,
        direction: Direction,
        state: &'a str,
        container: Option<ContainerRefView<'a>>,
        host_network: bool,
    }
);
view_record!(
    /// A [`FileState`], borrowed.
    FileStateView of FileState {
        sha256: &'a str,
        size: u64,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: u64,
    }
);
view_record!(
    /// A [`FileEvent`], borrowed.
    FileEventView of FileEvent {
        path: &'a str,
        change: FileChange,
        before: Option<FileStateView<'a>>,
        after: Option<FileStateView<'a>>,
    }
);

/// An [`EventBody`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventBodyView<'a> {
    /// [`EventBody::Container`], borrowed.
    Container(ContainerEventView<'a>),
    /// [`EventBody::Kubernetes`], borrowed.
    Kubernetes(KubernetesEventView<'a>),
    /// [`EventBody::Network`], borrowed.
    Network(NetworkEventView<'a>),
    /// [`EventBody::File`], borrowed.
    File(FileEventView<'a>),
}

impl<'a> Read<'a> for EventBodyView<'a> {
    const MIN: usize = 1;
    #[inline]
    fn check(r: &mut Reader<'a>) -> Result<(), PackedError> {
        let at = r.pos;
        match r.u8()? {
            0 => ContainerEventView::check(r),
            1 => KubernetesEventView::check(r),
            2 => NetworkEventView::check(r),
            3 => FileEventView::check(r),
            _ => Err(r.error_at(at, "unknown event-body case")),
        }
    }
    #[inline]
    fn read_checked(r: &mut Reader<'a>) -> Self {
        match r.checked_u8() {
            0 => Self::Container(ContainerEventView::read_checked(r)),
            1 => Self::Kubernetes(KubernetesEventView::read_checked(r)),
            2 => Self::Network(NetworkEventView::read_checked(r)),
            _ => Self::File(FileEventView::read_checked(r)),
        }
    }
    #[inline]
    fn skip(r: &mut Reader<'a>) {
        match r.checked_u8() {
            0 => ContainerEventView::skip(r),
            1 => KubernetesEventView::skip(r),
            2 => NetworkEventView::skip(r),
            _ => FileEventView::skip(r),
        }
    }
    #[inline]
    fn read(r: &mut Reader<'a>) -> Result<Self, PackedError> {
        let at = r.pos;
        Ok(match r.u8()? {
            0 => Self::Container(ContainerEventView::read(r)?),
            1 => Self::Kubernetes(KubernetesEventView::read(r)?),
            2 => Self::Network(NetworkEventView::read(r)?),
            3 => Self::File(FileEventView::read(r)?),
            _ => return Err(r.error_at(at, "unknown event-body case")),
        })
    }
}

impl<'a> View<'a> for EventBodyView<'a> {
    type Owned = EventBody;
    #[inline]
    fn of(owned: &'a EventBody) -> Self {
        match owned {
            EventBody::Container(b) => Self::Container(View::of(b)),
            EventBody::Kubernetes(b) => Self::Kubernetes(View::of(b)),
            EventBody::Network(b) => Self::Network(View::of(b)),
            EventBody::File(b) => Self::File(View::of(b)),
        }
    }
    fn to_owned_value(&self) -> EventBody {
        match self {
            Self::Container(b) => EventBody::Container(b.to_owned_value()),
            Self::Kubernetes(b) => EventBody::Kubernetes(b.to_owned_value()),
            Self::Network(b) => EventBody::Network(b.to_owned_value()),
            Self::File(b) => EventBody::File(b.to_owned_value()),
        }
    }
}

view_record!(
    /// An [`Event`], borrowed: what [`Detector::on_event_views`] receives.
    ///
    /// [`Detector::on_event_views`]: crate::Detector::on_event_views
    EventView of Event {
        id: &'a str,
        time: u64,
        node: &'a str,
        source: &'a str,
        body: EventBodyView<'a>,
    }
);

impl EventView<'_> {
    /// The kind of the event, from its body.
    #[must_use]
    pub fn kind(&self) -> EventKind {
        match self.body {
            EventBodyView::Container(_) => EventKind::Container,
            EventBodyView::Kubernetes(_) => EventKind::Kubernetes,
            EventBodyView::Network(_) => EventKind::Network,
            EventBodyView::File(_) => EventKind::File,
        }
    }

    /// An owned copy of the event.
    #[must_use]
    pub fn to_event(&self) -> Event {
        self.to_owned_value()
    }
}

/// Reads a whole packed batch as views into `bytes`, checking all of it
/// first: the same events as [`crate::packed::decode_batch`], and the same
/// error for a buffer it refuses.
///
/// # Errors
/// A [`PackedError`] for another version, a truncated or malformed field
/// anywhere in the batch (including inside lists), or bytes after the last
/// event.
pub fn decode_views(bytes: &[u8]) -> Result<Vec<EventView<'_>>, PackedError> {
    read_batch(
        bytes,
        EventView::MIN,
        "trailing bytes after the last event",
        EventView::read,
    )
}

/// Views of owned events (the same events, borrowed): how a detector that
/// implements [`Detector::on_event_views`] serves
/// [`Detector::on_events`] too:
///
/// ```
/// # use vigil_plugin_sdk::prelude::*;
/// # use vigil_plugin_sdk::view::{EventView, views_of};
/// # #[derive(Default)] struct D;
/// # impl Detector for D {
/// #   fn describe() -> PluginInfo { PluginInfo::builder("d", "0.1.0").build() }
/// fn on_events(&mut self, batch: &[Event]) -> Vec<Finding> {
///     self.on_event_views(&views_of(batch))
/// }
/// fn on_event_views(&mut self, batch: &[EventView<'_>]) -> Vec<Finding> {
///     // ... the detection logic, on views
/// #   let _ = batch;
///     Vec::new()
/// }
/// # }
/// ```
///
/// [`Detector::on_event_views`]: crate::Detector::on_event_views
/// [`Detector::on_events`]: crate::Detector::on_events
#[must_use]
pub fn views_of(events: &[Event]) -> Vec<EventView<'_>> {
    events.iter().map(EventView::of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packed::decode_batch;
    use crate::packed::tests::tiny_batch;

    #[test]
    fn views_read_the_same_events_as_the_decoder_and_borrow_the_buffer() {
        let b = tiny_batch();
        let views = decode_views(&b).unwrap();
        let owned = decode_batch(&b).unwrap();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].to_event(), owned[0]);
        assert_eq!(views[0].kind(), EventKind::File);
        let EventBodyView::File(f) = views[0].body else {
            panic!("not a file event: {:?}", views[0].body)
        };
        assert_eq!(f.path, "/x");
        // The path is a slice of the buffer, not a copy of it.
        let range = b.as_ptr_range();
        assert!(range.contains(&f.path.as_ptr()));
        assert_eq!(views_of(&owned), views);
    }

    #[test]
    fn every_truncation_and_mutation_gets_the_decoders_answer() {
        let b = tiny_batch();
        for cut in 0..=b.len() {
            assert_eq!(
                decode_views(&b[..cut]).map(|v| v.iter().map(EventView::to_event).collect()),
                decode_batch(&b[..cut]),
                "prefix of {cut} bytes"
            );
        }
        for at in 0..b.len() {
            for byte in [0, 1, 2, 3, 4, 0x7f, 0x80, 0xc3, 0xff] {
                let mut m = b.clone();
                m[at] = byte;
                assert_eq!(
                    decode_views(&m).map(|v| v.iter().map(EventView::to_event).collect()),
                    decode_batch(&m),
                    "byte {at} set to {byte:#x}"
                );
            }
        }
    }

    #[test]
    fn lists_read_lazily_equal_their_owned_lists() {
        let owned = vec!["a".to_owned(), "r\u{e9}sum\u{e9}".to_owned(), String::new()];
        let mut buf = u32::try_from(owned.len()).unwrap().to_le_bytes().to_vec();
        for s in &owned {
            buf.extend_from_slice(&u32::try_from(s.len()).unwrap().to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
        }
        let mut r = Reader {
            bytes: &buf,
            pos: 0,
        };
        let packed = List::<&str>::read(&mut r).unwrap();
        assert_eq!(r.pos, buf.len());
        let borrowed = List::<&str>::of(&owned);
        for list in [packed, borrowed] {
            assert_eq!(list.len(), 3);
            assert_eq!(list.iter().len(), 3);
            assert_eq!(list.to_vec(), owned);
            assert_eq!(list.get(1), Some("r\u{e9}sum\u{e9}"));
            assert_eq!(list.get(3), None);
            assert!(list.contains("") && !list.contains("b"));
            assert_eq!(list.join(", "), owned.join(", "));
        }
        assert_eq!(packed, borrowed);
        // A bad item anywhere in the list refuses the list when it is read.
        let at = buf.iter().position(|&b| b == 0xc3).unwrap();
        let mut bad = buf.clone();
        bad[at + 1] = b'x';
        let mut r = Reader {
            bytes: &bad,
            pos: 0,
        };
        assert_eq!(
            List::<&str>::read(&mut r).unwrap_err().reason,
            "invalid UTF-8 in a string"
        );
    }
}
