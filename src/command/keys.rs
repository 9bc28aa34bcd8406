//! Key files: Ed25519 keys as PEM, the private key PKCS#8 (`BEGIN PRIVATE KEY`), the public key
//! SPKI (`BEGIN PUBLIC KEY`), the same files `openssl genpkey -algorithm ed25519` and
//! `openssl pkey -pubout` write. A key's id is its file's name without the extension.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::config::TopicName;

/// A key file that cannot be used; each says which file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: the key id (the file's name without its extension) {detail}", path.display())]
    Name { path: PathBuf, detail: String },
    #[error(
        "{}: not an Ed25519 public key in PEM (SPKI, `BEGIN PUBLIC KEY`): {detail}",
        path.display()
    )]
    NotPublic { path: PathBuf, detail: String },
    #[error(
        "{}: not an Ed25519 private key in PEM (PKCS#8, `BEGIN PRIVATE KEY`): {detail}",
        path.display()
    )]
    NotPrivate { path: PathBuf, detail: String },
    #[error("{}: a weak Ed25519 public key (of small order): refused", path.display())]
    Weak { path: PathBuf },
    #[error("{}: key id `{id}` is already the key of {}", second.display(), first.display())]
    Duplicate {
        id: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{} exists: a key is never overwritten", path.display())]
    Exists { path: PathBuf },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make a key: {0}")]
    Make(String),
}

/// A public key the device trusts, with its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    pub id: TopicName,
    pub key: VerifyingKey,
}

/// The trusted keys by id.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<TopicName, (VerifyingKey, PathBuf)>,
}

impl TrustedKeys {
    /// Reads every file of `paths` ([`read_public_key`]).
    ///
    /// # Errors
    /// The first file that cannot be used, or two files with the same id.
    pub fn load(paths: &[PathBuf]) -> Result<TrustedKeys, KeyError> {
        let mut keys = TrustedKeys::default();
        for path in paths {
            keys.insert(read_public_key(path)?, path)?;
        }
        Ok(keys)
    }

    /// Adds `key`, read from `path`.
    ///
    /// # Errors
    /// [`KeyError::Duplicate`] when its id is taken.
    pub fn insert(&mut self, key: TrustedKey, path: &Path) -> Result<(), KeyError> {
        if let Some((_, first)) = self.keys.get(&key.id) {
            return Err(KeyError::Duplicate {
                id: key.id.to_string(),
                first: first.clone(),
                second: path.to_owned(),
            });
        }
        self.keys.insert(key.id, (key.key, path.to_owned()));
        Ok(())
    }

    /// The key of that id.
    pub fn get(&self, id: &str) -> Option<&VerifyingKey> {
        let id = TopicName::parse(id).ok()?;
        self.keys.get(&id).map(|(key, _)| key)
    }

    /// The ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &TopicName> {
        self.keys.keys()
    }
}

/// A private key and its id: signs commands. `Debug` shows the id only.
pub struct SigningIdentity {
    pub id: TopicName,
    key: SigningKey,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// A key from its 32 secret bytes (tests, and the documented example).
    pub fn from_secret(id: TopicName, secret: &[u8; 32]) -> SigningIdentity {
        SigningIdentity {
            id,
            key: SigningKey::from_bytes(secret),
        }
    }

    /// The public half, as the device trusts it.
    pub fn public(&self) -> TrustedKey {
        TrustedKey {
            id: self.id.clone(),
            key: self.key.verifying_key(),
        }
    }

    pub(crate) fn sign(&self, bytes: &[u8]) -> Signature {
        self.key.sign(bytes)
    }
}

/// The id of the key in `path`: its file name without the extension, a valid topic level.
///
/// # Errors
/// [`KeyError::Name`].
pub fn key_id(path: &Path) -> Result<TopicName, KeyError> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    TopicName::parse(stem).map_err(|detail| KeyError::Name {
        path: path.to_owned(),
        detail,
    })
}

