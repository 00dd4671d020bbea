//! A real PostgreSQL for the tests, started once per test binary: Debian's `postgresql` package
//! (`scripts/test` installs it where missing), `initdb` and `pg_ctl` in a temporary directory, run
//! as the `postgres` user when the tests run as root (the server refuses to run as root), listening
//! on a free port of 127.0.14.1 with TLS (a certificate for 127.0.14.1 and `localhost` from a test
//! CA made by openssl, and a second CA that signed nothing, for refusals) and on a Unix socket inside
//! the directory. `pg_hba.conf` trusts the socket (the helper's superuser connections) and asks TCP
//! clients for a SCRAM-SHA-256 password. The role [`ROLE`] logs in with [`PASSWORD`]; each test
//! takes a fresh database of its own ([`Server::fresh_db`]) owned by it.
//!
//! A watchdog stops the server (`pg_ctl stop -m immediate`) and removes the directory when this
//! process ends, however it ends: its standard input is a pipe that closes then. When the server
//! cannot start the tests fail, never skip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

/// The address the server listens on.
pub const HOST: &str = "127.0.14.1";
/// The role the tests log in as, and its password.
pub const ROLE: &str = "warden";
pub const PASSWORD: &str = "pg-test-pw-7c1e";

pub struct Server {
    pub dir: PathBuf,
    pub port: u16,
    /// The directory of the server's Unix socket.
    pub socket_dir: PathBuf,
    /// The CA that signed the server's certificate, and one that did not.
    pub ca: PathBuf,
    pub wrong_ca: PathBuf,
    /// A file holding [`PASSWORD`] (mode 0600), for `DMARC_WARDEN_DB_PASSWORD_FILE`.
    pub password_file: PathBuf,
    databases: AtomicUsize,
    /// The watchdog's standard input: closed when the process ends, which stops the server.
    _watchdog: Mutex<(Child, ChildStdin)>,
}

static SERVER: LazyLock<Server> = LazyLock::new(Server::start);

/// The server shared by this test binary, started on first use.
pub fn server() -> &'static Server {
    &SERVER
}

/// A database of one test's own.
pub struct TestDb {
    pub name: String,
    pub port: u16,
    pub ca: PathBuf,
}

impl TestDb {
    /// `postgres://warden@127.0.14.1:PORT/NAME?sslmode=verify-full&sslrootcert=CA`.
    pub fn url(&self) -> String {
        self.url_with(&format!(
            "sslmode=verify-full&sslrootcert={}",
            self.ca.display()
        ))
    }

    /// The URL with other parameters.
    pub fn url_with(&self, query: &str) -> String {
        let mut url = format!("postgres://{ROLE}@{HOST}:{}/{}", self.port, self.name);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The newest installed PostgreSQL's `bin` directory.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): scripts/test installs Debian's postgresql package")
}

/// Runs a server program as the user that owns the data: `postgres` when we are root.
fn as_owner(root: bool, program: &Path, dir: &Path) -> Command {
    let mut c = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    // The test's working directory may be closed to that user.
    c.current_dir(dir);
    c
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

/// A self-signed CA `<name>.pem` / `<name>.key`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN=dmarc-warden test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

impl Server {
    fn start() -> Server {
        let bin = bin_dir();
        let root = run(Command::new("id").arg("-u")).trim() == "0";
        let dir = tempfile::Builder::new()
            .prefix("dmarc-warden-pg.")
            .tempdir()
            .expect("a temporary directory")
            .keep();
        let d = dir.as_path();
        let socket_dir = d.join("sock");
        std::fs::create_dir(&socket_dir).unwrap();

        // Certificates: the test CA signs the server's; the wrong CA signs nothing.
        make_ca(d, "ca");
        make_ca(d, "wrong-ca");
        std::fs::write(
            d.join("server.ext"),
            format!(
                "subjectAltName=IP:{HOST},DNS:localhost\nbasicConstraints=CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                &format!("/CN={HOST}"),
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        let password_file = d.join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        set_mode(&password_file, 0o600);
        set_mode(&d.join("server.key"), 0o600);

        // The data directory, and everything the server reads, belong to the server's user.
        if root {
            let id = |flag: &str| -> u32 {
                run(Command::new("id").args([flag, "postgres"]))
                    .trim()
                    .parse()
                    .expect("the postgres user (made by Debian's postgresql package)")
            };
            let (uid, gid) = (id("-u"), id("-g"));
            for p in [d, &socket_dir, &d.join("server.key"), &d.join("server.pem")] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            }
        }
        let data = d.join("data");
        run(as_owner(root, &bin.join("initdb"), d)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ]));
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.0/8 scram-sha-256\n",
        )
        .unwrap();
        let port = free_port(HOST);
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        // A shared lock table of the size PostgreSQL's defaults give (64 × 100 = 32 × 200): the
        // real corpus's ingests, four at once, must fit it (each took 12,763 advisory locks when
        // the rollups had one a (domain, month)).
        write!(
            conf,
            "\n# dmarc-warden tests\nlisten_addresses = '{HOST}'\nport = {port}\n\
             unix_socket_directories = '{sock}'\nssl = on\nssl_cert_file = '{d}/server.pem'\n\
             ssl_key_file = '{d}/server.key'\nmax_connections = 200\n\
             max_locks_per_transaction = 32\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             password_encryption = 'scram-sha-256'\n",
            sock = socket_dir.display(),
            d = d.display(),
        )
        .unwrap();
        drop(conf);
        if root {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data));
        }

        // The watchdog first, so that a server that started is stopped whatever happens next.
        let pg_ctl = bin.join("pg_ctl");
        let stop = format!(
            "{} {} -D {} -m immediate stop",
            if root { "runuser -u postgres --" } else { "" },
            pg_ctl.display(),
            data.display()
        );
        let mut child = Command::new("sh")
            .args([
                "-c",
                &format!("cat >/dev/null; {stop} >/dev/null 2>&1; rm -rf \"$0\""),
                &d.display().to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the PostgreSQL watchdog");
        let stdin = child.stdin.take().unwrap();
        let log = d.join("server.log");
        let started = as_owner(root, &pg_ctl, d)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("run pg_ctl");
        assert!(
            started.status.success(),
            "PostgreSQL did not start: {}\n{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let server = Server {
            dir: dir.clone(),
            port,
            socket_dir,
            ca: d.join("ca.pem"),
            wrong_ca: d.join("wrong-ca.pem"),
            password_file,
            databases: AtomicUsize::new(0),
            _watchdog: Mutex::new((child, stdin)),
        };
        server
            .admin()
            .batch_execute(&format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"))
            .expect("create the test role");
        server
    }

    /// A superuser connection over the Unix socket.
    pub fn admin(&self) -> ::postgres::Client {
        self.admin_to("postgres")
    }

    /// A superuser connection to database `db`.
    pub fn admin_to(&self, db: &str) -> ::postgres::Client {
        ::postgres::Config::new()
            .host_path(&self.socket_dir)
            .port(self.port)
            .user("postgres")
            .dbname(db)
            .connect(::postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test server as its superuser: {e:?}"))
    }

    /// A new, empty database owned by [`ROLE`].
    pub fn fresh_db(&self) -> TestDb {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        self.admin()
            .batch_execute(&format!("CREATE DATABASE {name} OWNER {ROLE}"))
            .unwrap_or_else(|e| panic!("create database {name}: {e:?}"));
        TestDb {
            name,
            port: self.port,
            ca: self.ca.clone(),
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port(host: &str) -> u16 {
    std::net::TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port on loopback")
        .port()
}
