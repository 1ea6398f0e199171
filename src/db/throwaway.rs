//! A throwaway PostgreSQL cluster started from the system's server binaries.
//!
//! `otica-api dev` and the test suite use it so that nothing has to be installed or
//! configured beforehand. The cluster lives in a fresh temporary folder, listens on
//! 127.0.0.1 at a free port, and is removed when the
//! [`Cluster`] is dropped. A small watchdog shell holds a pipe from this process, so the
//! cluster is also removed when the process dies without running destructors (a test
//! binary's statics, a killed `dev`).
//!
//! PostgreSQL refuses to run as root, so when we are root the cluster runs as the
//! `postgres` system user (or `nobody` when there is none).
//!
//! The superuser `postgres` has a random password made at start: other users of the machine
//! can reach 127.0.0.1 too, and a superuser can run programs as the server's OS user.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to accept connections after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running throwaway cluster; dropping it stops the server and deletes its files.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    password: String,
    owner: Option<(u32, u32)>,
    server: Option<Child>,
    watchdog: Option<ChildStdin>,
}

/// A PgBouncer in transaction-pooling mode in front of a [`Cluster`]; stopped when dropped.
pub struct Bouncer {
    port: u16,
    password: String,
    process: Child,
    watchdog: Option<ChildStdin>,
}

/// Why a throwaway cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin; install them, e.g. `apt-get install postgresql`"
    )]
    BinariesNotFound,
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("pgbouncer not found; install it, e.g. `apt-get install pgbouncer`")]
    BouncerNotFound,
    #[error("initdb failed: {0}")]
    InitDb(String),
    #[error("the server did not accept connections within {timeout:?}; its log says:\n{log}")]
    NotReady { timeout: Duration, log: String },
}

fn io(step: &'static str) -> impl FnOnce(std::io::Error) -> ClusterError {
    move |source| ClusterError::Io { step, source }
}

impl Cluster {
    /// Creates, starts and waits for a new cluster.
    pub fn start() -> Result<Self, ClusterError> {
        let bin = find_binaries().ok_or(ClusterError::BinariesNotFound)?;
        let owner = unprivileged_owner();

        let dir = make_temp_dir()?;
        let data = dir.join("data");
        fs::create_dir(&data).map_err(io("creating the data folder"))?;
        if let Some((uid, gid)) = owner {
            chown_tree(&dir, uid, gid)?;
        }

        let password = uuid::Uuid::new_v4().simple().to_string();
        let pwfile = dir.join("pwfile");
        fs::write(&pwfile, &password).map_err(io("writing the password file"))?;
        if let Some((uid, gid)) = owner {
            chown(&pwfile, uid, gid)?;
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "--username=postgres",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            // C.UTF-8: byte-order sorting as with C, but lower() and ILIKE fold non-ASCII
            // letters (É and é), as a production locale would.
            .args([
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ])
            .arg("-D")
            .arg(&data);
        as_owner(&mut initdb, owner);
        let out = initdb.output().map_err(io("running initdb"))?;
        let _ = fs::remove_file(&pwfile);
        if !out.status.success() {
            let _ = fs::remove_dir_all(&dir);
            return Err(ClusterError::InitDb(
                String::from_utf8_lossy(&out.stderr).into(),
            ));
        }

        let port = free_port()?;
        let server = spawn_postgres(&bin, &dir, port, owner)?;
        // The watchdog finds the server through its pid file, so it also covers a restart.
        let watchdog =
            spawn_watchdog(Target::PidFile(data.join("postmaster.pid")), Some(&dir)).ok();
        let cluster = Cluster {
            bin,
            dir,
            port,
            password,
            owner,
            server: Some(server),
            watchdog,
        };
        cluster.wait_ready(0)?;
        Ok(cluster)
    }

    /// Stops the server (fast shutdown), keeping its data, as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = Command::new("kill")
                .args(["-INT", &server.id().to_string()])
                .status();
            let _ = server.wait();
        }
    }

    /// Starts the server again on the same data and port after [`Cluster::stop`].
    pub fn restart(&mut self) -> Result<(), ClusterError> {
        if self.server.is_some() {
            return Ok(());
        }
        let before = self.starts_logged();
        self.server = Some(spawn_postgres(&self.bin, &self.dir, self.port, self.owner)?);
        self.wait_ready(before)
    }

    /// A connection URL for the superuser `postgres` and the given database.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder holding the data directory, the log and the Unix socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts PgBouncer (from the system's `pgbouncer` package) on 127.0.0.1 in transaction
    /// mode, forwarding every database as the superuser `postgres`.
    pub fn start_pgbouncer(&self) -> Result<Bouncer, ClusterError> {
        let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or(ClusterError::BouncerNotFound)?;
        let port = free_port()?;
        let config = self.dir.join("pgbouncer.ini");
        let log = self.dir.join("pgbouncer.log");
        let users = self.dir.join("pgbouncer.users");
        fs::write(&users, format!("\"postgres\" \"{}\"\n", self.password))
            .map_err(io("writing the pgbouncer users"))?;
        let ini = format!(
            "[databases]\n\
             * = host=127.0.0.1 port={pg} user=postgres password={password}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = scram-sha-256\n\
             auth_file = {users}\n\
             pool_mode = transaction\n\
             max_client_conn = 1000\n\
             default_pool_size = 20\n\
             ignore_startup_parameters = extra_float_digits\n\
             logfile = {log}\n",
            pg = self.port,
            password = self.password,
            users = users.display(),
            log = log.display(),
        );
        fs::write(&config, ini).map_err(io("writing pgbouncer.ini"))?;
        fs::write(&log, "").map_err(io("creating the pgbouncer log"))?;
        if let Some((uid, gid)) = self.owner {
            for file in [&config, &log, &users] {
                chown(file, uid, gid)?;
            }
        }

        let mut command = Command::new(binary);
        command
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_owner(&mut command, self.owner);
        let process = command.spawn().map_err(io("starting pgbouncer"))?;
        let watchdog = spawn_watchdog(Target::Pid(process.id()), None).ok();
        let bouncer = Bouncer {
            port,
            password: self.password.clone(),
            process,
            watchdog,
        };
        wait_for_line(&log, "process up", START_TIMEOUT)?;
        Ok(bouncer)
    }

    /// Polls the log until the server has announced one more start than `before`.
    fn wait_ready(&self, before: usize) -> Result<(), ClusterError> {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if self.starts_logged() > before {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(ClusterError::NotReady {
            timeout: START_TIMEOUT,
            log: fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default(),
        })
    }

    /// How often the server has said it accepts connections: once per start.
    fn starts_logged(&self) -> usize {
        fs::read_to_string(self.dir.join("postgres.log"))
            .unwrap_or_default()
            .matches("ready to accept connections")
            .count()
    }
}

