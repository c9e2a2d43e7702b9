//! Resource limits under abuse: ten thousand idle connections, slowloris clients on
//! commands and content, 5,000 recipients in one burst, and a gigabyte of DATA against
//! the 25 MB limit. Memory figures are printed as `REPORT` lines.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::delivery::wait_until;
use crate::support::client::Reply;
use crate::support::server::list_dir;
use crate::support::sink::{Sink, SinkOptions};
use crate::support::{Client, Sluice};

const MIB: u64 = 1024;

/// Raises this process's open-file limit to its hard limit (the server, started later,
/// inherits it) and returns how many connections both ends can hold: `wanted`, or fewer
/// when the hard limit is too low.
fn raise_fd_limit(wanted: usize) -> usize {
    // Other tests run in this process at the same time and need descriptors too.
    const SLACK: u64 = 1024;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            }
        }
    }
    let possible = limit.rlim_cur.saturating_sub(SLACK) as usize;
    if possible < wanted {
        eprintln!(
            "limits: RLIMIT_NOFILE is {} (hard {}); testing {possible} connections instead of {wanted}",
            limit.rlim_cur, limit.rlim_max
        );
    }
    possible.min(wanted)
}

/// Closes with a reset instead of leaving thousands of sockets in TIME_WAIT.
fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt on a socket we own, with a correctly sized option value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Connects and reads the greeting line without a buffered reader (thousands of these
/// are held at once). Returns the stream and the greeting's code.
fn connect_raw(addr: SocketAddr) -> (TcpStream, u16) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    set_linger_zero(&stream);
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut line = Vec::with_capacity(64);
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => break,
        }
    }
    let code = std::str::from_utf8(line.get(..3).unwrap_or(b"000")).unwrap_or("000").parse().unwrap_or(0);
    (stream, code)
}

