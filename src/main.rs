//! The `dmarc-warden` executable: everything lives in the library.

/// mimalloc instead of the system allocator: parsing makes and frees many small strings per
/// record on several threads at once, where glibc malloc's arenas cost about a tenth of the run.
/// Built without transparent huge pages (`no_thp`): a listing that builds and frees hundreds of
/// megabytes had the kernel zero 2 MiB pages again each time mimalloc handed memory back and took
/// it again (`reports` over 467,265 reports: 2.4 s, 1.1 s of it in the kernel; 1.45 s without).
/// Its version 2 (feature `v2`) rather than 3: judging domain after domain, version 3 took fresh
/// memory for each domain's evidence instead of the pages the last one freed (`senders --days
/// 365` on a 10M-record estate: 17.5k page faults, 80 MB peak, 0.122 s; version 2: 10.1k, 52 MB,
/// 0.111 s; `advise --offline --days 365` 0.125 → 0.103 s); `ingest` alike within the noise.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dmarc_warden::run()
}
