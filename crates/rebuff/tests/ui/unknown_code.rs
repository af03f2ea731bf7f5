// A code that is not in the catalog cannot be named.

fn main() {
    let _ = rebuff::standard::Code::NoSuchCode;
}
