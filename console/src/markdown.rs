//! Markdown from packages (READMEs, changelogs) rendered to HTML that is safe to embed.

use maud::{Markup, PreEscaped};

/// `source` rendered as HTML, then sanitised: no scripts, styles, event handlers or frames;
/// links get `rel="noopener noreferrer nofollow"`; images from other servers lose their
/// source, so a page never loads anything from elsewhere (its Content-Security-Policy would
/// refuse it anyway).
pub fn render(source: &str) -> Markup {
    let parser = pulldown_cmark::Parser::new_ext(
        source,
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH,
    );
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    let clean = ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(|element, attribute, value| {
            let remote = value.contains("://") || value.starts_with("//");
            if element == "img" && attribute == "src" && remote {
                None
            } else {
                Some(value.into())
            }
        })
        .clean(&html)
        .to_string();
    PreEscaped(clean)
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_is_rendered_and_scripts_are_removed() {
        let html = render(
            "# Title\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=alert(1)> ![t](https://example.com/t.png)",
        )
        .into_string();
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("example.com"), "{html}");
    }
}
