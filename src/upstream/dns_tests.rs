use std::cell::Cell;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};

use monoio::time::sleep;

use super::*;
use crate::runtime::block_on as run;

const PORT: u16 = 443;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// 127.0.0.`n`, so each answer of a fake lookup can be told apart.
fn addr(n: usize) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::new(127, 0, 0, n as u8).into(), PORT)
}

/// A lookup that takes `delay`, counts its calls and gives `answer(call number, from 1)`.
fn fake(
    delay: Duration,
    answer: impl Fn(usize) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
) -> (Lookup, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let lookup: Lookup = Arc::new(move |_host: &str, _port| {
        let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
        std::thread::sleep(delay);
        answer(n)
    });
    (lookup, calls)
}

/// A lookup whose `n`th call answers 127.0.0.`n`.
fn numbered(delay: Duration) -> (Lookup, Arc<AtomicUsize>) {
    fake(delay, |n| Ok(vec![addr(n)]))
}

#[test]
fn localhost_resolves_to_loopback_through_the_system_resolver() {
    run(async {
        let addrs = Resolver::new(ms(1000))
            .resolve("localhost", 8080)
            .await
            .unwrap();
        assert!(!addrs.is_empty());
        for a in addrs.iter() {
            assert!(a.ip().is_loopback(), "{a}");
            assert_eq!(a.port(), 8080);
        }
    });
}

#[test]
fn ip_literals_are_answered_without_a_lookup() {
    run(async {
        let (lookup, calls) = numbered(ms(0));
        let resolver = Resolver::with_lookup(ms(1000), lookup);
        let v4 = resolver.resolve("10.1.2.3", 80).await.unwrap();
        assert_eq!(&*v4, &["10.1.2.3:80".parse().unwrap()]);
        let v6 = resolver.resolve("::1", 8081).await.unwrap();
        assert_eq!(&*v6, &["[::1]:8081".parse().unwrap()]);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn answers_within_the_ttl_come_from_the_cache() {
    run(async {
        let (lookup, calls) = numbered(ms(0));
        let resolver = Resolver::with_lookup(ms(10_000), lookup);
        for _ in 0..3 {
            let addrs = resolver.resolve("api.example.test", PORT).await.unwrap();
            assert_eq!(&*addrs, &[addr(1)]);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Another port is another entry.
        let other = resolver.resolve("api.example.test", 80).await.unwrap();
        assert_eq!(&*other, &[addr(2)]);
    });
}

#[test]
fn seeded_addresses_are_served_without_a_lookup() {
    run(async {
        let (lookup, calls) = numbered(ms(0));
        let resolver = Resolver::with_lookup(ms(10_000), lookup);
        resolver.seed("api.example.test", PORT, vec![addr(7), addr(8)]);
        let addrs = resolver.resolve("api.example.test", PORT).await.unwrap();
        assert_eq!(&*addrs, &[addr(7), addr(8)], "order kept");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn expired_entries_are_served_stale_while_one_refresh_runs() {
    run(async {
        let (lookup, calls) = numbered(ms(300));
        let resolver = Resolver::with_lookup(ms(50), lookup);
        assert_eq!(
            &*resolver.resolve("h.test", PORT).await.unwrap(),
            &[addr(1)]
        );
        sleep(ms(80)).await;
        // Expired: the old answer comes back (the refresh would answer 127.0.0.2), and calls
        // made while the refresh runs do not start another.
        for _ in 0..5 {
            assert_eq!(
                &*resolver.resolve("h.test", PORT).await.unwrap(),
                &[addr(1)]
            );
            sleep(ms(5)).await;
        }
        sleep(ms(700)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            &*resolver.resolve("h.test", PORT).await.unwrap(),
            &[addr(2)]
        );
    });
}

#[test]
fn a_failed_refresh_keeps_the_old_addresses() {
    run(async {
        let (lookup, calls) = fake(ms(0), |n| match n {
            1 => Ok(vec![addr(1)]),
            _ => Err(io::Error::other("SERVFAIL")),
        });
        let resolver = Resolver::with_lookup(ms(50), lookup);
        assert_eq!(
            &*resolver.resolve("h.test", PORT).await.unwrap(),
            &[addr(1)]
        );
        for _ in 0..3 {
            sleep(ms(80)).await;
            assert_eq!(
                &*resolver.resolve("h.test", PORT).await.unwrap(),
                &[addr(1)]
            );
        }
        sleep(ms(80)).await;
        assert!(
            calls.load(Ordering::SeqCst) >= 3,
            "a failed refresh is retried"
        );
        assert_eq!(
            &*resolver.resolve("h.test", PORT).await.unwrap(),
            &[addr(1)]
        );
    });
}

#[test]
fn a_failed_first_lookup_is_an_error_naming_the_host_kept_until_the_retry() {
    run(async {
        let (lookup, calls) = fake(ms(0), |n| match n {
            1 => Err(io::Error::new(io::ErrorKind::TimedOut, "no answer")),
            _ => Ok(vec![addr(n)]),
        });
        // A TTL below RETRY: the failure is kept for the TTL.
        let resolver = Resolver::with_lookup(ms(100), lookup);
        let e = resolver.resolve("down.test", PORT).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "cannot resolve down.test: no answer");
        // Asked again at once: the same failure, without another lookup.
        let again = resolver.resolve("down.test", PORT).await.unwrap_err();
        assert_eq!(again.to_string(), e.to_string());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        monoio::time::sleep(ms(150)).await;
        assert_eq!(
            &*resolver.resolve("down.test", PORT).await.unwrap(),
            &[addr(2)]
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn a_lookup_that_finds_nothing_is_an_error() {
    run(async {
        let (lookup, _) = fake(ms(0), |_| Ok(Vec::new()));
        let resolver = Resolver::with_lookup(ms(10_000), lookup);
        let e = resolver.resolve("empty.test", PORT).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(e.to_string(), "no addresses for empty.test");
    });
}

#[test]
fn a_lookup_does_not_block_the_worker() {
    run(async {
        let (lookup, _) = numbered(ms(300));
        let resolver = Resolver::with_lookup(ms(10_000), lookup);
        let ticks = Rc::new(Cell::new(0u32));
        let ticker = ticks.clone();
        monoio::spawn(async move {
            loop {
                sleep(ms(10)).await;
                ticker.set(ticker.get() + 1);
            }
        });
        resolver.resolve("slow.test", PORT).await.unwrap();
        // Had the lookup run on this thread, the ticker could not have run at all.
        assert!(ticks.get() >= 5, "only {} ticks", ticks.get());
    });
}

#[test]
fn concurrent_first_lookups_share_one() {
    run(async {
        let (lookup, calls) = numbered(ms(100));
        let resolver = Rc::new(Resolver::with_lookup(ms(10_000), lookup));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let resolver = resolver.clone();
                monoio::spawn(async move { resolver.resolve("h.test", PORT).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(&*task.await.unwrap(), &[addr(1)]);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_first_lookup_lands_even_if_its_caller_gives_up() {
    run(async {
        let (lookup, calls) = numbered(ms(100));
        let resolver = Resolver::with_lookup(ms(10_000), lookup);
        let gave_up = monoio::time::timeout(ms(10), resolver.resolve("h.test", PORT)).await;
        assert!(gave_up.is_err());
        sleep(ms(300)).await;
        assert_eq!(
            &*resolver.resolve("h.test", PORT).await.unwrap(),
            &[addr(1)]
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}
