//! The `dmarc-warden` executable: everything lives in the library.

/// mimalloc instead of the system allocator: parsing makes and frees many small strings per
/// record on several threads at once, where glibc malloc's arenas cost about a tenth of the run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dmarc_warden::run()
}
