//! The `dmarc-warden` executable: everything lives in the library.

fn main() -> std::process::ExitCode {
    dmarc_warden::run()
}
