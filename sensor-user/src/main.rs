//! The `kettlewatch` binary.

fn main() -> std::process::ExitCode {
    sensor_user::cli::main()
}
