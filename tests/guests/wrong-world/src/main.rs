//! A plain WASI command: a component that exports `wasi:cli/run`, not our scenario.
fn main() {
    println!("I am not a load test");
}
