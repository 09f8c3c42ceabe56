//! Root package: hosts the end-to-end tests and examples.
