//! `oci-image`: writes the end-to-end suite's images as OCI layout tarballs for
//! `ctr -n k8s.io images import`. Prints `REFERENCE MANIFEST-DIGEST FILE` per image on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use oci_image::images::{busybox, pause, product, simulator};
use oci_image::{Error, Image, layout};

#[derive(Parser)]
#[command(version, about, long_about = None)]
/// Write OCI image-layout tarballs without a container engine, reproducibly.
///
/// All timestamps are SOURCE_DATE_EPOCH (default 0); equal inputs give equal digests.
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pod sandbox image: a static /pause compiled from the tool's own C source.
    Pause(Out),
    /// Debian's busybox-static with its applet links (sh, wget, nslookup, ...).
    Busybox(Out),
    /// The product: both binaries, their shared libraries, nonroot user, as the Dockerfile.
    Product {
        #[command(flatten)]
        out: Out,
        #[command(flatten)]
        binaries: ProductBinaries,
    },
    /// The CrateDB simulator with the real crash shell on Debian's Python 3.11.
    Simulator {
        #[command(flatten)]
        out: Out,
        #[command(flatten)]
        inputs: SimulatorInputs,
    },
    /// All four images into one directory: pause.tar, busybox.tar, product.tar, simulator.tar.
    All {
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
        #[command(flatten)]
        binaries: ProductBinaries,
        #[command(flatten)]
        inputs: SimulatorInputs,
    },
}

#[derive(Args)]
struct ProductBinaries {
    /// The webhook binary [default: cratedb-restore-webhook in the cargo target dir's release/]
    #[arg(long, value_name = "PATH")]
    webhook: Option<PathBuf>,
    /// The Job binary [default: cratedb-restore-job in the cargo target dir's release/]
    #[arg(long, value_name = "PATH")]
    job: Option<PathBuf>,
}

#[derive(Args)]
struct SimulatorInputs {
    /// The simulator binary [default: cratedb-sim in the cargo target dir's release/]
    #[arg(long, value_name = "PATH")]
    sim: Option<PathBuf>,
    /// crash as installed by tests/tools/install-crash.sh (its output directory) [default: run it]
    #[arg(long, value_name = "DIR")]
    crash_dir: Option<PathBuf>,
}

#[derive(Args)]
struct Out {
    /// The image file to write.
    #[arg(long, value_name = "FILE.tar")]
    out: PathBuf,
    /// Image reference (the name `ctr images import` gives it).
    #[arg(long = "ref", value_name = "REFERENCE")]
    reference: Option<String>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oci-image: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    let mtime = source_date_epoch()?;
    match cli.command {
        Cmd::Pause(out) => write(&out.out, mtime, || {
            pause::image(out.reference.clone().unwrap_or_else(pause::reference))
        }),
        Cmd::Busybox(out) => write(&out.out, mtime, || {
            busybox::image(out.reference.clone().unwrap_or_else(busybox::reference))
        }),
        Cmd::Product { out, binaries } => write(&out.out, mtime, || {
            let (webhook, job) = binaries.paths()?;
            product::image(
                out.reference.clone().unwrap_or_else(product::reference),
                &webhook,
                &job,
            )
        }),
        Cmd::Simulator { out, inputs } => write(&out.out, mtime, || {
            let sim = inputs.sim()?;
            let reference = out.reference.clone().unwrap_or_else(simulator::reference);
            simulator::image(reference, &sim, inputs.crash_dir.as_deref())
        }),
        Cmd::All {
            out_dir,
            binaries,
            inputs,
        } => {
            // Inputs first: a missing binary should fail before minutes of work.
            let (webhook, job) = binaries.paths()?;
            let sim = inputs.sim()?;
            std::fs::create_dir_all(&out_dir).map_err(|e| Error::Io {
                context: format!("creating {}", out_dir.display()),
                source: e,
            })?;
            write(&out_dir.join("pause.tar"), mtime, || {
                pause::image(pause::reference())
            })?;
            write(&out_dir.join("busybox.tar"), mtime, || {
                busybox::image(busybox::reference())
            })?;
            write(&out_dir.join("product.tar"), mtime, || {
                product::image(product::reference(), &webhook, &job)
            })?;
            write(&out_dir.join("simulator.tar"), mtime, || {
                simulator::image(simulator::reference(), &sim, inputs.crash_dir.as_deref())
            })
        }
    }
}

impl ProductBinaries {
    fn paths(&self) -> Result<(PathBuf, PathBuf), Error> {
        Ok((
            given_or_release(&self.webhook, "cratedb-restore-webhook")?,
            given_or_release(&self.job, "cratedb-restore-job")?,
        ))
    }
}

impl SimulatorInputs {
    fn sim(&self) -> Result<PathBuf, Error> {
        given_or_release(&self.sim, "cratedb-sim")
    }
}

/// The given path, or the release build next to this tool's own build: `cargo run` puts this
/// binary at `<target>/<profile>/oci-image`, whatever CARGO_TARGET_DIR is.
fn given_or_release(given: &Option<PathBuf>, name: &str) -> Result<PathBuf, Error> {
    let path = match given {
        Some(path) => path.clone(),
        None => {
            let exe = std::env::current_exe().map_err(|e| Error::Io {
                context: "locating oci-image itself".into(),
                source: e,
            })?;
            let target = exe.parent().and_then(Path::parent).ok_or_else(|| {
                Error::Host(format!(
                    "{}: not in a cargo target directory",
                    exe.display()
                ))
            })?;
            target.join("release").join(name)
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Host(format!(
            "{} does not exist: cargo build --release --workspace --bins (or pass its path)",
            path.display()
        )))
    }
}

/// Builds the image and writes it through a temporary file, so that a reader never sees half an
/// image under the final name.
fn write(
    out: &Path,
    mtime: u64,
    image: impl FnOnce() -> Result<Image, Error>,
) -> Result<(), Error> {
    let started = Instant::now();
    let built = layout::build(&image()?, mtime)?;
    let partial = out.with_extension(format!("partial.{}", std::process::id()));
    let io = |what: &str, e| Error::Io {
        context: format!("{what} {}", out.display()),
        source: e,
    };
    std::fs::write(&partial, &built.archive).map_err(|e| io("writing", e))?;
    std::fs::rename(&partial, out).map_err(|e| io("renaming into", e))?;
    eprintln!(
        "[oci-image] {}: layer {:.1} MB ({:.1} MB gzip), file {:.1} MB, {:.1} s",
        out.display(),
        built.layer_tar_size as f64 / 1e6,
        built.layer_gzip_size as f64 / 1e6,
        built.archive.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    println!(
        "{} {} {}",
        built.reference,
        built.manifest_digest,
        out.display()
    );
    Ok(())
}

fn source_date_epoch() -> Result<u64, Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
            Error::Host(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        }),
        _ => Ok(0),
    }
}
