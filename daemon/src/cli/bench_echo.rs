//! `idcardd bench zmq-echo --endpoint E`: a bare ROUTER socket that sends every message straight
//! back, on the same engine as `idcardd serve` (libzmq through the `zmq` crate, one thread
//! polling the socket, reading in batches, sending without waiting). `benches/zmq_load.py`
//! measures it next to the daemon to show what the JSON-RPC layer costs on top of the socket.

use std::os::unix::io::AsRawFd as _;

/// Arguments of `idcardd bench zmq-echo`.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// Endpoint to bind, e.g. ipc:///tmp/echo.sock or tcp://127.0.0.1:5556.
    #[arg(long)]
    pub endpoint: String,
}

/// Echoes messages until SIGTERM/SIGINT.
pub fn run(args: EchoArgs) -> anyhow::Result<()> {
    let (stop, signalled) = std::os::unix::net::UnixStream::pair()?;
    stop.set_nonblocking(true)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, signalled.try_clone()?)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, signalled)?;
    let file = match crate::server::socket::parse_endpoint(&args.endpoint)? {
        crate::server::socket::Endpoint::Ipc(path) => {
            let _ = std::fs::remove_file(&path);
            Some(path)
        }
        _ => None,
    };
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::ROUTER)?;
    socket.set_linger(0)?;
    socket.bind(&args.endpoint)?;
    'serve: loop {
        let mut items = [
            socket.as_poll_item(zmq::POLLIN),
            zmq::PollItem::from_fd(stop.as_raw_fd(), zmq::POLLIN),
        ];
        match zmq::poll(&mut items, -1) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        if items[1].is_readable() {
            break;
        }
        // As the daemon: a batch of messages per wake-up, replies never waited for.
        for _ in 0..256 {
            match socket.recv_multipart(zmq::DONTWAIT) {
                // The identity frame comes first and routes the echo back to its sender.
                Ok(message) => {
                    let _ = socket.send_multipart(message, zmq::DONTWAIT);
                }
                Err(zmq::Error::EAGAIN) => break,
                Err(zmq::Error::EINTR) => continue 'serve,
                Err(e) => return Err(e.into()),
            }
        }
    }
    drop(socket);
    drop(ctx);
    if let Some(path) = file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
