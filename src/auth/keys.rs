//! JWT keys: which key checks tokens, and (for `itsm token`) which key signs them.
//!
//! With a static key exactly one algorithm is accepted, so a token signed with
//! another one (`none`, or HS256 with an RSA public key as its "secret") fails
//! the header check. With an identity provider's key set (`jwks`), the key is
//! the one the token's `kid` names, for the configured algorithms only.

use crate::{
    config::{JwtAlgorithm, Settings},
    text::single_line_violation,
};
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde_json::{Map, Value, json};

use super::{
    Role, RoleRules,
    jwks::{KeyError, KeySetSource, RemoteKeys},
};

/// The shortest accepted HS256 secret, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
const MAX_SUBJECT_CHARS: usize = 255;
const MAX_EMAIL_CHARS: usize = 320;
const MAX_NAME_CHARS: usize = 255;

/// Where the signing key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// From the settings.
    Configured,
    /// A generated development secret stored in this file.
    DevelopmentFile(PathBuf),
    /// A generated development secret that lives only in memory.
    Ephemeral,
    /// An identity provider's key set, fetched from this URL or issuer.
    KeySet(String),
}

/// What a valid token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The `sub` claim: the person's stable id at the identity provider.
    pub subject: String,
    /// The `email` claim, when present.
    pub email: Option<String>,
    /// The `name` claim (or `preferred_username`), when present.
    pub name: Option<String>,
    /// The role from the configured role claim.
    pub role: Role,
    /// The write scopes from `scope` or `scp` (see [`super::grants`]).
    pub grants: super::Grants,
}

