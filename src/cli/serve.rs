//! Binding the server's listeners (the `serve` command itself is in `run`).

/// Bind `addr`, or say which address could not be had, why, and which setting moves it.
pub(super) async fn listen(
    addr: std::net::SocketAddr,
    setting: &str,
) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        use std::io::ErrorKind;
        let (why, cause) = match e.kind() {
            ErrorKind::AddrInUse => (
                "address already in use".to_owned(),
                "another Latchkey or program is using it; ",
            ),
            ErrorKind::AddrNotAvailable => (
                "address not available".to_owned(),
                "no interface of this machine has that IP; ",
            ),
            ErrorKind::PermissionDenied => (
                "permission denied".to_owned(),
                "ports below 1024 need privileges; ",
            ),
            _ => (e.to_string(), ""),
        };
        anyhow::anyhow!("cannot listen on {addr}: {why} ({cause}set {setting})")
    })
}
