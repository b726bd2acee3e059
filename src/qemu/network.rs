//! The guest's network on QEMU's command line: one virtio NIC on QEMU's
//! user network (libslirp), with ssh forwarded from the host's loopback,
//! optionally GCE's metadata server (169.254.169.254:80) reaching a server
//! on the host's loopback, and optionally nothing else (`restrict=on`).
//!
//! The metadata server is a `guestfwd` whose target is a command QEMU
//! starts for each guest connection: `craton qemu-guestfwd ADDR` ([`relay`])
//! copies that connection to the server and back. guestfwd's other target,
//! a chardev (`tcp:127.0.0.1:PORT`), is one TCP connection opened when QEMU
//! starts, shared by every guest connection for QEMU's life: measured with
//! QEMU 7.2, a guest's second request got no answer once the server had
//! closed after the first, and two open connections got none at all;
//! Ignition retries and google-guest-agent holds long polls beside short
//! requests.
//!
//! It does not run or check the server; `craton qemu` checks that it listens.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::QemuRun;
use crate::process::shell_quote;

/// GCE's metadata server, which Ignition's gcp provider asks for the
/// user-data attribute (as metadata.google.internal) and google-guest-agent
/// polls (https://cloud.google.com/compute/docs/metadata/querying-metadata).
pub const GCE_METADATA_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
pub const GCE_METADATA_PORT: u16 = 80;

/// The user network when the metadata server is forwarded. libslirp takes
/// a guestfwd address only inside its network and not its host or DNS
/// address (slirp_add_guestfwd; QEMU 7.2 with libslirp 4.7 stops with
/// "Conflicting/invalid host:port in guest forwarding rule" for
/// 169.254.169.254 on the default 10.0.2.0/24), so the network becomes
/// GCE's link-local /24 with QEMU's default offsets: the host's alias
/// .2, DNS .3, DHCP from .15 (libslirp leases 16 addresses, .15 to .30),
/// which leaves .254 free. Without the metadata server the network stays
/// QEMU's 10.0.2.0/24 (host 10.0.2.2, which tests/image_boot/update.rs
/// uses).
pub const METADATA_NET: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 0);
pub const METADATA_NET_PREFIX: u8 = 24;
pub const METADATA_NET_HOST: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 2);
pub const METADATA_NET_DNS: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 3);
pub const METADATA_NET_DHCP_START: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 15);

/// What the guest reaches besides its forwarded ports (ssh from the host,
/// the metadata server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Whatever the host reaches: the host's loopback through the host
    /// alias, DNS through the host's resolver, the outside.
    Open,
    /// Nothing (QEMU's `restrict=on`): DHCP still answers, with no router
    /// or DNS server in the lease; DNS, the host alias and outside
    /// addresses do not (libslirp's `restricted`; seen with a craton
    /// image: 169.254.169.15/24 and no default route).
    Isolated,
}

/// The hidden subcommand QEMU starts for each guest connection to the
/// metadata server (src/cli/mod.rs).
pub const RELAY_COMMAND: &str = "qemu-guestfwd";

/// A server on the host's loopback that the guest reaches as GCE's
/// metadata server. Made by [`MetadataServer::new`], which takes loopback
/// addresses only: the guest must not reach past the host through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataServer {
    addr: SocketAddr,
    relay: PathBuf,
}

