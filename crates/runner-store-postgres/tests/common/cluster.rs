//! A throwaway PostgreSQL cluster (initdb + pg_ctl in a temporary folder, on a free port) that a
//! test may restart. Runs the server as the `postgres` user when the tests run as root, since
//! PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster; stopped and removed on drop.
pub(crate) struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// Creates and starts a cluster with trust authentication and a database `test`.
    pub(crate) fn start() -> Cluster {
        let bin = find_bin();
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!("runner-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the cluster folder");
        if as_postgres {
            run(
                Command::new("chown").arg("postgres:").arg(&dir),
                "chown the cluster folder",
            );
        }
        let port = free_port();
        let cluster = Cluster {
            dir,
            bin,
            port,
            as_postgres,
        };
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "--auth=trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        // Small and quick: the test is about reconnecting, not durability of this cluster.
        let settings = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\n\
             fsync = off\nmax_connections = 100\n",
            dir = cluster.dir.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(Path::new(&cluster.data()).join("postgresql.conf"))
            .and_then(|mut file| std::io::Write::write_all(&mut file, settings.as_bytes()))
            .expect("configure the cluster");
        cluster.ctl(&["start", "-w", "-t", "60"]);
        cluster.psql_postgres("CREATE DATABASE test");
        cluster
    }

    /// Its database `test`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/test", self.port)
    }

    /// `pg_ctl restart -m fast`: ends every connection, waits until the server answers again.
    pub(crate) fn restart(&self) {
        self.ctl(&["restart", "-m", "fast", "-w", "-t", "60"]);
    }

    /// `pg_ctl stop -m fast`: ends every connection; nothing answers until [`Cluster::resume`].
    pub(crate) fn stop(&self) {
        self.ctl(&["stop", "-m", "fast", "-w", "-t", "60"]);
    }

    /// Starts the stopped server again and waits until it answers.
    pub(crate) fn resume(&self) {
        self.ctl(&["start", "-w", "-t", "60"]);
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn ctl(&self, args: &[&str]) {
        let log = self.dir.join("server.log").display().to_string();
        let data = self.data();
        let mut all = vec!["-D", &data, "-l", &log];
        all.extend_from_slice(args);
        self.pg("pg_ctl", &all);
    }

    fn psql_postgres(&self, sql: &str) {
        let port = self.port.to_string();
        let status = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qc",
                sql,
            ])
            .output()
            .expect("run psql");
        assert!(status.status.success(), "psql {sql}: {}", describe(&status));
    }

    /// Runs a PostgreSQL program, as the postgres user when we are root.
    fn pg(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(&self.dir);
        run(&mut command, program);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let path = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            Command::new(&path)
        };
        let _ = command
            .args(["-D", &data, "stop", "-m", "immediate", "-w"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The folder of initdb and pg_ctl: on PATH, else the Debian location of PostgreSQL 15.
fn find_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    let bin = on_path.unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    assert!(
        bin.join("initdb").is_file(),
        "this test starts its own PostgreSQL and needs initdb and pg_ctl (PostgreSQL 15 server \
         binaries) on PATH or in /usr/lib/postgresql/15/bin: `apt-get install postgresql-15`"
    );
    // Resolve /usr/local/bin symlinks, so that runuser finds the real binaries.
    std::fs::canonicalize(bin.join("initdb"))
        .ok()
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .unwrap_or(bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port on 127.0.0.1")
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        describe(&output)
    );
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
