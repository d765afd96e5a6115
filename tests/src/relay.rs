//! A TCP relay put between the proxy and a real S3 server to break the
//! connection on purpose: refuse connections, hold a response, cut it (RST)
//! or stall it after some bytes. The S3 server behind it is real; the relay
//! only damages the transport, as a failing network or upstream would.
//!
//! Faults other than [`Fault::Refuse`] hit only the response to a request
//! whose request line names a path containing [`FAULT_MARK`] (a request is
//! recognised by a read that starts with its method, which is how bodiless
//! requests arrive), so other requests through the same relay keep working.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Requests whose path contains this get the relay's fault.
pub const FAULT_MARK: &[u8] = b"/fault-";

/// What the relay does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Relay faithfully.
    Pass,
    /// Reset every new connection at once (the upstream is down).
    Refuse,
    /// Send nothing of a marked response until the connection closes.
    Hold,
    /// Relay this many bytes of a marked response, then reset both sides.
    CutAfter(usize),
    /// Relay this many bytes of a marked response, then send nothing more.
    StallAfter(usize),
}

#[derive(Debug)]
struct Shared {
    fault: Mutex<Fault>,
    /// The request line of every request relayed so far.
    request_lines: Mutex<Vec<String>>,
    connections: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

/// A running relay; stops when dropped.
#[derive(Debug)]
pub struct Relay {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Relay {
    /// Listens on a free loopback port and relays to `target`.
    ///
    /// # Panics
    /// If it cannot listen.
    #[must_use]
    pub fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay listens");
        let addr = listener.local_addr().expect("relay address");
        let shared = Arc::new(Shared {
            fault: Mutex::new(Fault::Pass),
            request_lines: Mutex::new(Vec::new()),
            connections: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let shared = Arc::clone(&accepting);
                thread::spawn(move || relay_connection(client, target, &shared));
            }
        });
        Relay { addr, shared }
    }

    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets the fault for what comes next.
    pub fn set(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = fault;
    }

    /// How many requests went through whose request line contains `part`.
    #[must_use]
    pub fn requests_for(&self, part: &str) -> usize {
        let lines = self.shared.request_lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        lines.iter().filter(|line| line.contains(part)).count()
    }

    /// Resets every open connection (the upstream went away).
    pub fn reset_all(&self) {
        let mut connections = self.shared.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for stream in connections.drain(..) {
            reset(&stream);
        }
    }
}

impl Shared {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.reset_all();
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

/// Closes with RST rather than FIN.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
    let _ = stream.shutdown(Shutdown::Both);
}

fn relay_connection(client: TcpStream, target: SocketAddr, shared: &Arc<Shared>) {
    if shared.fault() == Fault::Refuse {
        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
        return; // dropped: RST
    }
    let Ok(upstream) = TcpStream::connect(target) else {
        reset(&client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    {
        let mut connections = shared.connections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        connections.extend([client.try_clone(), upstream.try_clone()].into_iter().flatten());
    }
    // Set by the request direction when a marked request goes by; the
    // response direction applies the fault to what follows.
    let marked = Arc::new(AtomicBool::new(false));
    let (Ok(mut from_client), Ok(mut to_upstream)) = (client.try_clone(), upstream.try_clone()) else { return };
    let request_marked = Arc::clone(&marked);
    let requests = Arc::clone(shared);
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from_client.read(&mut buf) {
            if n == 0 {
                break;
            }
            // A read that begins a request (request line first) decides
            // whether the response to come is the fault's target.
            let chunk = &buf[..n];
            if [&b"GET "[..], b"HEAD ", b"PUT ", b"POST ", b"DELETE "].iter().any(|m| chunk.starts_with(m)) {
                let line = chunk.split(|b| *b == b'\n').next().unwrap_or_default();
                let marked = line.windows(FAULT_MARK.len()).any(|w| w == FAULT_MARK);
                request_marked.store(marked, Ordering::SeqCst);
                let mut lines = requests.request_lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                lines.push(String::from_utf8_lossy(line).trim_end().to_owned());
            }
            if to_upstream.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to_upstream.shutdown(Shutdown::Write);
    });
    let (mut from_upstream, mut to_client) = (upstream, client);
    let mut buf = vec![0u8; 64 * 1024];
    let mut relayed_marked = 0usize;
    while let Ok(n) = from_upstream.read(&mut buf) {
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if marked.load(Ordering::SeqCst) {
            match shared.fault() {
                Fault::Pass | Fault::Refuse => {}
                Fault::Hold => {
                    hold(&to_client);
                    return;
                }
                fault @ (Fault::CutAfter(limit) | Fault::StallAfter(limit)) => {
                    let room = limit.saturating_sub(relayed_marked);
                    if chunk.len() >= room {
                        let _ = to_client.write_all(&chunk[..room]);
                        if fault == Fault::StallAfter(limit) {
                            hold(&to_client);
                        } else {
                            reset(&to_client);
                            reset(&from_upstream);
                        }
                        return;
                    }
                }
            }
            relayed_marked += chunk.len();
        }
        if to_client.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to_client.shutdown(Shutdown::Write);
}

/// Sends nothing more until the other side closes.
fn hold(stream: &TcpStream) {
    let mut probe = stream.try_clone().ok();
    let mut sink = [0u8; 4096];
    while let Some(s) = probe.as_mut() {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
