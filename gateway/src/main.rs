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
    /// For connector authors: start a connector crate, inspect a plugin
    /// file, or call one once, with no gateway running.
    #[command(subcommand)]
    Plugin(PluginCommand),
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

#[derive(Subcommand)]
enum PluginCommand {
    /// Write a connector crate that builds for wasm32-wasip2 and passes its tests.
    New {
        /// The crate's and the connector's name, e.g. acme-sms.
        name: String,
        #[arg(long, value_parser = ["sms", "email", "whatsapp", "push"])]
        channel: String,
        /// Where the crate's folder goes.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Take the SDK from a Crossgate checkout's plugin-sdk folder.
        #[arg(long, conflicts_with = "sdk_git")]
        sdk_path: Option<PathBuf>,
        /// Take the SDK from a git repository holding Crossgate.
        #[arg(long)]
        sdk_git: Option<String>,
        /// The git tag, with --sdk-git.
        #[arg(long, requires = "sdk_git")]
        sdk_tag: Option<String>,
    },
    /// Say what a plugin file is: name, version, channel, contract, settings.
    Inspect { file: PathBuf },
    /// Deliver one message through the sandbox and print what went out and came back.
    Run {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long)]
        to: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        subject: Option<String>,
    },
    /// Hand one provider callback to the plugin and print the events it reads.
    Webhook {
        #[command(flatten)]
        target: TargetArgs,
        /// A file holding the callback's body.
        #[arg(long)]
        body: PathBuf,
        /// `Name: value`, as often as needed.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// The query string the provider called with.
        #[arg(long)]
        query: Option<String>,
    },
}

/// Which plugin file to call, as which connector of which configuration.
#[derive(clap::Args)]
struct TargetArgs {
    file: PathBuf,
    /// A gateway configuration with the connector (its plugin is replaced by FILE).
    #[arg(long, short)]
    config: PathBuf,
    /// Which connector of the configuration, when it has several.
    #[arg(long)]
    connector: Option<String>,
}

impl TargetArgs {
    fn target(&self) -> crossgate::plugin_kit::Target<'_> {
        crossgate::plugin_kit::Target {
            plugin: &self.file,
            config: &self.config,
            connector: self.connector.as_deref(),
        }
    }
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
        Command::Plugin(command) => runtime.block_on(plugin(command)),
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

/// `crossgate plugin ...`: what it says goes to stdout, or to stderr with
/// a failing exit when it went wrong.
async fn plugin(command: PluginCommand) -> anyhow::Result<ExitCode> {
    use crossgate::plugin_kit::{self, Callback, scaffold};
    let said = match command {
        PluginCommand::New {
            name,
            channel,
            dir,
            sdk_path,
            sdk_git,
            sdk_tag,
        } => {
            let sdk = match (sdk_path, sdk_git) {
                (Some(path), _) => scaffold::Sdk::Path(std::path::absolute(path)?),
                (None, Some(url)) => scaffold::Sdk::Git { url, tag: sdk_tag },
                (None, None) => scaffold::Sdk::Registry,
            };
            let channel = channel.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            scaffold::new(&scaffold::NewConnector {
                name: &name,
                channel,
                parent: &dir,
                sdk,
            })
            .map(|dir| format!("wrote {}: see its README.md\n", dir.display()))
        }
        PluginCommand::Inspect { file } => plugin_kit::inspect(&file).await,
        PluginCommand::Run {
            target,
            to,
            text,
            subject,
        } => {
            let content = crossgate::message::Content {
                subject,
                text,
                ..Default::default()
            };
            plugin_kit::run(&target.target(), &to, &content).await
        }
        PluginCommand::Webhook {
            target,
            body,
            headers,
            query,
        } => {
            let body =
                std::fs::read(&body).with_context(|| format!("cannot read {}", body.display()))?;
            let headers = headers
                .iter()
                .map(|h| match h.split_once(':') {
                    Some((name, value)) => Ok((name.trim().to_owned(), value.trim().to_owned())),
                    None => Err(anyhow::anyhow!("--header {h:?}: expected `Name: value`")),
                })
                .collect::<anyhow::Result<_>>()?;
            plugin_kit::webhook(
                &target.target(),
                Callback {
                    body,
                    headers,
                    query,
                },
            )
            .await
        }
    };
    Ok(match said {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(text) => {
            eprint!("{text}");
            ExitCode::FAILURE
        }
    })
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
