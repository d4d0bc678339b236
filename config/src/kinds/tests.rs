//! The kinds' unit tests.

use super::*;
use crate::BindAddress;

fn s(text: &str) -> Raw {
    Raw::Str(text.to_string())
}

#[test]
fn integers_accept_text_and_toml_and_check_the_range() {
    let k = count(1, 100);
    assert_eq!(k.parse(&s("42")), Ok(42));
    assert_eq!(k.parse(&Raw::Int(7)), Ok(7));
    assert_eq!(k.parse(&Raw::List(vec![s("9")])), Ok(9));
    assert!(k.parse(&s("0")).unwrap_err().contains("minimum 1"));
    assert!(k.parse(&s("101")).unwrap_err().contains("maximum 100"));
    assert_eq!(k.parse(&s("-3")).unwrap_err(), "negative");
    assert_eq!(k.parse(&s("4x")).unwrap_err(), "not an integer");
    assert_eq!(k.parse(&Raw::Float(1.5)).unwrap_err(), "not an integer");
    assert_eq!(
        k.parse(&s("99999999999999999999999")).unwrap_err(),
        "too large"
    );
    assert_eq!(
        int::<u32>(0, 10).parse(&Raw::Int(-1)).unwrap_err(),
        "negative"
    );
}

#[test]
fn seconds_accept_integers_and_decimals() {
    let k = seconds(100);
    assert_eq!(k.parse(&s("30")), Ok(Duration::from_secs(30)));
    assert_eq!(k.parse(&s("0.5")), Ok(Duration::from_millis(500)));
    assert_eq!(k.parse(&Raw::Float(2.5)), Ok(Duration::from_millis(2500)));
    assert!(k.parse(&s("-1")).is_err());
    assert!(k.parse(&s("1e3")).is_err());
    assert!(k.parse(&s("101")).unwrap_err().contains("maximum 100"));
    assert_eq!(k.to_toml(&Duration::from_secs(3)), toml::Value::Integer(3));
    assert_eq!(
        k.to_toml(&Duration::from_millis(1500)),
        toml::Value::Float(1.5)
    );
}

#[test]
fn seconds_from_refuses_what_is_below_the_minimum() {
    let k = seconds_from(100, 60);
    assert_eq!(k.parse(&s("0.1")), Ok(Duration::from_millis(100)));
    assert_eq!(k.parse(&s("5")), Ok(Duration::from_secs(5)));
    assert_eq!(k.parse(&s("0")), Err("below the minimum 0.1".to_string()));
    assert_eq!(
        k.parse(&s("0.05")),
        Err("below the minimum 0.1".to_string())
    );
    assert_eq!(k.accepted(), "a number of seconds from 0.1 to 60");
    assert_eq!(seconds(60).accepted(), "a number of seconds from 0 to 60");
    for sample in k.samples() {
        assert!(k.parse(&s(&sample)).is_ok(), "{sample}");
    }
}

#[test]
fn umask_reads_octal_like_gunicorn() {
    assert_eq!(Umask.parse(&s("0o22")), Ok(0o22));
    assert_eq!(Umask.parse(&s("022")), Ok(0o22));
    assert_eq!(Umask.parse(&s("18")), Ok(18));
    assert_eq!(Umask.parse(&s("0")), Ok(0));
    assert_eq!(Umask.parse(&Raw::Int(0o77)), Ok(0o77));
    assert!(Umask.parse(&s("0o1000")).is_err());
    assert!(Umask.parse(&s("09")).is_err());
    assert_eq!(Umask.to_toml(&0o22), toml::Value::String("0o022".into()));
}

#[test]
fn flags_accept_the_usual_spellings() {
    for yes in ["true", "1", "YES", "on"] {
        assert_eq!(Flag.parse(&s(yes)), Ok(true));
    }
    for no in ["false", "0", "no", "Off"] {
        assert_eq!(Flag.parse(&s(no)), Ok(false));
    }
    assert!(Flag.parse(&s("maybe")).is_err());
    assert!(Flag.parse(&Raw::Int(2)).is_err());
}

#[test]
fn choices_are_case_insensitive_and_list_their_names() {
    let k = choice(&[("a", 1u8), ("b", 2u8), ("bee", 2u8)]);
    assert_eq!(k.parse(&s("B")), Ok(2));
    assert_eq!(k.parse(&s("bee")), Ok(2));
    assert!(k.parse(&s("c")).is_err());
    assert_eq!(k.accepted(), "one of a, b");
    assert_eq!(k.to_toml(&2), toml::Value::String("b".into()));
}

#[test]
fn lists_split_text_on_commas() {
    let items = |raw: &Raw| IpList.parse(raw).map(|l| l.items().to_vec());
    assert_eq!(
        items(&s("127.0.0.1, ::1")),
        Ok(vec!["127.0.0.1".to_string(), "::1".to_string()])
    );
    assert_eq!(items(&s("")), Ok(vec![]));
    assert!(IpList.parse(&s("localhost")).is_err());
    assert!(IpList.parse(&s("10.0.0.0/33")).is_err());
    assert_eq!(
        items(&Raw::List(vec![s("*"), s("10.0.0.0/8,1.2.3.4")])),
        Ok(vec!["*".into(), "10.0.0.0/8".into(), "1.2.3.4".into()])
    );
}

