use clap::Parser;

fn main() {
    let cli = cascade::cli::Cli::parse();
    if let Err(e) = cascade::cli::run(cli) {
        let msg = format!("{e:#}");
        // Located diagnostics already start with their severity.
        if msg.starts_with("error") {
            eprintln!("{msg}");
        } else {
            eprintln!("error: {msg}");
        }
        std::process::exit(1);
    }
}
