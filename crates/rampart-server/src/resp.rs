//! The smallest Redis client the shared state needs: one connection, RESP2 commands written as arrays of bulk
//! strings, and the replies `EVAL` of our scripts produces (integers, bulk strings, short arrays of them, simple
//! strings and errors). Spec: <https://redis.io/docs/latest/develop/reference/protocol-spec/>. Replies are read with caps
//! (line length, array length, bulk size), so a confused or hostile server cannot make the gateway allocate
//! without bound.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A reply line, array or bulk string longer than this is refused. A bulk reply may be the whole shared
/// blocklist (about 50 bytes a block): 4 MiB holds some 80000 blocks.
const MAX_LINE: usize = 4096;
const MAX_ARRAY: i64 = 64;
const MAX_BULK: i64 = 4 * 1024 * 1024;

/// Why a command failed. Never carries the URL or the password.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RespError {
    #[error("redis connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis answered with an error: {0}")]
    Server(String),
    #[error("redis reply malformed: {0}")]
    Protocol(&'static str),
}

/// A parsed reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// Where and how to connect, from `redis://[:password@]host:port[/db]`.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: String,
    password: Option<String>,
    db: Option<u32>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log line.
        f.debug_struct("Target").field("addr", &self.addr).finish()
    }
}

impl Target {
    /// Parses a `redis://` URL. `rediss://` (TLS) is refused: this client speaks plain TCP, for a Redis on a
    /// private network (the Kubernetes NetworkPolicy admits only Rampart's pods to it).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let Some(rest) = url.strip_prefix("redis://") else {
            return Err("the URL must start with redis:// (rediss:// is not supported)".into());
        };
        let (auth, hostpart) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (hostport, db) = match hostpart.split_once('/') {
            Some((h, "")) => (h, None),
            Some((h, d)) => (
                h,
                Some(
                    d.parse::<u32>()
                        .map_err(|_| "the database after / must be a number".to_owned())?,
                ),
            ),
            None => (hostpart, None),
        };
        if hostport.is_empty() {
            return Err("the URL names no host".into());
        }
        let addr = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            hostport.to_owned()
        } else {
            format!("{hostport}:6379")
        };
        // `user:password` or `:password`; Redis 6 ACL users are not used, only the password.
        let password = auth
            .map(|a| a.split_once(':').map_or(a, |(_, p)| p).to_owned())
            .filter(|p| !p.is_empty());
        Ok(Self { addr, password, db })
    }
}

/// One open connection.
pub(crate) struct Connection {
    stream: BufReader<TcpStream>,
    timeout: Duration,
}

impl Connection {
    /// Connects, authenticates and selects the database, all within `timeout` each.
    pub(crate) async fn open(target: &Target, timeout: Duration) -> Result<Self, RespError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(&target.addr))
            .await
            .map_err(|_| RespError::Timeout(timeout))??;
        let _ = stream.set_nodelay(true);
        let mut conn = Self {
            stream: BufReader::new(stream),
            timeout,
        };
        if let Some(p) = &target.password {
            conn.command(&[b"AUTH", p.as_bytes()]).await?;
        }
        if let Some(db) = target.db {
            conn.command(&[b"SELECT", db.to_string().as_bytes()])
                .await?;
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply, within the timeout. An error reply is [`RespError::Server`].
    pub(crate) async fn command(&mut self, args: &[&[u8]]) -> Result<Reply, RespError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.round_trip(args))
            .await
            .map_err(|_| RespError::Timeout(timeout))?
    }

    async fn round_trip(&mut self, args: &[&[u8]]) -> Result<Reply, RespError> {
        let mut out = Vec::with_capacity(64 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&out).await?;
        match Box::pin(self.read_reply(0)).await? {
            Reply::Error(e) => Err(RespError::Server(e)),
            r => Ok(r),
        }
    }

    async fn read_line(&mut self) -> Result<String, RespError> {
        let mut line = Vec::new();
        let n = (&mut self.stream)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Err(RespError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        if !line.ends_with(b"\r\n") {
            return Err(RespError::Protocol(
                "a reply line is too long or unterminated",
            ));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| RespError::Protocol("a reply line is not UTF-8"))
    }

    async fn read_reply(&mut self, depth: u8) -> Result<Reply, RespError> {
        if depth > 2 {
            return Err(RespError::Protocol("replies nest too deep"));
        }
        let line = self.read_line().await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| RespError::Protocol("a length or integer is not a number"))
        };
        match kind {
            "+" => Ok(Reply::Simple(rest.to_owned())),
            "-" => Ok(Reply::Error(rest.to_owned())),
            ":" => Ok(Reply::Int(number()?)),
            "$" => {
                let len = number()?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                if len > MAX_BULK {
                    return Err(RespError::Protocol("a bulk reply is too large"));
                }
                let len = usize::try_from(len).map_err(|_| RespError::Protocol("bad length"))?;
                let mut buf = vec![0u8; len + 2];
                self.stream.read_exact(&mut buf).await?;
                buf.truncate(len);
                Ok(Reply::Bulk(Some(buf)))
            }
            "*" => {
                let len = number()?;
                if len < 0 {
                    return Ok(Reply::Array(Vec::new()));
                }
                if len > MAX_ARRAY {
                    return Err(RespError::Protocol("an array reply is too long"));
                }
                let mut items = Vec::new();
                for _ in 0..len {
                    items.push(Box::pin(self.read_reply(depth + 1)).await?);
                }
                Ok(Reply::Array(items))
            }
            _ => Err(RespError::Protocol("unknown reply type")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::Target;

    #[test]
    fn urls_parse_without_keeping_secrets_in_debug() {
        let t = Target::parse("redis://:s3cret@redis.rampart.svc:6380/2").unwrap();
        assert_eq!(t.addr, "redis.rampart.svc:6380");
        assert_eq!(t.password.as_deref(), Some("s3cret"));
        assert_eq!(t.db, Some(2));
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(
            Target::parse("redis://127.0.0.1").unwrap().addr,
            "127.0.0.1:6379"
        );
        assert!(Target::parse("rediss://h:1").is_err());
        assert!(Target::parse("redis:///0").is_err());
        assert!(Target::parse("redis://h:1/x").is_err());
    }
}
