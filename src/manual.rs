//! Documentation generated from the clap definitions in [`crate::cli`], so it never disagrees with
//! `--help`: man pages (`dmarc-warden.1` and one per subcommand, `dmarc-warden-fetch.1`…) for the
//! Debian package (`scripts/build-deb` runs the hidden `dmarc-warden man-pages DIR`), and bash, zsh
//! and fish completions (`dmarc-warden completions SHELL`).

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use clap_complete::Shell;

/// Writes the man pages into `dir` (made if missing); returns the files written.
pub fn man_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(crate::cli::Cli::command(), dir)?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "1"))
        .collect();
    written.sort();
    Ok(written)
}

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(
        shell,
        &mut crate::cli::Cli::command(),
        "dmarc-warden",
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_per_subcommand_and_a_script_per_shell() {
        let dir = tempfile::tempdir().unwrap();
        let pages = man_pages(dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for page in [
            "dmarc-warden.1",
            "dmarc-warden-fetch.1",
            "dmarc-warden-serve.1",
        ] {
            assert!(names.iter().any(|n| n == page), "{page} missing: {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("man-pages")), "{names:?}");
        let fetch = std::fs::read_to_string(dir.path().join("dmarc-warden-fetch.1")).unwrap();
        assert!(fetch.contains("metrics"), "{fetch}");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(completions(shell)).unwrap();
            assert!(script.contains("htpasswd"), "{shell}: {script}");
        }
    }
}
