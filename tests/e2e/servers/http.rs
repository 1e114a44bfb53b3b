//! Smart HTTP as git's documentation sets it up (git-http-backend(1)): nginx with basic
//! authentication in front of fcgiwrap, which runs `git http-backend` as the hosting account,
//! so that receive-pack and the hooks run as that account and see the authenticated user in
//! `REMOTE_USER`.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

use super::account::Account;
use super::daemon::{Daemon, on_free_port};
use crate::common::stdout_of;

/// The nginx binary (Debian package nginx).
pub const NGINX: &str = "/usr/sbin/nginx";

/// The fcgiwrap binary (Debian package fcgiwrap).
pub const FCGIWRAP: &str = "/usr/sbin/fcgiwrap";

/// nginx and fcgiwrap, both stopped when dropped (nginx first: fields drop in order).
pub struct GitHttp {
    _nginx: Daemon,
    _fcgiwrap: Daemon,
    /// The port nginx listens on, on 127.0.0.1.
    pub port: u16,
}

impl GitHttp {
    /// Serves the repositories under `root` (`GIT_PROJECT_ROOT`) to the basic-auth `users`
    /// (name, password), for fetches and pushes alike; state and logs under `<dir>/http`.
    pub fn start(dir: &Path, account: &Account, root: &Path, users: &[(&str, &str)]) -> GitHttp {
        let dir = dir.join("http");
        std::fs::create_dir(&dir).unwrap();
        let exec_path = stdout_of(Command::new("git").arg("--exec-path"));
        let backend = Path::new(&exec_path).join("git-http-backend");

        // fcgiwrap as the hosting account, on a socket in a directory that account owns.
        let run = dir.join("run");
        account.mkdir(&run);
        let socket = run.join("fcgiwrap.sock");
        let mut fcgiwrap = Daemon::spawn(
            "fcgiwrap",
            account
                .command(FCGIWRAP)
                .args(["-c", "1", "-s"])
                .arg(format!("unix:{}", socket.display()))
                .arg("-p")
                .arg(&backend),
            &dir.join("fcgiwrap.log"),
        );
        fcgiwrap
            .wait_until(|| UnixStream::connect(&socket).is_ok())
            .unwrap_or_else(|e| panic!("{e}"));

        let htpasswd = dir.join("htpasswd");
        let lines: String = users
            .iter()
            .map(|(user, password)| {
                let hash = stdout_of(Command::new("openssl").args(["passwd", "-apr1", password]));
                format!("{user}:{hash}\n")
            })
            .collect();
        std::fs::write(&htpasswd, lines).unwrap();

        let (nginx, port) = on_free_port(|port| {
            let conf = dir.join(format!("nginx-{port}.conf"));
            std::fs::write(
                &conf,
                nginx_conf(&dir, port, &htpasswd, &socket, &backend, root, account),
            )
            .unwrap();
            Daemon::spawn(
                "nginx",
                Command::new(NGINX)
                    .arg("-p")
                    .arg(&dir)
                    .arg("-e")
                    .arg(dir.join("nginx-error.log"))
                    .arg("-c")
                    .arg(&conf),
                &dir.join(format!("nginx-{port}.log")),
            )
        });
        GitHttp {
            _nginx: nginx,
            _fcgiwrap: fcgiwrap,
            port,
        }
    }

    /// `http://<user>:<password>@127.0.0.1:<port>/<path>`.
    pub fn url(&self, user: &str, password: &str, path: &str) -> String {
        format!("http://{user}:{password}@127.0.0.1:{}/{path}", self.port)
    }
}

/// One nginx process in the foreground (no daemon, no master), everything it writes under
/// `dir`; every request authenticated, then handed to `git http-backend`.
fn nginx_conf(
    dir: &Path,
    port: u16,
    htpasswd: &Path,
    socket: &Path,
    backend: &Path,
    root: &Path,
    account: &Account,
) -> String {
    let d = dir.display();
    format!(
        "daemon off;\n\
         master_process off;\n\
         worker_processes 1;\n\
         pid {d}/nginx-{port}.pid;\n\
         error_log {d}/nginx-error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
           access_log {d}/nginx-access.log;\n\
           client_body_temp_path {d}/client_body;\n\
           proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n\
           uwsgi_temp_path {d}/uwsgi;\n\
           scgi_temp_path {d}/scgi;\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             client_max_body_size 0;\n\
             location / {{\n\
               auth_basic \"git\";\n\
               auth_basic_user_file {htpasswd};\n\
               fastcgi_pass unix:{socket};\n\
               fastcgi_param SCRIPT_FILENAME {backend};\n\
               fastcgi_param GIT_PROJECT_ROOT {root};\n\
               fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n\
               fastcgi_param REMOTE_USER $remote_user;\n\
               fastcgi_param PATH_INFO $uri;\n\
               fastcgi_param QUERY_STRING $query_string;\n\
               fastcgi_param REQUEST_METHOD $request_method;\n\
               fastcgi_param CONTENT_TYPE $content_type;\n\
               fastcgi_param CONTENT_LENGTH $content_length;\n\
               fastcgi_param GIT_PROTOCOL $http_git_protocol;\n\
               fastcgi_param HOME {home};\n\
               fastcgi_param PATH /usr/local/bin:/usr/bin:/bin;\n\
             }}\n\
           }}\n\
         }}\n",
        htpasswd = htpasswd.display(),
        socket = socket.display(),
        backend = backend.display(),
        root = root.display(),
        home = account.home.display(),
    )
}
