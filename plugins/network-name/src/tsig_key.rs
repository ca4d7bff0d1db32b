//! A TSIG key read from a key file, as a hickory `TSigner`. Two formats are accepted: the one line
//! `hmac-sha256:NAME:BASE64SECRET` (the `-y` form of kdig/nsupdate), and the block that
//! tsig-keygen, `keymgr -t` in bind style and BIND's rndc/ddns tools write:
//! `key "NAME" { algorithm hmac-sha256; secret "BASE64"; };`. Only HMAC-SHA256 is accepted. Not
//! the signing itself (hickory-proto's TSigner does it) nor where the file lives.

use data_encoding::BASE64;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, TSigner};
use keelson_plugin::Error;
use std::path::Path;

/// The allowed difference between our clock and the server's, in seconds (RFC 8945's 300).
const FUDGE_SECONDS: u16 = 300;

/// A parsed key: its name and secret (never logged).
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    pub name: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TsigKey {
    /// Reads and parses the file; every error names the file (and never holds the secret).
    pub fn load(path: &Path) -> Result<TsigKey, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::misconfigured(format!("TsigKeyFile={}: cannot read: {e}", path.display()))
        })?;
        TsigKey::parse(&text)
            .map_err(|why| Error::misconfigured(format!("TsigKeyFile={}: {why}", path.display())))
    }

    pub fn parse(text: &str) -> Result<TsigKey, String> {
        let text = strip_comments(text);
        let trimmed = text.trim();
        let (algorithm, name, secret) = if trimmed.starts_with("key") {
            parse_block(trimmed)?
        } else {
            parse_line(trimmed)?
        };
        if !algorithm.eq_ignore_ascii_case("hmac-sha256") {
            return Err(format!(
                "algorithm {algorithm:?}: only hmac-sha256 is supported"
            ));
        }
        Name::from_ascii(&name).map_err(|e| format!("key name {name:?}: {e}"))?;
        let secret = BASE64
            .decode(secret.as_bytes())
            .map_err(|_| "the secret is not valid base64".to_string())?;
        if secret.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(TsigKey { name, secret })
    }

    pub fn signer(&self) -> Result<TSigner, Error> {
        let name = Name::from_ascii(&self.name)
            .map_err(|e| Error::misconfigured(format!("key name {:?}: {e}", self.name)))?;
        TSigner::new(
            self.secret.clone(),
            TsigAlgorithm::HmacSha256,
            name,
            FUDGE_SECONDS,
        )
        .map_err(|e| Error::not_installed(format!("TSIG HMAC-SHA256 unavailable: {e}")))
    }
}

/// Drops whole-line comments (`#`, `//`); a base64 secret may itself hold `/`, so nothing is cut
/// from inside a line.
fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|line| {
            let line = line.trim_start();
            !(line.starts_with('#') || line.starts_with("//"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `hmac-sha256:NAME:SECRET` (the algorithm may be left out: hmac-sha256).
fn parse_line(text: &str) -> Result<(String, String, String), String> {
    if text.lines().count() != 1 {
        return Err(
            "expected one line ALGORITHM:NAME:SECRET or a key \"NAME\" { ... }; block".into(),
        );
    }
    let parts: Vec<&str> = text.split(':').map(str::trim).collect();
    match parts.as_slice() {
        [algorithm, name, secret] if !name.is_empty() => {
            Ok((algorithm.to_string(), name.to_string(), secret.to_string()))
        }
        [name, secret] if !name.is_empty() => {
            Ok(("hmac-sha256".into(), name.to_string(), secret.to_string()))
        }
        _ => Err("expected ALGORITHM:NAME:SECRET or a key \"NAME\" { ... }; block".into()),
    }
}

/// `key "NAME" { algorithm hmac-sha256; secret "SECRET"; };`
fn parse_block(text: &str) -> Result<(String, String, String), String> {
    let bad = |why: &str| format!("key block: {why}");
    let rest = text["key".len()..].trim_start();
    let open = rest.find('{').ok_or_else(|| bad("no '{'"))?;
    let close = rest.rfind('}').ok_or_else(|| bad("no '}'"))?;
    if close < open {
        return Err(bad("'}' before '{'"));
    }
    let name = unquote(rest[..open].trim());
    if name.is_empty() {
        return Err(bad("no key name"));
    }
    let (mut algorithm, mut secret) = (None, None);
    for statement in rest[open + 1..close].split(';').map(str::trim) {
        let Some((word, value)) = statement.split_once(char::is_whitespace) else {
            if statement.is_empty() {
                continue;
            }
            return Err(bad(&format!("statement {statement:?} has no value")));
        };
        match word {
            "algorithm" => algorithm = Some(unquote(value.trim())),
            "secret" => secret = Some(unquote(value.trim())),
            other => return Err(bad(&format!("unknown statement {other:?}"))),
        }
    }
    Ok((
        algorithm.ok_or_else(|| bad("no algorithm"))?,
        name,
        secret.ok_or_else(|| bad("no secret"))?,
    ))
}

fn unquote(text: &str) -> String {
    text.trim_matches('"').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";

    #[test]
    fn both_formats_give_the_same_key() {
        let line = TsigKey::parse(&format!("hmac-sha256:ddns-key:{SECRET}\n")).unwrap();
        let block = TsigKey::parse(&format!(
            "# written by tsig-keygen\nkey \"ddns-key\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n"
        ))
        .unwrap();
        assert_eq!(line, block);
        assert_eq!(line.name, "ddns-key");
        assert_eq!(line.secret, b"secret-secret-secret-secret!");
        assert!(line.signer().is_ok());
        let bare = TsigKey::parse(&format!("ddns-key:{SECRET}")).unwrap();
        assert_eq!(bare, line);
    }

    #[test]
    fn bad_files_are_refused_without_the_secret() {
        for text in [
            format!("hmac-md5:k:{SECRET}"),
            "hmac-sha256:k:not base64!".to_string(),
            "key \"k\" { algorithm hmac-sha256; };".to_string(),
            format!("key \"k\" {{ secret \"{SECRET}\"; }};"),
            "".to_string(),
            format!("a\nb:{SECRET}"),
        ] {
            let e = TsigKey::parse(&text).unwrap_err();
            assert!(!e.contains(SECRET), "{e}");
        }
        assert!(!format!("{:?}", TsigKey::parse(&format!("k:{SECRET}")).unwrap()).contains(SECRET));
    }

    #[test]
    fn a_missing_file_is_misconfigured_naming_the_parameter() {
        let e = TsigKey::load(Path::new("/nonexistent/key")).unwrap_err();
        assert_eq!(e.kind(), keelson_plugin::ErrorKind::Misconfigured);
        assert!(
            e.message().starts_with("TsigKeyFile=/nonexistent/key"),
            "{e}"
        );
    }
}
