SUMMARY = "Livestreaming appliance service: camera to H.264/AAC to RTMP(S)"
DESCRIPTION = "The makespacelive service: discovers the camera, microphone and encoders, \
               streams hardware-encoded H.264 + AAC over RTMP(S) to one or several destinations, \
               recovers from network and server faults, and serves its status on HTTP."
HOMEPAGE = "https://github.com/makespacelive/makespacelive"
BUGTRACKER = "https://github.com/makespacelive/makespacelive/issues"
SECTION = "multimedia"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=804c9067b6a9d616237acc1bc83758d6"

DEPENDS += "glib-2.0 gstreamer1.0 gstreamer1.0-plugins-base"

# The service is fetched like any other recipe's source: this repository at a pinned
# commit. nobranch=1: the commit is one of main's, but kas/this-commit.yml (CI) builds
# the commit under test, which can be a pull request's (fetched as refs/pull/*).
# Bumping: after the change to the service is on main, set SRCREV to that commit
# (`git rev-parse HEAD`) in a commit of its own (a commit cannot name itself). Its
# Cargo.lock must be the one makespacelive-crates.inc was generated from
# (`scripts/crates-inc --check` says when it is not). For local work on the service,
# kas/develop.yml builds the checkout itself (externalsrc) instead.
SRC_URI = "git://github.com/makespacelive/makespacelive.git;protocol=https;nobranch=1"
SRCREV = "67d7f5569ab3198412496138bf7d13edc6250400"
# S is oe-core's default, ${UNPACKDIR}/${BP}: where the git fetcher checks out
# (BB_GIT_DEFAULT_DESTSUFFIX = "${BP}" in wrynose's bitbake.conf).

inherit cargo cargo-update-recipe-crates pkgconfig systemd useradd

# The crates of Cargo.lock (scripts/crates-inc regenerates this file); after SRC_URI,
# which it extends.
require ${BPN}-crates.inc

SYSTEMD_SERVICE:${PN} = "makespacelive.service makespacelive-reboot.path makespacelive-boot-config.path makespacelive-password-reset.service"

USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --home-dir /data/makespacelive --no-create-home \
                       --shell /sbin/nologin --groups video,audio makespacelive"

# conf/makespacelive.install: the list the QEMU rung installs from as well.
do_install:append() {
    grep -v -e '^#' -e '^$' ${S}/conf/makespacelive.install | while read -r mode source destination; do
        install -D -m "$mode" "${S}/$source" "${D}$destination"
    done
}

# Every unit conf/makespacelive.install installs: systemd.bbclass packages only the units of
# SYSTEMD_SERVICE (and a .socket's .service), and the .service units started by the
# .path units or pulled in by makespacelive.service (makespacelive-country.service) are
# not enabled themselves. (${sysconfdir} is in oe-core's FILES:${PN}.)
FILES:${PN} += "${systemd_system_unitdir} ${nonarch_libdir}/tmpfiles.d"

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
    gstreamer1.0-plugins-base-videorate \
    gstreamer1.0-plugins-base-videotestsrc \
    gstreamer1.0-plugins-good-audioparsers \
    gstreamer1.0-plugins-good-flv \
    gstreamer1.0-plugins-good-jpeg \
    gstreamer1.0-plugins-good-video4linux2 \
    iw \
"
# libcamera's GStreamer element for CSI sensors behind unicam.
RRECOMMENDS:${PN} = "libcamera-gst"
