//! The `waterspout` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::{App, ServerConfig};
use crate::manifest::Manifest;

#[derive(Debug, Parser)]
#[command(name = "waterspout", version, about = "Tornado rebuilt for WebAssembly")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve an app directory (one holding waterspout.toml).
    Serve(ServeArgs),
    /// Run the `build` command of every handler in the app's manifest.
    Build {
        /// The app directory.
        #[arg(default_value = ".")]
        app: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The app directory.
    #[arg(default_value = ".")]
    pub app: PathBuf,
    /// Address to listen on [default: the manifest's, else 127.0.0.1:8888].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Run the handlers' build commands first.
    #[arg(long)]
    pub build: bool,
    /// Largest request body in bytes [default: 100 MB].
    #[arg(long)]
    pub max_body_size: Option<u64>,
    /// How many guest instances may be alive at once.
    #[arg(long, default_value_t = 1000)]
    pub max_instances: u32,
    /// Directory of the compiled-code cache [default: APP/.waterspout/cache].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// Entry point of the binary: parses arguments, runs, returns the exit code.
pub fn main() -> std::process::ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WATERSPOUT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build { app } => {
            let manifest = Manifest::load(&app)?;
            crate::build::build_app(&manifest)
        }
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.build {
        crate::build::build_app(&Manifest::load(&args.app)?)?;
    }
    let mut config = ServerConfig::default();
    config.engine.max_instances = args.max_instances;
    config.engine.cache_dir = Some(
        args.cache_dir
            .clone()
            .unwrap_or_else(|| args.app.join(".waterspout").join("cache")),
    );
    if let Some(max) = args.max_body_size {
        config.max_body_size = max;
    }
    let app = App::load(&args.app, config)?;
    let listen = args.listen.unwrap_or(app.config.listen);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve_until_signal(app, listen))
}

async fn serve_until_signal(app: Arc<App>, listen: SocketAddr) -> anyhow::Result<()> {
    let server = crate::server::start(app, listen).await?;
    let trigger = server.shutdown_trigger();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("signal received; shutting down gracefully");
        let _ = trigger.send(true);
    });
    server.wait().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
