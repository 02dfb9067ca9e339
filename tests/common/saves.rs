//! The ways admins and tools save a file, done for real on disk: in place, rename-over,
//! vim-style, delete + recreate, and a Kubernetes ConfigMap `..data` symlink swap.

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a save is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Truncate, write the first half, pause, write the rest (what many editors and `>` do).
    InPlace,
    /// Write a temporary file in the same directory and rename it over the target.
    Rename,
    /// vim: move the original to a backup name, write a new file, delete the backup.
    Vim,
    /// Delete the file, then create it anew.
    DeleteRecreate,
}

pub const PLAIN_STYLES: [Style; 4] = [Style::InPlace, Style::Rename, Style::Vim, Style::DeleteRecreate];

/// Saves `content` to `path` in `style`, pausing `pause` where the style has a gap.
pub fn save(path: &Path, content: &[u8], style: Style, pause: Duration) {
    match style {
        Style::InPlace => {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .create(true)
                .open(path)
                .unwrap();
            let half = content.len() / 2;
            f.write_all(&content[..half]).unwrap();
            f.flush().unwrap();
            std::thread::sleep(pause);
            f.write_all(&content[half..]).unwrap();
        }
        Style::Rename => {
            let tmp = path.with_extension("json.tmp");
            fs::write(&tmp, content).unwrap();
            fs::rename(&tmp, path).unwrap();
        }
        Style::Vim => {
            let backup = path.with_extension("json~");
            fs::rename(path, &backup).unwrap();
            fs::write(path, content).unwrap();
            fs::remove_file(&backup).unwrap();
        }
        Style::DeleteRecreate => {
            fs::remove_file(path).unwrap();
            std::thread::sleep(pause);
            fs::write(path, content).unwrap();
        }
    }
}

/// A directory laid out as the kubelet's atomic writer mounts a ConfigMap:
/// `message.json -> ..data/message.json`, `..data -> ..<timestamp>/`, one real directory
/// per version. A mount may hold several keys (a messages directory).
pub struct ConfigMapDir {
    pub dir: PathBuf,
    names: Vec<String>,
    version: u32,
}

impl ConfigMapDir {
    /// A mount holding one key, `message.json`.
    pub fn new(dir: &Path, content: &[u8]) -> ConfigMapDir {
        ConfigMapDir::with_key(dir, "message.json", content)
    }

    /// A mount holding one key called `name`.
    pub fn with_key(dir: &Path, name: &str, content: &[u8]) -> ConfigMapDir {
        ConfigMapDir::with_keys(dir, &[(name, content)])
    }

    /// A mount holding these keys.
    pub fn with_keys(dir: &Path, files: &[(&str, &[u8])]) -> ConfigMapDir {
        let mut c = ConfigMapDir {
            dir: dir.to_path_buf(),
            names: Vec::new(),
            version: 0,
        };
        let first = c.write_version(files);
        symlink(&first, dir.join("..data")).unwrap();
        c.link_keys(files);
        c
    }

    /// The path the service is given (the first key).
    pub fn message_path(&self) -> PathBuf {
        self.dir.join(&self.names[0])
    }

    fn write_version(&mut self, files: &[(&str, &[u8])]) -> String {
        self.version += 1;
        let version = format!("..2026_11_22_10_00_00.{:06}", self.version);
        fs::create_dir(self.dir.join(&version)).unwrap();
        for (name, content) in files {
            fs::write(self.dir.join(&version).join(name), content).unwrap();
        }
        version
    }

    /// Links every key of `files` that has no link yet, removes the links of keys gone.
    fn link_keys(&mut self, files: &[(&str, &[u8])]) {
        for (name, _) in files {
            if !self.names.iter().any(|n| n == name) {
                symlink(Path::new("..data").join(name), self.dir.join(name)).unwrap();
                self.names.push(name.to_string());
            }
        }
        let (kept, gone): (Vec<String>, Vec<String>) = std::mem::take(&mut self.names)
            .into_iter()
            .partition(|n| files.iter().any(|(f, _)| f == n));
        for name in gone {
            fs::remove_file(self.dir.join(name)).unwrap();
        }
        self.names = kept;
    }

    /// The kubelet's update: new version directory, `..data_tmp` link, rename over `..data`,
    /// remove the old version directory.
    pub fn update(&mut self, content: &[u8]) {
        let name = self.names[0].clone();
        self.update_keys(&[(&name, content)]);
    }

    /// The kubelet's update to a new set of keys: as [`ConfigMapDir::update`], then links
    /// for new keys and no links for keys removed.
    pub fn update_keys(&mut self, files: &[(&str, &[u8])]) {
        let old = fs::read_link(self.dir.join("..data")).unwrap();
        let new = self.write_version(files);
        let tmp = self.dir.join("..data_tmp");
        symlink(&new, &tmp).unwrap();
        fs::rename(&tmp, self.dir.join("..data")).unwrap();
        self.link_keys(files);
        fs::remove_dir_all(self.dir.join(old)).unwrap();
    }
}
