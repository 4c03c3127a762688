//! `kubectl-cratedb_restore`: follow CrateDB restores from kubectl (`status`, `status --watch`,
//! `plan`, `logs`, `cancel`, `snapshots`). See `--help`; the pure parts (rendering, request files, warning headers,
//! exit codes) are in the library's `plugin` module.

mod access;
mod cancel;
mod cli;
mod logs;
mod plan;
mod send;
mod snapshots;
mod status;

use clap::Parser;
use cratedb_restore::plugin::exit::Exit;

use access::Target;
use cli::{Cli, Command};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    cratedb_restore::install_crypto_provider();
    let exit = match run(cli).await {
        Ok(exit) => exit,
        Err(message) => {
            eprintln!("error: {message}");
            Exit::Error
        }
    };
    std::process::exit(exit.code());
}

async fn run(cli: Cli) -> Result<Exit, String> {
    if matches!(cli.command, Command::Logs(_)) && cli.global.output == cli::Output::Json {
        eprintln!("error: logs prints the Job's log as it is; --output json does not apply");
        return Ok(Exit::Usage);
    }
    let target = Target::connect(&cli.global).await?;
    let output = cli.global.output;
    match &cli.command {
        Command::Status(args) if args.watch => {
            status::watch(&target, &args.name, output, args.timeout).await
        }
        Command::Status(args) => status::show(&target, &args.name, output).await,
        Command::Plan(args) => {
            plan::plan(&target, &args.name, &args.filename, &args.options, output).await
        }
        Command::Logs(args) => logs::logs(&target, args).await,
        Command::Cancel(args) => cancel::cancel(&target, args, output).await,
        Command::Snapshots(args) => snapshots::snapshots(&target, args, output).await,
    }
}
