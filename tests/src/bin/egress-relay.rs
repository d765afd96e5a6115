//! `egress-relay LISTEN TARGET [BUFFER_BYTES]`: a bare TCP relay, the least
//! any proxy between a client and an S3 server has to do. Each connection
//! gets a connection to `TARGET` and two threads that copy bytes, one way
//! each, with one buffer (128 KiB unless told) that they reuse; nothing is
//! parsed, signed or recorded. `scripts/bench-nginx.sh` measures through it
//! for scale: how close to going direct any proxy can get on this machine.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;

use anyhow::Context as _;

fn copy(mut from: TcpStream, mut to: TcpStream, buffer: usize) {
    let mut buf = vec![0u8; buffer];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    // The other side learns of the end; the other thread ends on its own.
    let _ = to.shutdown(Shutdown::Write);
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, target, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: egress-relay LISTEN TARGET [BUFFER_BYTES]");
    };
    let buffer = match rest {
        [] => 128 * 1024,
        [bytes] => bytes.parse().with_context(|| format!("buffer size {bytes:?}"))?,
        _ => anyhow::bail!("usage: egress-relay LISTEN TARGET [BUFFER_BYTES]"),
    };
    let listener = TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let upstream = match TcpStream::connect(target) {
            Ok(upstream) => upstream,
            Err(e) => {
                eprintln!("egress-relay: connecting to {target}: {e}");
                continue;
            }
        };
        for socket in [&client, &upstream] {
            socket.set_nodelay(true)?;
        }
        let (client_in, upstream_out) = (client.try_clone()?, upstream.try_clone()?);
        thread::spawn(move || copy(client_in, upstream_out, buffer));
        thread::spawn(move || copy(upstream, client, buffer));
    }
    Ok(())
}
