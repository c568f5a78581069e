//! `net-desc` / `net-metadata`: getting and setting title, description and
//! namespaced metadata elements.

use virtnet_conf::{ErrorKind, FormatFlags, MetadataType, NetworkDef};

fn net() -> NetworkDef {
    NetworkDef::parse(
        "<network><name>m</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>\
         <metadata><app1:foo xmlns:app1='http://foo.org/'>fooish<app1:bar x='1'/></app1:foo></metadata>\
         </network>",
    )
    .expect("test network parses")
}

#[test]
fn get_element_without_prefix() {
    let d = net();
    assert_eq!(
        d.metadata_get(MetadataType::Element, Some("http://foo.org/"))
            .unwrap(),
        "<foo>fooish<bar x=\"1\"/></foo>"
    );
    let e = d
        .metadata_get(MetadataType::Element, Some("http://other/"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoNetworkMetadata);
    assert_eq!(
        e.to_string(),
        "metadata not found: Requested metadata element is not present"
    );
    assert!(d.metadata_get(MetadataType::Title, None).is_err());
}

#[test]
fn set_element_replaces_same_namespace() {
    let mut d = net();
    d.metadata_set(
        MetadataType::Element,
        Some("<info><owner>lab</owner></info>"),
        Some("app"),
        Some("http://foo.org/"),
    )
    .unwrap();
    d.metadata_set(
        MetadataType::Element,
        Some("<tag>x</tag>"),
        Some("other"),
        Some("http://other.example/"),
    )
    .unwrap();
    assert_eq!(
        d.to_xml(FormatFlags::INACTIVE),
        "<network>
  <name>m</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <metadata>
    <app:info xmlns:app=\"http://foo.org/\">
      <app:owner>lab</app:owner>
    </app:info>
    <other:tag xmlns:other=\"http://other.example/\">x</other:tag>
  </metadata>
  <bridge stp='on' delay='0'/>
</network>
"
    );
    assert_eq!(
        d.metadata_get(MetadataType::Element, Some("http://foo.org/"))
            .unwrap(),
        "<info>\n  <owner>lab</owner>\n</info>"
    );
    d.metadata_set(MetadataType::Element, None, None, Some("http://foo.org/"))
        .unwrap();
    d.metadata_set(
        MetadataType::Element,
        None,
        None,
        Some("http://other.example/"),
    )
    .unwrap();
    // libvirt keeps the emptied element.
    assert!(
        d.to_xml(FormatFlags::INACTIVE).contains("  <metadata/>\n"),
        "{}",
        d.to_xml(FormatFlags::INACTIVE)
    );
    let mut bare = NetworkDef::parse("<network><name>n</name></network>").unwrap();
    bare.metadata_set(MetadataType::Element, None, None, Some("http://foo.org/"))
        .unwrap();
    assert!(bare.metadata.is_none());
    let e = d
        .metadata_set(MetadataType::Element, Some("<a/>"), Some("1bad"), Some("u"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InternalError);
}

#[test]
fn title_and_description() {
    let mut d = net();
    d.metadata_set(MetadataType::Title, Some("Lab"), None, None)
        .unwrap();
    d.metadata_set(MetadataType::Description, Some("a\nb"), None, None)
        .unwrap();
    assert_eq!(d.metadata_get(MetadataType::Title, None).unwrap(), "Lab");
    let xml = d.to_xml(FormatFlags::INACTIVE);
    assert!(
        xml.contains("<title>Lab</title>\n  <description>a\nb</description>\n"),
        "{xml}"
    );
    let e = d
        .metadata_set(MetadataType::Title, Some("x\ny"), None, None)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
    d.metadata_set(MetadataType::Title, Some(""), None, None)
        .unwrap();
    assert!(d.title.is_none());
}
