//! Guests: authenticated peers outside the address book (light nodes that
//! are not members of the network) served by a node that allows them.

mod common;

use common::{deliver_eventually, eventually, guard, keypair, keypairs, listeners, test_config};
use idlegrid_transport::{AddressBook, TcpConfig, TcpTransport, Transport, TransportError};

/// A guest's transport: it knows the host, the host does not know it.
fn guest(i: u64, host: &TcpTransport) -> TcpTransport {
    let mut book = AddressBook::new();
    book.insert(host.local_id(), host.local_addr());
    let config = TcpConfig {
        dial_all: true,
        ..test_config()
    };
    TcpTransport::from_listener(
        keypair(100 + i),
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| {
                l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(l)
            })
            .unwrap(),
        book,
        config,
    )
    .unwrap()
}

#[tokio::test]
async fn guests_are_served_up_to_the_limit_and_forgotten_when_gone() {
    // The host's id is the smallest, so only `dial_all` makes the guests
    // dial it.
    let keys = keypairs(2);
    let (mut ls, book) = listeners(&keys).await;
    let config = TcpConfig {
        max_guests: 1,
        ..test_config()
    };
    let host = TcpTransport::from_listener(keys[0].clone(), ls.remove(0), book, config).unwrap();
    let a = guest(0, &host);
    deliver_eventually(&a, &host, b"hello from a guest").await;
    // The host answers on the guest's connection.
    deliver_eventually(&host, &a, b"hello, guest").await;
    assert!(host.connected_peers().contains(&a.local_id()));
    assert_eq!(host.stats().guests, 1);

    // A second guest is turned away while the first is served.
    let b = guest(1, &host);
    eventually("second guest refused", || host.stats().guests_refused > 0).await;
    assert!(!host.peers().contains(&b.local_id()));
    assert!(matches!(
        host.send(b.local_id(), b"x".to_vec()).await,
        Err(TransportError::UnknownPeer(_))
    ));

    // The first leaves: its slot is dropped and the second gets in.
    guard("guest shutdown", a.shutdown()).await;
    eventually("first guest forgotten", || {
        !host.peers().contains(&a.local_id())
    })
    .await;
    deliver_eventually(&b, &host, b"my turn").await;
    deliver_eventually(&host, &b, b"welcome").await;
    for t in [&b, &host] {
        guard("shutdown", t.shutdown()).await;
    }
}

#[tokio::test]
async fn a_strict_book_refuses_strangers() {
    let keys = keypairs(1);
    let (mut ls, book) = listeners(&keys).await;
    let host =
        TcpTransport::from_listener(keys[0].clone(), ls.remove(0), book, test_config()).unwrap();
    let g = guest(0, &host);
    eventually("stranger refused", || host.stats().handshakes_failed > 0).await;
    assert!(host.peers().is_empty());
    assert_eq!(host.stats().guests, 0);
    for t in [&g, &host] {
        guard("shutdown", t.shutdown()).await;
    }
}
