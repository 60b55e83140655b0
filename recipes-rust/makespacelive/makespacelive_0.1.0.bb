SUMMARY = "Livestreaming appliance service: camera to H.264/AAC to RTMP(S)"
DESCRIPTION = "The makespacelive service: discovers the camera, microphone and encoders, \
               streams hardware-encoded H.264 + AAC over RTMP(S) to one or several destinations, \
               recovers from network and server faults, and serves its status on HTTP."
HOMEPAGE = "https://github.com/makespacelive/makespacelive"
BUGTRACKER = "https://github.com/makespacelive/makespacelive/issues"
SECTION = "multimedia"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=804c9067b6a9d616237acc1bc83758d6"

# Built from this same repository: the layer is the repository's root.
inherit externalsrc
EXTERNALSRC = "${@os.path.abspath(os.path.join(d.getVar('THISDIR'), '..', '..'))}"
EXTERNALSRC_BUILD = "${WORKDIR}/build"

inherit cargo cargo-update-recipe-crates pkgconfig systemd useradd

# The crates of Cargo.lock (scripts/crates-inc regenerates this file).
require ${BPN}-crates.inc

DEPENDS += "glib-2.0 gstreamer1.0 gstreamer1.0-plugins-base"

SYSTEMD_SERVICE:${PN} = "makespacelive.service"

USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --home-dir /data/makespacelive --no-create-home \
                       --shell /sbin/nologin --groups video,audio makespacelive"

do_install:append() {
    install -d ${D}${datadir}/makespacelive
    install -m 0644 ${S}/conf/defaults.toml ${D}${datadir}/makespacelive/defaults.toml
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/conf/makespacelive.service ${D}${systemd_system_unitdir}/makespacelive.service
    install -d ${D}${sysconfdir}/NetworkManager/dnsmasq-shared.d
    install -m 0644 ${S}/conf/dnsmasq-shared.d/makespacelive-portal.conf \
        ${D}${sysconfdir}/NetworkManager/dnsmasq-shared.d/makespacelive-portal.conf
}

FILES:${PN} += "${sysconfdir}/NetworkManager/dnsmasq-shared.d"

# Exactly the GStreamer elements the pipeline plans can name (src/media/plan.rs), the
# TLS backend rtmp2sink needs for rtmps://, and the CA certificates it checks against.
RDEPENDS:${PN} = "\
    ca-certificates \
    glib-networking \
    gstreamer1.0-plugins-bad-fdkaac \
    gstreamer1.0-plugins-bad-rtmp2 \
    gstreamer1.0-plugins-bad-videoparsersbad \
    gstreamer1.0-plugins-base-alsa \
    gstreamer1.0-plugins-base-app \
    gstreamer1.0-plugins-base-audioconvert \
    gstreamer1.0-plugins-base-audioresample \
    gstreamer1.0-plugins-base-audiotestsrc \
    gstreamer1.0-plugins-base-videoconvertscale \
    gstreamer1.0-plugins-base-videotestsrc \
    gstreamer1.0-plugins-good-audioparsers \
    gstreamer1.0-plugins-good-flv \
    gstreamer1.0-plugins-good-jpeg \
    gstreamer1.0-plugins-good-video4linux2 \
"
# libcamera's GStreamer element for CSI sensors behind unicam.
RRECOMMENDS:${PN} = "libcamera-gst"
