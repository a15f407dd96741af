//! The `crossgate` command line.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use crossgate::config::{self, Config, ConfigReport};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// glibc's allocator serialises the many small allocations of concurrent
/// requests and sandbox calls on its arena locks; mimalloc's per-thread heaps
/// do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "crossgate", version, about = "Cross-channel message gateway")]
struct Cli {
    /// `text` for people, `json` (one object per line, span fields such as
    /// `message_id` included) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Configuration file; without it, the embedded default (config/crossgate.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Parse and validate a configuration and load every plugin; print every error.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Bring the database's schema up to this build's (the gateway also does
    /// this when it starts).
    Migrate {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Only report the schema version and what would run; change nothing.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    // RUST_BACKTRACE=1 (common in shells and CI) also makes every library
    // error capture a backtrace, and provider calls create errors routinely
    // (closed streams, refused requests). Panics keep their backtraces;
    // errors only get one when RUST_LIB_BACKTRACE asks for it explicitly.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn,wasmtime=warn,cranelift=warn".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve { config } => runtime.block_on(serve(config.as_deref())),
        Command::Check { config } => runtime.block_on(check(config.as_deref())),
        Command::Migrate { config, check } => runtime.block_on(migrate(config.as_deref(), check)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: Option<&Path>) -> Result<Config, ConfigReport> {
    match path {
        Some(path) => config::load(path).map(|(config, _)| config),
        None => config::parse("<embedded default>", config::EMBEDDED_DEFAULT, &|var| {
            std::env::var(var).ok()
        }),
    }
}

async fn serve(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = match read(path) {
        Ok(config) => config,
        Err(report) => {
            eprint!("{report}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    crossgate::serve(listener, config, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// `crossgate check`: every configuration error, then every plugin error.
async fn check(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (name, text) = match path {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => (
            "<embedded default>".to_owned(),
            config::EMBEDDED_DEFAULT.to_owned(),
        ),
    };
    match crossgate::check(&name, &text, &|var| std::env::var(var).ok()).await {
        Ok(summary) => {
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Err(report) => {
            eprint!("{report}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `crossgate migrate [--check]`.
async fn migrate(path: Option<&Path>, check: bool) -> anyhow::Result<ExitCode> {
    let config = match read(path) {
        Ok(config) => config,
        Err(report) => {
            eprint!("{report}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let status = crossgate::store::schema_status(&config.database).await?;
    println!("{status}");
    if !check && !status.pending.is_empty() {
        let clock = crossgate::clock::Clock::from_config(&config.clock);
        crossgate::store::open(&config.database, 1, &config.node_name(), clock.now()).await?;
        println!(
            "applied; now at version {}",
            status.pending.last().map_or(0, |m| m.version)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
