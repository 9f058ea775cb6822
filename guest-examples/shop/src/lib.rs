//! A shopper who logs in once, then browses far more often than they buy: weighted tasks,
//! `on_start`, cookies kept per user, request names, and a response checked by hand.

use wasmload::prelude::*;

#[derive(Default)]
struct Shopper {
    carts_seen: u32,
}

impl User for Shopper {
    fn plan() -> Plan<Self> {
        Plan::new()
            .wait_time(between(0.5, 1.5))
            .weighted("browse", 6, Self::browse)
            .weighted("festival", 2, Self::festival)
            .weighted("cart", 2, Self::cart)
            .weighted("flaky", 1, Self::flaky)
            .weighted("slow", 1, Self::slow)
    }

    /// Logs in; the session cookie the server sets is sent by every later request of this
    /// user (and only this user).
    fn on_start(&mut self) -> TaskResult {
        let response = post("/login").form(&[("user", &format!("vu{}", vu::id())), ("password", "secret")]).send()?;
        if response.status() != 200 {
            return Err(Error::msg(format!("login failed with status {}", response.status())));
        }
        Ok(())
    }
}

impl Shopper {
    fn browse(&mut self) -> TaskResult {
        let id = vu::iteration() % 120; // ids above 100 do not exist: a few 404s
        get(format!("/concert/{id}")).name("/concert/<id>").send()?;
        Ok(())
    }

    fn festival(&mut self) -> TaskResult {
        get("/festival").send()?;
        Ok(())
    }

    fn cart(&mut self) -> TaskResult {
        let response = get("/cart").catch_response().send()?;
        if response.text().contains("items") {
            self.carts_seen += 1;
            response.success();
        } else {
            response.failure("the cart did not list any items: not logged in?");
        }
        Ok(())
    }

    fn flaky(&mut self) -> TaskResult {
        get("/flaky").send()?;
        Ok(())
    }

    fn slow(&mut self) -> TaskResult {
        get("/slow").timeout(std::time::Duration::from_secs(5)).send()?;
        Ok(())
    }
}

export_user!(Shopper);
