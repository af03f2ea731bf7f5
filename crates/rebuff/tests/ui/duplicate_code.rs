// A catalog that does not load is a compile error naming the file, line and entry.

rebuff::catalog!(pub Code = "bad_catalog.toml");

fn main() {}
