//! Writes a synthetic corpus for benchmarks: `cargo run --release --example gen-corpus -- DIR N`.

#[path = "../benches/support/corpus.rs"]
mod corpus;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(Ok(n))) = (args.get(1), args.get(2).map(|n| n.parse::<usize>())) else {
        eprintln!(
            "usage: gen-corpus DIR N   (writes N report files in mixed containers under DIR)"
        );
        std::process::exit(2);
    };
    match corpus::write_corpus(std::path::Path::new(dir), n) {
        Ok(records) => println!("gen-corpus: {n} reports, {records} records in {dir}"),
        Err(e) => {
            eprintln!("gen-corpus: {dir}: {e}");
            std::process::exit(2);
        }
    }
}
