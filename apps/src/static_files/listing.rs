//! A directory's HTML listing: the entries a request could fetch, names escaped.

use std::fs;
use std::io;
use std::path::Path;

use ferrocorn_worker::{Body, Request, Response};

use super::path::{is_hidden, percent_decode};

fn html_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn href_escape(name: &[u8], out: &mut String) {
    use std::fmt::Write;
    for &b in name {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// An HTML listing of `dir`, sorted by name, directories with a trailing `/`: the entries a request could fetch, so no hidden names, no symlinks
/// that are broken or lead outside `root`, and nothing but files and directories (the rest
/// is answered 404).
pub(super) fn listing(
    req: &Request,
    res: &mut Response,
    root: &Path,
    dir: &Path,
) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut entries: Vec<(String, Vec<u8>, bool)> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            if is_hidden(name.as_bytes()) {
                return None;
            }
            let mut file_type = e.file_type().ok()?;
            if file_type.is_symlink() {
                let real = fs::canonicalize(e.path()).ok()?;
                if !real.starts_with(root) {
                    return None;
                }
                file_type = fs::metadata(real).ok()?.file_type();
            }
            // Sockets, FIFOs and devices are not served either.
            if !(file_type.is_file() || file_type.is_dir()) {
                return None;
            }
            let is_dir = file_type.is_dir();
            Some((
                name.to_string_lossy().into_owned(),
                name.as_bytes().to_vec(),
                is_dir,
            ))
        })
        .collect();
    entries.sort();
    // The title shows the path as the user reads it, decoded, then escaped like the names.
    let shown = percent_decode(req.path())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|| req.path().to_string());
    let mut title = String::new();
    html_escape(&shown, &mut title);
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body><h1>Index of {title}</h1>\n<ul>\n"
    );
    for (name, raw, is_dir) in entries {
        html.push_str("<li><a href=\"");
        href_escape(&raw, &mut html);
        if is_dir {
            html.push('/');
        }
        html.push_str("\">");
        html_escape(&name, &mut html);
        if is_dir {
            html.push('/');
        }
        html.push_str("</a></li>\n");
    }
    html.push_str("</ul></body></html>\n");
    res.header("Content-Type", "text/html; charset=utf-8");
    res.body = Body::Bytes(html.into_bytes());
    Ok(())
}
