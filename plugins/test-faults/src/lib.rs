//! A connector that misbehaves on purpose, one way per `mode`, so the gateway's
//! tests can prove that the sandbox contains each fault to one failed attempt.
//!
//! | mode             | what `deliver` does                                  |
//! | ---------------- | ---------------------------------------------------- |
//! | `loop`           | spins forever (stopped by the CPU budget)            |
//! | `memory`         | allocates until the memory limit stops it            |
//! | `trap`           | panics, which traps the instance                     |
//! | `forbidden-host` | calls `url`, a host outside `allowed_hosts`          |
//! | `chatty`         | calls `url` again and again until refused            |
//! | `stubborn`       | calls `url` a thousand times, refused or not         |
//! | `noisy`          | logs forged lines, fails with 8 MiB of control text  |
//! | `count`          | counts its instance's deliveries in its receipt,     |
//! |                  | says so on stderr, panics on the text `panic`        |
//! | `spoof-host`     | calls `url` (allowed) with `Host: metadata.internal` |
//! | `connect`        | asks `url` for a tunnel with `CONNECT`               |
//! | `huge-body`      | posts 32 MiB to `url`                                |
//! | `ok`             | succeeds without any I/O                             |

use crossgate_plugin_sdk::{
    Channel, Config, ConfigError, Connector, Failure, Message, Receipt, Setting, http,
};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Faults {
    mode: String,
    url: String,
}

impl Connector for Faults {
    const NAME: &'static str = "test-faults";
    const CHANNEL: Channel = Channel::Sms;
    const SETTINGS: &'static [Setting] = &[Setting::text("mode").required(), Setting::url("url")];

    fn new(config: &Config) -> Result<Self, ConfigError> {
        let mode = config.required("mode")?;
        if ![
            "loop",
            "memory",
            "trap",
            "forbidden-host",
            "chatty",
            "stubborn",
            "noisy",
            "count",
            "spoof-host",
            "connect",
            "huge-body",
            "ok",
        ]
        .contains(&mode)
        {
            return Err(ConfigError::new("mode", format!("unknown mode {mode:?}")));
        }
        Ok(Faults {
            mode: mode.to_owned(),
            url: config.get_or("url", "http://forbidden.invalid/").to_owned(),
        })
    }

    fn deliver(&self, msg: &Message) -> Result<Receipt, Failure> {
        match self.mode.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            "trap" => panic!("test-faults: trapping on purpose for {}", msg.id),
            "forbidden-host" => {
                let response = http::Request::get(&self.url).send()?;
                Ok(Receipt::new(format!("leaked-{}", response.status)))
            }
            "chatty" => {
                for _ in 0..1000 {
                    http::Request::get(&self.url).send()?;
                }
                Ok(Receipt::new("never-refused"))
            }
            "stubborn" => {
                for _ in 0..1000 {
                    let _ = http::Request::get(&self.url).send();
                }
                Ok(Receipt::new("stubborn"))
            }
            "noisy" => {
                crossgate_plugin_sdk::log(
                    crossgate_plugin_sdk::Level::Error,
                    "benign\n2026-12-01T00:00:00Z ERROR crossgate: admin key rotated\u{1b}[0m",
                );
                let flood = "x\n\u{1b}[31m\0".repeat(2 << 20);
                Err(Failure::permanent("bad\ncode", flood))
            }
            "count" => {
                // Lives as long as the instance: 1 on every call of a fresh one.
                static DELIVERIES: AtomicU32 = AtomicU32::new(0);
                let n = DELIVERIES.fetch_add(1, Ordering::Relaxed) + 1;
                eprintln!("test-faults: delivery {n} of this instance");
                if msg.text == "panic" {
                    panic!("test-faults: panicking on delivery {n} as asked");
                }
                Ok(Receipt::new(format!("count-{n}")))
            }
            "spoof-host" => {
                let response = http::Request::get(&self.url)
                    .header("Host", "metadata.internal")
                    .send()?;
                Ok(Receipt::new(format!("spoofed-{}", response.status)))
            }
            "connect" => {
                let response = http::Request::new("CONNECT", &self.url).send()?;
                Ok(Receipt::new(format!("tunnelled-{}", response.status)))
            }
            "huge-body" => {
                let response = http::Request::post(&self.url)
                    .body(vec![b'x'; 32 << 20])
                    .send()?;
                Ok(Receipt::new(format!("uploaded-{}", response.status)))
            }
            _ => Ok(Receipt::new(format!("ok-{}", msg.id))),
        }
    }
}

crossgate_plugin_sdk::register_connector!(Faults);
