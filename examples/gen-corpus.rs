//! Writes a synthetic corpus for benchmarks: `cargo run --release --example gen-corpus -- DIR N`
//! (mixed containers, 1 to 39 records a report) or `… -- DIR N --large` (gzip, 250 to 349 records).

#[path = "../benches/support/corpus.rs"]
mod corpus;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let large = args.iter().any(|a| a == "--large");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--large").collect();
    let (Some(dir), Some(Ok(n))) = (args.get(1), args.get(2).map(|n| n.parse::<usize>())) else {
        eprintln!(
            "usage: gen-corpus DIR N [--large]   (writes N report files under DIR: mixed containers, \
             or with --large gzip reports of 250 to 349 records)"
        );
        std::process::exit(2);
    };
    let dir = std::path::Path::new(dir.as_str());
    let written = if large {
        corpus::write_large_corpus(dir, n)
    } else {
        corpus::write_corpus(dir, n)
    };
    match written {
        Ok(records) => println!(
            "gen-corpus: {n} reports, {records} records in {}",
            dir.display()
        ),
        Err(e) => {
            eprintln!("gen-corpus: {}: {e}", dir.display());
            std::process::exit(2);
        }
    }
}
