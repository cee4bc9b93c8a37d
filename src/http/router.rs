//! A small router: method + path to a handler, with the answers HTTP
//! expects of a server that knows its routes (RFC 9110 §9.1, §9.3.2,
//! §9.3.7, §15.5.6):
//!
//! * a path no route matches: `404 Not Found` (or the
//!   [`fallback`](Router::fallback));
//! * a path that exists for other methods: `405 Method Not Allowed` with an
//!   `Allow` field listing them;
//! * `HEAD` on a path with a `GET` route: the `GET` route answers, the
//!   server sends only the head;
//! * `OPTIONS` on a path with no `OPTIONS` route: `204 No Content` with
//!   `Allow`; `OPTIONS *`: the methods of all routes.
//!
//! Paths are matched as sent (percent-encoded), exactly or by prefix; when
//! several routes match, an exact route wins over a prefix, and a longer
//! prefix over a shorter one. There are no path parameters: a prefix route
//! reads the rest of [`Request::path`] itself.
//!
//! ```no_run
//! use muxloop::http::{HttpServer, Response, Router};
//! use muxloop::EventLoop;
//!
//! let router = Router::new()
//!     .get("/hello", |_| Response::text(200, "hello"))
//!     .post("/echo", |req| Response::new(200).body(req.body()))
//!     .get_prefix("/static/", |req| Response::text(200, req.path()));
//! let mut ev: EventLoop = EventLoop::new()?;
//! let server = HttpServer::builder("127.0.0.1:8080", move |req| router.respond(req)).start(&mut ev)?;
//! ev.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use super::server::App;
use super::{Request, Response};

/// How a route's path is matched.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match self {
            Pattern::Exact(p) => path == p,
            Pattern::Prefix(p) => path.starts_with(p.as_str()),
        }
    }

    /// Higher is more specific: exact first, then the longest prefix.
    fn rank(&self) -> usize {
        match self {
            Pattern::Exact(_) => usize::MAX,
            Pattern::Prefix(p) => p.len(),
        }
    }
}

struct Route {
    method: String,
    pattern: Pattern,
    handler: App,
}

/// Routes requests by method and path to handlers
/// (`Fn(&Request) -> Response`); an [`HttpServer`](super::HttpServer) calls
/// [`respond`](Router::respond).
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    fallback: Option<App>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<String> =
            self.routes.iter().map(|r| format!("{} {:?}", r.method, r.pattern)).collect();
        f.debug_struct("Router").field("routes", &routes).field("fallback", &self.fallback.is_some()).finish()
    }
}

impl Router {
    /// A router with no routes (everything is 404).
    pub fn new() -> Router {
        Router::default()
    }

    /// Routes `method` (e.g. `"GET"`, as sent: methods are case-sensitive)
    /// on exactly `path` to `handler`.
    pub fn route(
        self,
        method: &str,
        path: &str,
        handler: impl Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    ) -> Router {
        self.add(method, Pattern::Exact(path.to_owned()), handler)
    }

    /// Routes `method` on every path that starts with `prefix`.
    pub fn prefix(
        self,
        method: &str,
        prefix: &str,
        handler: impl Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    ) -> Router {
        self.add(method, Pattern::Prefix(prefix.to_owned()), handler)
    }

    /// `GET` (and so `HEAD`) on exactly `path`.
    pub fn get(
        self,
        path: &str,
        handler: impl Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    ) -> Router {
        self.route("GET", path, handler)
    }

    /// `GET` (and so `HEAD`) on every path under `prefix`.
    pub fn get_prefix(
        self,
        prefix: &str,
        handler: impl Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    ) -> Router {
        self.prefix("GET", prefix, handler)
    }

    /// `POST` on exactly `path`.
    pub fn post(
        self,
        path: &str,
        handler: impl Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    ) -> Router {
        self.route("POST", path, handler)
    }

    /// `PUT` on exactly `path`.
    pub fn put(
        self,
        path: &str,
        handler: impl Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    ) -> Router {
        self.route("PUT", path, handler)
    }

    /// `DELETE` on exactly `path`.
    pub fn delete(
        self,
        path: &str,
        handler: impl Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    ) -> Router {
        self.route("DELETE", path, handler)
    }

    /// What answers a path no route matches (default: `404 Not Found`).
    pub fn fallback(mut self, handler: impl Fn(&Request<'_>) -> Response + Send + Sync + 'static) -> Router {
        self.fallback = Some(Arc::new(handler));
        self
    }

    fn add(
        mut self,
        method: &str,
        pattern: Pattern,
        handler: impl Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    ) -> Router {
        self.routes.push(Route { method: method.to_owned(), pattern, handler: Arc::new(handler) });
        self
    }

    /// The methods allowed where `routes` match, as an `Allow` value:
    /// `HEAD` wherever `GET` is, and `OPTIONS` always.
    fn allow<'r>(routes: impl Iterator<Item = &'r Route>) -> String {
        let mut methods: Vec<&str> = Vec::new();
        for route in routes {
            let implied: &[&str] = if route.method == "GET" { &["GET", "HEAD"] } else { &[] };
            for method in implied.iter().copied().chain([route.method.as_str()]) {
                if !methods.contains(&method) {
                    methods.push(method);
                }
            }
        }
        if !methods.contains(&"OPTIONS") {
            methods.push("OPTIONS");
        }
        methods.join(", ")
    }
}

