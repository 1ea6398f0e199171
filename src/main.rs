//! Entry point: hands the command line to [`otica_api::cli`].

use std::process::ExitCode;

/// mimalloc instead of the system allocator: requests allocate and free many small buffers
/// (rows, strings, futures) across threads (bench/NOTES.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    otica_api::cli::main(std::env::args().collect()).await
}
