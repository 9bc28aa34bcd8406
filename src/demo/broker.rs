//! An embedded MQTT broker (rumqttd) on loopback, for `watchpost demo`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// A running in-process broker. It lives until the process exits (rumqttd has no stop).
#[derive(Debug)]
pub struct EmbeddedBroker {
    port: u16,
}

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("no free loopback port: {0}")]
    NoPort(std::io::Error),
    #[error("embedded broker configuration: {0}")]
    Config(String),
    #[error("embedded broker did not start listening on 127.0.0.1:{0} within 5 s")]
    NotListening(u16),
}

impl EmbeddedBroker {
    /// Starts a broker on `127.0.0.1:port`, or on a free port when `port` is 0 or taken.
    ///
    /// # Errors
    /// No port could be had, or the broker did not come up.
    pub fn start(port: u16) -> Result<EmbeddedBroker, BrokerError> {
        let port = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(listener) => listener.local_addr().map_err(BrokerError::NoPort)?.port(),
            Err(_) => TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map_err(BrokerError::NoPort)?
                .port(),
        };
        // Snapshots are JPEGs of up to a few hundred kB: allow payloads up to 4 MiB.
        let text = format!(
            r#"
id = 0
[router]
id = 0
max_connections = 64
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10
[v4.1]
name = "demo"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = 4194304
max_inflight_count = 100
dynamic_filters = true
"#
        );
        let config: rumqttd::Config =
            toml::from_str(&text).map_err(|e| BrokerError::Config(e.to_string()))?;
        std::thread::Builder::new()
            .name("demo-broker".to_owned())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(config);
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded broker stopped");
                }
            })
            .map_err(BrokerError::NoPort)?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(BrokerError::NotListening(port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(EmbeddedBroker { port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}
