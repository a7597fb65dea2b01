//! End-to-end tests: the real server on 127.0.0.1:0 with a temporary data directory, driven
//! through the generated gRPC client and, where a separate process matters, the binary.

mod availability;
mod backup;
mod bad_input;
mod bootstrap;
mod compensation;
mod core_loop;
mod crash;
mod crash_state;
mod integrity;
mod keys;
mod lifecycle;
mod log;
mod metrics;
mod portal;
mod portal_api;
mod postgres;
mod readme_tour;
mod release;
mod retention;
mod roles;
mod several_nodes;
mod telemetry;
mod tidy;
mod tls;
mod upgrade;
mod votes;
