SUMMARY = "The data partition and the slot health check of the makespacelive appliance"
DESCRIPTION = "Grows the data partition to the card on first boot, creates the \
               directories that live there (settings, NetworkManager keyfiles, RAUC state, SSH host \
               keys, machine-id), marks the booted RAUC slot good once the service is up (or bad, \
               and reboots, when it does not come up), lets systemd feed the hardware watchdog and \
               reboots a failed boot instead of waiting in a locked emergency shell."
HOMEPAGE = "https://github.com/makespacelive/makespacelive"
BUGTRACKER = "https://github.com/makespacelive/makespacelive/issues"
SECTION = "base"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COREBASE}/meta/COPYING.MIT;md5=3da9cfbcb788c80a0384361b4de20420"

SRC_URI = "\
    file://makespacelive-data.install \
    file://makespacelive-grow-data \
    file://makespacelive-grow-data.service.in \
    file://makespacelive-data-layout \
    file://makespacelive-data-layout.service \
    file://makespacelive-health \
    file://makespacelive-health.service.in \
    file://makespacelive-watchdog.conf.in \
    file://makespacelive-no-shell.conf \
"
S = "${UNPACKDIR}"

inherit systemd makespacelive_template

# The units are rendered from the layout values, which differ between machines (the
# disk, the data partition's label): one package per machine, not one for all.
PACKAGE_ARCH = "${MACHINE_ARCH}"

MAKESPACELIVE_TEMPLATES = "\
    makespacelive-grow-data.service.in:makespacelive-grow-data.service \
    makespacelive-health.service.in:makespacelive-health.service \
    makespacelive-watchdog.conf.in:makespacelive-watchdog.conf \
"

SYSTEMD_SERVICE:${PN} = "\
    makespacelive-grow-data.service \
    makespacelive-data-layout.service \
    makespacelive-health.service \
"

# The list the QEMU rung installs from as well.
do_install() {
    grep -v -e '^#' -e '^$' ${UNPACKDIR}/makespacelive-data.install | while read -r mode source destination; do
        install -D -m "$mode" "${UNPACKDIR}/$source" "${D}$destination"
    done
    install -d ${D}/data
}

# Every file of makespacelive-data.install: the unit directory holds the drop-ins besides
# SYSTEMD_SERVICE's units, which systemd.bbclass packages itself.
FILES:${PN} += "/data ${systemd_system_unitdir} ${systemd_unitdir}/system.conf.d"
RDEPENDS:${PN} = "rauc udev util-linux-lsblk util-linux-partx util-linux-sfdisk"
