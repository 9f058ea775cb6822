//! Exports `wasmload:scenario/scenario@0.2.0`, a version this runner does not accept.
wit_bindgen::generate!({ path: "wit", world: "load-test" });

struct Future;

impl exports::wasmload::scenario::scenario::Guest for Future {
    fn describe() -> String {
        "from the future".into()
    }
}

export!(Future);
