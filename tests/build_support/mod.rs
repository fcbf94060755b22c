//! Shared by the build tests: copying fixtures, and serving built modules
//! in workerd on a free local port.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cfdo::build::BuiltWorker;
use cfdo::cloudflare::types::ESM_CONTENT_TYPE;

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// workerd serving one bundle on a free local port; killed when dropped.
pub struct Workerd {
    child: Child,
    pub port: u16,
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(built: &BuiltWorker, dir: &Path) -> Workerd {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut modules = Vec::new();
    for module in &built.modules {
        let path = dir.join(&module.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, &module.content).unwrap();
        let kind = match module.content_type.as_str() {
            ESM_CONTENT_TYPE => "esModule",
            "text/plain" => "text",
            "application/octet-stream" => "data",
            "application/wasm" => "wasm",
            _ => continue, // source maps are not modules to workerd
        };
        modules.push(format!(
            "(name = \"{0}\", {kind} = embed \"{0}\")",
            module.name
        ));
    }
    let config = format!(
        r#"using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .mainWorker)],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "main")],
);

const mainWorker :Workerd.Worker = (
  modules = [{}],
  compatibilityDate = "2025-09-01",
);
"#,
        modules.join(", ")
    );
    let config_path = dir.join("config.capnp");
    std::fs::write(&config_path, config).unwrap();
    let workerd = cfdo::tools::WORKERD.locate().expect("workerd is available");
    let child = Command::new(workerd)
        .arg("serve")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Workerd { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut err) = server.child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            panic!("workerd exited with {status} before listening:\n{stderr}");
        }
        assert!(
            Instant::now() < deadline,
            "workerd did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn get(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}