#[test]
fn binds_need_at_least_one_address() {
    assert!(Binds.parse(&s("")).is_err());
    assert_eq!(
        Binds.parse(&Raw::List(vec![s("127.0.0.1:0"), s("unix:/tmp/s")])),
        Ok(vec![
            BindAddress::Tcp {
                host: "127.0.0.1".into(),
                port: 0
            },
            BindAddress::Unix("/tmp/s".into())
        ])
    );
    assert_eq!(Binds.parse(&s("a:1,b:2")).map(|v| v.len()), Ok(2));
}

/// Bug: `--bind fd://3 --bind fd://3` gave one descriptor two owners (the arbiter
/// aborted on TERM with "owned file descriptor already closed").
#[test]
fn bug_the_same_address_twice_is_refused_naming_both() {
    let list = |items: &[&str]| Raw::List(items.iter().map(|i| s(i)).collect());
    assert_eq!(
        Binds.parse(&list(&["fd://3", "fd://3"])),
        Err("\"fd://3\" is given twice".to_string())
    );
    assert_eq!(
        Binds.parse(&list(&["localhost", "unix:/s", "localhost:8000"])),
        Err("\"localhost\" and \"localhost:8000\" are the same address".to_string())
    );
    assert!(Binds.parse(&list(&["unix:/s", "unix:/s"])).is_err());
    // Port 0 is a new ephemeral port each time.
    assert_eq!(
        Binds
            .parse(&list(&["127.0.0.1:0", "127.0.0.1:0"]))
            .map(|v| v.len()),
        Ok(2)
    );
}

#[test]
fn every_kind_parses_back_what_it_shows() {
    fn round_trip<K: Kind>(kind: &K)
    where
        K::Out: PartialEq + std::fmt::Debug,
    {
        for sample in kind.samples() {
            let value = kind.parse(&Raw::Str(sample.clone())).unwrap();
            let shown = kind.to_toml(&value);
            let raw = Raw::from_figment(&figment::value::Value::serialize(&shown).unwrap());
            assert_eq!(kind.parse(&raw), Ok(value), "sample {sample:?}");
        }
    }
    round_trip(&count(1, 9));
    round_trip(&int::<u64>(0, 9));
    round_trip(&seconds(9));
    round_trip(&Umask);
    round_trip(&Flag);
    round_trip(&TEXT);
    round_trip(&OptText);
    round_trip(&OptPath);
    round_trip(&Binds);
    round_trip(&IpList);
    round_trip(&choice(&[("x", 1u8), ("y", 2u8)]));
    round_trip(&PATHS);
    round_trip(&PATHS_WITH_COMMAS);
    round_trip(&EnvList);
    round_trip(&UrlPrefix);
    round_trip(&ProxyMode);
}

#[test]
fn proxy_modes_are_gunicorns_and_the_old_booleans_still_work() {
    for (text, mode) in [
        ("off", ProxyProtocol::Off),
        ("V1", ProxyProtocol::V1),
        ("v2", ProxyProtocol::V2),
        ("auto", ProxyProtocol::Auto),
        ("true", ProxyProtocol::Auto),
        ("1", ProxyProtocol::Auto),
        ("yes", ProxyProtocol::Auto),
        ("false", ProxyProtocol::Off),
        ("0", ProxyProtocol::Off),
    ] {
        assert_eq!(ProxyMode.parse(&s(text)), Ok(mode), "{text}");
    }
    assert_eq!(ProxyMode.parse(&Raw::Bool(true)), Ok(ProxyProtocol::Auto));
    assert_eq!(ProxyMode.parse(&Raw::Bool(false)), Ok(ProxyProtocol::Off));
    assert!(ProxyMode.parse(&s("v3")).is_err());
    assert!(ProxyMode.parse(&Raw::Int(2)).is_err());
}

#[test]
fn python_kinds_check_their_values() {
    let flags = |items: &[&str]| Raw::List(items.iter().map(|i| s(i)).collect());
    // One value per flag keeps its commas; a comma-separated text is split.
    assert_eq!(
        EnvList.parse(&flags(&["A=1,2", "B="])),
        Ok(vec!["A=1,2".to_string(), "B=".to_string()])
    );
    assert!(EnvList.parse(&flags(&["NOEQUALS"])).is_err());
    assert!(EnvList.parse(&flags(&["=1"])).is_err());
    assert_eq!(
        PATHS_WITH_COMMAS.parse(&flags(&["a,b"])).map(|v| v.len()),
        Ok(2)
    );
    assert_eq!(PATHS.parse(&flags(&["a,b"])).map(|v| v.len()), Ok(1));
    assert_eq!(UrlPrefix.parse(&s("/api")), Ok("/api".to_string()));
    for bad in ["api", "/api/", "/a b", "/a?b"] {
        assert!(UrlPrefix.parse(&s(bad)).is_err(), "{bad}");
    }
}
