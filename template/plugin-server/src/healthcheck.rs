//! `<binary> healthcheck`: asks the running plugin's `/healthz`, for image
//! health checks where there is no shell or curl (the image is distroless).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::TlsFiles;

/// Exits successfully when the plugin listening on `listen_addr` answers
/// 200; over HTTPS when it serves `tls`, trusting exactly the certificate
/// of its certificate file.
pub fn check(listen_addr: SocketAddr, tls: Option<&TlsFiles>) -> Result<(), String> {
    // A wildcard listen address is reached on loopback.
    let addr = if listen_addr.ip().is_unspecified() {
        SocketAddr::from((Ipv4Addr::LOCALHOST, listen_addr.port()))
    } else {
        listen_addr
    };
    let timeout = Duration::from_secs(2);
    let stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|error| format!("cannot connect to {addr}: {error}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|error| error.to_string())?;
    let status_line = match tls {
        #[cfg(feature = "tls")]
        Some(files) => ask(crate::tls::pinned_client(files, addr, stream)?, addr)?,
        #[cfg(not(feature = "tls"))]
        Some(_) => return Err("this build serves no TLS".into()),
        None => ask(stream, addr)?,
    };
    if status_line.ends_with(b" 200") {
        Ok(())
    } else {
        Err(format!(
            "{addr}/healthz answered {}",
            String::from_utf8_lossy(&status_line)
        ))
    }
}

fn ask(mut stream: impl Read + Write, addr: SocketAddr) -> Result<[u8; 12], String> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|error| format!("cannot ask {addr}: {error}"))?;
    let mut status_line = [0u8; 12];
    stream
        .read_exact(&mut status_line)
        .map_err(|error| format!("no answer from {addr}: {error}"))?;
    Ok(status_line)
}