/// Why a token was refused. Logged, never shown to the client.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Signature, algorithm, expiry, issuer, audience or format.
    #[error("token rejected: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// The `sub` claim is missing, empty, not a string or too long.
    #[error("token has no usable `sub` claim")]
    BadSubject,
    /// A text claim holds a control character (a NUL, a newline, ...).
    #[error("the `{0}` claim holds a control character")]
    ControlCharacter(&'static str),
    /// No claim names a known role, and tokens without one are refused.
    #[error("the token names no known role (ITSM_JWT_DEFAULT_ROLE=none)")]
    NoRole,
    /// No key of the identity provider checks it.
    #[error("token rejected: {0}")]
    Key(#[from] KeyError),
}

/// What checks a token's signature.
enum Verifier {
    /// One configured (or development) key.
    Static(DecodingKey),
    /// An identity provider's key set.
    KeySet(std::sync::Arc<RemoteKeys>),
}

/// Checks tokens and, where a private key or secret is at hand, mints them.
pub struct JwtKeys {
    algorithm: Algorithm,
    /// What checks signatures.
    verifier: Verifier,
    encoding: Option<EncodingKey>,
    validation: Validation,
    roles: RoleRules,
    issuer: Option<String>,
    audience: Option<String>,
    source: KeySource,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Loads the configured key, or a development secret when none is
    /// configured and that is allowed (SQLite, or `--dev`).
    pub fn load(settings: &Settings) -> anyhow::Result<Self> {
        let jwt = &settings.jwt;
        if jwt.jwt_jwks_url.is_some() || jwt.oidc_issuer.is_some() {
            return Self::from_key_set(settings);
        }
        let (algorithm, decoding, encoding, source) = match jwt.jwt_algorithm {
            JwtAlgorithm::Hs256 => {
                if jwt.jwt_public_key.is_some() {
                    bail!(
                        "ITSM_JWT_PUBLIC_KEY is set but ITSM_JWT_ALGORITHM is HS256: \
                         set ITSM_JWT_ALGORITHM to RS256 or ES256 to use a public key"
                    );
                }
                let (secret, source) = match &jwt.jwt_secret {
                    Some(secret) => (secret.expose().as_bytes().to_vec(), KeySource::Configured),
                    None => development_secret(settings)?,
                };
                if secret.len() < MIN_SECRET_BYTES {
                    bail!("ITSM_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long");
                }
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(&secret).context("invalid HS256 secret")?,
                    Some(EncodingKey::from_secret(&secret).context("invalid HS256 secret")?),
                    source,
                )
            }
            asymmetric => {
                if jwt.jwt_secret.is_some() {
                    bail!(
                        "ITSM_JWT_SECRET is set but ITSM_JWT_ALGORITHM is {asymmetric:?}: \
                         unset the secret, or use HS256"
                    );
                }
                let Some(public) = &jwt.jwt_public_key else {
                    bail!(
                        "ITSM_JWT_ALGORITHM is {asymmetric:?} but no ITSM_JWT_PUBLIC_KEY is set: \
                         give the PEM public key of your identity provider"
                    );
                };
                let public = pem_text(public).context("could not read ITSM_JWT_PUBLIC_KEY")?;
                let private = jwt
                    .jwt_private_key
                    .as_ref()
                    .map(|key| pem_text(key.expose()))
                    .transpose()
                    .context("could not read ITSM_JWT_PRIVATE_KEY")?;
                let (algorithm, decoding, encoding) = match asymmetric {
                    JwtAlgorithm::Rs256 | JwtAlgorithm::Ps256 => (
                        asymmetric.jsonwebtoken(),
                        DecodingKey::from_rsa_pem(public.as_bytes())
                            .context("ITSM_JWT_PUBLIC_KEY is not an RSA public key in PEM")?,
                        private
                            .map(|p| EncodingKey::from_rsa_pem(p.as_bytes()))
                            .transpose()
                            .context("ITSM_JWT_PRIVATE_KEY is not an RSA private key in PEM")?,
                    ),
                    JwtAlgorithm::EdDsa => (
                        Algorithm::EdDSA,
                        DecodingKey::from_ed_pem(public.as_bytes())
                            .context("ITSM_JWT_PUBLIC_KEY is not an Ed25519 public key in PEM")?,
                        private
                            .map(|p| EncodingKey::from_ed_pem(p.as_bytes()))
                            .transpose()
                            .context("ITSM_JWT_PRIVATE_KEY is not an Ed25519 private key in PEM")?,
                    ),
                    _ => (
                        Algorithm::ES256,
                        DecodingKey::from_ec_pem(public.as_bytes())
                            .context("ITSM_JWT_PUBLIC_KEY is not a P-256 public key in PEM")?,
                        private
                            .map(|p| EncodingKey::from_ec_pem(p.as_bytes()))
                            .transpose()
                            .context("ITSM_JWT_PRIVATE_KEY is not a P-256 private key in PEM")?,
                    ),
                };
                (algorithm, decoding, encoding, KeySource::Configured)
            }
        };

        Ok(Self {
            algorithm,
            verifier: Verifier::Static(decoding),
            encoding,
            validation: validation(jwt, vec![algorithm], jwt.jwt_issuer.as_deref()),
            roles: role_rules(jwt)?,
            issuer: jwt.jwt_issuer.clone(),
            audience: jwt.jwt_audience.first().cloned(),
            source,
        })
    }

    /// Keys from an identity provider's key set (`ITSM_JWT_JWKS_URL`, or the
    /// one `ITSM_OIDC_ISSUER`'s discovery document names).
    fn from_key_set(settings: &Settings) -> anyhow::Result<Self> {
        let jwt = &settings.jwt;
        if jwt.jwt_secret.is_some() || jwt.jwt_public_key.is_some() {
            bail!(
                "ITSM_JWT_JWKS_URL or ITSM_OIDC_ISSUER is set together with a static key \
                 (ITSM_JWT_SECRET or ITSM_JWT_PUBLIC_KEY): keep one of them"
            );
        }
        let (source, described) = match (&jwt.jwt_jwks_url, &jwt.oidc_issuer) {
            (Some(url), _) => (KeySetSource::Jwks(url.clone()), url.clone()),
            (None, Some(issuer)) => (KeySetSource::Issuer(issuer.clone()), issuer.clone()),
            (None, None) => bail!("no key set configured"),
        };
        let algorithms: Vec<Algorithm> = jwt
            .jwks_algorithms
            .iter()
            .map(|a| a.jsonwebtoken())
            .collect();
        let remote = RemoteKeys::new(
            source,
            algorithms.clone(),
            jwt.jwks_cache_min,
            jwt.jwks_cache_max,
        )?;
        // The issuer tokens must name: the one configured, else the OIDC issuer.
        let issuer = jwt.jwt_issuer.clone().or_else(|| jwt.oidc_issuer.clone());
        Ok(Self {
            algorithm: algorithms[0],
            verifier: Verifier::KeySet(remote),
            encoding: None,
            validation: validation(jwt, algorithms, issuer.as_deref()),
            roles: role_rules(jwt)?,
            issuer,
            audience: jwt.jwt_audience.first().cloned(),
            source: KeySource::KeySet(described),
        })
    }

    /// Where the key came from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The key set's fetch counters, when keys come from an identity provider.
    pub fn key_set_stats(&self) -> Option<std::sync::Arc<super::jwks::KeySetStats>> {
        match &self.verifier {
            Verifier::KeySet(remote) => Some(remote.stats()),
            Verifier::Static(_) => None,
        }
    }

    /// Checks a token and reads its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_with_expiry(token)
            .await
            .map(|(claims, _)| claims)
    }

    /// Checks a token; returns its claims and when it stops being accepted
    /// (`exp` plus the leeway), in seconds since the epoch.
    pub async fn verify_with_expiry(
        &self,
        token: &str,
    ) -> Result<(Claims, Option<u64>), TokenError> {
        let token = token.trim();
        let data = match &self.verifier {
            Verifier::KeySet(remote) => {
                let header = jsonwebtoken::decode_header(token)?;
                let (key, algorithm) = remote.key_for(&header).await?;
                let mut validation = self.validation.clone();
                validation.algorithms = vec![algorithm];
                jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)?
            }
            Verifier::Static(key) => {
                jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation)?
            }
        };
        let claims = data.claims;
        // Claims follow the input policy of every other text: a control
        // character refuses the token rather than reaching the database.
        for name in [
            "sub",
            "email",
            "upn",
            "name",
            "preferred_username",
            "given_name",
            "family_name",
        ] {
            if claims
                .get(name)
                .and_then(Value::as_str)
                .and_then(single_line_violation)
                .is_some()
            {
                return Err(TokenError::ControlCharacter(name));
            }
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.chars().count() <= MAX_SUBJECT_CHARS)
            .ok_or(TokenError::BadSubject)?
            .to_owned();
        let text = |name: &str, max: usize| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(max).collect::<String>())
        };
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .map(|exp| exp.saturating_add(self.validation.leeway));
        // The standard OpenID Connect claims; Entra ID's `upn` when it has no `email`.
        let given = [
            text("given_name", MAX_NAME_CHARS),
            text("family_name", MAX_NAME_CHARS),
        ];
        let full_name = given
            .iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        let claims = Claims {
            subject,
            email: text("email", MAX_EMAIL_CHARS)
                .or_else(|| text("upn", MAX_EMAIL_CHARS).filter(|upn| upn.contains('@'))),
            name: text("name", MAX_NAME_CHARS)
                .or_else(|| text("preferred_username", MAX_NAME_CHARS))
                .or_else(|| (!full_name.is_empty()).then_some(full_name)),
            role: self.roles.role_of(&claims).ok_or(TokenError::NoRole)?,
            grants: super::Grants::from_claims(&claims),
        };
        Ok((claims, expires_at))
    }

    /// Signs a token for `claims` that expires after `ttl`.
    pub fn mint(&self, claims: &Claims, ttl: Duration) -> anyhow::Result<String> {
        let Some(key) = &self.encoding else {
            bail!(
                "cannot mint {:?} tokens without ITSM_JWT_PRIVATE_KEY; \
                 in production tokens come from your identity provider",
                self.algorithm
            );
        };
        let now = jsonwebtoken::get_current_timestamp();
        let mut body = json!({
            "sub": claims.subject,
            "role": claims.role.as_str(),
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(ttl.as_secs()),
        });
        let scope = claims.grants.scope_claim();
        let extra = [
            ("scope", scope.as_deref()),
            ("email", claims.email.as_deref()),
            ("name", claims.name.as_deref()),
            ("iss", self.issuer.as_deref()),
            ("aud", self.audience.as_deref()),
        ];
        for (name, value) in extra {
            if let Some(value) = value {
                body[name] = json!(value);
            }
        }
        jsonwebtoken::encode(&Header::new(self.algorithm), &body, key).context("could not sign")
    }
}

