//! One DNS exchange with the configured server, blocking the calling thread for at most the
//! resource's DnsTimeout: the message is signed here with the TSIG key (hickory-proto's TSigner),
//! sent over UDP with hickory-net's `UdpClientStream` and, when the answer comes back truncated,
//! again over TCP with its `TcpClientStream`; the answer's signature is verified and its rcode
//! (with the TSIG error, BADSIG/BADKEY/BADTIME, that a NOTAUTH carries) becomes a [`DnsFailure`].
//! Signing here rather than inside hickory-net's streams keeps a refused answer readable: their
//! verifier turns an unsigned NOTAUTH into "missing tsig", losing the rcode. Not what is sent
//! (records.rs).

use futures::StreamExt;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::{DnsHandle, DnsStreamHandle};
use hickory_proto::op::{
    DnsRequest, DnsRequestOptions, DnsResponse, Message, ResponseCode, SerialMessage,
};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{TSigVerifier, TSigner};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most TCP messages read while waiting for the one answering ours (others are ignored).
const MAX_TCP_MESSAGES: usize = 16;

/// Why an exchange failed, in an administrator's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsFailure {
    /// No answer within the timeout.
    Timeout {
        server: SocketAddr,
        timeout: Duration,
    },
    /// The server answered with an error rcode (and, for NOTAUTH, the TSIG error).
    Rcode {
        server: SocketAddr,
        rcode: ResponseCode,
        tsig: Option<TsigError>,
    },
    /// The server could not be reached, or its answer could not be read or trusted.
    Transport { server: SocketAddr, detail: String },
}

impl DnsFailure {
    pub fn rcode(&self) -> Option<ResponseCode> {
        match self {
            DnsFailure::Rcode { rcode, .. } => Some(*rcode),
            _ => None,
        }
    }
}

impl fmt::Display for DnsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsFailure::Timeout { server, timeout } => write!(
                f,
                "no answer from DNS server {server} within {} ms",
                timeout.as_millis()
            ),
            DnsFailure::Rcode {
                server,
                rcode,
                tsig,
            } => {
                write!(f, "DNS server {server} answered {}", rcode_name(*rcode))?;
                if let Some(tsig) = tsig {
                    write!(f, " (TSIG error {})", tsig_name(tsig))?;
                }
                Ok(())
            }
            DnsFailure::Transport { server, detail } => {
                write!(f, "DNS server {server}: {detail}")
            }
        }
    }
}

/// The mnemonic of RFC 1035/2136 (NOTAUTH, REFUSED, …), then hickory's words for it.
fn rcode_name(rcode: ResponseCode) -> String {
    let mnemonic = match rcode {
        ResponseCode::FormErr => "FORMERR".to_string(),
        ResponseCode::ServFail => "SERVFAIL".to_string(),
        ResponseCode::NXDomain => "NXDOMAIN".to_string(),
        ResponseCode::NotImp => "NOTIMP".to_string(),
        ResponseCode::Refused => "REFUSED".to_string(),
        ResponseCode::YXDomain => "YXDOMAIN".to_string(),
        ResponseCode::YXRRSet => "YXRRSET".to_string(),
        ResponseCode::NXRRSet => "NXRRSET".to_string(),
        ResponseCode::NotAuth => "NOTAUTH".to_string(),
        ResponseCode::NotZone => "NOTZONE".to_string(),
        other => format!("rcode {}", u16::from(other)),
    };
    format!("{mnemonic}, {}", rcode.to_str())
}

fn tsig_name(error: &TsigError) -> String {
    match error {
        TsigError::BadSig => "BADSIG".into(),
        TsigError::BadKey => "BADKEY".into(),
        TsigError::BadTime => "BADTIME".into(),
        TsigError::BadTrunc => "BADTRUNC".into(),
        TsigError::Unknown(code) => format!("{code}"),
    }
}

/// Sends messages to one server, signed with one key (or unsigned), each within `timeout`.
#[derive(Clone)]
pub struct Exchanger {
    server: SocketAddr,
    timeout: Duration,
    signer: Option<TSigner>,
}

impl fmt::Debug for Exchanger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchanger")
            .field("server", &self.server)
            .field("timeout", &self.timeout)
            .field("signed", &self.signer.is_some())
            .finish()
    }
}

impl Exchanger {
    pub fn new(server: SocketAddr, timeout: Duration, signer: Option<TSigner>) -> Exchanger {
        Exchanger {
            server,
            timeout,
            signer,
        }
    }