impl Router {
    /// The answer to `req`: the most specific matching route's, or 404, 405
    /// or the `OPTIONS` answer as the module docs say.
    pub fn respond(&self, req: &Request<'_>) -> Response {
        if req.path() == "*" {
            // OPTIONS * asks about the server as a whole (only OPTIONS
            // reaches a handler with this target).
            return Response::new(204).header("Allow", Router::allow(self.routes.iter()));
        }
        let matching = || self.routes.iter().filter(|r| r.pattern.matches(req.path()));
        let method = req.method();
        // The most specific route for this method (one pass; an exact route
        // for the method itself cannot be beaten); HEAD prefers a HEAD route
        // to GET's.
        let mut best: Option<(&Route, (usize, bool))> = None;
        for route in &self.routes {
            let own = route.method == method;
            let serves = own || (method == "HEAD" && route.method == "GET");
            if !serves || !route.pattern.matches(req.path()) {
                continue;
            }
            let rank = (route.pattern.rank(), own);
            if rank == (usize::MAX, true) {
                return (route.handler)(req);
            }
            if best.is_none_or(|(_, r)| rank > r) {
                best = Some((route, rank));
            }
        }
        if let Some((route, _)) = best {
            return (route.handler)(req);
        }
        if matching().next().is_none() {
            return match &self.fallback {
                Some(fallback) => fallback(req),
                None => Response::text(404, format!("no such page: {}\n", req.path())),
            };
        }
        let allow = Router::allow(matching());
        if method == "OPTIONS" {
            return Response::new(204).header("Allow", allow);
        }
        Response::text(405, format!("{method} is not allowed here; allowed: {allow}\n"))
            .header("Allow", allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpConfig;
    use crate::http::request::{Parsed, parse};

    fn request(raw: &str, f: impl FnOnce(&Request<'_>)) {
        match parse(raw.as_bytes(), 0, &HttpConfig::default()) {
            Ok(Parsed::Complete { request, .. }) => f(&request),
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    fn answer(router: &Router, method: &str, target: &str) -> Response {
        let mut out = None;
        request(&format!("{method} {target} HTTP/1.1\r\nHost: t\r\n\r\n"), |req| {
            out = Some(router.respond(req))
        });
        out.unwrap()
    }

    fn named(name: &'static str) -> impl Fn(&Request<'_>) -> Response + Send + Sync + 'static {
        move |_: &Request<'_>| Response::text(200, name)
    }

    fn router() -> Router {
        Router::new()
            .get("/a", named("get a"))
            .post("/a", named("post a"))
            .get_prefix("/files/", named("files"))
            .get_prefix("/files/private/", named("private"))
            .put("/files/upload", named("upload"))
            .route("HEAD", "/h", named("head h"))
            .get("/h", named("get h"))
    }

    #[test]
    fn method_and_path_pick_the_route() {
        let r = router();
        assert_eq!(answer(&r, "GET", "/a").body_bytes(), b"get a");
        assert_eq!(answer(&r, "POST", "/a").body_bytes(), b"post a");
        assert_eq!(answer(&r, "GET", "/files/x").body_bytes(), b"files");
        assert_eq!(answer(&r, "GET", "/files/private/x").body_bytes(), b"private", "the longer prefix");
        assert_eq!(answer(&r, "PUT", "/files/upload").body_bytes(), b"upload", "exact beats prefix");
        assert_eq!(
            answer(&r, "GET", "/files/upload").body_bytes(),
            b"files",
            "a prefix serves other methods"
        );
        assert_eq!(answer(&r, "GET", "/a?x=1").body_bytes(), b"get a", "the query is not part of the path");
    }

    #[test]
    fn head_falls_back_to_get_unless_routed() {
        let r = router();
        assert_eq!(answer(&r, "HEAD", "/a").body_bytes(), b"get a");
        assert_eq!(answer(&r, "HEAD", "/h").body_bytes(), b"head h");
    }

    #[test]
    fn unknown_paths_are_404_or_the_fallback() {
        assert_eq!(answer(&router(), "GET", "/nope").status(), 404);
        let r = router().fallback(named("fallback"));
        assert_eq!(answer(&r, "DELETE", "/nope").body_bytes(), b"fallback");
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let r = router();
        let response = answer(&r, "DELETE", "/a");
        assert_eq!(response.status(), 405);
        assert_eq!(response.header_value("allow"), Some("GET, HEAD, POST, OPTIONS"));
        let response = answer(&r, "POST", "/files/upload");
        assert_eq!(response.header_value("Allow"), Some("GET, HEAD, PUT, OPTIONS"), "every matching route");
    }

    #[test]
    fn options_lists_the_methods() {
        let response = answer(&router(), "OPTIONS", "/a");
        assert_eq!(
            (response.status(), response.header_value("allow")),
            (204, Some("GET, HEAD, POST, OPTIONS"))
        );
        let response = answer(&router(), "OPTIONS", "*");
        assert_eq!(response.status(), 204);
        assert_eq!(response.header_value("allow"), Some("GET, HEAD, POST, PUT, OPTIONS"));
        let with_options = Router::new().route("OPTIONS", "/o", named("options o"));
        assert_eq!(answer(&with_options, "OPTIONS", "/o").body_bytes(), b"options o");
    }
}
