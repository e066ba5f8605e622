//! `idcardd bench zmq-echo --endpoint E`: a bare ROUTER socket that sends every message straight
//! back, with the same zeromq crate and runtime as `idcardd serve`. `benches/zmq_load.py`
//! measures it next to the daemon to show what the JSON-RPC layer costs on top of the socket.

use zeromq::{RouterSocket, Socket, SocketRecv, SocketSend};

/// Arguments of `idcardd bench zmq-echo`.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// Endpoint to bind, e.g. ipc:///tmp/echo.sock or tcp://127.0.0.1:5556.
    #[arg(long)]
    pub endpoint: String,
}

/// Echoes messages until SIGTERM/SIGINT.
pub fn run(args: EchoArgs) -> anyhow::Result<()> {
    // The same runtime as `idcardd serve`, so the comparison is of the JSON-RPC layer alone.
    let runtime = crate::server::io_runtime()?;
    runtime.block_on(async move {
        let mut socket = RouterSocket::new();
        let file = match crate::server::socket::parse_endpoint(&args.endpoint)? {
            crate::server::socket::Endpoint::Ipc(path) => {
                let _ = std::fs::remove_file(&path);
                Some(path)
            }
            _ => None,
        };
        socket.bind(&args.endpoint).await?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                message = socket.recv() => {
                    // The identity frame comes first and routes the echo back to its sender.
                    if let Ok(message) = message {
                        let _ = socket.send(message).await;
                    }
                }
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        drop(socket);
        if let Some(path) = file {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    })
}
