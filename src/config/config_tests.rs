//! Configuration parsing and validation, case by case.

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.toml", &|k| {
        (k == "SET_VAR").then(|| "sk-from-env".to_string())
    })
}

const MINIMAL: &str = r#"
[[upstreams]]
name = "anthropic"
kind = "anthropic"
[[upstreams.credentials]]
name = "primary"
api_key_env = "SET_VAR"
"#;

#[test]
fn minimal_config_gets_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.server.listen.addresses(), vec!["127.0.0.1:8080"]);
    assert_eq!(c.server.max_body_bytes, 33_554_432);
    assert_eq!(c.server.max_head_bytes, 16_384);
    assert_eq!(c.stream.buffer_bytes, 16_384);
    let u = &c.upstreams[0];
    assert_eq!(u.base_url.as_ref().unwrap().host, "api.anthropic.com");
    assert_eq!(u.credentials[0].secret.identity(), "key:sk-from-env");
    assert_eq!(u.models, vec!["*"]);
}

#[test]
fn routing_models_and_api_keys() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.routing.strategy, Strategy::RoundRobin);
    assert_eq!(c.routing.max_attempts, 3);
    assert!(c.api_keys.is_empty());
    let text = format!(
        "{MINIMAL}\n[routing]\nstrategy = \"fill-first\"\nsession_affinity = true\n\
         [models.aliases]\nsonnet = \"claude-sonnet-4-5\"\n\
         [[api_keys]]\nname = \"team-a\"\nkey = \"rg-team-a\"\n\
         [[api_keys]]\nname = \"team-b\"\nkey_env = \"SET_VAR\"\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.routing.strategy, Strategy::FillFirst);
    assert!(c.routing.session_affinity);
    assert_eq!(c.models.alias("sonnet"), Some("claude-sonnet-4-5"));
    assert_eq!(c.models.alias("claude-x"), None);
    assert_eq!(c.api_keys[1].key, "sk-from-env");
    assert!(!format!("{c:?}").contains("rg-team-a"));

    let chained = format!("{MINIMAL}\n[models.aliases]\na = \"b\"\nb = \"claude-x\"\n");
    assert!(parse(&chained)
        .unwrap_err()
        .message
        .contains("models.aliases.a"));
    let twice = format!(
        "{MINIMAL}\n[[api_keys]]\nname = \"a\"\nkey = \"k1\"\n[[api_keys]]\nname = \"b\"\nkey = \"k1\"\n"
    );
    let e = parse(&twice).unwrap_err().message;
    assert!(e.contains("api_keys[1].key") && !e.contains("k1"), "{e}");
    let unset = format!("{MINIMAL}\n[[api_keys]]\nname = \"a\"\nkey_env = \"NOPE\"\n");
    assert!(parse(&unset)
        .unwrap_err()
        .message
        .contains("api_keys[0].key_env"));
    let bad = format!("{MINIMAL}\n[routing]\nmax_attempts = 0\n");
    assert!(parse(&bad)
        .unwrap_err()
        .message
        .contains("routing.max_attempts"));
}

#[test]
fn exposed_listeners_need_client_keys() {
    let open = MINIMAL.replace(
        "[[upstreams]]",
        "[server]\nlisten = [\"127.0.0.1:1\", \"0.0.0.0:8080\"]\n[[upstreams]]",
    );
    let e = parse(&open).unwrap().listen_addrs().unwrap_err().message;
    assert!(
        e.contains("0.0.0.0:8080") && e.contains("[[api_keys]]"),
        "{e}"
    );
    let keyed = format!("{open}\n[[api_keys]]\nname = \"a\"\nkey = \"k\"\n");
    assert_eq!(parse(&keyed).unwrap().listen_addrs().unwrap().len(), 2);
    let v6 = MINIMAL.replace(
        "[[upstreams]]",
        "[server]\nlisten = \"[::1]:8080\"\n[[upstreams]]",
    );
    assert!(parse(&v6).unwrap().listen_addrs().is_ok());
}

#[test]
fn unknown_key_names_the_line() {
    let e = parse("[server]\nlisten = \"127.0.0.1:1\"\nworkerz = 2\n").unwrap_err();
    assert!(e.message.contains("line 3"), "{}", e.message);
    assert!(e.message.contains("workerz"), "{}", e.message);
}

#[test]
fn missing_env_var_is_named_with_its_line() {
    let text = MINIMAL.replace("SET_VAR", "UNSET_VAR");
    let e = parse(&text).unwrap_err();
    assert!(e.message.contains("UNSET_VAR is not set"), "{}", e.message);
    assert!(
        e.message.contains("credentials[0].api_key_env"),
        "{}",
        e.message
    );
    assert!(e.message.contains("(line 5)"), "{}", e.message);
}

