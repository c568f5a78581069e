//! Arbitrary text as network XML: parsing must never panic, and whatever
//! parses must format to XML that parses back to the same text; the
//! define-time steps must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use virtnet_conf::{FormatFlags, NetworkDef, defaults};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(def) = NetworkDef::parse(text) else {
        return;
    };
    for flags in [FormatFlags::ACTIVE, FormatFlags::INACTIVE] {
        let once = def.to_xml(flags);
        let again = match NetworkDef::parse(&once) {
            Ok(d) => d,
            Err(e) => panic!("formatted output does not parse: {e}\n{once}"),
        };
        assert_eq!(again.to_xml(flags), once, "formatting is not stable");
    }
    let live = def.to_xml(FormatFlags::ACTIVE);
    match NetworkDef::parse_status(&live) {
        Ok(st) => assert_eq!(
            st.to_xml(FormatFlags::ACTIVE),
            live,
            "status view is not stable"
        ),
        Err(e) => panic!("live view does not parse as status: {e}\n{live}"),
    }
    let mut defined = def.clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    if defaults::prepare_define_with(&mut defined, &["virbr0"], &mut rng).is_ok() {
        let out = defined.to_xml(FormatFlags::INACTIVE);
        assert!(
            NetworkDef::parse(&out).is_ok(),
            "defined network does not parse:\n{out}"
        );
    }
});
