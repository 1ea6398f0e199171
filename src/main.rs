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
            // One thread: tokio's single-threaded scheduler, which skips the work-stealing
            // machinery (its atomics and cross-thread wake-ups) that one worker never uses.
            let mut builder = if threads == 1 {
                tokio::runtime::Builder::new_current_thread()
            } else {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(threads);
                builder
            };
            builder
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
