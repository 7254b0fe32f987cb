//! `[admin]`: the operators' listener (metrics, credential health, configuration, reload).
//!
//! It is off unless `listen` is set. It shows which credentials are cooling and lets anyone who
//! reaches it reset them or reload the configuration, so an address beyond loopback is refused
//! unless a `token` is set; with a token every admin request must carry it.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize, Serializer};

use super::{secret, ConfigError};

/// The validated `[admin]` section. `Debug` and `Serialize` never show the token.
#[derive(Clone, Default)]
pub struct AdminConfig {
    pub listen: Option<SocketAddr>,
    pub token: Option<String>,
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Serialize for AdminConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            listen: Option<String>,
            token: Option<&'a str>,
        }
        View {
            listen: self.listen.map(|a| a.to_string()),
            token: self.token.as_ref().map(|_| super::REDACTED),
        }
        .serialize(s)
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileAdmin {
    listen: Option<String>,
    token: Option<String>,
    token_env: Option<String>,
}

impl FileAdmin {
    pub(super) fn parse(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AdminConfig, ConfigError> {
        let fail = |key: &str, what: String| ConfigError {
            message: format!("admin.{key}: {what}"),
        };
        let token = match (&self.token, &self.token_env) {
            (None, None) => None,
            _ => Some(
                secret(&self.token, &self.token_env, env, "token")
                    .map_err(|(field, what)| fail(&field, what))?,
            ),
        };
        if token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(fail(
                "token",
                "must be at least 16 characters (it guards credential resets and reloads)".into(),
            ));
        }
        let Some(listen) = &self.listen else {
            return Ok(AdminConfig {
                listen: None,
                token,
            });
        };
        let addr: SocketAddr = listen.parse().map_err(|_| {
            fail(
                "listen",
                format!("{listen:?} is not an IP:port address (e.g. \"127.0.0.1:9090\")"),
            )
        })?;
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(fail(
                "listen",
                format!(
                    "{addr} is not a loopback address and no admin.token is set: anyone who can \
                     reach it could reset credentials and reload the configuration. Set \
                     admin.token_env (clients then send Authorization: Bearer <token>) or \
                     listen on 127.0.0.1."
                ),
            ));
        }
        Ok(AdminConfig {
            listen: Some(addr),
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<AdminConfig, String> {
        let file: FileAdmin = toml::from_str(text).map_err(|e| e.to_string())?;
        file.parse(&|k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .map_err(|e| e.message)
    }

    #[test]
    fn off_unless_listen_is_set() {
        let a = parse("", &[]).unwrap();
        assert!(a.listen.is_none() && a.token.is_none());
    }

    #[test]
    fn loopback_needs_no_token() {
        let a = parse("listen = \"127.0.0.1:9090\"", &[]).unwrap();
        assert_eq!(a.listen, Some("127.0.0.1:9090".parse().unwrap()));
        let a = parse("listen = \"[::1]:0\"", &[]).unwrap();
        assert!(a.listen.unwrap().ip().is_loopback());
    }

    #[test]
    fn other_addresses_need_a_token() {
        let e = parse("listen = \"0.0.0.0:9090\"", &[]).unwrap_err();
        assert!(
            e.contains("admin.listen") && e.contains("admin.token"),
            "{e}"
        );
        let a = parse(
            "listen = \"0.0.0.0:9090\"\ntoken_env = \"ADMIN\"",
            &[("ADMIN", "a-long-enough-admin-token")],
        )
        .unwrap();
        assert_eq!(a.token.as_deref(), Some("a-long-enough-admin-token"));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, key) in [
            ("listen = \"localhost:9090\"", "admin.listen"),
            ("listen = \"127.0.0.1:1\"\ntoken = \"short\"", "admin.token"),
            ("token_env = \"NOT_SET\"", "admin.token_env"),
            ("token = \"a b c d e f g h i j\"", "admin.token"),
            ("token = \"x\"\ntoken_env = \"Y\"", "admin.token"),
        ] {
            let e = parse(text, &[]).unwrap_err();
            assert!(e.starts_with(key), "{text}: {e}");
        }
        assert!(parse("port = 1", &[]).is_err());
    }

    #[test]
    fn the_token_is_never_shown() {
        let a = parse("token = \"the-secret-admin-token\"", &[]).unwrap();
        assert!(!format!("{a:?}").contains("the-secret"));
        let json = simd_json::to_string(&a).unwrap();
        assert!(!json.contains("the-secret"), "{json}");
        assert!(json.contains(super::super::REDACTED), "{json}");
    }
}