/// How roles are read from claims, from the settings.
fn role_rules(jwt: &crate::config::JwtSettings) -> anyhow::Result<RoleRules> {
    let map = jwt
        .jwt_role_map
        .iter()
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (theirs, ours) = pair
                .split_once('=')
                .with_context(|| format!("ITSM_JWT_ROLE_MAP: `{pair}` is not `name=ROLE`"))?;
            let role = Role::parse(ours).with_context(|| {
                format!("ITSM_JWT_ROLE_MAP: `{ours}` is not one of REQUESTER, INTEGRATION, AGENT, MANAGER, ADMIN")
            })?;
            Ok((theirs.trim().to_owned(), role))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let default =
        match jwt.jwt_default_role.trim() {
            none if none.eq_ignore_ascii_case("none") => None,
            name => Some(Role::parse(name).with_context(|| {
                format!("ITSM_JWT_DEFAULT_ROLE: `{name}` is not a role or `none`")
            })?),
        };
    Ok(RoleRules {
        claims: jwt
            .jwt_role_claim
            .iter()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        map,
        default,
    })
}

/// What every accepted token must satisfy besides its signature.
fn validation(
    jwt: &crate::config::JwtSettings,
    algorithms: Vec<Algorithm>,
    issuer: Option<&str>,
) -> Validation {
    let mut validation = Validation::new(algorithms[0]);
    validation.algorithms = algorithms;
    validation.leeway = jwt.jwt_leeway.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if let Some(issuer) = issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    if jwt.jwt_audience.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&jwt.jwt_audience);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// Reads PEM text given inline or as a file path.
