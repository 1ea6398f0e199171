//! Entry point: hands the command line to [`otica_api::cli`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    otica_api::cli::main(std::env::args().collect()).await
}
