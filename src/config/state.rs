//! `[state]`: where what must outlive the process is kept.
//!
//! Today that is the record of each batch and file created through the gateway (which upstream
//! credential holds it, which client key owns it): without it, a restart would send reads of
//! those objects to credentials that cannot know them. The directory is created on first use.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// The state directory; when unset, [`StateConfig::dir`] picks one.
    pub dir: Option<PathBuf>,
}

impl StateConfig {
    /// The directory in use: `dir` when set; else systemd's `$STATE_DIRECTORY`, else
    /// `$XDG_STATE_HOME/ringgate`, else `~/.local/state/ringgate`, else `./ringgate-state`.
    pub fn dir(&self, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
        let var = |k: &str| env(k).filter(|v| !v.is_empty());
        if let Some(dir) = &self.dir {
            return dir.clone();
        }
        if let Some(dir) = var("STATE_DIRECTORY") {
            // systemd may list several, separated by colons: the first is ours.
            return PathBuf::from(dir.split(':').next().unwrap_or(&dir));
        }
        if let Some(dir) = var("XDG_STATE_HOME") {
            return PathBuf::from(dir).join("ringgate");
        }
        match var("HOME") {
            Some(home) => PathBuf::from(home).join(".local/state/ringgate"),
            None => PathBuf::from("ringgate-state"),
        }
    }

    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        match &self.dir {
            Some(d) if d.as_os_str().is_empty() => Err((
                "dir",
                "must not be empty (leave it out for the default)".into(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_in_use() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let unset = StateConfig::default();
        let set = StateConfig {
            dir: Some("/srv/rg".into()),
        };
        let all = vars(&[
            ("STATE_DIRECTORY", "/var/lib/ringgate:/var/lib/other"),
            ("XDG_STATE_HOME", "/x"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(set.dir(&all), PathBuf::from("/srv/rg"));
        assert_eq!(unset.dir(&all), PathBuf::from("/var/lib/ringgate"));
        let xdg = vars(&[("XDG_STATE_HOME", "/x"), ("HOME", "/home/u")]);
        assert_eq!(unset.dir(&xdg), PathBuf::from("/x/ringgate"));
        let home = vars(&[("HOME", "/home/u")]);
        assert_eq!(
            unset.dir(&home),
            PathBuf::from("/home/u/.local/state/ringgate")
        );
        assert_eq!(unset.dir(&vars(&[])), PathBuf::from("ringgate-state"));
        let empty = StateConfig {
            dir: Some("".into()),
        };
        assert_eq!(empty.check().unwrap_err().0, "dir");
    }
}
