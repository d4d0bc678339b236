//! The TLS kinds: `ciphers`, a list of cipher suite names that the TLS library (rustls with
//! its ring provider) implements.

use super::{describe, single, Kind, Raw};

/// One cipher suite: the name rustls gives it (canonical) and the other names it is known
/// by (IANA's for TLS 1.3, OpenSSL's, which gunicorn's `--ciphers` takes).
struct Suite {
    name: &'static str,
    aliases: &'static [&'static str],
}

/// Every suite rustls 0.23 implements with the ring provider, strongest first within each
/// version (its default order). If rustls gains or loses one, change this list: the worker's
/// test `every_configurable_suite_is_known_to_rustls` compares the two.
const SUITES: &[Suite] = &[
    Suite {
        name: "TLS13_AES_256_GCM_SHA384",
        aliases: &["TLS_AES_256_GCM_SHA384"],
    },
    Suite {
        name: "TLS13_AES_128_GCM_SHA256",
        aliases: &["TLS_AES_128_GCM_SHA256"],
    },
    Suite {
        name: "TLS13_CHACHA20_POLY1305_SHA256",
        aliases: &["TLS_CHACHA20_POLY1305_SHA256"],
    },
    Suite {
        name: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        aliases: &["ECDHE-ECDSA-AES256-GCM-SHA384"],
    },
    Suite {
        name: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        aliases: &["ECDHE-ECDSA-AES128-GCM-SHA256"],
    },
    Suite {
        name: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        aliases: &["ECDHE-ECDSA-CHACHA20-POLY1305"],
    },
    Suite {
        name: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        aliases: &["ECDHE-RSA-AES256-GCM-SHA384"],
    },
    Suite {
        name: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        aliases: &["ECDHE-RSA-AES128-GCM-SHA256"],
    },
    Suite {
        name: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        aliases: &["ECDHE-RSA-CHACHA20-POLY1305"],
    },
];

/// The canonical (rustls) names of every suite `ciphers` accepts.
pub fn cipher_suite_names() -> impl Iterator<Item = &'static str> {
    SUITES.iter().map(|s| s.name)
}

/// A chosen list of cipher suites, by their canonical (rustls) names, in the order given,
/// without repeats. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherList(Vec<&'static str>);

impl CipherList {
    /// The suites' canonical names, as rustls' `CipherSuite::as_str` gives them.
    pub fn names(&self) -> &[&'static str] {
        &self.0
    }

    /// Parses names separated by commas or colons (OpenSSL's separator), case-insensitive.
    /// Empty: `None` (the library's defaults). An unknown name is refused, named.
    pub fn parse(text: &str) -> Result<Option<CipherList>, String> {
        let mut names = Vec::new();
        for item in text
            .split([',', ':'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let suite = SUITES
                .iter()
                .find(|s| {
                    s.name.eq_ignore_ascii_case(item)
                        || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(item))
                })
                .ok_or_else(|| format!("unknown cipher suite {item:?}"))?;
            if !names.contains(&suite.name) {
                names.push(suite.name);
            }
        }
        Ok((!names.is_empty()).then_some(CipherList(names)))
    }
}

/// `ciphers`: cipher suite names separated by commas or colons (a TOML array too); empty for
/// the library's defaults.
#[derive(Debug)]
pub struct Ciphers;

impl Kind for Ciphers {
    type Out = Option<CipherList>;

    fn parse(&self, raw: &Raw) -> Result<Option<CipherList>, String> {
        match single(raw)? {
            Raw::Str(s) => CipherList::parse(s),
            Raw::List(items) => {
                let mut text = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Raw::Str(s) => text.push(s.as_str()),
                        other => return Err(format!("an item is {}", describe(other))),
                    }
                }
                CipherList::parse(&text.join(","))
            }
            other => Err(format!("not a string or an array ({})", describe(other))),
        }
    }

    fn accepted(&self) -> String {
        let names: Vec<&str> = cipher_suite_names().collect();
        format!(
            "cipher suite names separated by commas or colons, from: {} (IANA's TLS_AES_* \
             names and OpenSSL's names of the same suites work too; empty: the defaults)",
            names.join(", ")
        )
    }

    fn to_toml(&self, value: &Option<CipherList>) -> toml::Value {
        toml::Value::String(value.as_ref().map_or(String::new(), |l| l.0.join(",")))
    }

    fn samples(&self) -> Vec<String> {
        vec![
            String::new(),
            "TLS13_AES_128_GCM_SHA256".to_string(),
            "TLS13_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_every_spelling_and_separator() {
        let list = CipherList::parse(
            "tls13_aes_128_gcm_sha256: TLS_CHACHA20_POLY1305_SHA256,ECDHE-RSA-AES128-GCM-SHA256",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            list.names(),
            [
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            ]
        );
        assert_eq!(CipherList::parse(" , ").unwrap(), None);
        let twice = CipherList::parse("TLS13_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256");
        assert_eq!(twice.unwrap().unwrap().names().len(), 1);
    }

    #[test]
    fn an_unknown_name_is_named() {
        let e = CipherList::parse("TLS13_AES_128_GCM_SHA256,ECDHE+AESGCM").unwrap_err();
        assert_eq!(e, "unknown cipher suite \"ECDHE+AESGCM\"");
        let e = Ciphers
            .parse(&Raw::Str("TLS_RSA_WITH_RC4_128_SHA".into()))
            .unwrap_err();
        assert!(e.contains("TLS_RSA_WITH_RC4_128_SHA"), "{e}");
    }
}
