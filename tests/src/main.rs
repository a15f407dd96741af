//! `provider-sim`: the provider simulator as a process, for `make run` and benchmarks.

use clap::Parser;
use std::net::SocketAddr;

#[derive(Parser)]
#[command(
    name = "provider-sim",
    about = "Loopback simulator of messaging providers' APIs"
)]
struct Args {
    /// Address to listen on; loopback only.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "the simulator listens on loopback only"
    );
    let sim = crossgate_tests::ProviderSim::start_on(args.listen).await?;
    eprintln!(
        "provider-sim listening on {} (Twilio account {})",
        sim.url(),
        crossgate_tests::DEFAULT_ACCOUNT_SID
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
