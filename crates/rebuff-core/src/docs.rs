//! Error reference rendering (Markdown, HTML, OpenAPI 3.1, JSON).
