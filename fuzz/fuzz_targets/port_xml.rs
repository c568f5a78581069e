//! Arbitrary text as networkport XML: parsing must never panic and
//! whatever parses must format to XML that parses back to the same port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtnet_conf::PortDef;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(port) = PortDef::parse(text) else {
        return;
    };
    let once = port.to_xml();
    let again = match PortDef::parse(&once) {
        Ok(p) => p,
        Err(e) => panic!("formatted output does not parse: {e}\n{once}"),
    };
    assert_eq!(again, port, "port changed across a format/parse cycle");
    assert_eq!(again.to_xml(), once, "formatting is not stable");
});
