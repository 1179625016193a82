fn main() {
    std::process::exit(podgate::cli::main());
}