fn pem_text(value: &str) -> anyhow::Result<String> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(value.to_owned());
    }
    fs::read_to_string(value).with_context(|| format!("could not read {value}"))
}

/// Loads, or creates once, the development HS256 secret.
///
/// With SQLite it lives beside the database file; with PostgreSQL (only under
/// `--dev`) in the working directory; an in-memory database gets one that
/// lives as long as the process.
fn development_secret(settings: &Settings) -> anyhow::Result<(Vec<u8>, KeySource)> {
    let path = if let Some(db) = settings.database.sqlite_path() {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push(".jwt-secret");
        db.with_file_name(name)
    } else if settings.database.is_postgres() {
        if !settings.dev {
            bail!(
                "no JWT key configured for PostgreSQL: set ITSM_JWT_SECRET (HS256, at least \
                 {MIN_SECRET_BYTES} bytes), or ITSM_JWT_ALGORITHM=RS256|ES256 with \
                 ITSM_JWT_PUBLIC_KEY; or pass --dev (ITSM_DEV=true) to use a generated \
                 development key"
            );
        }
        PathBuf::from("itsm-dev.jwt-secret")
    } else {
        return Ok((random_secret().into_bytes(), KeySource::Ephemeral));
    };
    let secret = load_or_create_secret(&path)?;
    Ok((secret.into_bytes(), KeySource::DevelopmentFile(path)))
}

