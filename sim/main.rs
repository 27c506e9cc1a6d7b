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
        // A reader that went away while SIGPIPE is ignored (non-Unix, or a parent that
        // ignores it): a quiet end, as with the signal.
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            std::process::exit(0);
        }
        // The chain of causes, each said once: an error that already quotes its source
        // (thiserror's `{file}: {source}`) would otherwise repeat the OS error.
        let mut msg = String::new();
        for cause in e.chain() {
            let s = cause.to_string();
            if msg.contains(&s) {
                continue;
            }
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&s);
        }
        // Located diagnostics already start with their severity.
        if msg.starts_with("error") {
            eprintln!("{msg}");
        } else {
            eprintln!("error: {msg}");
        }
        std::process::exit(1);
    }
}
