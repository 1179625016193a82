//! Where a rule scrapes a pod: the endpoint URL from the rule's `scrape:` block, the pod's
//! `prometheus.io/*` annotations and its declared container ports.

use std::net::IpAddr;

use crate::rules::{Port, Scheme, ScrapeConfig};
use crate::source::http::TlsSettings;

/// The pod facts an endpoint is resolved from.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub ip: IpAddr,
    pub port_annotation: Option<String>,
    pub path_annotation: Option<String>,
    /// `(name, number)` in declaration order; unnamed ports have the name "".
    pub container_ports: Vec<(String, u16)>,
}

/// A resolved scrape endpoint. Rules that resolve to the same endpoint share one scrape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub url: String,
    pub scheme: Scheme,
    pub ca_file: Option<std::path::PathBuf>,
    pub insecure_skip_verify: bool,
}

impl Endpoint {
    /// What picks the HTTP client that scrapes it.
    pub fn tls(&self) -> TlsSettings<'_> {
        TlsSettings {
            scheme: self.scheme,
            ca_file: self.ca_file.as_ref(),
            insecure_skip_verify: self.insecure_skip_verify,
        }
    }
}

/// Why a rule has no endpoint on a pod; the message says what to set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the pod declares no container port named {0:?}")]
    NoPortNamed(String),
    #[error("annotation prometheus.io/port={0:?} is not a port number")]
    BadPortAnnotation(String),
    #[error(
        "no scrape port: set scrape.port, annotate prometheus.io/port, or declare a container port"
    )]
    NoPort,
}

/// Resolves the endpoint, or says why there is none (the rule's evaluations then report a
/// source error naming it).
pub fn resolve(cfg: &ScrapeConfig, t: &Target) -> Result<Endpoint, EndpointError> {
    let port = match &cfg.port {
        Some(Port::Number(n)) => *n,
        Some(Port::Name(name)) => t
            .container_ports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
            .ok_or_else(|| EndpointError::NoPortNamed(name.clone()))?,
        None => match &t.port_annotation {
            Some(a) => a
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| EndpointError::BadPortAnnotation(a.clone()))?,
            None => t
                .container_ports
                .first()
                .map(|(_, p)| *p)
                .ok_or(EndpointError::NoPort)?,
        },
    };
    let mut path = cfg
        .path
        .clone()
        .or_else(|| t.path_annotation.clone())
        .unwrap_or_else(|| "/metrics".to_string());
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let host = match t.ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    Ok(Endpoint {
        url: format!("{}://{host}:{port}{path}", cfg.scheme),
        scheme: cfg.scheme,
        ca_file: cfg.ca_file.clone(),
        insecure_skip_verify: cfg.insecure_skip_verify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            ip: "10.0.0.7".parse().expect("ip"),
            port_annotation: None,
            path_annotation: None,
            container_ports: vec![("http".into(), 8080), ("metrics".into(), 9090)],
        }
    }

    #[test]
    fn rule_port_by_name_or_number_wins() {
        let cfg = ScrapeConfig {
            port: Some(Port::Name("metrics".into())),
            ..ScrapeConfig::default()
        };
        let mut t = target();
        t.port_annotation = Some("1234".into());
        assert_eq!(
            resolve(&cfg, &t).map(|e| e.url),
            Ok("http://10.0.0.7:9090/metrics".into())
        );
        let cfg = ScrapeConfig {
            port: Some(Port::Number(7000)),
            path: Some("stats".into()),
            scheme: Scheme::Https,
            ..ScrapeConfig::default()
        };
        assert_eq!(
            resolve(&cfg, &t).map(|e| e.url),
            Ok("https://10.0.0.7:7000/stats".into())
        );
    }

    #[test]
    fn annotations_then_first_port() {
        let mut t = target();
        let cfg = ScrapeConfig::default();
        assert_eq!(
            resolve(&cfg, &t).map(|e| e.url),
            Ok("http://10.0.0.7:8080/metrics".into())
        );
        t.port_annotation = Some("9102".into());
        t.path_annotation = Some("/prom".into());
        assert_eq!(
            resolve(&cfg, &t).map(|e| e.url),
            Ok("http://10.0.0.7:9102/prom".into())
        );
        t.port_annotation = Some("http".into());
        assert!(resolve(&cfg, &t).is_err_and(|e| e.to_string().contains("not a port number")));
    }

    #[test]
    fn missing_ports_are_explained() {
        let mut t = target();
        t.container_ports.clear();
        let e = resolve(&ScrapeConfig::default(), &t)
            .expect_err("no port")
            .to_string();
        assert!(e.contains("prometheus.io/port"), "{e}");
        let cfg = ScrapeConfig {
            port: Some(Port::Name("nope".into())),
            ..ScrapeConfig::default()
        };
        assert!(resolve(&cfg, &target()).is_err_and(|e| e.to_string().contains("\"nope\"")));
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let mut t = target();
        t.ip = "fd00::1".parse().expect("ip");
        assert_eq!(
            resolve(&ScrapeConfig::default(), &t).map(|e| e.url),
            Ok("http://[fd00::1]:8080/metrics".into())
        );
    }
}
