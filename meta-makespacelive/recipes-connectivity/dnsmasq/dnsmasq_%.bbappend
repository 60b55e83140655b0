# The image has dnsmasq for NetworkManager, which runs the binary itself for the portal's
# access point (shared mode, on 10.42.0.1). The package's own dnsmasq.service would
# listen on port 53 of every interface first and NetworkManager's instance could not
# bind, so it is installed but not enabled.
SYSTEMD_AUTO_ENABLE:makespacelive-os = "disable"

# Nor its resolved.conf.d drop-in (DNSStubListener=no), written for that service: it
# would switch off systemd-resolved's stub listener on 127.0.0.53 for nothing.
do_install:append:makespacelive-os() {
    rm ${D}${sysconfdir}/systemd/resolved.conf.d/dnsmasq-resolved.conf
    rmdir ${D}${sysconfdir}/systemd/resolved.conf.d
}
