//! Everything that differs between Unix and Windows, in one place, so that the rest of the
//! crate has no `cfg`: signals, sockets shared by worker threads, file identities, file
//! modes, directory syncs and thread priorities.
//!
//! On Windows (`v8help bases` and `v8help message` on admins' workstations, where the base
//! lists live; `serve` runs too) each function does the closest thing Windows offers or
//! nothing: no SIGHUP (a save is seen by the watcher anyway), one listener served by one
//! worker thread (no SO_REUSEPORT), no inode in a file's stamp, no file modes (the users
//! file is protected by the directory's ACL), no directory sync (a rename is atomic there,
//! its durability after a power cut is up to the OS), normal thread priority.

use std::fs::{Metadata, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::Notify;

/// Which write of which file: size, modification and change times, device and inode (an
/// editor that saves by rename, or a ConfigMap swap, leaves another inode). Two looks with
/// the same stamp saw no write in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    /// Unix `ctime` (seconds, nanoseconds); zero elsewhere.
    changed: (i64, i64),
    /// Unix (device, inode); zero elsewhere.
    identity: (u64, u64),
}

impl FileStamp {
    /// The stamp of what `meta` describes.
    pub(crate) fn of(meta: &Metadata) -> FileStamp {
        #[cfg(unix)]
        let (changed, identity) = {
            use std::os::unix::fs::MetadataExt;
            ((meta.ctime(), meta.ctime_nsec()), (meta.dev(), meta.ino()))
        };
        #[cfg(not(unix))]
        let (changed, identity) = ((0, 0), (0, 0));
        FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            changed,
            identity,
        }
    }
}

/// Opens without blocking where a FIFO or device put in a file's place would otherwise hold
/// the open forever (Unix); Windows has no such files at a path.
pub(crate) fn open_nonblocking(options: &mut OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(options, libc::O_NONBLOCK);
    #[cfg(not(unix))]
    let _ = options;
}

/// Makes a file readable and writable by its owner only (the users file's password hashes).
pub(crate) fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Makes the entries of `dir` (a file created or renamed there) durable where a directory
/// can be synced.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Lowers the calling thread's CPU priority to `nice` (Linux keeps a nice value per thread,
/// so no other thread is touched); elsewhere the thread keeps its priority.
pub(crate) fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority only reads its three integer
    // arguments and names the calling thread, so no memory is touched.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Whether several sockets can listen on one address with the kernel spreading new
/// connections over them (SO_REUSEPORT); without it there is one listener.
pub(crate) const SHARED_LISTENERS: bool = cfg!(unix);

/// A non-blocking TCP socket for `addr`, ready to bind: with SO_REUSEADDR on Unix (a restart
/// binds while old connections linger) and, when `shared`, SO_REUSEPORT. Windows gets
/// neither: its SO_REUSEADDR would let another program take over a port in use.
pub(crate) fn listen_socket(addr: std::net::SocketAddr, shared: bool) -> io::Result<socket2::Socket> {
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    #[cfg(unix)]
    {
        s.set_reuse_address(true)?;
        if shared {
            s.set_reuse_port(true)?;
        }
    }
    #[cfg(not(unix))]
    let _ = shared;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Wakes `reload` on every SIGHUP (Unix; Windows has no SIGHUP).
pub(crate) fn on_hangup(reload: Arc<Notify>) -> io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                reload.notify_one();
            }
        });
    }
    #[cfg(not(unix))]
    let _ = reload;
    Ok(())
}

/// Completes on SIGINT or SIGTERM (Unix), or on Ctrl+C (Windows).
pub(crate) fn shutdown_signal() -> io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
