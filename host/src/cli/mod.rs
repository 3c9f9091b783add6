//! The `waterspout` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::admin::client::AdminArgs;
use crate::app::App;
use crate::config::{AdminToken, ServerConfig};
use crate::manifest::Manifest;

mod build;
mod check;
pub mod log_writer;
mod new;

#[derive(Debug, Parser)]
#[command(name = "waterspout", version, about = "Tornado rebuilt for WebAssembly")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve an app directory (one holding waterspout.toml), or a Tornado
    /// app file (hello.py), built as it is with its Application's routes.
    Serve(Box<ServeArgs>),
    /// Run the `build` command of every handler in the app's manifest; for a
    /// Tornado app file, write its component (-o) and a manifest beside it.
    Build {
        /// The app directory, or a Tornado app file (hello.py).
        #[arg(default_value = ".")]
        app: PathBuf,
        /// For a Tornado app file: the component to write [default: DIR/.waterspout/STEM/STEM.wasm].
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Create an app directory from a template: a handler, its manifest and
    /// a test in the language's usual runner.
    New(new::NewArgs),
    /// Check an app without serving it: the manifest, then every handler's
    /// component (world, imports, limits). Exit status 0 when all is well, 1
    /// otherwise (for CI).
    Check {
        /// The app directory, or its manifest file.
        #[arg(default_value = ".")]
        app: PathBuf,
        /// Run the handlers' build commands first.
        #[arg(long)]
        build: bool,
    },
    /// Upload FILE as a new version of handler NAME and activate it.
    Deploy {
        /// The handler's name (a new name creates a handler).
        name: String,
        /// The component (.wasm).
        file: PathBuf,
        /// Store the version without activating it.
        #[arg(long)]
        no_activate: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List the server's handlers and their active versions.
    Handlers {
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List a handler's versions.
    Versions {
        name: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make a stored version of a handler the active one.
    Activate {
        name: String,
        version: u64,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Re-activate the version that was active before the current one.
    Rollback {
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The app directory, or a Tornado app file (hello.py).
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
    /// Threads serving HTTP, each with its own event loop [default: the manifest's, else one per core].
    #[arg(long)]
    pub workers: Option<usize>,
    /// How many guest instances may be alive at once.
    #[arg(long, default_value_t = 1000)]
    pub max_instances: u32,
    /// Directory of the compiled-code cache [default: APP/.waterspout/cache].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Directory of the version store [default: APP/.waterspout/store].
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Where the admin API listens.
    #[arg(long, default_value = "127.0.0.1:8889")]
    pub admin_listen: SocketAddr,
    /// The admin API's bearer token; without one the admin API is off.
    #[arg(long, env = "WATERSPOUT_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Largest component the admin API accepts, bytes [default: 100 MB].
    #[arg(long)]
    pub max_upload_size: Option<u64>,
    /// Swap a handler in process when its wasm file changes on disk.
    #[arg(long)]
    pub watch: bool,
    /// Once listening, write the bound port to FILE (for `--listen 127.0.0.1:0`
    /// in tests: the test harnesses read it).
    #[arg(long, value_name = "FILE")]
    pub port_file: Option<PathBuf>,
    /// Run the services (kv, pub/sub, queues, groups) on this Redis server,
    /// shared with every node given the same URL (over `[cluster] redis`).
    #[arg(long, env = "WATERSPOUT_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
    /// This node's name in the cluster [default: `[cluster] node`, else hostname-pid].
    #[arg(long, env = "WATERSPOUT_NODE")]
    pub node: Option<String>,
    /// For a rediss:// URL: trust only the CA certificates in this PEM file
    /// (over `[cluster] ca`) [default: the system's roots].
    #[arg(long, env = "WATERSPOUT_REDIS_CA", value_name = "FILE")]
    pub redis_ca: Option<PathBuf>,
}

/// Entry point of the binary: parses arguments, runs, returns the exit code.
pub fn main() -> std::process::ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = run(cli);
    // The log's last lines before anything else (cli/log_writer.rs).
    log_writer::flush();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The log: `WATERSPOUT_LOG` (an EnvFilter, default `info`) to stderr,
/// written in batches by a thread of its own (cli/log_writer.rs), so a
/// request's access line costs it no `write`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WATERSPOUT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(log_writer::BatchedStderr::global())
        // Colours only on a terminal: logs in files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build { app, out } if build::is_python_app(&app) => {
            let wasm = out.unwrap_or_else(|| tornado_wasm(&app));
            let dir = build::build_tornado_app(&app, &wasm)?;
            println!(
                "wrote {} and {}",
                wasm.display(),
                dir.join(crate::manifest::MANIFEST_FILE).display()
            );
            Ok(())
        }
        Command::Build { app, out } => {
            anyhow::ensure!(
                out.is_none(),
                "-o/--out is for a Tornado app file (hello.py); an app directory's manifest says where each component goes"
            );
            let manifest = Manifest::load(&app)?;
            build::build_app(&manifest)
        }
        Command::Serve(args) => serve(*args),
        Command::New(args) => new::run(&args),
        Command::Check { app, build } => check::run(&app, build),
        Command::Deploy {
            name,
            file,
            no_activate,
            admin,
        } => client(crate::admin::client::deploy(&admin, &name, &file, !no_activate)),
        Command::Handlers { json, admin } => client(crate::admin::client::handlers(&admin, json)),
        Command::Versions { name, json, admin } => {
            client(crate::admin::client::versions(&admin, &name, json))
        }
        Command::Activate { name, version, admin } => {
            client(crate::admin::client::activate(&admin, &name, version))
        }
        Command::Rollback { name, admin } => client(crate::admin::client::rollback(&admin, &name)),
    }
}

/// Runs an admin client command on a small runtime.
fn client(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(command)
}

/// Where `serve hello.py` and `build hello.py` put the component.
fn tornado_wasm(app: &std::path::Path) -> PathBuf {
    let stem = app.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    build::tornado_out_dir(app).join(format!("{stem}.wasm"))
}

fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    if build::is_python_app(&args.app) {
        // A Tornado app file: build it as it is; serve what it describes.
        let app_file = args.app.clone();
        args.app = build::build_tornado_app(&app_file, &tornado_wasm(&app_file))?;
    } else if args.build {
        build::build_app(&Manifest::load(&args.app)?)?;
    }
    let mut config = ServerConfig::default();
    config.engine.max_instances = args.max_instances;
    config.engine.cache_dir = Some(
        args.cache_dir
            .clone()
            .unwrap_or_else(|| args.app.join(".waterspout").join("cache")),
    );
    config.store_dir = Some(
        args.store
            .clone()
            .unwrap_or_else(|| args.app.join(".waterspout").join("store")),
    );
    config.admin_listen = args.admin_listen;
    config.admin_token = args.admin_token.clone().and_then(AdminToken::new);
    if let Some(max) = args.max_upload_size {
        config.max_upload_size = max;
    }
    // The manifest's `[app]` settings first, the command line's over them.
    let mut manifest = Manifest::load(&args.app)?;
    if let Some(url) = &args.redis {
        // The flag wins over the manifest's URL; its other settings stay.
        let mut cluster =
            crate::manifest::ClusterConfig::new(url).map_err(|e| anyhow::anyhow!("--redis: {e}"))?;
        if let Some(from_manifest) = &manifest.cluster {
            cluster = crate::manifest::ClusterConfig {
                redis: cluster.redis,
                ..from_manifest.clone()
            };
        }
        manifest.cluster = Some(cluster);
    }
    if let Some(ca) = &args.redis_ca {
        let cluster = manifest
            .cluster
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("--redis-ca needs a cluster: --redis URL or [cluster]"))?;
        cluster.tls.ca = Some(ca.clone());
    }
    if let Some(cluster) = &manifest.cluster {
        cluster.check_tls().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let (Some(node), Some(cluster)) = (&args.node, &mut manifest.cluster) {
        cluster.node =
            crate::manifest::ClusterConfig::checked_node(node).map_err(|e| anyhow::anyhow!("--node: {e}"))?;
    }
    config.apply_manifest(&manifest)?;
    if let Some(max) = args.max_body_size {
        config.max_body_size = max;
    }
    if let Some(workers) = args.workers {
        anyhow::ensure!(workers > 0, "--workers must be at least 1");
        config.workers = workers;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    // Cluster-wide deploys (docs/cluster.md): keys under "PREFIX:".
    let link = manifest.cluster.as_ref().map(|c| crate::deploy::ClusterLink {
        url: c.redis.clone(),
        tls: c.tls.clone(),
        node: c.node.clone(),
        prefix: format!("{}:", c.prefix),
    });
    let app = App::with_manifest(manifest, config)?;
    let listen = app.config().listen;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        // Catch up with the cluster's active set before serving anything.
        app.join_cluster(link)
            .await
            .map_err(|e| anyhow::anyhow!("joining the cluster: {}", crate::text::report(&e)))?;
        serve_until_signal(app, listen, args.watch, args.port_file).await
    })
}

async fn serve_until_signal(
    app: Arc<App>,
    listen: SocketAddr,
    watch: bool,
    port_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    // Watching starts before serving: a file changed after the first
    // response must be seen (the templates test raced this).
    let _watch = if watch {
        Some(crate::admin::watch::start(app.clone())?)
    } else {
        None
    };
    let server = crate::server::start(app.clone(), listen).await?;
    if let Some(file) = port_file {
        write_port_file(&file, server.local_addr().port())?;
    }
    let admin = crate::admin::start(app.clone()).await?;
    let trigger = server.shutdown_trigger();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("signal received; shutting down gracefully");
        let _ = trigger.send(true);
    });
    server.wait().await;
    if let Some(admin) = admin {
        admin.shutdown().await;
    }
    Ok(())
}

/// Writes `PORT\n` to `file` whole (a temporary file renamed over it), so a
/// reader polling for it never sees half a number.
fn write_port_file(file: &std::path::Path, port: u16) -> anyhow::Result<()> {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("{port}\n"))
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|e| anyhow::anyhow!("--port-file {}: {e}", file.display()))
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
