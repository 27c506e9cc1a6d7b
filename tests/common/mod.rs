//! What the end-to-end tests share: run the `cascade` binary, read its output, write inputs.
#![allow(dead_code)] // each test crate uses its own subset

use std::process::{Command, Output};

/// Runs `cascade ARGS` in the repository root.
pub fn cascade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .output()
        .expect("run cascade")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `text` to `name` in this test process's own temporary folder for `suite`; returns
/// its path.
pub fn tmp_in(suite: &str, name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("cascade-{suite}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}
