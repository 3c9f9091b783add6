//! A plain `wasi:cli/run` command: a valid component of the wrong world.

fn main() {
    println!("I am a command, not a request handler");
}
