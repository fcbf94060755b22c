//! Command-line interface types. Their doc comments are cfdo's `--help` text;
//! nothing here runs anything.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// cfdo deploys Cloudflare Workers and Durable Objects from a TOML manifest.
///
/// Exit codes: 0 success, 1 error, 2 changes present (only with `plan --detailed-exitcode`).
#[derive(Debug, Parser)]
#[command(name = "cfdo", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The manifest to read.
    #[arg(
        short = 'f',
        long = "manifest",
        global = true,
        default_value = "cfdo.toml",
        value_name = "PATH"
    )]
    pub manifest: PathBuf,
    /// The environment overlay (`[env.NAME]`) to apply.
    #[arg(long, global = true, value_name = "NAME")]
    pub env: Option<String>,
    /// Where to deploy: `cloudflare` (the default when CLOUDFLARE_API_TOKEN is set) or `local`, the local edge.
    #[arg(long, global = true, value_enum)]
    pub target: Option<Target>,
    /// Print machine-readable JSON lines instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Never colour output (also NO_COLOR; no colour when stdout is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Print less: only errors and the final result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: each API request (tokens redacted).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The Cloudflare API (CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_BASE_URL).
    Cloudflare,
    /// The local edge (`cfdo edge`), started on demand.
    Local,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what apply would change, without changing anything.
    Plan(PlanArgs),
    /// Make the account match the manifest.
    Apply(ApplyArgs),
    /// Remove everything the stack owns: clients first, hosts last.
    ///
    /// Destroy is explicit intent: its Durable Object namespaces and their
    /// stored data go too (the plan lists them), without --allow-data-loss.
    /// A namespace with `protect = true` stops it.
    Destroy(DestroyArgs),
    /// Check the manifest without contacting any API.
    Validate,
    /// Print the dependency graph: which workers deploy in which level.
    Graph(GraphArgs),
    /// Run and manage the local edge, a Cloudflare-API-compatible server running workerd.
    Edge(EdgeArgs),
    /// Print shell completions.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan to FILE, for `cfdo apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub edge: EdgeLocation,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// A plan saved by `cfdo plan --out`; applied exactly, refused if the account or the manifest changed since.
    #[arg(value_name = "PLAN_FILE")]
    pub plan_file: Option<PathBuf>,
    /// Do not ask for confirmation (needed when there is no terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// Allow changes that destroy Durable Object data (deleted classes, removed hosts).
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Take over scripts that exist in the account but are not owned by this stack.
    #[arg(long)]
    pub adopt: bool,
    /// How many uploads run at once within a level.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub parallelism: u16,
    #[command(flatten)]
    pub edge: EdgeLocation,
}

#[derive(Debug, Clone, Args)]
pub struct DestroyArgs {
    /// Do not ask for confirmation (needed when there is no terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// Destroy even while scripts outside the stack still bind its namespaces or services.
    #[arg(long)]
    pub force: bool,
    /// How many deletes run at once within a level.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub parallelism: u16,
    #[command(flatten)]
    pub edge: EdgeLocation,
}

#[derive(Debug, Clone, Args)]
pub struct GraphArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

/// Where the local edge keeps its state and listens.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Local edge options")]
pub struct EdgeLocation {
    /// The edge's state directory (default: the user's data directory, e.g. ~/.local/share/cfdo/edge).
    #[arg(long, env = "CFDO_EDGE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The edge's API port: used when this command starts the edge (0 picks a free port and records it in the state directory); a running edge is found through its state directory.
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Args)]
pub struct EdgeArgs {
    #[command(subcommand)]
    pub command: EdgeCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum EdgeCommand {
    /// Start the edge in the background; prints its API URL and where Workers are served.
    Start(EdgeServeArgs),
    /// Run the edge in the foreground (for CI and containers).
    Serve(EdgeServeArgs),
    /// Stop the running edge and its workerd.
    Stop(EdgeLocation),
    /// Show whether the edge runs, its API URL and each Worker's URL.
    Status(EdgeLocation),
    /// Print the edge's log (API requests and workerd's output).
    Logs(EdgeLogsArgs),
    /// Print `export` lines that point Cloudflare clients (cfdo, wrangler) at the edge.
    Env(EdgeLocation),
}

#[derive(Debug, Clone, Args)]
pub struct EdgeServeArgs {
    #[command(flatten)]
    pub location: EdgeLocation,
    /// Milliseconds added to every API call.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// Fraction of API calls (0.0 to 1.0) answered with a random HTTP 500.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fail_rate: f64,
    /// Answer 429 with Retry-After beyond N requests per SECONDS, e.g. `1200/300`.
    #[arg(long, value_name = "N/SECONDS")]
    pub rate_limit: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct EdgeLogsArgs {
    #[command(flatten)]
    pub location: EdgeLocation,
    /// Only the last N lines.
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
}
