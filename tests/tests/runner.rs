//! The test runner gives every test binary a private network namespace.

#[test]
fn runs_in_private_network_namespace() {
    match std::env::var("VIRTNET_TEST_IN_NETNS").as_deref() {
        Ok("1") => {
            let self_ns = std::fs::read_link("/proc/self/ns/net").expect("own netns");
            let init_ns = std::fs::read_link("/proc/1/ns/net");
            if let Ok(init_ns) = init_ns {
                assert_ne!(
                    self_ns, init_ns,
                    "test binary shares pid 1's network namespace"
                );
            }
        }
        _ => eprintln!("skipped: not started by scripts/netns-runner with namespace support"),
    }
}
