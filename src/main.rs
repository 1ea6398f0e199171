//! Entry point: builds the async runtime and hands the command line to [`otica_api::cli`].

use std::process::ExitCode;

use otica_api::config;

/// mimalloc instead of the system allocator: requests allocate and free many small buffers
/// (rows, strings, futures) across threads (bench/NOTES.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before the runtime, whose size `.env` may set, and before any thread exists.
    config::load_dotenv();
    let runtime = config::worker_threads()
        .map_err(|err| err.to_string())
        .and_then(|threads| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .map_err(|err| format!("cannot start the async runtime: {err}"))
        });
    match runtime {
        Ok(runtime) => runtime.block_on(otica_api::cli::main(std::env::args().collect())),
        Err(message) => {
            eprintln!("otica-api: {message}");
            ExitCode::FAILURE
        }
    }
}
