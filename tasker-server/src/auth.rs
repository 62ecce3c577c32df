//! `tasker-server auth ...`: keys and tokens for operators getting started.

use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;
use clap::{Subcommand, ValueEnum};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

use tasker_shared::auth::validate_permission;

/// Key and token helpers.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Make an RS256 key pair (private.pem, public.pem) or print an HS256 secret.
    GenerateKey {
        /// rs256 (a key pair written to --out-dir) or hs256 (a secret printed to stdout).
        #[arg(long, value_enum, default_value = "rs256")]
        algorithm: KeyAlgorithm,
        /// Where the RS256 key pair is written.
        #[arg(long, default_value = "keys")]
        out_dir: PathBuf,
        /// RSA key size.
        #[arg(long, default_value_t = 2048)]
        bits: usize,
    },
    /// Sign a JWT that grants permissions, and print it.
    GenerateToken {
        /// Comma-separated permissions, such as tasks:create,tasks:read or tasks:*.
        #[arg(long, value_delimiter = ',', required = true)]
        permissions: Vec<String>,
        /// RS256: the private key (PEM) to sign with.
        #[arg(long, conflicts_with = "secret")]
        private_key: Option<PathBuf>,
        /// HS256: the shared secret to sign with.
        #[arg(long, env = "TASKER_JWT_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// The token's subject (who it is for).
        #[arg(long, default_value = "tasker-cli")]
        subject: String,
        /// Hours until it expires.
        #[arg(long, default_value_t = 24)]
        expires_in_hours: u64,
        /// Issuer; must match web.auth.jwt_issuer.
        #[arg(long, default_value = "tasker-core")]
        issuer: String,
        /// Audience; must match web.auth.jwt_audience.
        #[arg(long, default_value = "tasker-api")]
        audience: String,
    },
}

/// Key kinds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyAlgorithm {
    /// RSA key pair.
    Rs256,
    /// Shared secret.
    Hs256,
}

/// Runs an auth subcommand.
pub fn run(command: &AuthCommand) -> anyhow::Result<()> {
    match command {
        AuthCommand::GenerateKey {
            algorithm: KeyAlgorithm::Hs256,
            ..
        } => {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            println!(
                "{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            );
            eprintln!(
                "Set it as TASKER__WEB__AUTH__JWT_HS256_SECRET on the server, and sign tokens with `auth generate-token --secret`."
            );
            Ok(())
        }
        AuthCommand::GenerateKey {
            algorithm: KeyAlgorithm::Rs256,
            out_dir,
            bits,
        } => {
            anyhow::ensure!(
                (2048..=8192).contains(bits),
                "--bits must be between 2048 and 8192"
            );
            let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, *bits)
                .context("generating the RSA key")?;
            let public = rsa::RsaPublicKey::from(&private);
            std::fs::create_dir_all(out_dir)
                .with_context(|| format!("creating {}", out_dir.display()))?;
            let private_path = out_dir.join("private.pem");
            let public_path = out_dir.join("public.pem");
            let private_pem = private
                .to_pkcs8_pem(LineEnding::LF)
                .context("encoding the private key")?;
            std::fs::write(&private_path, private_pem.as_bytes())
                .with_context(|| format!("writing {}", private_path.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&private_path, std::fs::Permissions::from_mode(0o600))?;
            }
            let public_pem = public
                .to_public_key_pem(LineEnding::LF)
                .context("encoding the public key")?;
            std::fs::write(&public_path, public_pem)
                .with_context(|| format!("writing {}", public_path.display()))?;
            println!("{}", private_path.display());
            println!("{}", public_path.display());
            eprintln!(
                "Point the server at the public key (TASKER__WEB__AUTH__JWT_PUBLIC_KEY_PATH={}) and sign tokens with `auth generate-token --private-key {}`.",
                public_path.display(),
                private_path.display()
            );
            Ok(())
        }
        AuthCommand::GenerateToken {
            permissions,
            private_key,
            secret,
            subject,
            expires_in_hours,
            issuer,
            audience,
        } => {
            for p in permissions {
                validate_permission(p).map_err(anyhow::Error::msg)?;
            }
            let (algorithm, key) = match (private_key, secret) {
                (Some(path), _) => {
                    let pem = std::fs::read(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    (
                        Algorithm::RS256,
                        EncodingKey::from_rsa_pem(&pem).with_context(|| {
                            format!("{} is not an RSA private key in PEM form", path.display())
                        })?,
                    )
                }
                (None, Some(secret)) => (
                    Algorithm::HS256,
                    EncodingKey::from_secret(secret.as_bytes()),
                ),
                (None, None) => {
                    anyhow::bail!("sign with --private-key FILE (RS256) or --secret S (HS256)")
                }
            };
            let now = chrono::Utc::now().timestamp();
            let claims = serde_json::json!({
                "sub": subject,
                "iss": issuer,
                "aud": audience,
                "iat": now,
                "exp": now + i64::try_from(*expires_in_hours).unwrap_or(24) * 3600,
                "permissions": permissions,
            });
            let token = jsonwebtoken::encode(&Header::new(algorithm), &claims, &key)
                .context("signing the token")?;
            println!("{token}");
            Ok(())
        }
    }
}