    /// Sends `message` and returns the server's NOERROR answer, blocking for at most the timeout.
    pub fn exchange(&self, message: Message) -> Result<Message, DnsFailure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| self.transport(format!("cannot start the DNS client: {e}")))?;
        let bounded =
            async { tokio::time::timeout(self.timeout, self.exchange_async(message)).await };
        match runtime.block_on(bounded) {
            Ok(answer) => answer,
            Err(_elapsed) => Err(DnsFailure::Timeout {
                server: self.server,
                timeout: self.timeout,
            }),
        }
    }

    fn transport(&self, detail: impl Into<String>) -> DnsFailure {
        DnsFailure::Transport {
            server: self.server,
            detail: detail.into(),
        }
    }

    async fn exchange_async(&self, mut message: Message) -> Result<Message, DnsFailure> {
        let verifier = self.sign(&mut message)?;
        let mut response = self.over_udp(&message).await?;
        if response.metadata.truncation {
            response = self.over_tcp(&message).await?;
        }
        self.check(response, verifier)
    }

    fn sign(&self, message: &mut Message) -> Result<Option<TSigVerifier>, DnsFailure> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| self.transport(format!("the clock is before 1970: {e}")))?
            .as_secs();
        message
            .finalize(signer, now)
            .map_err(|e| self.transport(format!("cannot sign the message: {e}")))
    }

    async fn over_udp(&self, message: &Message) -> Result<DnsResponse, DnsFailure> {
        let exchange = UdpClientStream::builder(self.server, TokioRuntimeProvider::new())
            // Our own bound (in `exchange`) ends the exchange first and says "timeout".
            .with_timeout(Some(self.timeout + Duration::from_secs(1)))
            .exchange();
        let request = DnsRequest::new(message.clone(), DnsRequestOptions::default());
        match exchange.send(request).next().await {
            Some(Ok(response)) => Ok(response),
            Some(Err(e)) => Err(self.transport(format!("over UDP: {e}"))),
            None => Err(self.transport("over UDP: no answer")),
        }
    }

    async fn over_tcp(&self, message: &Message) -> Result<DnsResponse, DnsFailure> {
        let bytes = message
            .to_vec()
            .map_err(|e| self.transport(format!("cannot encode the message: {e}")))?;
        let (connect, mut handle) = TcpClientStream::new(
            self.server,
            None,
            Some(self.timeout),
            TokioRuntimeProvider::new(),
        );
        let mut stream = connect
            .await
            .map_err(|e| self.transport(format!("over TCP: {e}")))?;
        handle
            .send(SerialMessage::new(bytes, self.server))
            .map_err(|e| self.transport(format!("over TCP: {e}")))?;
        for _ in 0..MAX_TCP_MESSAGES {
            let received = match stream.next().await {
                Some(Ok(received)) => received,
                Some(Err(e)) => return Err(self.transport(format!("over TCP: {e}"))),
                None => return Err(self.transport("over TCP: the connection closed")),
            };
            let response = DnsResponse::from_buffer(received.into_parts().0)
                .map_err(|e| self.transport(format!("over TCP: unreadable answer: {e}")))?;
            if response.metadata.id == message.metadata.id {
                return Ok(response);
            }
        }
        Err(self.transport("over TCP: no answer to our message"))
    }

    /// An error rcode is a failure naming it; a NOERROR answer to a signed message must carry a
    /// valid signature.
    fn check(
        &self,
        response: DnsResponse,
        verifier: Option<TSigVerifier>,
    ) -> Result<Message, DnsFailure> {
        let rcode = response.metadata.response_code;
        if rcode != ResponseCode::NoError {
            return Err(DnsFailure::Rcode {
                server: self.server,
                rcode,
                tsig: response.signature().and_then(|sig| sig.data.error),
            });
        }
        match verifier {
            None => Ok(response.into_message()),
            Some(mut verifier) => verifier
                .verify(response.as_buffer())
                .map(DnsResponse::into_message)
                .map_err(|e| self.transport(format!("the answer failed TSIG verification: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn failures_name_the_server_and_the_rcode() {
        let server: SocketAddr = "192.0.2.53:53".parse().unwrap();
        let bad_sig = DnsFailure::Rcode {
            server,
            rcode: ResponseCode::NotAuth,
            tsig: Some(TsigError::BadSig),
        };
        assert_eq!(
            bad_sig.to_string(),
            "DNS server 192.0.2.53:53 answered NOTAUTH, Not authorized (TSIG error BADSIG)"
        );
        let refused = DnsFailure::Rcode {
            server,
            rcode: ResponseCode::Refused,
            tsig: None,
        };
        assert_eq!(
            refused.to_string(),
            "DNS server 192.0.2.53:53 answered REFUSED, Query Refused"
        );
    }

    #[test]
    fn a_silent_server_is_a_timeout_within_the_bound() {
        // A bound socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = silent.local_addr().unwrap();
        let timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let query = crate::records::query(
            &hickory_proto::rr::Name::from_ascii("web.keelson.test.").unwrap(),
            hickory_proto::rr::RecordType::A,
        );
        let e = Exchanger::new(server, timeout, None)
            .exchange(query)
            .unwrap_err();
        assert_eq!(e, DnsFailure::Timeout { server, timeout });
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}