impl MetadataServer {
    /// `relay` is the craton binary QEMU starts as `RELAY qemu-guestfwd
    /// ADDR` for each guest connection (the running one, for `craton qemu`).
    pub fn new(addr: SocketAddr, relay: PathBuf) -> Result<MetadataServer> {
        if !addr.ip().is_loopback() {
            bail!(
                "{addr}: the metadata server must listen on a loopback address (127.0.0.1 or ::1)"
            );
        }
        if addr.port() == 0 {
            bail!("{addr}: port 0 is no server's port");
        }
        Ok(MetadataServer { addr, relay })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The command line libslirp runs: glib's g_shell_parse_argv splits it
    /// as /bin/sh would, so the program's path is quoted for a shell.
    fn command(&self) -> Result<String> {
        let relay = self
            .relay
            .to_str()
            .with_context(|| format!("path {} is not UTF-8", self.relay.display()))?;
        Ok(format!(
            "{} {RELAY_COMMAND} {}",
            shell_quote(relay),
            self.addr
        ))
    }
}

/// The `-netdev` value of the guest's NIC (`id=net0`).
pub(super) fn netdev(run: &QemuRun) -> Result<String> {
    let mut s = String::from("user,id=net0");
    if run.gce_metadata.is_some() {
        let _ = write!(
            s,
            ",net={METADATA_NET}/{METADATA_NET_PREFIX},host={METADATA_NET_HOST},\
             dns={METADATA_NET_DNS},dhcpstart={METADATA_NET_DHCP_START}"
        );
    }
    if run.network == Network::Isolated {
        s.push_str(",restrict=on");
    }
    if let Some(p) = run.ssh_forward_port {
        // No guest address: libslirp takes the first DHCP lease.
        let _ = write!(s, ",hostfwd=tcp:127.0.0.1:{p}-:22");
    }
    if let Some(m) = &run.gce_metadata {
        // QEMU's option parser splits at `,` (doubled to escape it).
        let _ = write!(
            s,
            ",guestfwd=tcp:{GCE_METADATA_ADDR}:{GCE_METADATA_PORT}-cmd:{}",
            m.command()?.replace(',', ",,")
        );
    }
    Ok(s)
}

/// Relays one guest connection to `server`, both ways, until each side has
/// closed its half. QEMU starts it with the connection as stdin, stdout
/// and stderr (one socket: libslirp's fork_exec), so it never prints.
pub fn relay(server: SocketAddr) -> Result<()> {
    let guest = TcpStream::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("taking the guest's connection from stdin")?,
    );
    let host = TcpStream::connect(server).with_context(|| format!("connecting to {server}"))?;
    let up = {
        let (from, to) = (guest.try_clone()?, host.try_clone()?);
        std::thread::spawn(move || copy_half(from, to))
    };
    let down = copy_half(host, guest);
    let up = up
        .join()
        .map_err(|_| anyhow::anyhow!("the guest-to-server copy panicked"))?;
    down.context("server to guest")?;
    up.context("guest to server")
}

/// Copies `from` to `to` until `from` ends, then ends `to`'s writing half.
fn copy_half(mut from: TcpStream, mut to: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return to.shutdown(Shutdown::Write);
        }
        to.write_all(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(addr: &str, relay: &str) -> MetadataServer {
        MetadataServer::new(addr.parse().unwrap(), relay.into()).unwrap()
    }

    #[test]
    fn netdev_default_isolated_and_with_metadata() {
        let mut r = QemuRun::new(None, super::super::Firmware::Bios);
        assert_eq!(netdev(&r).unwrap(), "user,id=net0");
        r.ssh_forward_port = Some(2222);
        assert_eq!(
            netdev(&r).unwrap(),
            "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22"
        );
        r.network = Network::Isolated;
        assert_eq!(
            netdev(&r).unwrap(),
            "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22"
        );
        r.gce_metadata = Some(server("127.0.0.1:8080", "/usr/bin/craton"));
        assert_eq!(
            netdev(&r).unwrap(),
            "user,id=net0,net=169.254.169.0/24,host=169.254.169.2,dns=169.254.169.3,\
             dhcpstart=169.254.169.15,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22,\
             guestfwd=tcp:169.254.169.254:80-cmd:/usr/bin/craton qemu-guestfwd 127.0.0.1:8080"
        );
        r.network = Network::Open;
        r.ssh_forward_port = None;
        r.gce_metadata = Some(server("[::1]:80", "/opt/it's, here/craton"));
        assert_eq!(
            netdev(&r).unwrap(),
            "user,id=net0,net=169.254.169.0/24,host=169.254.169.2,dns=169.254.169.3,\
             dhcpstart=169.254.169.15,\
             guestfwd=tcp:169.254.169.254:80-cmd:'/opt/it'\\''s,, here/craton' qemu-guestfwd [::1]:80"
        );
    }

    #[test]
    fn metadata_server_only_on_loopback() {
        for ok in ["127.0.0.1:1", "127.1.2.3:8080", "[::1]:80"] {
            MetadataServer::new(ok.parse().unwrap(), "craton".into()).unwrap();
        }
        for bad in ["0.0.0.0:80", "10.0.2.2:80", "[::]:80", "169.254.169.254:80"] {
            let err = MetadataServer::new(bad.parse().unwrap(), "craton".into()).unwrap_err();
            assert!(format!("{err}").contains("loopback"), "{bad}: {err}");
        }
        let err = MetadataServer::new("127.0.0.1:0".parse().unwrap(), "craton".into()).unwrap_err();
        assert!(format!("{err}").contains("port 0"), "{err}");
    }

    /// Bytes both ways and each half-close passed on, through real sockets
    /// (the relay's own stdin is not one here, so its halves are tested).
    #[test]
    fn a_copied_half_ends_with_its_source() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let sink_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = TcpStream::connect(sink_l.local_addr().unwrap()).unwrap();
        let (mut sink, _) = sink_l.accept().unwrap();
        let t = std::thread::spawn(move || copy_half(accepted, to));
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        sink.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"GET / HTTP/1.1\r\n\r\n");
        t.join().unwrap().unwrap();
    }
}