fn in_data(addr: SocketAddr) -> Client {
    let (mut c, _) = Client::connect(addr);
    assert_eq!(c.cmd("EHLO client.example").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<user@example.com>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c
}

#[test]
fn ten_thousand_idle_connections_cost_little_memory_and_the_next_gets_421() {
    let max = raise_fd_limit(10_000);
    if max < 100 {
        eprintln!("SKIPPED limits::ten_thousand_idle_connections: too few file descriptors");
        return;
    }
    let sluice = Sluice::start(&format!("[limits]\nmax_connections = {max}\nmax_connections_per_ip = {max}\n"));
    let addr = sluice.addr;
    // One whole session first, so that start-up allocations are not counted.
    let (mut c, _) = Client::connect(addr);
    assert_eq!(c.send_mail("a@example.org", &["user@example.com"], "Subject: warm-up\r\n\r\nx").code, 250);
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = sluice.rss_kib();

    // All but one slot, held idle after their greeting; opened from a few threads.
    let idle = max - 1;
    let started = Instant::now();
    let threads = 4;
    let held: Vec<TcpStream> = (0..threads)
        .map(|t| {
            let n = idle / threads + usize::from(t < idle % threads);
            std::thread::spawn(move || {
                (0..n)
                    .map(|_| {
                        let (stream, code) = connect_raw(addr);
                        assert_eq!(code, 220, "greeting");
                        stream
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flat_map(|h| h.join().expect("connecting thread"))
        .collect();
    assert_eq!(held.len(), idle);
    let opened_in = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let rss_after = sluice.rss_kib();
    let per_conn = (rss_after.saturating_sub(rss_before) as f64) / idle as f64;
    eprintln!(
        "REPORT idle-connections: {idle} connections (opened in {:.1}s), RSS {} MiB -> {} MiB (+{per_conn:.1} KiB/conn)",
        opened_in.as_secs_f64(),
        rss_before / MIB,
        rss_after / MIB
    );

    // The last slot still serves a whole session...
    let (mut c, greeting) = Client::connect(addr);
    assert_eq!(greeting.code, 220, "{greeting:?}");
    assert_eq!(c.cmd("EHLO client.example").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<user@example.com>").code, 250);
    // ...and one more is over the limit.
    let (mut over, refused) = Client::connect(addr);
    assert_eq!((refused.code, refused.status()), (421, "4.7.0"), "{refused:?}");
    assert!(over.is_closed());
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: while 10k wait\r\n\r\nx\r\n.\r\n");
    assert_eq!(c.read_reply().code, 250);
    assert_eq!(sluice.queued().len(), 2);

    // An idle connection costs a session task and its socket, nothing like a thread:
    // no read buffer is held while it says nothing (about 8 KiB measured).
    assert!(per_conn < 24.0, "{per_conn:.1} KiB per idle connection");
    drop(held);
    // The slots come back.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (_c, greeting) = connect_raw(addr);
            greeting == 220
        }),
        "slots not freed"
    );
}

/// Trickles one byte at a time and waits for the server to give up. Returns the reply
/// that ended it and how long after `from` it came.
fn trickle(stream: TcpStream, bytes: &'static [u8], every: Duration) -> (Option<Reply>, Duration) {
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            for byte in bytes.iter().cycle() {
                if done.load(Ordering::Relaxed) || stream.write_all(std::slice::from_ref(byte)).is_err() {
                    return;
                }
                std::thread::sleep(every);
            }
        })
    };
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut c = Client::from_stream(Box::new(stream));
    let reply = c.try_read_reply();
    let took = started.elapsed();
    // The server closes after its reply.
    let closed = c.is_closed();
    done.store(true, Ordering::Relaxed);
    let _ = writer.join();
    assert!(closed, "connection left open after {reply:?}");
    (reply, took)
}

#[test]
fn slowloris_clients_are_cut_off_by_the_timeouts_while_others_are_served() {
    let sluice = Sluice::start("[limits]\ncommand_timeout = \"2s\"\ndata_timeout = \"3s\"\n");
    let addr = sluice.addr;
    let every = Duration::from_millis(100);
    // A byte every 100 ms keeps the connection busy, but never completes a command line
    // within 2 s, nor the content within 3 s.
    let on_commands: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut c, _) = Client::connect(addr);
                assert_eq!(c.cmd("EHLO slow.example").code, 250);
                trickle(c.into_tcp(), b"MAIL FROM:<slow@example.org> SIZE=1000 ", every)
            })
        })
        .collect();
    let in_content: Vec<_> = (0..10)
        .map(|_| {
            std::thread::spawn(move || {
                let c = in_data(addr);
                trickle(c.into_tcp(), b"Subject: slow\r\n\r\nvery slow content\r\n", every)
            })
        })
        .collect();
    // Meanwhile, ordinary clients are served promptly.
    let started = Instant::now();
    let mut served = 0;
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        let (mut c, _) = Client::connect(addr);
        assert_eq!(c.send_mail("a@example.org", &["user@example.com"], "Subject: normal\r\n\r\nx").code, 250);
        slowest = slowest.max(t.elapsed());
        served += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    for (kind, handles, timeout) in [("command", on_commands, 2.0), ("content", in_content, 3.0)] {
        let mut longest = Duration::ZERO;
        for h in handles {
            let (reply, took) = h.join().expect("slowloris client");
            let reply = reply.expect("no 421 before the close");
            assert_eq!((reply.code, reply.status()), (421, "4.4.2"), "{kind}: {reply:?}");
            assert!(took >= Duration::from_secs_f64(timeout - 0.5), "{kind}: cut off after {took:?}");
            // Bounded: the timeout, plus scheduling slack on a loaded machine.
            assert!(took < Duration::from_secs_f64(timeout + 4.0), "{kind}: cut off only after {took:?}");
            longest = longest.max(took);
        }
        eprintln!("REPORT slowloris-{kind}: timeout {timeout}s, clients cut off after at most {longest:.2?}");
    }
    eprintln!("REPORT slowloris-others: {served} normal messages meanwhile, slowest {slowest:.2?}");
    assert!(slowest < Duration::from_secs(2), "normal sessions were held up: {slowest:?}");
    // Only the normal messages were queued; nothing of the trickled content.
    assert_eq!(sluice.queued().len(), served);
    assert!(list_dir(&sluice.queue_dir().join("tmp")).is_empty());
}

/// Sends all `rcpts` in one write from another thread (so that neither side can block
/// the other on full socket buffers) and returns the reply codes, in order.
fn rcpt_burst(c: Client, rcpts: &[String]) -> (Client, Vec<Reply>) {
    let tcp = c.into_tcp();
    let mut writer = tcp.try_clone().unwrap();
    let burst: String = rcpts.iter().map(|r| format!("RCPT TO:<{r}>\r\n")).collect();
    let sending = std::thread::spawn(move || writer.write_all(burst.as_bytes()).unwrap());
    let mut c = Client::from_stream(Box::new(tcp));
    let replies = rcpts.iter().map(|_| c.read_reply()).collect();
    sending.join().unwrap();
    (c, replies)
}