/// Reads a public key file (SPKI PEM).
///
/// # Errors
/// [`KeyError::Read`], [`KeyError::Name`], [`KeyError::NotPublic`], [`KeyError::Weak`].
pub fn read_public_key(path: &Path) -> Result<TrustedKey, KeyError> {
    let id = key_id(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let key = VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| KeyError::NotPublic {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    if key.is_weak() {
        return Err(KeyError::Weak {
            path: path.to_owned(),
        });
    }
    Ok(TrustedKey { id, key })
}

/// Reads a private key file (PKCS#8 PEM, v1 or v2).
///
/// # Errors
/// [`KeyError::Read`], [`KeyError::Name`], [`KeyError::NotPrivate`].
pub fn read_private_key(path: &Path) -> Result<SigningIdentity, KeyError> {
    let id = key_id(path)?;
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?,
    );
    let key = SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| KeyError::NotPrivate {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(SigningIdentity { id, key })
}

/// The two files [`generate`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFiles {
    /// `DIR/NAME.key`, mode 0600.
    pub private: PathBuf,
    /// `DIR/NAME.pub`, mode 0644.
    pub public: PathBuf,
}

/// Makes a key pair from the system's random source and writes `dir/name.key` (PKCS#8 v1 PEM,
/// mode 0600) and `dir/name.pub` (SPKI PEM), creating `dir` (0700) when missing. Neither file
/// may exist already.
///
/// # Errors
/// [`KeyError::Name`] for a bad name, [`KeyError::Exists`], [`KeyError::Write`],
/// [`KeyError::Make`].
pub fn generate(dir: &Path, name: &str) -> Result<KeyFiles, KeyError> {
    let files = KeyFiles {
        private: dir.join(format!("{name}.key")),
        public: dir.join(format!("{name}.pub")),
    };
    TopicName::parse(name).map_err(|detail| KeyError::Name {
        path: files.private.clone(),
        detail,
    })?;
    for path in [&files.private, &files.public] {
        if path.symlink_metadata().is_ok() {
            return Err(KeyError::Exists { path: path.clone() });
        }
    }
    let key = SigningKey::generate(&mut rand_core::OsRng);
    // PKCS#8 v1 (no public key inside), as `openssl genpkey` writes it.
    let private_pem = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .map_err(|e| KeyError::Make(e.to_string()))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Make(e.to_string()))?;

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| KeyError::Write {
            path: dir.to_owned(),
            source,
        })?;
    write_new(&files.private, private_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&files.public, public_pem.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&files.private);
        return Err(e);
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| KeyError::Write {
            path: dir.to_owned(),
            source,
        })?;
    Ok(files)
}

/// Creates `path` (never replacing a file) with `mode`, writes `contents` and syncs it.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let write_error = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists {
                path: path.to_owned(),
            },
            _ => write_error(source),
        })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_keys_read_back_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let files = generate(&keys, "central").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.private), 0o600);
        assert_eq!(mode(&files.public), 0o644);
        assert_eq!(mode(&keys), 0o700);
        let private = read_private_key(&files.private).unwrap();
        let public = read_public_key(&files.public).unwrap();
        assert_eq!(private.public(), public);
        assert_eq!(public.id.as_str(), "central");
        assert!(!format!("{private:?}").contains("key:"));
        let text = std::fs::read_to_string(&files.private).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");

        let before = std::fs::read(&files.private).unwrap();
        let error = generate(&keys, "central").unwrap_err();
        assert!(matches!(error, KeyError::Exists { .. }), "{error}");
        assert_eq!(std::fs::read(&files.private).unwrap(), before);
        // Only the public half there: still refused, nothing written.
        std::fs::remove_file(&files.private).unwrap();
        assert!(matches!(
            generate(&keys, "central"),
            Err(KeyError::Exists { .. })
        ));
        assert!(!files.private.exists());

        assert!(matches!(generate(&keys, "a b"), Err(KeyError::Name { .. })));
    }

    #[test]
    fn bad_key_files_say_which_file_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(dir.path(), "central").unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let private_text = std::fs::read_to_string(&generated.private).unwrap();
        let public_text = std::fs::read_to_string(&generated.public).unwrap();
        // (file, read as public?, words in the error)
        let cases = [
            (
                write("garbage.pub", "hello"),
                true,
                "not an Ed25519 public key",
            ),
            (
                write("swapped.pub", &private_text),
                true,
                "not an Ed25519 public key",
            ),
            (
                write("swapped.key", &public_text),
                false,
                "not an Ed25519 private key",
            ),
            (write("bad name.pub", &public_text), true, "key id"),
            (dir.path().join("missing.pub"), true, "cannot read"),
            (dir.path().join("missing.key"), false, "cannot read"),
        ];
        for (path, public, words) in cases {
            let error = if public {
                read_public_key(&path).unwrap_err().to_string()
            } else {
                read_private_key(&path).unwrap_err().to_string()
            };
            assert!(error.contains(words), "{error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert!(!error.contains('\n'), "{error}");
            assert!(!error.contains("PRIVATE KEY-----"), "{error}");
        }
    }

    #[test]
    fn two_files_with_one_id_are_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let first = generate(a.path(), "central").unwrap().public;
        let second = generate(b.path(), "central").unwrap().public;
        let error = TrustedKeys::load(&[first, second.clone()]).unwrap_err();
        assert!(matches!(error, KeyError::Duplicate { .. }), "{error}");
        assert!(error.to_string().contains(&second.display().to_string()));
    }
}