impl Bouncer {
    /// A connection URL through PgBouncer for the given database.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.process.id().to_string()])
            .status();
        let _ = self.process.wait();
        drop(self.watchdog.take());
    }
}

/// Polls `log` until it contains `line`, for at most `timeout`.
fn wait_for_line(log: &Path, line: &str, timeout: Duration) -> Result<(), ClusterError> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if fs::read_to_string(log).unwrap_or_default().contains(line) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(ClusterError::NotReady {
        timeout,
        log: fs::read_to_string(log).unwrap_or_default(),
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
        // Closing the pipe lets the watchdog exit; it finds nothing left to do.
        drop(self.watchdog.take());
    }
}

/// Starts the server on `dir/data`, logging to `dir/postgres.log` (appended).
fn spawn_postgres(
    bin: &Path,
    dir: &Path,
    port: u16,
    owner: Option<(u32, u32)>,
) -> Result<Child, ClusterError> {
    let log_path = dir.join("postgres.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io("opening the log"))?;
    if let Some((uid, gid)) = owner {
        chown(&log_path, uid, gid)?;
    }
    let mut postgres = Command::new(bin.join("postgres"));
    postgres
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string()])
        .arg("-k")
        .arg(dir)
        .args(["-c", "listen_addresses=127.0.0.1"])
        // Durability is pointless for a throwaway cluster; speed is not.
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io("opening the log"))?)
        .stderr(log);
    as_owner(&mut postgres, owner);
    postgres.spawn().map_err(io("starting postgres"))
}

/// The process a watchdog stops.
enum Target {
    Pid(u32),
    /// A file whose first line is the pid (PostgreSQL's `postmaster.pid`).
    PidFile(PathBuf),
}

/// Starts `sh` reading a pipe from us: when the pipe closes (we exited, however), it stops
/// the target with SIGINT and deletes `remove`. Bounded: it waits at most 30 s.
fn spawn_watchdog(target: Target, remove: Option<&Path>) -> std::io::Result<ChildStdin> {
    let script = r#"
        read _ignored
        case "$1" in
            pid) pid=$2 ;;
            *) pid=$(head -n 1 "$2" 2>/dev/null) ;;
        esac
        if [ -n "$pid" ]; then
            kill -INT "$pid" 2>/dev/null
            i=0
            while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i+1)); done
        fi
        [ -z "$3" ] || rm -rf "$3"
    "#;
    let (kind, what) = match target {
        Target::Pid(pid) => ("pid", pid.to_string().into()),
        Target::PidFile(path) => ("file", path.into_os_string()),
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("otica-pg-watchdog")
        .arg(kind)
        .arg(what)
        .arg(remove.map(Path::as_os_str).unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so a Ctrl-C aimed at us does not kill it before it cleans up.
        .process_group(0)
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Nothing is ever written; make sure the pipe is usable.
    stdin.flush()?;
    Ok(stdin)
}

/// The folder holding `initdb` and `postgres`: PATH first, then Debian's layout, newest first.
fn find_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) =
        std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find(|d| has_both(d)))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// When running as root, the (uid, gid) the cluster runs as; `None` when we are not root.
fn unprivileged_owner() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let lookup = |name: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == name)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
    };
    lookup("postgres").or_else(|| lookup("nobody"))
}

/// The owner of `/proc/self` is this process's effective user.
fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid).env("HOME", "/tmp");
    }
}

fn make_temp_dir() -> Result<PathBuf, ClusterError> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let dir = base.join(format!("otica-pg-{}-{}", std::process::id(), attempt));
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                    .map_err(io("securing the cluster folder"))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io("creating the cluster folder")(e)),
        }
    }
    Err(io("creating the cluster folder")(std::io::Error::other(
        "no free name after 100 attempts",
    )))
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), ClusterError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(io("handing the folder to the cluster user"))
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<(), ClusterError> {
    chown(dir, uid, gid)?;
    for entry in fs::read_dir(dir).map_err(io("reading the cluster folder"))? {
        let path = entry.map_err(io("reading the cluster folder"))?.path();
        chown(&path, uid, gid)?;
    }
    Ok(())
}

/// A port that was free a moment ago; the server binds it right after.
fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port())
}
