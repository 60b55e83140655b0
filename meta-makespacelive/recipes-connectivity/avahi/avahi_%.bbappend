# Avahi announces the box as <hostname>.local over IPv4 only (files/avahi-daemon.conf
# says why: its IPv6 records make it rename itself at boot).
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/files:"
SRC_URI:append:makespacelive-os = " file://avahi-daemon.conf"

do_install:append:makespacelive-os() {
    install -m 0644 ${UNPACKDIR}/avahi-daemon.conf ${D}${sysconfdir}/avahi/avahi-daemon.conf
}
