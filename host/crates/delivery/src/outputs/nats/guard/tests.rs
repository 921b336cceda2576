//! The frame reader's caps on hostile byte streams, and the peer check's
//! parsing of the kernel's socket table. The guard as a relay, with TLS and
//! against real and hostile servers, is `host/tests/nats_live.rs` and
//! `host/tests/nats_hostile.rs`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::frames::{Frame, FrameReader, Limits, ReadError, Violation};
use super::peer::socket_inode;

const LIMITS: Limits = Limits {
    line: 64,
    info_line: 256,
    payload: 1024,
    op_deadline: Duration::from_millis(100),
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every frame of `input`, then the error or end that stopped the reader.
fn read_all(input: &[u8]) -> (Vec<Frame>, Result<(), ReadError>) {
    rt().block_on(async {
        let mut r = FrameReader::new(input, Vec::new(), LIMITS);
        let mut frames = Vec::new();
        loop {
            match r.next(None).await {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => return (frames, Ok(())),
                Err(e) => return (frames, Err(e)),
            }
        }
    })
}

fn violation(input: &[u8]) -> Violation {
    match read_all(input).1 {
        Err(ReadError::Violation(v)) => v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn whole_operations_pass_as_they_came() {
    let input = b"INFO {\"server_id\":\"x\",\"tls_required\":true}\r\nPING\r\nMSG _INBOX.a.b 1 5\r\nhello\r\nHMSG _INBOX.a.c 1 reply 12 14\r\nNATS/1.0\r\n\r\nhi\r\n+OK\r\n-ERR 'Unknown Protocol Operation'\r\npong\r\n";
    let (frames, end) = read_all(input);
    assert!(end.is_ok(), "{end:?}");
    assert_eq!(frames.len(), 7);
    let Frame::Info(info) = &frames[0] else {
        panic!("{frames:?}")
    };
    assert_eq!(info["server_id"], "x");
    assert_eq!(
        frames[2],
        Frame::Raw(b"MSG _INBOX.a.b 1 5\r\nhello\r\n".to_vec())
    );
    assert_eq!(
        frames[3],
        Frame::Raw(b"HMSG _INBOX.a.c 1 reply 12 14\r\nNATS/1.0\r\n\r\nhi\r\n".to_vec())
    );
    assert_eq!(frames[6], Frame::Raw(b"pong\r\n".to_vec()));
}

#[test]
fn a_line_without_end_is_cut_at_its_cap() {
    assert_eq!(
        violation(&[b'x'; 10_000]),
        Violation::LineTooLong {
            op: "XXXXXXXX".into(),
            cap: 64
        }
    );
    let mut info = b"INFO {\"a\":\"".to_vec();
    info.extend_from_slice(&[b'a'; 10_000]);
    assert_eq!(
        violation(&info),
        Violation::LineTooLong {
            op: "INFO".into(),
            cap: 256
        }
    );
    // INFO gets its larger cap; other operations do not.
    let mut ok = b"INFO {\"a\":\"".to_vec();
    ok.extend_from_slice(&[b'a'; 200]);
    ok.extend_from_slice(b"\"}\r\n");
    assert!(read_all(&ok).1.is_ok());
    let mut long_err = b"-ERR '".to_vec();
    long_err.extend_from_slice(&[b'e'; 100]);
    long_err.extend_from_slice(b"'\r\n");
    assert!(matches!(
        violation(&long_err),
        Violation::LineTooLong { cap: 64, .. }
    ));
}

#[test]
fn a_declared_payload_over_the_cap_is_refused_before_it_is_read() {
    assert_eq!(
        violation(b"MSG _INBOX.x 1 2147483648\r\n"),
        Violation::PayloadTooLarge {
            op: "MSG".into(),
            size: 2_147_483_648,
            cap: 1024
        }
    );
    assert!(matches!(
        violation(b"HMSG _INBOX.x 1 10 99999999999999999999\r\n"),
        Violation::Malformed { .. }
    ));
    assert!(matches!(
        violation(b"HMSG _INBOX.x 1 10 4096\r\n"),
        Violation::PayloadTooLarge { size: 4096, .. }
    ));
}

#[test]
fn malformed_and_unknown_operations_are_violations() {
    for (input, want) in [
        (&b"MSG a 1 -5\r\n"[..], "MSG"),
        (b"MSG a\r\n", "MSG"),
        (b"HMSG a 1 9 5\r\n", "HMSG"),
        (b"MSG a 1 3\r\nabcXY", "MSG"),
        (b"PING now\r\n", "PING"),
        (b"INFO [1,2]\r\n", "INFO"),
    ] {
        match violation(input) {
            Violation::Malformed { op, .. } => assert_eq!(op, want, "{input:?}"),
            v => panic!("{input:?}: {v:?}"),
        }
    }
    assert_eq!(
        violation(b"SUB x 1\r\n"),
        Violation::Unknown { op: "SUB".into() }
    );
}

#[test]
fn a_connection_closed_inside_an_operation_is_not_a_frame() {
    let (frames, end) = read_all(b"PING\r\nMSG a 1 10\r\nabc");
    assert_eq!(frames.len(), 1);
    assert!(matches!(end, Err(ReadError::Truncated { .. })), "{end:?}");
}

#[test]
fn a_started_operation_must_arrive_whole_in_time() {
    rt().block_on(async {
        let (mut server, client) = tokio::io::duplex(4096);
        let mut r = FrameReader::new(client, Vec::new(), LIMITS);
        server
            .write_all(b"PING\r\nMSG a 1 10\r\nabc")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Idle between operations is not a stall.
        assert!(matches!(r.next(None).await, Ok(Some(Frame::Raw(_)))));
        let started = std::time::Instant::now();
        match r.next(None).await {
            Err(ReadError::Violation(Violation::Stalled { op, .. })) => assert_eq!(op, "MSG"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        // The same for a control line stopped halfway.
        let (mut server, client) = tokio::io::duplex(4096);
        let mut r = FrameReader::new(client, Vec::new(), LIMITS);
        server
            .write_all(b"PI")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            r.next(None).await,
            Err(ReadError::Violation(Violation::Stalled { .. }))
        ));
        drop(server);
    });
}

#[test]
fn the_first_info_has_a_deadline_even_before_its_first_byte() {
    rt().block_on(async {
        let (_server, client) = tokio::io::duplex(64);
        let mut r = FrameReader::new(client, Vec::new(), LIMITS);
        let until = tokio::time::Instant::now() + Duration::from_millis(50);
        assert!(matches!(
            r.next(Some(until)).await,
            Err(ReadError::Violation(Violation::Stalled { .. }))
        ));
    });
}

#[test]
fn the_socket_table_names_the_inode_of_a_connection() {
    let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A3C1 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1
   1: 0100007F:1F90 0100007F:A3C1 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:B000 0100007F:1F90 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0000000000000000
";
    let lo = Ipv4Addr::LOCALHOST;
    let client = SocketAddrV4::new(lo, 0xA3C1);
    let listener = SocketAddrV4::new(lo, 0x1F90);
    if cfg!(target_endian = "little") {
        assert_eq!(socket_inode(table, client, listener), Some(4242));
        assert_eq!(socket_inode(table, listener, client), Some(4343));
        // TIME_WAIT sockets have no inode.
        assert_eq!(
            socket_inode(table, SocketAddrV4::new(lo, 0xB000), listener),
            None
        );
    }
    assert_eq!(
        socket_inode(table, SocketAddrV4::new(lo, 1), listener),
        None
    );
}

#[test]
fn a_loopback_connection_of_this_process_is_ours() {
    rt().block_on(async {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let _client = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (_sock, peer) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(super::peer::is_ours(peer, addr).unwrap_or_else(|e| panic!("{e}")));
        // An address nobody holds is not.
        let nobody = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        assert!(!super::peer::is_ours(nobody, addr).unwrap_or_else(|e| panic!("{e}")));
    });
}