fn random_secret() -> String {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads the secret at `path`, creating it first if absent. Creation is atomic:
/// the secret is written to a private temporary file that is then linked into
/// place, so two processes starting together agree on one secret and neither
/// reads a half-written file.
fn load_or_create_secret(path: &Path) -> anyhow::Result<String> {
    if !path.exists() {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
        let temp = dir.join(format!(".itsm-secret-{}", uuid::Uuid::new_v4()));
        let written = write_private(&temp, &random_secret()).and_then(|()| {
            match fs::hard_link(&temp, path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e.into()),
                _ => Ok(()),
            }
        });
        let _ = fs::remove_file(&temp);
        written.with_context(|| format!("could not create {}", path.display()))?;
    }
    let secret = fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?
        .trim()
        .to_owned();
    warn_if_shared(path);
    Ok(secret)
}

#[cfg(unix)]
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the development JWT secret is readable by other users");
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        Settings::from_args(args.iter().copied()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn keys(args: &[&str]) -> JwtKeys {
        JwtKeys::load(&settings(args)).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn alice() -> Claims {
        Claims {
            subject: "alice".into(),
            email: Some("alice@example.com".into()),
            name: Some("Alice".into()),
            role: Role::Agent,
            grants: crate::auth::Grants::default(),
        }
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn a_minted_token_verifies_to_the_same_claims() {
        let keys = keys(&["--jwt-secret", SECRET]);
        let token = keys
            .mint(&alice(), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(keys.verify(&token).await.ok(), Some(alice()));
    }

    #[test]
    fn a_key_set_is_configured_alone_and_never_for_shared_secrets() {
        let issuer = ["--oidc-issuer", "https://login.example.com/realms/it"];
        let both = JwtKeys::load(&settings(
            &[&issuer[..], &["--jwt-secret", SECRET]].concat(),
        ))
        .err()
        .map(|e| e.to_string());
        assert!(both.is_some_and(|e| e.contains("keep one of them")));
        let hs = JwtKeys::load(&settings(
            &[&issuer[..], &["--jwks-algorithms", "HS256"]].concat(),
        ))
        .err()
        .map(|e| e.to_string());
        assert!(hs.is_some_and(|e| e.contains("shared secret")));
        let keys = keys(&[&issuer[..], &["--jwks-algorithms", "rs256,EdDSA,es256"]].concat());
        assert_eq!(
            keys.source(),
            &KeySource::KeySet("https://login.example.com/realms/it".into())
        );
        assert_eq!(
            keys.validation.algorithms,
            [Algorithm::RS256, Algorithm::EdDSA, Algorithm::ES256]
        );
        assert!(keys.mint(&alice(), Duration::from_secs(60)).is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        let err = JwtKeys::load(&settings(&["--jwt-secret", "too-short"]))
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("at least 32 bytes")));
    }

    #[test]
    fn postgres_without_a_key_is_refused_unless_in_development_mode() {
        let err = JwtKeys::load(&settings(&["--database-url", "postgres://localhost/x"]))
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("ITSM_JWT_SECRET")));
    }

    #[test]
    fn in_memory_sqlite_gets_an_ephemeral_secret() {
        let keys = keys(&["--database-url", "sqlite::memory:"]);
        assert_eq!(keys.source(), &KeySource::Ephemeral);
    }

    #[tokio::test]
    async fn the_development_secret_is_created_once_and_private() {
        let dir = std::env::temp_dir().join(format!("itsm-keys-{}", uuid::Uuid::new_v4()));
        let db = dir.join("x.db");
        let url = format!("sqlite://{}", db.display());
        let first = keys(&["--database-url", &url]);
        let second = keys(&["--database-url", &url]);
        let file = dir.join("x.db.jwt-secret");
        assert_eq!(first.source(), &KeySource::DevelopmentFile(file.clone()));
        let token = first
            .mint(&alice(), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(
            second.verify(&token).await.is_ok(),
            "both loads share the secret"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&file).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600));
        }
        let _ = fs::remove_dir_all(dir);
    }
}
