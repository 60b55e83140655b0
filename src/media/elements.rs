//! Turning planned elements into GStreamer elements, property by property, so values
//! (keys included) are never quoted into a launch string.

use gstreamer as gst;
use gstreamer::prelude::*;

use super::plan::Element;

pub fn make(spec: &Element) -> Result<gst::Element, String> {
    let element = gst::ElementFactory::make(&spec.factory)
        .build()
        .map_err(|_| format!("the GStreamer element {} is not installed", spec.factory))?;
    for (name, text) in &spec.props {
        let pspec = element.find_property(name).ok_or_else(|| {
            format!("{} has no property {name:?} (see gst-inspect-1.0 {})", spec.factory, spec.factory)
        })?;
        let value = <gst::glib::Value as GstValueExt>::deserialize(text, pspec.value_type()).map_err(|_| {
            format!("{}: {text:?} is not a valid {name} (expected {})", spec.factory, pspec.value_type().name())
        })?;
        element.set_property_from_value(name, &value);
    }
    Ok(element)
}

/// Adds the chain to `bin` and links it in order; returns its first and last elements.
pub fn add_chain(bin: &gst::Bin, chain: &[Element]) -> Result<(gst::Element, gst::Element), String> {
    let elements = chain.iter().map(make).collect::<Result<Vec<_>, _>>()?;
    bin.add_many(&elements).map_err(|e| format!("cannot add elements: {e}"))?;
    gst::Element::link_many(&elements).map_err(|_| {
        let names: Vec<&str> = chain.iter().map(|e| e.factory.as_str()).collect();
        format!("cannot link {}: the formats do not fit together", names.join(" ! "))
    })?;
    match (elements.first(), elements.last()) {
        (Some(first), Some(last)) => Ok((first.clone(), last.clone())),
        _ => Err("empty element chain".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(factory: &str, props: &[(&str, &str)]) -> Element {
        Element { factory: factory.into(), props: props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn sets_typed_properties_from_text() {
        gst::init().unwrap();
        let e = make(&spec("x264enc", &[("bitrate", "800"), ("tune", "zerolatency")])).unwrap();
        assert_eq!(e.property::<u32>("bitrate"), 800);
        let caps = make(&spec("capsfilter", &[("caps", "video/x-h264,level=(string)4")])).unwrap();
        assert_eq!(caps.property::<gst::Caps>("caps").to_string(), "video/x-h264, level=(string)4");
    }

    #[test]
    fn bad_properties_are_named() {
        gst::init().unwrap();
        let err = make(&spec("x264enc", &[("bogus", "1")])).unwrap_err();
        assert!(err.contains("x264enc has no property \"bogus\""), "{err}");
        let err = make(&spec("x264enc", &[("bitrate", "fast")])).unwrap_err();
        assert!(err.contains("\"fast\" is not a valid bitrate (expected guint)"), "{err}");
        assert!(make(&spec("nosuchelement", &[])).unwrap_err().contains("nosuchelement is not installed"));
    }
}
