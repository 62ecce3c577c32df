//! How components learn that there is work: notifications, polling, or both.

use serde::{Deserialize, Serialize};

/// How a component learns that there is work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DeploymentMode {
    /// LISTEN/NOTIFY for speed, plus polling as the safety net (the default).
    #[default]
    Hybrid,
    /// LISTEN/NOTIFY only; queues are read again after a reconnect but not on a timer.
    EventDrivenOnly,
    /// Polling only, no LISTEN connection (for example behind a transaction pooler).
    PollingOnly,
}

impl DeploymentMode {
    /// Whether to hold a LISTEN connection.
    pub fn listens(self) -> bool {
        !matches!(self, Self::PollingOnly)
    }

    /// Whether to read queues on a timer.
    pub fn polls(self) -> bool {
        !matches!(self, Self::EventDrivenOnly)
    }
}

impl std::str::FromStr for DeploymentMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "hybrid" => Ok(Self::Hybrid),
            "eventdrivenonly" => Ok(Self::EventDrivenOnly),
            "pollingonly" => Ok(Self::PollingOnly),
            _ => Err(format!(
                "unknown deployment mode {s:?}; expected Hybrid, EventDrivenOnly or PollingOnly"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes() {
        assert_eq!(
            "Hybrid".parse::<DeploymentMode>(),
            Ok(DeploymentMode::Hybrid)
        );
        assert_eq!(
            "polling_only".parse::<DeploymentMode>(),
            Ok(DeploymentMode::PollingOnly)
        );
        assert!("sometimes".parse::<DeploymentMode>().is_err());
        assert!(!DeploymentMode::PollingOnly.listens());
        assert!(!DeploymentMode::EventDrivenOnly.polls());
    }
}
