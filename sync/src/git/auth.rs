//! Git credentials and the choice libgit2's credential callback makes. Secret values are kept
//! out of `Debug`, `Display` and every error.

use std::collections::BTreeMap;
use std::fmt;

use git2::CredentialType;

use super::known_hosts::KnownHosts;
use crate::Error;

/// User name sent with a token when the URL names none (GitHub, Gitea and GitLab accept any
/// user name with a personal access token).
pub const TOKEN_USERNAME: &str = "x-access-token";
/// User name for SSH when the URL names none.
pub const SSH_USERNAME: &str = "git";

/// Credentials for one repository.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// Anonymous access (or the user/password given in the URL).
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// An HTTP access token, sent as the password of basic authentication.
    Token {
        /// The token.
        token: String,
    },
    /// An SSH private key (PEM or OpenSSH format).
    SshKey {
        /// User name; the URL's, or `git`, when unset.
        username: Option<String>,
        /// The private key.
        private_key: String,
        /// Passphrase of the key.
        passphrase: Option<String>,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Self::Token { .. } => f
                .debug_struct("Token")
                .field("token", &"<redacted>")
                .finish(),
            Self::SshKey {
                username,
                passphrase,
                ..
            } => f
                .debug_struct("SshKey")
                .field("username", username)
                .field("private_key", &"<redacted>")
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

impl Credentials {
    /// The secret strings, for scrubbing messages.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        match self {
            Self::None => vec![],
            Self::Basic { password, .. } => vec![password],
            Self::Token { token } => vec![token],
            Self::SshKey {
                private_key,
                passphrase,
                ..
            } => {
                let mut v = vec![private_key.as_str()];
                v.extend(passphrase.as_deref());
                v
            }
        }
    }
}

/// Everything needed to reach one repository: credentials and the trusted SSH host keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// Credentials.
    pub credentials: Credentials,
    /// Trusted SSH host keys. SSH remotes are refused when their host is not in here.
    pub known_hosts: KnownHosts,
}

impl Auth {
    /// Reads the data of the Secret a GitSync references, with Flux's key names:
    /// `username` + `password` (basic), `password` or `bearerToken` alone (token),
    /// `identity` (SSH private key, with `password` as its passphrase) and `known_hosts`.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, Error> {
        let text = |key: &str| -> Result<Option<String>, Error> {
            match data.get(key) {
                None => Ok(None),
                Some(b) => String::from_utf8(b.clone())
                    .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_string()))
                    .map_err(|_| Error::Credentials {
                        reason: format!("key {key:?} of the Secret is not UTF-8"),
                    }),
            }
        };
        let known_hosts = match text("known_hosts")? {
            Some(k) => KnownHosts::parse(&k).map_err(|e| Error::Credentials {
                reason: format!("known_hosts: {e}"),
            })?,
            None => KnownHosts::default(),
        };
        let (username, password) = (text("username")?, text("password")?);
        let credentials = if let Some(identity) = data.get("identity") {
            let private_key =
                String::from_utf8(identity.clone()).map_err(|_| Error::Credentials {
                    reason: "key \"identity\" of the Secret is not UTF-8".into(),
                })?;
            Credentials::SshKey {
                username,
                private_key,
                passphrase: password,
            }
        } else if let Some(token) = text("bearerToken")? {
            Credentials::Token { token }
        } else {
            match (username, password) {
                (Some(username), Some(password)) => Credentials::Basic { username, password },
                (None, Some(token)) => Credentials::Token { token },
                (Some(_), None) => {
                    return Err(Error::Credentials {
                        reason: "the Secret has a username but no password".into(),
                    });
                }
                (None, None) => Credentials::None,
            }
        };
        Ok(Self {
            credentials,
            known_hosts,
        })
    }
}

