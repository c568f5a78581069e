//! Shared harness for virtnet's end-to-end scenarios.