#[test]
fn five_thousand_recipients_in_one_burst_reach_the_next_hop_and_the_default_limit_says_452() {
    let sink = Sink::start(SinkOptions::default());
    let route = sink.route("all", "\"*\"", "none");
    for (limit, sent) in [(5000usize, 5000usize), (1000, 1050)] {
        let config = if limit == 1000 { route.clone() } else { format!("[limits]\nmax_recipients = {limit}\n{route}") };
        let sluice = Sluice::start(&config);
        let before = sink.accepted().len();
        let rcpts: Vec<String> = (0..sent).map(|i| format!("user{i}.{limit}@example.com")).collect();
        let (mut c, _) = Client::connect(sluice.addr);
        assert_eq!(c.cmd("EHLO client.example").code, 250);
        assert_eq!(c.cmd("MAIL FROM:<a@example.org>").code, 250);
        let started = Instant::now();
        let (mut c, replies) = rcpt_burst(c, &rcpts);
        let took = started.elapsed();
        for (i, r) in replies.iter().enumerate() {
            if i < limit {
                assert_eq!(r.code, 250, "recipient {i}: {r:?}");
            } else {
                assert_eq!((r.code, r.status()), (452, "4.5.3"), "recipient {i}: {r:?}");
            }
        }
        assert_eq!(c.cmd("DATA").code, 354);
        c.send(format!("Subject: {limit} recipients\r\n\r\nhello all\r\n.\r\n").as_bytes());
        assert_eq!(c.read_reply().code, 250);
        let expected = limit.min(sent);
        assert!(
            wait_until(Duration::from_secs(60), || sink.accepted()[before..]
                .iter()
                .map(|t| t.recipients.len())
                .sum::<usize>()
                >= expected),
            "not all recipients delivered: {}",
            sluice.logs()
        );
        assert!(wait_until(Duration::from_secs(10), || sluice.queued().is_empty()));
        let transactions = sink.accepted()[before..].to_vec();
        let mut got: Vec<String> = transactions.iter().flat_map(|t| t.recipients.clone()).collect();
        got.sort();
        let mut wanted: Vec<String> = rcpts[..expected].to_vec();
        wanted.sort();
        assert_eq!(got, wanted, "each accepted recipient exactly once, none of the refused");
        assert!(transactions.iter().all(|t| t.recipients.len() <= 100), "more than 100 recipients per transaction");
        assert_eq!(transactions.len(), expected.div_ceil(100));
        eprintln!(
            "REPORT recipients: limit {limit}, {sent} sent in one burst (replies in {took:.2?}), {expected} accepted and delivered in {} transactions",
            transactions.len()
        );
    }
}

#[test]
fn a_gigabyte_of_data_against_the_25_mb_limit_is_cut_off_early_with_bounded_memory() {
    // The default limits: 25 MB.
    let sluice = Sluice::start("");
    let rss_before = sluice.rss_kib();
    let peak_before = sluice.peak_rss_kib();
    let mut c = in_data(sluice.addr);
    let chunk = format!("{}\r\n", "y".repeat(1022)).repeat(1024); // 1 MiB
    let limit: usize = 1 << 30;
    let started = Instant::now();
    let mut sent = 0usize;
    while sent < limit && c.try_send(chunk.as_bytes()) {
        sent += chunk.len();
    }
    let took = started.elapsed();
    let reply = c.try_read_reply();
    let peak = sluice.peak_rss_kib();
    let rss_after = sluice.rss_kib();
    eprintln!(
        "REPORT 1GB-data: limit 25 MB, connection cut after {} MiB sent ({took:.2?}), reply {}, RSS {} MiB -> {} MiB (peak {} MiB, +{} MiB over the start)",
        sent >> 20,
        reply.as_ref().map_or("none (reset)".to_string(), |r| r.lines.join("|")),
        rss_before / MIB,
        rss_after / MIB,
        peak / MIB,
        peak.saturating_sub(peak_before.max(rss_before)) / MIB
    );
    // The server stops reading at twice the limit; the rest is what socket buffers hold.
    assert!(sent < 128 << 20, "server kept reading: {} MiB", sent >> 20);
    assert!(sent > 25 << 20, "cut off before the limit: {} MiB", sent >> 20);
    if let Some(r) = reply {
        assert_eq!((r.code, r.status()), (552, "5.3.4"), "{r:?}");
    }
    assert!(peak.saturating_sub(peak_before.max(rss_before)) < 64 * MIB, "memory grew to {peak} KiB");
    assert!(sluice.queued().is_empty());
    assert!(
        wait_until(Duration::from_secs(5), || list_dir(&sluice.queue_dir().join("tmp")).is_empty()),
        "spill file left behind"
    );
    // The server is fine.
    let (mut c, _) = Client::connect(sluice.addr);
    assert_eq!(c.send_mail("a@example.org", &["user@example.com"], "Subject: after\r\n\r\nx").code, 250);
}
