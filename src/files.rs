//! Files and folders Latchkey creates for its own state (the SQLite database, the generated
//! master key, the folders they live in): readable by the owner only.
//!
//! The mode is given to each `open`/`mkdir` rather than set through the process umask: a
//! umask is process-wide (it would also apply to whatever else the process or the test
//! harness creates) and changing it races with other threads. The kernel applies the umask on
//! top of the mode given, and a umask can only remove bits, so whatever the umask, the result
//! is at most 0600 (0700 for folders). Existing files and folders keep their mode: the
//! operator may have chosen it; a database or key file others can read is warned about.

use std::io;
use std::path::Path;

/// Create `dir` and any missing parents; those created here get 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

fn private_options() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

/// Create `path` empty with mode 0600 unless it exists; true when it was created here.
pub fn create_private_file(path: &Path) -> io::Result<bool> {
    match private_options().open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            warn_if_shared(path);
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Write a new file with mode 0600; fails if it exists.
pub fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    private_options().open(path)?.write_all(text.as_bytes())
}

/// Log a warning when a secret-holding file is readable or writable by group or others.
pub fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", m.permissions().mode() & 0o777),
                "readable by other users: it holds secrets, so chmod 600 it"
            );
        }
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn created_owner_only_and_existing_left_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).expect("mkdir");
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("db");
        assert!(create_private_file(&f).expect("create"));
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(!create_private_file(&f).expect("exists"));
        assert_eq!(mode(&f), 0o640);
        let k = dir.join("key");
        write_private(&k, "k").expect("write");
        assert_eq!(mode(&k), 0o600);
        assert!(write_private(&k, "again").is_err());
    }
}
