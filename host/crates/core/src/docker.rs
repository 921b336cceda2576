//! The Docker Engine API client shared by the Docker source and the
//! quarantine responder: a local Unix socket only, with the API version
//! agreed with the daemon (the lower of the daemon's and this client's).

use std::path::Path;
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};

/// The Engine API's default socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Why no client could be had for the socket.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The client could not be set up for the socket.
    #[error("cannot open the Docker socket {socket}")]
    Connect {
        /// The socket's path.
        socket: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// `GET /version` failed: the daemon is not answering.
    #[error("cannot negotiate the API version with the daemon")]
    Negotiate(#[source] bollard::errors::Error),
}

/// The API version in the daemon's "client version X is too new. Maximum
/// supported API version is Y" refusal (daemons older than the client).
pub fn max_api_version(message: &str) -> Option<ClientVersion> {
    let tail = message.rsplit_once("Maximum supported API version is ")?.1;
    let (major, minor) = tail.trim().trim_end_matches('.').split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// Connects to `socket` and agrees on an API version; every request gets
/// `request_timeout`.
pub async fn connect(socket: &Path, request_timeout: Duration) -> Result<Docker, ConnectError> {
    let socket = socket.to_string_lossy().into_owned();
    let open = |v: &ClientVersion| {
        Docker::connect_with_unix(&socket, request_timeout.as_secs(), v).map_err(|source| {
            ConnectError::Connect {
                socket: socket.clone(),
                source,
            }
        })
    };
    match open(API_DEFAULT_VERSION)?.negotiate_version().await {
        Ok(d) => Ok(d),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 400,
            message,
        }) if max_api_version(&message).is_some() => {
            let v = max_api_version(&message).unwrap_or(ClientVersion {
                major_version: 1,
                minor_version: 41,
            });
            let d = open(&v)?;
            d.version().await.map_err(ConnectError::Negotiate)?;
            Ok(d)
        }
        Err(e) => Err(ConnectError::Negotiate(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::max_api_version;

    #[test]
    fn reads_the_daemons_maximum() {
        let v = max_api_version(
            "client version 1.53 is too new. Maximum supported API version is 1.41",
        )
        .expect("a version");
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(max_api_version("page not found").is_none());
    }
}
