//! Whether a connection accepted on the guard's loopback listener was made
//! by this process (the client library dialling the guard) rather than by
//! another local user or program: the kernel's socket table
//! (`/proc/net/tcp`) names the inode of the socket at the other end, and
//! the connection is ours only if that socket is one of our descriptors
//! (`/proc/self/fd/* -> socket:[inode]`).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;

/// Whether the TCP connection from `peer` to `listener` (both IPv4
/// loopback) is held, at the `peer` end, by this process.
pub(crate) fn is_ours(peer: SocketAddr, listener: SocketAddr) -> std::io::Result<bool> {
    let (SocketAddr::V4(peer), SocketAddr::V4(listener)) = (peer, listener) else {
        return Ok(false);
    };
    let table = std::fs::read_to_string("/proc/net/tcp")?;
    let Some(inode) = socket_inode(&table, peer, listener) else {
        return Ok(false);
    };
    holds_socket(Path::new("/proc/self/fd"), inode)
}

/// The inode of the socket whose local end is `local` and remote end is
/// `remote`, from the text of `/proc/net/tcp`.
pub(crate) fn socket_inode(table: &str, local: SocketAddrV4, remote: SocketAddrV4) -> Option<u64> {
    table.lines().skip(1).find_map(|row| {
        let cols: Vec<&str> = row.split_ascii_whitespace().collect();
        let (l, r, inode) = (cols.get(1)?, cols.get(2)?, cols.get(9)?);
        (parse_addr(l)? == local && parse_addr(r)? == remote)
            .then(|| inode.parse().ok())
            .flatten()
            .filter(|&i| i != 0)
    })
}

/// `0100007F:1F90` → 127.0.0.1:8080: the address is the kernel's
/// network-order word printed as a native integer, the port plain hex.
fn parse_addr(s: &str) -> Option<SocketAddrV4> {
    let (a, p) = s.split_once(':')?;
    let a = u32::from_str_radix(a, 16).ok()?;
    let p = u16::from_str_radix(p, 16).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from(a.to_ne_bytes()), p))
}

/// Whether a descriptor in `fd_dir` is the socket `inode`.
fn holds_socket(fd_dir: &Path, inode: u64) -> std::io::Result<bool> {
    let want = format!("socket:[{inode}]");
    for entry in std::fs::read_dir(fd_dir)? {
        // A descriptor closed meanwhile is simply not a match.
        let Ok(entry) = entry else { continue };
        if std::fs::read_link(entry.path()).is_ok_and(|t| t.as_os_str() == want.as_str()) {
            return Ok(true);
        }
    }
    Ok(false)
}
