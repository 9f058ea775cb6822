//! The user type a scenario defines, and the per-instance state behind the exports. One
//! component instance is one virtual user, so instance globals are that user's own.

use std::any::Any;
use std::cell::RefCell;

use crate::plan::Plan;

/// A virtual user's behaviour (Locust `HttpUser`). `Default` creates its state.
pub trait User: Default + 'static {
    /// The tasks, wait time and default options.
    fn plan() -> Plan<Self>;

    /// Runs once before the user's first task (Locust `on_start`), e.g. to log in.
    fn on_start(&mut self) -> TaskResult {
        Ok(())
    }

    /// Runs once when the user stops (Locust `on_stop`).
    fn on_stop(&mut self) -> TaskResult {
        Ok(())
    }

    /// Runs once before any user starts, on an instance of its own (k6 `setup`): create
    /// test data, fetch a token. What it returns reaches every user through
    /// [`vu::setup_data`](crate::vu::setup_data). An error stops the run before it starts.
    fn setup() -> Result<Option<String>, Error> {
        Ok(None)
    }

    /// Runs once after every user has stopped, with what `setup` returned (k6 `teardown`).
    fn teardown(_data: Option<String>) -> TaskResult {
        Ok(())
    }
}

/// What a task returns. An error is recorded under the task's name (requests it made are
/// recorded on their own either way).
pub type TaskResult = Result<(), Error>;

/// A task error: any error converts with `?`, or make one with [`Error::msg`].
#[derive(Debug)]
pub struct Error(String);

impl Error {
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

thread_local! {
    /// The user's state (`Box<U>`) and its plan (`Box<Plan<U>>`).
    static USER: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    static PLAN: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn with_user<U: User, R>(f: impl FnOnce(&mut U) -> R) -> R {
    USER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let state = slot.get_or_insert_with(|| Box::new(U::default()));
        if state.downcast_ref::<U>().is_none() {
            *state = Box::new(U::default());
        }
        f(state.downcast_mut::<U>().expect("just stored a U"))
    })
}

fn with_plan<U: User, R>(f: impl FnOnce(&Plan<U>) -> R) -> R {
    PLAN.with(|cell| {
        let mut slot = cell.borrow_mut();
        let plan = slot.get_or_insert_with(|| Box::new(U::plan()));
        if plan.downcast_ref::<Plan<U>>().is_none() {
            *plan = Box::new(U::plan());
        }
        f(plan.downcast_ref::<Plan<U>>().expect("just stored a Plan<U>"))
    })
}

/// Ends a call into the scenario: the responses it keeps fetch what they still need from
/// the host, which forgets it when the call returns.
fn outcome(result: TaskResult) -> Result<(), String> {
    crate::response::call_ends();
    result.map_err(|e| e.0)
}

#[doc(hidden)]
pub fn describe<U: User>() -> crate::__private::WitPlan {
    with_plan::<U, _>(Plan::to_wit)
}

#[doc(hidden)]
pub fn on_start<U: User>() -> Result<(), String> {
    outcome(with_user::<U, _>(U::on_start))
}

#[doc(hidden)]
pub fn run_task<U: User>(index: u32) -> Result<(), String> {
    with_plan::<U, _>(|plan| match plan.tasks.get(index as usize) {
        Some((_, _, task)) => outcome(with_user::<U, _>(|user| task(user))),
        None => Err(format!("the runner asked for task {index}, which the plan does not have")),
    })
}

#[doc(hidden)]
pub fn on_stop<U: User>() -> Result<(), String> {
    outcome(with_user::<U, _>(U::on_stop))
}

#[doc(hidden)]
pub fn setup<U: User>() -> Result<Option<String>, String> {
    let data = U::setup();
    crate::response::call_ends();
    data.map_err(|e| e.0)
}

#[doc(hidden)]
pub fn teardown<U: User>(data: Option<String>) -> Result<(), String> {
    outcome(U::teardown(data))
}
