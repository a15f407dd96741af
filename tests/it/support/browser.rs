//! A real browser for tests of what people see: headless Chromium from
//! Debian's packages, driven over the W3C WebDriver protocol by the
//! chromedriver that `CROSSGATE_TEST_WEBDRIVER_URL` names (`make test`
//! starts one: tests/browser/chromium.sh). A few JSON requests, so no
//! WebDriver crate.
//!
//! Without it these tests say so and pass, and `make test` repeats it
//! loudly; under CI (`CI=true`) they fail instead.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const URL_VAR: &str = "CROSSGATE_TEST_WEBDRIVER_URL";

/// The key a WebDriver element reference is kept under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session; [`Browser::quit`] ends it.
pub struct Browser {
    client: reqwest::Client,
    session: String,
}

impl Browser {
    /// A fresh headless Chromium, or `None` (outside CI) when there is no driver.
    pub async fn open(test: &str) -> Option<Browser> {
        let Ok(driver) = std::env::var(URL_VAR) else {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(
                !ci,
                "{test} needs a browser and CI=true: set {URL_VAR} (make test starts chromedriver)"
            );
            eprintln!("SKIPPED {test}: no browser; run tests/browser/chromium.sh start");
            return None;
        };
        let client = reqwest::Client::new();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1024,768",
                         "--no-first-run", "--disable-extensions"]
            }
        }}});
        let answer: Value = client
            .post(format!("{driver}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("reach chromedriver")
            .json()
            .await
            .expect("its answer");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"));
        Some(Browser {
            client,
            session: format!("{driver}/session/{session}"),
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|(error, message)| panic!("WebDriver {path}: {error}: {message}"))
    }

    /// The command's value, or the driver's error and message.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, (String, String)> {
        let answer: Value = self
            .client
            .request(method, format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .expect("reach chromedriver")
            .json()
            .await
            .expect("its answer");
        match answer["value"]["error"].as_str() {
            Some(error) => Err((error.to_owned(), answer["value"]["message"].to_string())),
            None => Ok(answer["value"].clone()),
        }
    }
}

/// WebDriver's key for Tab.
pub const TAB: &str = "\u{E004}";
/// WebDriver's key for Enter.
pub const ENTER: &str = "\u{E007}";

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    /// Run `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Run `script` that ends by calling its last argument with a value
    /// (a promise's result, e.g. a `fetch`).
    pub async fn eval_async(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Poll `script` until it returns something truthy; what it returned.
    /// Bounded: `within`, polling every 20 ms.
    pub async fn wait_for(&self, what: &str, script: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let value = self.eval(script, json!([])).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            assert!(Instant::now() < deadline, "{what}: not within {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A real click (the driver's pointer) on the element `script` returns.
    /// A page that redraws it between finding and clicking (a live list)
    /// leaves a stale element: it is found again, at most five times.
    pub async fn click(&self, script: &str) {
        for tries_left in (0..5).rev() {
            let element = self.eval(script, json!([])).await;
            let id = element[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element to click from {script}: {element}"));
            let clicked = self
                .try_call(
                    reqwest::Method::POST,
                    &format!("/element/{id}/click"),
                    json!({}),
                )
                .await;
            match clicked {
                Ok(_) => return,
                Err((error, _)) if error == "stale element reference" && tries_left > 0 => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err((error, message)) => panic!("WebDriver click: {error}: {message}"),
            }
        }
    }

    /// Typed on the keyboard into whatever has the focus, as a person
    /// would: WebDriver's key codes (`TAB`, `ENTER`) are characters too.
    pub async fn keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                let key = c.to_string();
                [
                    json!({"type": "keyDown", "value": key}),
                    json!({"type": "keyUp", "value": key}),
                ]
            })
            .collect();
        self.call(
            reqwest::Method::POST,
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    pub async fn quit(self) {
        let _ = self.client.delete(&self.session).send().await;
    }
}

/// Serves one HTML page on loopback (its own origin, as a platform's page
/// would be); the URL, and the task serving it.
pub async fn serve_page(
    listener: tokio::net::TcpListener,
    html: String,
) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}
