//! The frame every page shares: title, navigation, style. No script.

use maud::{DOCTYPE, Markup, html};

/// Served at `/style.css`.
pub const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1d2329;background:#f6f7f9}
header{background:#1d2329;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:baseline}
header a{color:#cfe3ff;text-decoration:none}header b{font-size:1.1em}
main{padding:1em 1.2em}
table{border-collapse:collapse;background:#fff;width:100%;font-size:.92em}
th,td{border-bottom:1px solid #e3e6ea;padding:.35em .5em;text-align:left;vertical-align:top}
th a{color:inherit}
.num{text-align:right}.muted{color:#6b7580}
.sev1{color:#b00020;font-weight:600}.sev2{color:#b35c00}.sev3{color:#4a5560}
form.filter{margin:0 0 1em;display:flex;gap:.6em;flex-wrap:wrap}form.inline{margin:0}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;background:#fff;padding:.8em}
dt{color:#6b7580}
section{margin-bottom:1.6em}
code{font-size:.9em}
";

/// A page with `title`, in the frame.
pub fn page(host: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " - kettlewatch " (host) }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    b { "kettlewatch" }
                    span.muted { (host) }
                    a href="/" { "Devices" }
                    a href="/alerts" { "Alerts" }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The page for a store that cannot be read.
pub fn error(message: &str) -> Markup {
    page("", "State not readable", html! { p { (message) } })
}

/// The page for a form the console would not take.
pub fn refused(message: &str) -> Markup {
    page(
        "",
        "Not done",
        html! { p { (message) } p { a href="javascript:history.back()" { "Back" } } },
    )
}
