//! Name resolution for deliveries that keeps to public addresses.
//!
//! The callback's host is checked at submission, but a name can be made to
//! resolve elsewhere afterwards (DNS rebinding). Resolving here, at the
//! moment of connecting, and dropping every internal address means the
//! daemon only ever connects to what it checked, unless the operator named
//! the host in `WEBHOOK_ALLOW`, which admits its addresses whatever they are.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::destination::internal_ip;

/// A resolver that drops internal addresses of hosts not named by the
/// operator.
#[derive(Debug, Clone)]
pub struct PublicOnly {
    named: Arc<HashSet<String>>,
}

impl PublicOnly {
    /// Admits every address of the `named` hosts (lower-case).
    pub fn new(named: impl IntoIterator<Item = String>) -> PublicOnly {
        PublicOnly {
            named: Arc::new(named.into_iter().map(|h| h.to_ascii_lowercase()).collect()),
        }
    }

    /// The addresses of `host` the daemon may connect to.
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, ResolveRefused> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|err| ResolveRefused::Lookup {
                host: host.to_owned(),
                reason: err.to_string(),
            })?
            .collect();
        if self
            .named
            .contains(&host.trim_end_matches('.').to_ascii_lowercase())
        {
            return Ok(found);
        }
        let public: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|addr| internal_ip(addr.ip()).is_none())
            .collect();
        if public.is_empty() {
            return Err(ResolveRefused::OnlyInternal {
                host: host.to_owned(),
                found: found.iter().map(|a| a.ip().to_string()).collect(),
            });
        }
        Ok(public)
    }
}

/// Why a callback host gave no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveRefused {
    #[error("cannot resolve {host}: {reason}")]
    Lookup { host: String, reason: String },
    #[error(
        "{host} resolves only to internal addresses ({}), which webhooks never call unless \
         EXPORT_HOST_WEBHOOK_ALLOW names the host",
        .found.join(", ")
    )]
    OnlyInternal { host: String, found: Vec<String> },
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.lookup(name.as_str()).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drops_internal_addresses_unless_the_host_is_named() {
        let strict = PublicOnly::new(Vec::new());
        assert!(matches!(
            strict.lookup("localhost").await,
            Err(ResolveRefused::OnlyInternal { .. })
        ));
        let named = PublicOnly::new(vec!["LOCALHOST".to_owned()]);
        assert!(!named.lookup("localhost").await.unwrap().is_empty());
    }
}
