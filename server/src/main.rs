//! `berth`: the command line. Each failure ends with one line on stderr and a non-zero exit.

use std::io::Read;
use std::process::ExitCode;

use anyhow::anyhow;
use berth_core::access::Caller;
use berth_core::config::{Config, LogFormat};
use berth_core::{crypto, store};
use berth_server::startup::{self, Services};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "berth", version, about = "Berth: a multi-tenant hosting control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and UI (and, unless --no-workers, the workers) in one process.
    Serve {
        /// Serve HTTP only; run `berth worker` elsewhere for background work.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run only the background workers.
    Worker,
    /// Apply database migrations and exit (start-up also does this).
    Migrate,
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Background jobs.
    Job {
        #[command(subcommand)]
        command: JobCommand,
    },
    /// Manage the site images Berth builds itself.
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
    },
    /// Berth's own nginx (managed ingress), which keeps serving while Berth is stopped.
    Ingress {
        #[command(subcommand)]
        command: IngressCommand,
    },
    /// Site backups (docs/backups.md).
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Print `export` lines that point the restic CLI at a customer's repository (its location
    /// and the password derived from the secret key), for `eval`; keep the output private.
    Restic {
        /// The customer whose repository to open.
        customer: uuid::Uuid,
    },
}

#[derive(Subcommand)]
enum IngressCommand {
    /// Take every site offline: stop Berth's nginx and keep it down until `berth ingress start`
    /// or Berth's next start.
    Stop,
    /// Start Berth's nginx (or adopt the running one) with the routes last written.
    Start,
}