/// What the credential callback answers libgit2.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum CredChoice {
    /// Only the user name (libgit2 asks for it first over SSH).
    Username(String),
    /// User name and password.
    UserPass(String, String),
    /// SSH key from memory.
    SshKey {
        username: String,
        private_key: String,
        passphrase: Option<String>,
    },
}

impl fmt::Debug for CredChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Username(u) => write!(f, "Username({u})"),
            Self::UserPass(u, _) => write!(f, "UserPass({u}, <redacted>)"),
            Self::SshKey { username, .. } => write!(f, "SshKey({username}, <redacted>)"),
        }
    }
}

impl CredChoice {
    pub(crate) fn to_cred(&self) -> Result<git2::Cred, git2::Error> {
        match self {
            Self::Username(u) => git2::Cred::username(u),
            Self::UserPass(u, p) => git2::Cred::userpass_plaintext(u, p),
            Self::SshKey {
                username,
                private_key,
                passphrase,
            } => {
                git2::Cred::ssh_key_from_memory(username, None, private_key, passphrase.as_deref())
            }
        }
    }
}

/// Picks the credential for a callback. `url_user`/`url_password` come from the URL;
/// `attempt` counts earlier calls with the same allowed types: libgit2 calls again after the
/// server refused what we sent, and sending the same thing again would loop forever.
pub(crate) fn choose_credential(
    creds: &Credentials,
    url_user: Option<&str>,
    url_password: Option<&str>,
    allowed: CredentialType,
    attempt: u32,
) -> Result<CredChoice, String> {
    if attempt > 0 {
        return Err("the remote refused the credentials".into());
    }
    if allowed.contains(CredentialType::USERNAME) {
        let user = match creds {
            Credentials::SshKey {
                username: Some(u), ..
            } => u.as_str(),
            _ => url_user.unwrap_or(SSH_USERNAME),
        };
        return Ok(CredChoice::Username(user.to_string()));
    }
    if allowed.contains(CredentialType::SSH_KEY) {
        return match creds {
            Credentials::SshKey {
                username,
                private_key,
                passphrase,
            } => Ok(CredChoice::SshKey {
                username: username
                    .as_deref()
                    .or(url_user)
                    .unwrap_or(SSH_USERNAME)
                    .to_string(),
                private_key: private_key.clone(),
                passphrase: passphrase.clone(),
            }),
            _ => Err("the remote asks for an SSH key and the Secret has no identity".into()),
        };
    }
    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
        return match creds {
            Credentials::Basic { username, password } => {
                Ok(CredChoice::UserPass(username.clone(), password.clone()))
            }
            Credentials::Token { token } => Ok(CredChoice::UserPass(
                url_user.unwrap_or(TOKEN_USERNAME).to_string(),
                token.clone(),
            )),
            Credentials::None => match (url_user, url_password) {
                (Some(u), Some(p)) => Ok(CredChoice::UserPass(u.to_string(), p.to_string())),
                (None, Some(p)) => Ok(CredChoice::UserPass(
                    TOKEN_USERNAME.to_string(),
                    p.to_string(),
                )),
                (Some(t), None) => Ok(CredChoice::UserPass(
                    TOKEN_USERNAME.to_string(),
                    t.to_string(),
                )),
                (None, None) => {
                    Err("the remote asks for credentials and none are configured".into())
                }
            },
            Credentials::SshKey { .. } => Err(
                "the remote asks for a user and password and the Secret has an SSH identity".into(),
            ),
        };
    }
    Err(format!(
        "the remote asks for an unsupported kind of credential ({allowed:?})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn secret_shapes() {
        let a =
            Auth::from_secret_data(&data(&[("username", "u"), ("password", "p4ss\n")])).unwrap();
        assert_eq!(
            a.credentials,
            Credentials::Basic {
                username: "u".into(),
                password: "p4ss".into()
            }
        );
        let a = Auth::from_secret_data(&data(&[("password", "tok")])).unwrap();
        assert_eq!(
            a.credentials,
            Credentials::Token {
                token: "tok".into()
            }
        );
        let a = Auth::from_secret_data(&data(&[("bearerToken", "tok")])).unwrap();
        assert_eq!(
            a.credentials,
            Credentials::Token {
                token: "tok".into()
            }
        );
        let a = Auth::from_secret_data(&data(&[
            ("identity", "-----BEGIN KEY-----\nabc\n"),
            ("password", "pp"),
            ("known_hosts", "# none\n"),
        ]))
        .unwrap();
        assert!(
            matches!(a.credentials, Credentials::SshKey { passphrase: Some(ref p), .. } if p == "pp")
        );
        assert!(Auth::from_secret_data(&data(&[("username", "u")])).is_err());
        let e = Auth::from_secret_data(&data(&[("known_hosts", "h ssh-rsa !!")])).unwrap_err();
        assert!(e.to_string().contains("known_hosts"), "{e}");
        assert_eq!(Auth::from_secret_data(&data(&[])).unwrap(), Auth::default());
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let all = [
            Credentials::Basic {
                username: "alice".into(),
                password: "hunter2-secret".into(),
            },
            Credentials::Token {
                token: "ghp_secret".into(),
            },
            Credentials::SshKey {
                username: None,
                private_key: "-----BEGIN OPENSSH PRIVATE KEY----- secret".into(),
                passphrase: Some("pass-secret".into()),
            },
        ];
        for c in all {
            let shown = format!(
                "{c:?} {:?}",
                Auth {
                    credentials: c.clone(),
                    ..Default::default()
                }
            );
            assert!(!shown.contains("secret"), "{shown}");
            let choice = choose_credential(
                &c,
                None,
                None,
                CredentialType::all() - CredentialType::USERNAME,
                0,
            );
            if let Ok(choice) = choice {
                assert!(!format!("{choice:?}").contains("secret"));
            }
        }
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn credential_choice_table() {
        let basic = Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let token = Credentials::Token { token: "t".into() };
        let key = Credentials::SshKey {
            username: None,
            private_key: "k".into(),
            passphrase: None,
        };
        let up = CredentialType::USER_PASS_PLAINTEXT;
        let cases: Vec<(
            &Credentials,
            Option<&str>,
            Option<&str>,
            CredentialType,
            u32,
            Result<CredChoice, ()>,
        )> = vec![
            (
                &basic,
                None,
                None,
                up,
                0,
                Ok(CredChoice::UserPass("u".into(), "p".into())),
            ),
            (&basic, None, None, up, 1, Err(())),
            (
                &token,
                None,
                None,
                up,
                0,
                Ok(CredChoice::UserPass(TOKEN_USERNAME.into(), "t".into())),
            ),
            (
                &token,
                Some("oauth2"),
                None,
                up,
                0,
                Ok(CredChoice::UserPass("oauth2".into(), "t".into())),
            ),
            (
                &Credentials::None,
                Some("a"),
                Some("b"),
                up,
                0,
                Ok(CredChoice::UserPass("a".into(), "b".into())),
            ),
            (&Credentials::None, None, None, up, 0, Err(())),
            (
                &key,
                None,
                None,
                CredentialType::USERNAME,
                0,
                Ok(CredChoice::Username("git".into())),
            ),
            (
                &key,
                Some("deploy"),
                None,
                CredentialType::SSH_KEY,
                0,
                Ok(CredChoice::SshKey {
                    username: "deploy".into(),
                    private_key: "k".into(),
                    passphrase: None,
                }),
            ),
            (&basic, None, None, CredentialType::SSH_KEY, 0, Err(())),
            (&key, None, None, up, 0, Err(())),
        ];
        for (i, (c, u, p, allowed, attempt, want)) in cases.into_iter().enumerate() {
            let got = choose_credential(c, u, p, allowed, attempt).map_err(|_| ());
            assert_eq!(got, want, "case {i}");
        }
    }
}
