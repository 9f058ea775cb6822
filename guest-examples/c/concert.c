// The Locust example from the product card, in C (a port of guest-examples/concert):
//
//     class ConcertScenarioUser(HttpUser):
//         wait_time = between(1, 3)
//         @task
//         def festival_info_scenario(self):
//             for i in range(3):
//                 with self.client.get(f"/concert/{i}", name="/concert/<id>",
//                                      catch_response=True) as response:
//                     if response.status_code != 200:
//                         response.failure(f"Failed /concert/{i}")
//
// Build: `runner build guest-examples/c/concert.c` (it generates load_test.h from the WIT,
// compiles with clang and makes the component; needs Debian's clang, lld, wasi-libc and
// libclang-rt-14-dev-wasm32). By hand: `wit-bindgen c wit --world load-test`, then
// `clang --target=wasm32-wasi -mexec-model=reactor -O2 -o core.wasm concert.c load_test.c
// load_test_component_type.o`, then `wasm-tools component new core.wasm --adapt
// wasi_snapshot_preview1=<wasmtime's reactor adapter> -o concert.wasm`.
//
// Memory rules of the generated bindings (wit-bindgen 0.63, C):
// - Arguments we pass to imports are borrowed: static strings (load_test_string_set) are fine.
// - Results we get from imports (the response, an http-error) were allocated in our memory
//   by the host through cabi_realloc: we own them and free them (..._free helpers).
// - Values we return from exports are freed with free() by the generated post-return
//   functions after the host has copied them: every non-empty string/list in them must come
//   from malloc (load_test_string_dup, malloc, ...), never a string literal.
// - Arguments the host passes to our exports (teardown's data) are ours to free.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load_test.h"

typedef load_test_string_t string_t;

static void set_err(string_t *err, const char *message) { load_test_string_dup(err, message); }

void exports_wasmload_scenario_scenario_describe(exports_wasmload_scenario_scenario_plan_t *ret) {
    // Zero everything: options all none, lists empty ({NULL, 0} is never freed).
    memset(ret, 0, sizeof(*ret));

    exports_wasmload_scenario_scenario_task_t *tasks = malloc(sizeof(*tasks));
    if (!tasks) abort();
    load_test_string_dup(&tasks[0].name, "festival_info_scenario");
    tasks[0].weight = 1;
    ret->tasks.ptr = tasks;
    ret->tasks.len = 1;

    ret->wait_time.tag = EXPORTS_WASMLOAD_SCENARIO_SCENARIO_WAIT_TIME_BETWEEN;
    ret->wait_time.val.between.f0 = 1000;
    ret->wait_time.val.between.f1 = 3000;
}

bool exports_wasmload_scenario_scenario_on_start(string_t *err) {
    (void)err;
    return true;
}

static bool festival_info_scenario(string_t *err) {
    for (int i = 0; i < 3; i++) {
        char url[32];
        snprintf(url, sizeof url, "/concert/%d", i);

        wasmload_scenario_http_request_t request;
        memset(&request, 0, sizeof request);  // no headers, body, timeout, tags
        load_test_string_set(&request.method, "GET");
        load_test_string_set(&request.url, url);
        request.name.is_some = true;
        load_test_string_set(&request.name.val, "/concert/<id>");
        request.catch_response = true;

        wasmload_scenario_http_response_t response;
        wasmload_scenario_http_http_error_t http_error;
        if (!wasmload_scenario_http_send(&request, &response, &http_error)) {
            // The host has already recorded the request as failed; end the task like the
            // Rust example's `?` does.
            char message[96];
            snprintf(message, sizeof message, "%s: request failed (http-error %d)", url, http_error.tag);
            wasmload_scenario_http_http_error_free(&http_error);
            set_err(err, message);
            return false;
        }
        if (response.status != 200) {
            char message[48];
            snprintf(message, sizeof message, "Failed /concert/%d", i);
            wasmload_scenario_http_result_void_string_t outcome;
            outcome.is_err = true;
            load_test_string_set(&outcome.val.err, message);  // borrowed for the call
            wasmload_scenario_http_report(response.id, &outcome);
        }
        wasmload_scenario_http_response_free(&response);
    }
    return true;
}

bool exports_wasmload_scenario_scenario_run_task(uint32_t index, string_t *err) {
    switch (index) {
        case 0:
            return festival_info_scenario(err);
        default: {
            char message[48];
            snprintf(message, sizeof message, "no task %u", (unsigned)index);
            set_err(err, message);
            return false;
        }
    }
}

bool exports_wasmload_scenario_scenario_on_stop(string_t *err) {
    (void)err;
    return true;
}

bool exports_wasmload_scenario_scenario_setup(load_test_option_string_t *ret, string_t *err) {
    (void)err;
    ret->is_some = false;
    return true;
}

bool exports_wasmload_scenario_scenario_teardown(string_t *maybe_data, string_t *err) {
    (void)err;
    if (maybe_data) load_test_string_free(maybe_data);
    return true;
}