#[derive(Subcommand)]
enum JobCommand {
    /// Enqueue a job by its kind name (what a schedule would do), e.g. `housekeeping.retention`.
    Enqueue {
        /// The job kind; `berth job kinds` lists them.
        name: String,
        /// The job's data as JSON.
        #[arg(long, default_value = "{}")]
        payload: String,
        /// The customer the job works for.
        #[arg(long)]
        customer: Option<uuid::Uuid>,
    },
    /// List the job kinds this build runs.
    Kinds,
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Build berth/site-static:latest (the default site image) on the Docker engine.
    Build {
        /// The statically linked busybox put into the image (Debian: busybox-static).
        #[arg(long, default_value = berth_runtime::images::DEFAULT_BUSYBOX)]
        busybox: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an administrator; prints a generated password unless --password-stdin is given.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the configuration in force (secrets masked) and check the database and Redis.
    Check,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new API token for the user with this e-mail.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

fn main() -> ExitCode {
    berth_server::startup::return_freed_memory();
    berth_server::startup::install_tls_provider();
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(problems) => {
            for p in problems {
                eprintln!("error: {p}");
            }
            return ExitCode::FAILURE;
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            let line = format!("{e:#}").split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.server.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.server.log_format {
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Config { command: ConfigCommand::Check } => return config_check(config).await,
        Command::Serve { no_workers } => {
            let services = Services::connect(config).await?;
            services.migrate().await?;
            if let Some((email, password)) = startup::bootstrap_admin(&services).await? {
                println!("Admin login: {email} / {password}");
            }
            let listener = tokio::net::TcpListener::bind(services.config.server.listen)
                .await
                .map_err(|e| anyhow!("cannot listen on {}: {e}", services.config.server.listen))?;
            startup::serve(&services, listener, !no_workers, startup::shutdown_signal()).await?;
        }
        Command::Worker => {
            let services = Services::connect(config).await?;
            services.migrate().await?;
            startup::run_worker(&services, startup::shutdown_signal()).await?;
        }
        Command::Images { command: ImagesCommand::Build { busybox } } => {
            let host = config
                .runtime
                .docker_host
                .clone()
                .ok_or_else(|| anyhow!("BERTH_DOCKER_HOST is off: no Docker engine to build on"))?;
            let engine = berth_runtime::docker::DockerEngine::connect(&host)?;
            let id = berth_runtime::images::build_site_static(&engine, &busybox).await?;
            println!("Built {} ({id}).", berth_runtime::images::SITE_STATIC_TAG);
        }
        Command::Ingress { command } => {
            let ingress = berth_runtime::ingress::Ingress::new(&config);
            match command {
                IngressCommand::Stop => match ingress.stop().await? {
                    Some(pid) => println!("Stopped Berth's nginx (pid {pid}); sites are offline until `berth ingress start` or Berth's next start."),
                    None => println!("Berth's nginx was not running; it stays down until `berth ingress start` or Berth's next start."),
                },
                IngressCommand::Start => {
                    if ingress.mode() != berth_core::config::IngressMode::Managed {
                        return Err(anyhow!("BERTH_INGRESS_MODE is {}: Berth runs no nginx of its own", ingress.mode().as_str()));
                    }
                    ingress.start().await?;
                    println!("Berth's nginx serves on {}.", ingress.listen());
                }
            }
        }
        Command::Backup { command: BackupCommand::Restic { customer } } => {
            let services = Services::connect(config).await?;
            let backups = &services.worker_env.backups;
            let quote = |v: &str| format!("'{}'", v.replace('\'', "'\\''"));
            println!("export RESTIC_REPOSITORY={}", quote(&backups.restic_url(customer)));
            println!("export RESTIC_PASSWORD={}", quote(&backups.password(customer)));
        }
        Command::Migrate => {
            let services = Services::connect(config).await?;
            services.migrate().await?;
            println!("Database is up to date.");
        }
        Command::Admin { command: AdminCommand::Create { email, password_stdin } } => {
            let services = Services::connect(config).await?;
            services.migrate().await?;
            let (password, generated) = if password_stdin {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).map_err(|e| anyhow!("cannot read the password: {e}"))?;
                (text.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (crypto::random_password(), true)
            };
            let user = store::users::create_admin(&services.db, &Caller::system("cli"), &email, &password).await?;
            if generated {
                println!("Admin login: {} / {password}", user.email);
            } else {
                println!("Admin {} created.", user.email);
            }
        }
        Command::Token { command: TokenCommand::Create { email, name } } => {
            let services = Services::connect(config).await?;
            services.migrate().await?;
            let user = store::users::find_by_email(&services.db, &email)
                .await?
                .filter(|u| !u.disabled)
                .ok_or_else(|| anyhow!("no enabled user with e-mail {email}"))?;
            let (_, token) = store::tokens::create(&services.db, &Caller::system("cli"), &user, &name).await?;
            println!("{token}");
        }
        Command::Job { command: JobCommand::Kinds } => {
            for name in berth_workers::registry().names() {
                println!("{name}");
            }
        }
        Command::Job { command: JobCommand::Enqueue { name, payload, customer } } => {
            let payload: serde_json::Value =
                serde_json::from_str(&payload).map_err(|e| anyhow!("--payload is not JSON: {e}"))?;
            let services = Services::connect(config).await?;
            services.migrate().await?;
            match berth_workers::queue::enqueue_by_name(
                &services.db,
                &berth_workers::registry(),
                &Caller::system("cli"),
                &name,
                payload,
                customer,
            )
            .await?
            {
                Some(id) => println!("Enqueued {name} as job {id}."),
                None => println!("A {name} job with the same key is already queued or running; nothing enqueued."),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the configuration in force, then checks the database and Redis; every problem is one
/// line on stderr and makes the exit code non-zero.
async fn config_check(config: Config) -> anyhow::Result<ExitCode> {
    for line in config.describe() {
        println!("{line}");
    }
    let mut ok = true;
    if let Err(e) = berth_core::db::connect(&config).await {
        eprintln!("error: {e}");
        ok = false;
    }
    if let Some(url) = &config.server.redis_url {
        if let Err(e) = startup::connect_redis(url.expose()).await {
            eprintln!("error: {e}");
            ok = false;
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
