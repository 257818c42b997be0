//! A `plinth serve` process for a test: started on an ephemeral port, stopped by SIGTERM (or
//! killed when dropped).

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses part of it"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A running `plinth serve`.
pub struct PlinthServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl PlinthServer {
    /// Starts `plinth serve --listen 127.0.0.1:0 --data-dir DATA_DIR [--database-url URL]` and
    /// waits for it to say where it listens.
    pub fn start(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<PlinthServer> {
        Self::start_with(data_dir, database_url, "info", Stdio::inherit(), &[])
    }

    /// As [`PlinthServer::start`], with more `plinth serve` arguments.
    pub fn start_with_args(
        data_dir: &Path,
        database_url: Option<&str>,
        args: &[&str],
    ) -> anyhow::Result<PlinthServer> {
        Self::start_with(data_dir, database_url, "info", Stdio::inherit(), args)
    }

    /// As [`PlinthServer::start`], with `env` added to the process's environment.
    pub fn start_with_env(
        data_dir: &Path,
        database_url: Option<&str>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<PlinthServer> {
        Self::spawn(&[], env, data_dir, database_url, "info", Stdio::inherit())
    }

    /// As [`PlinthServer::start_with_env`], listening on `listen` (`127.0.0.1:PORT`, a port
    /// picked beforehand): for a server that must be told its own address, such as
    /// `PLINTH_PUBLIC_URL` for the payment processor's return pages.
    pub fn start_on_with_env(
        listen: &str,
        data_dir: &Path,
        database_url: Option<&str>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<PlinthServer> {
        Self::spawn_on(
            listen,
            &[],
            env,
            data_dir,
            database_url,
            "info",
            Stdio::inherit(),
        )
    }

    /// As [`PlinthServer::start`], logging at `PLINTH_LOG=filter` into `log_file` (for tests
    /// that read what the server logs).
    pub fn start_logging_to(
        data_dir: &Path,
        database_url: Option<&str>,
        filter: &str,
        log_file: &Path,
    ) -> anyhow::Result<PlinthServer> {
        Self::start_logging_with_args(data_dir, database_url, filter, log_file, &[])
    }

    /// As [`PlinthServer::start_logging_to`], with more `plinth serve` arguments.
    pub fn start_logging_with_args(
        data_dir: &Path,
        database_url: Option<&str>,
        filter: &str,
        log_file: &Path,
        args: &[&str],
    ) -> anyhow::Result<PlinthServer> {
        let file = std::fs::File::create(log_file)?;
        Self::start_with(data_dir, database_url, filter, Stdio::from(file), args)
    }

    fn start_with(
        data_dir: &Path,
        database_url: Option<&str>,
        filter: &str,
        stderr: Stdio,
        args: &[&str],
    ) -> anyhow::Result<PlinthServer> {
        Self::spawn(args, &[], data_dir, database_url, filter, stderr)
    }

    fn spawn(
        args: &[&str],
        env: &[(&str, &str)],
        data_dir: &Path,
        database_url: Option<&str>,
        filter: &str,
        stderr: Stdio,
    ) -> anyhow::Result<PlinthServer> {
        Self::spawn_on(
            "127.0.0.1:0",
            args,
            env,
            data_dir,
            database_url,
            filter,
            stderr,
        )
    }

    fn spawn_on(
        listen: &str,
        args: &[&str],
        env: &[(&str, &str)],
        data_dir: &Path,
        database_url: Option<&str>,
        filter: &str,
        stderr: Stdio,
    ) -> anyhow::Result<PlinthServer> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plinth"));
        command
            .args([
                "serve",
                "--listen",
                listen,
                "--drain-secs",
                "5",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(args)
            .envs(env.iter().copied())
            .env("PLINTH_LOG", filter)
            .env_remove("PLINTH_LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        let mut child = command.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(base) = line.trim().strip_prefix("plinth serve: listening on ") else {
            let _ = child.kill();
            anyhow::bail!("plinth serve did not start; it printed {line:?}");
        };
        Ok(PlinthServer {
            base: base.to_owned(),
            child,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Sends SIGTERM and waits (at most 30 s) for the process to exit.
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid} failed");
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("plinth serve did not stop within 30 s of SIGTERM")
    }
}

impl Drop for PlinthServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `plinth admin bootstrap` against the same storage; returns (exit ok, stdout, stderr).
pub fn bootstrap(
    data_dir: &Path,
    database_url: Option<&str>,
) -> anyhow::Result<(bool, String, String)> {
    bootstrap_with_password(data_dir, database_url, None)
}

/// Runs `plinth admin bootstrap`, with `--password-stdin` fed `password` when there is one;
/// returns (exit ok, stdout, stderr).
pub fn bootstrap_with_password(
    data_dir: &Path,
    database_url: Option<&str>,
    password: Option<&str>,
) -> anyhow::Result<(bool, String, String)> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plinth"));
    command
        .args(["admin", "bootstrap", "--data-dir"])
        .arg(data_dir);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    if password.is_some() {
        command.arg("--password-stdin");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(mut stdin), Some(password)) = (child.stdin.take(), password) {
        writeln!(stdin, "{password}")?;
    }
    let output = child.wait_with_output()?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// `plinth serve` processes of one deployment on one PostgreSQL database (`--role`): they
/// share the marketplace key (one file under `dir`), the secrets key and the audit key, and
/// each has its own data dir `dir/<name>`.
pub struct Cluster {
    dir: PathBuf,
    url: String,
    key_arg: String,
    env: Vec<(String, String)>,
}

impl Cluster {
    /// A deployment in `dir` on the database at `url`, with fresh keys.
    pub fn new(dir: &Path, url: &str) -> anyhow::Result<Cluster> {
        let (_, secrets) = plinth_marketplace::secrets::SecretsKey::generate()?;
        let (_, audit) = plinth_marketplace::audit::key::AuditKey::generate()?;
        Ok(Cluster {
            dir: dir.to_path_buf(),
            url: url.to_owned(),
            key_arg: dir.join("marketplace.key").to_string_lossy().into_owned(),
            env: vec![
                ("PLINTH_SECRETS_KEY".to_owned(), secrets),
                ("PLINTH_AUDIT_KEY".to_owned(), audit),
            ],
        })
    }

    /// Every process also gets `name=value` in its environment.
    #[must_use]
    pub fn with_env(mut self, name: &str, value: &str) -> Cluster {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The data dir of process `name`.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts process `name` as `--role role` with `args` more, logging at `info` to this
    /// test's stderr.
    pub fn start(&self, name: &str, role: &str, args: &[&str]) -> anyhow::Result<PlinthServer> {
        self.spawn(name, role, args, "info", Stdio::inherit())
    }

    /// As [`Cluster::start`], logging at `warn` into `dir/<name>.log`.
    pub fn start_quiet(
        &self,
        name: &str,
        role: &str,
        args: &[&str],
    ) -> anyhow::Result<PlinthServer> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))?;
        self.spawn(name, role, args, "warn", Stdio::from(log))
    }

    fn spawn(
        &self,
        name: &str,
        role: &str,
        more: &[&str],
        filter: &str,
        stderr: Stdio,
    ) -> anyhow::Result<PlinthServer> {
        let mut args = vec!["--role", role, "--marketplace-key", &self.key_arg];
        args.extend_from_slice(more);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        PlinthServer::spawn(
            &args,
            &env,
            &self.data_dir(name),
            Some(&self.url),
            filter,
            stderr,
        )
    }
}