#[test]
fn rejects_bad_values() {
    for (text, needle) in [
        ("[server]\nlisten = \"localhost\"\n", "server.listen"),
        ("[server]\nmax_body_bytes = 0\n", "max_body_bytes"),
        ("", "no [[upstreams]]"),
        ("[[upstreams]]\nname = \"m\"\nkind = \"mock\"\nbase_url = \"http://x\"\n", "base_url"),
        ("[[upstreams]]\nname = \"a\"\nkind = \"anthropic\"\nbase_url = \"ftp://x\"\n", "base_url"),
        ("[[upstreams]]\nname = \"a\"\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:1\"\n", "credentials"),
        ("[[upstreams]]\nname = \"a\"\nkind = \"martian\"\n", "(line 3): unknown variant `martian`"),
        (
            "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[[upstreams.credentials]]\nname = \"c\"\napi_key = \"1\"\n[[upstreams.credentials]]\nname = \"c\"\napi_key = \"2\"\n",
            "credentials[1].name: duplicate credential name \"c\"",
        ),
        ("[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[[upstreams.credentials]]\nname = \" \"\napi_key = \"1\"\n", "credentials[0].name: must not be empty"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.message.contains(needle), "{text:?} -> {}", e.message);
    }
}

#[test]
fn at_most_ten_upstreams_share_a_priority_and_stray_aliases_are_noted() {
    let mock = |i: usize, p: i32| {
        format!("[[upstreams]]\nname = \"m{i}\"\nkind = \"mock\"\npriority = {p}\n")
    };
    let ten: String = (0..10).map(|i| mock(i, 0)).collect();
    assert!(parse(&ten).is_ok());
    let e = parse(&(ten.clone() + &mock(10, 0))).unwrap_err();
    assert!(
        e.message
            .contains("at most 10 upstreams may share a priority"),
        "{}",
        e.message
    );
    assert!(parse(&(ten + &mock(10, 1))).is_ok());
    let c = parse(
        "[models.aliases]\nx = \"gpt-4\"\n[[upstreams]]\nname = \"m\"\nkind = \"mock\"\nmodels = [\"claude-*\"]\n",
    )
    .unwrap();
    assert_eq!(c.warnings().len(), 1);
    assert!(
        c.warnings()[0].contains("models.aliases.x"),
        "{:?}",
        c.warnings()
    );
}

#[test]
fn debug_output_redacts_keys() {
    let c = parse(&MINIMAL.replace("api_key_env = \"SET_VAR\"", "api_key = \"sk-secret-123\""))
        .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("sk-secret-123"));
    assert!(shown.contains("<redacted>"));
}

#[test]
fn upstream_connections_settings() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(
        (
            c.pool.max_idle_per_origin,
            c.pool.idle_timeout_ms,
            c.pool.prewarm
        ),
        (32, 30_000, 0)
    );
    assert_eq!(c.dns.ttl_ms, 30_000);
    let t = c.upstreams[0].timeouts;
    assert_eq!(
        [t.connect, t.tls_handshake, t.first_byte, t.response].map(|d| d.as_millis()),
        [5_000, 10_000, 300_000, 600_000]
    );
    assert_eq!(c.upstreams[0].proxy, None);
    let proxied = MINIMAL.replace(
        "kind = \"anthropic\"\n",
        "kind = \"anthropic\"\nproxy_url = \"http://proxy.internal:3128\"\n",
    );
    let c = parse(&proxied).unwrap();
    let proxy = c.upstreams[0].proxy.as_ref().unwrap();
    let at = (proxy.url.host.as_str(), proxy.url.port);
    assert_eq!(
        (at, proxy.authorization.as_ref()),
        (("proxy.internal", 3128), None)
    );
    let upstream = |lines: &str| {
        format!(
            "[[upstreams]]\nname = \"a\"\nkind = \"anthropic\"\n{lines}\n\
             [[upstreams.credentials]]\nname = \"c\"\napi_key = \"k\"\n"
        )
    };
    for (text, needle) in [
        (
            format!("[pool]\nprewarm = 40\n{MINIMAL}"),
            "pool.prewarm: cannot exceed max_idle_per_origin (32)",
        ),
        (
            format!("[pool]\nidle_timeout_ms = 0\n{MINIMAL}"),
            "pool.idle_timeout_ms",
        ),
        (format!("[dns]\nttl_ms = 0\n{MINIMAL}"), "dns.ttl_ms"),
        (
            "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\nproxy_url = \"http://p:1\"\n".into(),
            "proxy_url: the built-in mock",
        ),
        (
            upstream("proxy_auth = \"u:p\""),
            "proxy_auth: needs a proxy_url",
        ),
        (
            upstream("proxy_url = \"http://u:hunter2@p:1\""),
            "must not contain credentials",
        ),
        (
            upstream("proxy_url = \"http://p:1\"\nproxy_auth = \"hunter2\""),
            "must be user:password",
        ),
        (
            upstream("tls_handshake_timeout_ms = 0"),
            "timeouts must be greater than 0",
        ),
    ] {
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains(needle), "{text:?} -> {}", e.message);
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}

