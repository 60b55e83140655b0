# Saved Wi-Fi networks live on /data (the root is read-only); the portal's access-point
# profile is created in memory only (the service's job), so nothing is written at all
# while the box is unconfigured.
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/files:"
SRC_URI:append:makespacelive-os = " file://makespacelive.conf file://makespacelive-networkmanager.conf"

do_install:append:makespacelive-os() {
    install -d ${D}${sysconfdir}/NetworkManager/conf.d
    install -m 0644 ${UNPACKDIR}/makespacelive.conf ${D}${sysconfdir}/NetworkManager/conf.d/makespacelive.conf
    # Without polkit, only root and the service may talk to NetworkManager.
    install -d ${D}${sysconfdir}/dbus-1/system.d
    install -m 0644 ${UNPACKDIR}/makespacelive-networkmanager.conf ${D}${sysconfdir}/dbus-1/system.d/makespacelive-networkmanager.conf
}
