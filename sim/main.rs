use clap::Parser;

fn main() {
    // A closed stdout (`cascade … | head`) ends the process quietly, as for other Unix tools,
    // instead of a panic in `println!`.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