#[test]
fn proxy_credentials_never_show() {
    let text = MINIMAL.replace(
        "kind = \"anthropic\"\n",
        "kind = \"anthropic\"\nproxy_url = \"http://p:1\"\nproxy_auth = \"user:hunter2 with space\"\n",
    );
    let c = parse(&text).unwrap();
    let auth = c.upstreams[0].proxy.as_ref().unwrap().authorization.clone();
    assert_eq!(
        auth.as_deref(),
        Some("Basic dXNlcjpodW50ZXIyIHdpdGggc3BhY2U=")
    );
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("dXNlcjpodW50ZXIy"),
        "{shown}"
    );
}

#[test]
fn dialect_upstreams_and_model_names() {
    let c = parse(
        "[[upstreams]]\nname = \"vllm\"\nkind = \"openai\"\nbase_url = \"http://10.0.0.5:8000/v1\"\n\
         [upstreams.model_names]\n\"claude-sonnet-4-5\" = \"Qwen/Qwen3-Coder\"\n\
         [upstreams.openai]\nstream_options = false\ntop_k = true\n\
         [[upstreams]]\nname = \"gemini\"\nkind = \"gemini\"\n\
         [[upstreams.credentials]]\nname = \"g\"\napi_key_env = \"SET_VAR\"\n\
         [[upstreams]]\nname = \"openai\"\nkind = \"openai\"\n\
         [[upstreams.credentials]]\nname = \"o\"\napi_key = \"sk-o\"\n\
         [[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[upstreams.mock]\ndialect = \"gemini\"\n",
    )
    .unwrap();
    let [vllm, gemini, openai, mock] = &c.upstreams[..] else {
        panic!("four upstreams")
    };
    use crate::dialect::Dialect;
    assert_eq!(vllm.dialect(), Dialect::OpenAi);
    assert!(
        vllm.credentials.is_empty(),
        "an OpenAI-compatible server may take no key"
    );
    assert_eq!(vllm.model_name("claude-sonnet-4-5"), "Qwen/Qwen3-Coder");
    assert_eq!(vllm.model_name("claude-haiku-4-5"), "claude-haiku-4-5");
    assert!(!vllm.openai.stream_options && vllm.openai.top_k && vllm.openai.user);
    assert_eq!(vllm.base_url.as_ref().unwrap().path_prefix, "/v1");
    assert_eq!(gemini.dialect(), Dialect::Gemini);
    assert_eq!(
        gemini.base_url.as_ref().unwrap().host,
        "generativelanguage.googleapis.com"
    );
    let url = openai.base_url.as_ref().unwrap();
    assert_eq!(
        (url.host.as_str(), url.path_prefix.as_str()),
        ("api.openai.com", "/v1")
    );
    assert_eq!(mock.dialect(), Dialect::Gemini);
    for (text, needle) in [
        (
            "[[upstreams]]\nname = \"g\"\nkind = \"gemini\"\n",
            "kind \"gemini\" needs at least one",
        ),
        (
            "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[upstreams.openai]\ntop_k = true\n",
            "upstreams[0].openai: only applies",
        ),
        (
            "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[upstreams.model_names]\n\"a\" = \"\"\n",
            "model names must not be empty",
        ),
        (
            "[[upstreams]]\nname = \"o\"\nkind = \"openai\"\n[upstreams.openai]\nstream_opts = true\n",
            "unknown field `stream_opts`",
        ),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.message.contains(needle), "{text:?} -> {}", e.message);
    }
    // A mock speaking OpenAI may take the OpenAI switches.
    assert!(parse(
        "[[upstreams]]\nname = \"m\"\nkind = \"mock\"\n[upstreams.mock]\ndialect = \"openai\"\n[upstreams.openai]\nuser = false\n"
    )
    .is_ok());
}

#[test]
fn default_config_uses_mock_without_key() {
    assert_eq!(
        Config::default_for_env(None).upstreams[0].kind,
        UpstreamKind::Mock
    );
    let with_key = Config::default_for_env(Some("sk-x".into()));
    assert_eq!(with_key.upstreams[0].kind, UpstreamKind::Anthropic);
    assert_eq!(
        with_key.upstreams[0].credentials[0].secret.identity(),
        "key:sk-x"
    );
}
