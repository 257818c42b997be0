//! `plinth-processor-double`: the loopback payment processor, standing alone for local
//! development (`plinth serve` pointed at it bills against it).

use std::net::SocketAddr;

use clap::Parser;
use plinth_processor_double::{DoubleConfig, ProcessorDouble};
use tracing_subscriber::EnvFilter;

/// A payment processor on loopback that speaks Stripe's HTTP API shapes (customers, test
/// cards, hosted setup pages, invoices, credit notes, signed webhooks). Serves until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "plinth-processor-double", version)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:12111")]
    listen: SocketAddr,
    /// The secret key clients must send (`Authorization: Bearer <key>`).
    #[arg(
        long,
        env = "PLINTH_PROCESSOR_SECRET_KEY",
        default_value = "sk_test_double"
    )]
    secret_key: String,
    /// Where to POST events, e.g. `http://127.0.0.1:8080/v1/billing/webhook`; without it
    /// events are kept but not sent.
    #[arg(long)]
    webhook_url: Option<String>,
    /// The secret that signs events (`Stripe-Signature`).
    #[arg(
        long,
        env = "PLINTH_PROCESSOR_WEBHOOK_SECRET",
        default_value = "whsec_double"
    )]
    webhook_secret: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let double = ProcessorDouble::start_on(
        args.listen,
        DoubleConfig {
            secret_key: args.secret_key,
            webhook_url: args.webhook_url,
            webhook_secret: args.webhook_secret,
        },
    )
    .await?;
    println!("processor double: listening on {}", double.base_url());
    tokio::signal::ctrl_c().await?;
    drop(double);
    Ok(())
}
