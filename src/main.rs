//! Entry point: builds the async runtime and hands the command line to [`otica_api::cli`].

use std::process::ExitCode;

/// mimalloc instead of the system allocator: requests allocate and free many small buffers
/// (rows, strings, futures) across threads (bench/NOTES.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let runtime = worker_threads().and_then(|threads| {
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

/// `TOKIO_WORKER_THREADS` when set, else half the CPUs (at least one). A request needs ~50 µs
/// of CPU and waits on PostgreSQL for the rest, so one thread already serves well over
/// 10,000 requests a second; each extra thread costs every request cross-thread wake-ups
/// (~20% more CPU per request with two threads on two CPUs), CPU the kernel's network work
/// and often PostgreSQL itself need (bench/NOTES.md).
fn worker_threads() -> Result<usize, String> {
    match std::env::var("TOKIO_WORKER_THREADS") {
        Ok(value) => match value.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "TOKIO_WORKER_THREADS must be a whole number of threads, at least 1 (got {value:?})"
            )),
        },
        Err(_) => Ok(std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))),
    }
}
